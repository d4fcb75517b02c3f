"""The LEGAN recipe: shuffled targets, identity and quality terms, fit(), replica independence, bad settings."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf.errors import ConfigError
from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
from legan_tf.models.quality import QualityModel
from legan_tf.tasks.legan import LEGAN, LEGANTask

LABELS = {"expression": 3, "lighting": 4}
TINY = dict(image_size=32, label_sizes=LABELS, g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=5)
NAMES = {"expression": ("a", "b", "c"), "lighting": ("0", "1", "2", "3")}


def _batch(count=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(-1, 1, (count, 32, 32, 3)).astype(np.float32),
            "expression": rng.integers(0, 3, count).astype(np.int32),
            "lighting": rng.integers(0, 4, count).astype(np.int32)}


def _judges():
    keras.utils.set_random_seed(1)
    identity = IdentityEmbedder(LightCNN29v2(input_size=16, channels=(4, 4, 4, 4, 4), embedding_dim=8,
                                             num_blocks=(1, 1, 1, 1)))
    quality = QualityModel(image_size=32, base_filters=4, num_downsamples=3, dense_units=8)
    identity(np.zeros((1, 32, 32, 3), np.float32))
    quality(np.zeros((1, 32, 32, 3), np.float32))
    return identity, quality


def _model(global_batch=8, judges=True, **overrides):
    identity, quality = _judges() if judges else (None, None)
    keras.utils.set_random_seed(0)
    model = LEGAN(global_batch_size=global_batch, identity_model=identity, quality_model=quality,
                  lambda_qual=1.0 if judges else 0.0, **{**TINY, **overrides})
    model.build_all(keras.optimizers.Adam(1e-3, 0.5, 0.999), keras.optimizers.Adam(1e-3, 0.5, 0.999))
    return model


def test_targets_shuffle_each_attribute_within_the_batch_independently():
    model = _model(global_batch=64, judges=False)
    batch = _batch(64)
    same_permutation = 0
    for step in range(5):
        targets = model.random_targets(batch, tf.constant(step, tf.int64))
        for name in LABELS:
            # A permutation of the batch's labels: the label counts are kept.
            np.testing.assert_array_equal(np.sort(targets[name].numpy()), np.sort(batch[name]))
        again = model.random_targets(batch, tf.constant(step, tf.int64))
        np.testing.assert_array_equal(again["lighting"].numpy(), targets["lighting"].numpy())
        # Independent permutations: the pairs (expression, lighting) are re-mixed, not moved together.
        pairs = sorted(zip(targets["expression"].numpy(), targets["lighting"].numpy()))
        same_permutation += pairs == sorted(zip(batch["expression"], batch["lighting"]))
    assert same_permutation == 0
    later = model.random_targets(batch, tf.constant(99, tf.int64))["lighting"].numpy()
    assert not np.array_equal(later, targets["lighting"].numpy())


def test_generator_step_adds_identity_and_quality_terms_and_trains_only_the_generator():
    model = _model()
    assert list(model.generator_loss_weights()) == ["adversarial", "classification", "reconstruction", "quality",
                                                    "identity"]
    frozen = [w.numpy().copy() for w in model.identity_model.weights + model.quality_model.weights]
    before = [w.numpy().copy() for w in model.generator.trainable_weights]
    batch = {key: tf.constant(value) for key, value in _batch().items()}
    metrics = model.generator_step(batch, tf.constant(1, tf.int64))
    assert {"g/identity", "g/quality", "g/total"} <= set(metrics)
    assert 0.0 <= float(metrics["g/identity"]) <= 2.0
    assert all(np.isfinite(float(value)) for value in metrics.values())
    unchanged = [w.path for w, b in zip(model.generator.trainable_weights, before) if np.array_equal(w.numpy(), b)]
    assert not unchanged
    for weight, saved in zip(model.identity_model.weights + model.quality_model.weights, frozen):
        np.testing.assert_array_equal(weight.numpy(), saved)


def test_identity_term_is_one_minus_cosine_of_the_frozen_embeddings():
    model = _model()
    images = tf.constant(_batch()["image"])
    same = model.generator_losses(images, images, images, {k: tf.constant(v) for k, v in _batch().items()
                                                         if k != "image"}, training=False)["identity"]
    # 1 - cos(a, a) in float32 (8-dim): two sums of 8 squares (<= 7 roundings each), rsqrt (<= 2 ulps, twice
    # over as r**2) and the products: <= ~20 * 6e-8 = 1.2e-6; 1 - c itself is exact near 1.
    np.testing.assert_allclose(same.numpy(), 0.0, atol=2e-6)
    other = -images  # the negative of each face
    changed = model.generator_losses(images, other, images, {k: tf.constant(v) for k, v in _batch().items()
                                                           if k != "image"}, training=False)["identity"]
    f = model.identity_model
    expected = 1 - np.sum(tf.math.l2_normalize(f(images), 1) * tf.math.l2_normalize(f(other), 1), axis=1)
    # The same normalised float32 embeddings (same ops on the same shapes), whose 8 products (sum of |a b| <= 1)
    # tf and numpy add in other orders: each within 7 * 6e-8 of exact, so <= 8.4e-7 apart; 1 - c is exact near 1.
    np.testing.assert_allclose(changed.numpy(), expected, rtol=0, atol=1e-6)
    assert np.all(changed.numpy() > 0)


def test_fit_trains_through_train_step():
    model = _model(n_critic=2)
    model.compile()
    data = tf.data.Dataset.from_tensor_slices(_batch(32)).batch(8)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    assert int(model.d_optimizer.iterations.numpy()) == 4 and int(model.g_optimizer.iterations.numpy()) == 2
    assert "g/identity" in history.history and all(np.isfinite(v[-1]) for v in history.history.values())


def test_bad_settings_stop_at_start_up_with_a_message(tmp_path):
    with pytest.raises(ConfigError, match="needs expression and lighting labels; the dataset has no lighting"):
        LEGANTask({"expression": NAMES["expression"]}, 32, 8, 10, lambda_id=0, lambda_qual=0, d_downsamples=5)
    with pytest.raises(ConfigError, match="--legan_lambda_id=1 needs an identity network"):
        LEGANTask(NAMES, 32, 8, 10, lambda_qual=0, d_downsamples=5)
    with pytest.raises(ConfigError, match="--legan_lambda_qual=1 needs a trained Q"):
        LEGANTask(NAMES, 32, 8, 10, lambda_id=0, d_downsamples=5)
    with pytest.raises(ConfigError, match="--legan_identity_weights=/no/lightcnn.npz: no such file"):
        LEGANTask(NAMES, 32, 8, 10, lambda_qual=0, identity_weights="/no/lightcnn.npz", d_downsamples=5)
    with pytest.raises(ConfigError, match="the discriminator needs a size divisible by 64"):
        LEGANTask(NAMES, 32, 8, 10, lambda_id=0, lambda_qual=0)


def test_sample_grid_has_lightings_then_expressions_then_masks():
    task = LEGANTask(NAMES, 32, 8, 10, lambda_id=0, lambda_qual=0, g_filters=4, g_residual_blocks=1, d_filters=4,
                     d_downsamples=5)
    task.build()
    grid = task.sample_grid({key: tf.constant(value) for key, value in _batch(4).items()})
    # input + 4 lightings + 3 expressions + joint edit + two masks = 11 columns of 32 px (plus titles/margins).
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[1] >= 11 * 32

