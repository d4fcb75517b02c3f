"""The face lab's labels must be visible in the pixels: a small CNN trained on some identities
recognises expression and lighting of identities it has never seen."""

import keras
import numpy as np
import pytest

from legan_tf.data.synthetic import FaceLab
from legan_tf.models.classifier import AttributeClassifier

# A long end-to-end check: `make test-slow` runs it (CI runs both targets), `make test` leaves it out.
pytestmark = pytest.mark.slow

TRAIN_IDENTITIES = range(0, 40)
HELD_OUT_IDENTITIES = range(1000, 1010)
# 32 px, the size of the GAN learning checks (configs/lab/face_lab_32.flags); a quarter of 64 px's cost.
IMAGE_SIZE = 32
EPOCHS = 6
BATCH = 64


def _render_split(lab, identities):
    grid = lab.render_grid(list(identities), list(range(lab.num_expressions)), list(range(lab.num_lightings)))
    return grid["rgb"] * 2.0 - 1.0, {"expression": grid["expression"], "lighting": grid["lighting"]}


@pytest.mark.parametrize("expression_set", ["multipie", "affectnet"])
def test_small_cnn_recognises_expression_and_lighting_of_held_out_identities(expression_set):
    keras.utils.set_random_seed(0)
    lab = FaceLab(image_size=IMAGE_SIZE, expression_set=expression_set, num_lightings=20, seed=0)
    train_images, train_labels = _render_split(lab, TRAIN_IDENTITIES)
    test_images, test_labels = _render_split(lab, HELD_OUT_IDENTITIES)

    model = AttributeClassifier(IMAGE_SIZE, {"expression": lab.num_expressions, "lighting": lab.num_lightings},
                                base_filters=16, num_downsamples=3)
    decay = keras.optimizers.schedules.PolynomialDecay(2e-3, EPOCHS * len(train_images) // BATCH, 0.0)
    model.compile(optimizer=keras.optimizers.Adam(decay),
                  loss={name: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for name in train_labels})
    model.fit(train_images, train_labels, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0)

    logits = model.predict(test_images, batch_size=256, verbose=0)
    accuracy = {name: float(np.mean(np.argmax(logits[name], -1) == test_labels[name])) for name in test_labels}
    print(expression_set, accuracy)
    assert accuracy["expression"] >= 0.95, accuracy
    assert accuracy["lighting"] >= 0.95, accuracy



