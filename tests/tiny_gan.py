"""A StarGAN-family model at test size, and a batch for it: shared by the tests of its loss options."""

import keras
import numpy as np
import tensorflow as tf

LABELS = {"expression": 3, "lighting": 4}
TINY = dict(image_size=32, label_sizes=LABELS, g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=5)


def tiny_model(model_class, **overrides):
    """`model_class` (StarGAN, LEGAN) at TINY sizes, global batch 4, every variable built."""
    keras.utils.set_random_seed(0)
    model = model_class(global_batch_size=4, **{**TINY, **overrides})
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    return model


def tiny_batch():
    """Four 32 px faces of uniform noise with fixed labels."""
    rng = np.random.default_rng(2)
    return {"image": tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)),
            "expression": tf.constant([0, 1, 2, 0]), "lighting": tf.constant([3, 2, 1, 0])}
