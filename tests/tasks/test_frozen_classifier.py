"""G's classification loss from a frozen attribute classifier trained apart (lambda_cls_frozen): its value on
known inputs, that it trains G and leaves the classifier alone, and the recipe's checks of the classifier."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from legan_tf import losses
from legan_tf.errors import ConfigError
from legan_tf.gan import LEGAN, StarGAN
from legan_tf.models.classifier import AttributeClassifier
from legan_tf.tasks.legan import LEGANTask
from legan_tf.tasks.stargan import StarGANTask
from tests.tiny_gan import LABELS, TINY, tiny_batch, tiny_model



def _classifier(heads=None, size=16):
    keras.utils.set_random_seed(1)
    classifier = AttributeClassifier(size, heads or {"expression": 3}, base_filters=4, num_downsamples=2)
    classifier(np.zeros((1, size, size, 3), np.float32))
    return classifier


def _model(classifier, model_class=StarGAN, **overrides):
    return tiny_model(model_class, attribute_classifier=classifier, **{"lambda_cls_frozen": 1.0, **overrides})


def test_the_term_is_the_cross_entropy_of_the_targets_on_the_resized_fakes():
    classifier = _classifier()
    model, batch, step = _model(classifier), tiny_batch(), 3
    targets = model.random_targets(batch, step)
    fakes = model.translate(batch["image"], targets, training=False)
    terms = model.generator_losses(batch, fakes, model.reconstruct(batch, fakes, training=False), targets, step)
    # 32 px fakes, a 16 px classifier: resized as the judges resize (bilinear, antialiased).
    small = tf.image.resize(fakes, (16, 16), method="bilinear", antialias=True)
    logits = classifier(small, training=False)["expression"].numpy()
    shifted = logits - logits.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = -log_softmax[np.arange(4), np.asarray(targets["expression"])]
    # float32 log-softmax of logits of order 1: a few ulps of the O(1) values, far below 1e-5.
    np.testing.assert_allclose(terms["frozen_classification"], expected, atol=1e-5)
    assert model.generator_loss_weights()["frozen_classification"] == 1.0


def test_a_classifier_of_the_models_size_is_read_without_resizing():
    classifier = _classifier(size=32)
    model, batch = _model(classifier), tiny_batch()
    targets = {name: ops.convert_to_tensor(batch[name]) for name in LABELS}
    fakes = batch["image"]
    logits = classifier(fakes, training=False)
    expected = losses.classification_loss(logits["expression"], targets["expression"])
    np.testing.assert_allclose(model.frozen_classification(fakes, targets), expected, atol=1e-6)


def test_off_by_default_and_with_a_zero_weight():
    assert "frozen_classification" not in _model(None, lambda_cls_frozen=0.0).generator_loss_weights()
    assert "frozen_classification" not in _model(_classifier(), lambda_cls_frozen=0.0).generator_loss_weights()


def test_a_generator_step_trains_g_against_it_and_leaves_the_classifier_as_it_was():
    classifier = _classifier()
    model, batch = _model(classifier, model_class=LEGAN, lambda_id=0.0, lambda_qual=0.0), tiny_batch()
    frozen = [w.numpy().copy() for w in classifier.weights]
    before = [w.numpy().copy() for w in model.generator.trainable_weights]
    metrics = model.generator_step(batch, tf.constant(1, tf.int64))
    assert np.isfinite(float(metrics["g/frozen_classification"]))
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(classifier.weights, frozen))
    assert not all(np.array_equal(w.numpy(), b) for w, b in zip(model.generator.trainable_weights, before))
    assert not classifier.trainable


def test_learning_against_the_classifier_alone_lowers_its_loss():
    # G trained on the frozen term only (every other weight 0): a fixed target is easy to reach, so the
    # cross-entropy must fall from its start, about log(3) for an untrained classifier's near-uniform read.
    classifier = _classifier()
    model = _model(classifier, lambda_cls=0.0, lambda_rec=0.0, lambda_cls_frozen=1.0)
    batch = tiny_batch()
    targets = {"expression": tf.constant([2, 2, 2, 2]), "lighting": tf.constant([0, 0, 0, 0])}
    variables = model.generator.trainable_variables
    optimizer = keras.optimizers.Adam(1e-2)

    def loss():
        fakes = model.translate(batch["image"], targets, training=True)
        return tf.reduce_mean(model.frozen_classification(fakes, targets))

    start = float(loss())
    for _ in range(30):
        with tf.GradientTape() as tape:
            value = loss()
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
    assert float(loss()) < 0.5 * start, (start, float(loss()))


@pytest.mark.parametrize("heads", [{"expression": 5}, {"pose": 3}])
def test_a_classifier_whose_heads_do_not_fit_is_refused(heads):
    with pytest.raises(ValueError, match="do not fit"):
        StarGAN(global_batch_size=4, attribute_classifier=_classifier(heads), lambda_cls_frozen=1.0, **TINY)


def _saved(tmp_path, names, heads=None):
    path = os.path.join(tmp_path, "attribute_classifier.keras")
    _classifier(heads).save(path)
    if names is not None:
        with open(os.path.join(tmp_path, "labels.json"), "w") as handle:
            json.dump(names, handle)
    return path


LABEL_NAMES = {"expression": ("happy", "sad", "neutral"), "lighting": ("a", "b", "c", "d")}


def test_the_recipe_loads_a_classifier_whose_classes_are_the_datas(tmp_path):
    path = _saved(tmp_path, {"expression": ["happy", "sad", "neutral"]})
    task = LEGANTask(LABEL_NAMES, 64, 4, 10, lambda_id=0.0, lambda_qual=0.0, lambda_cls_frozen=1.0,
                     attribute_classifier=path)
    assert task.pretrained_models()["attribute_classifier"].head_classes == {"expression": 3}


@pytest.mark.parametrize("names,heads,message", [
    ({"expression": ["sad", "happy", "neutral"]}, None, "are not the data's"),
    (None, None, "no labels.json beside it"),
    ({"expression": ["happy", "sad", "neutral"]}, {"pose": 3}, "no head for the data's attributes"),
])
def test_the_recipe_refuses_a_classifier_that_does_not_match_the_data(tmp_path, names, heads, message):
    path = _saved(tmp_path, names, heads)
    task = StarGANTask(LABEL_NAMES, 64, 4, 10, lambda_cls_frozen=1.0, attribute_classifier=path)
    with pytest.raises(ConfigError, match=message):
        task.pretrained_models()


def test_the_recipes_flags_go_together():
    with pytest.raises(ConfigError, match="--legan_lambda_cls_frozen=1 needs a frozen classifier"):
        LEGANTask(LABEL_NAMES, 64, 4, 10, lambda_id=0.0, lambda_qual=0.0, lambda_cls_frozen=1.0)
    with pytest.raises(ConfigError, match="--stargan_attribute_classifier is read only with"):
        StarGANTask(LABEL_NAMES, 64, 4, 10, attribute_classifier="x.keras")
    with pytest.raises(ConfigError, match="no such file"):
        StarGANTask(LABEL_NAMES, 64, 4, 10, lambda_cls_frozen=1.0, attribute_classifier="/nonexistent/c.keras")
    with pytest.raises(ConfigError, match="--legan_d_augment='blur'"):
        LEGANTask(LABEL_NAMES, 64, 4, 10, lambda_id=0.0, lambda_qual=0.0, d_augment="blur")


def test_the_recipe_refuses_a_file_that_is_no_attribute_classifier(tmp_path):
    path = os.path.join(tmp_path, "attribute_classifier.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(path)
    with open(os.path.join(tmp_path, "labels.json"), "w") as handle:
        json.dump({"expression": ["happy", "sad", "neutral"]}, handle)
    task = StarGANTask(LABEL_NAMES, 64, 4, 10, lambda_cls_frozen=1.0, attribute_classifier=path)
    with pytest.raises(ConfigError, match="a Sequential, not an AttributeClassifier .train one with"):
        task.pretrained_models()

