"""The LEGAN recipe: shuffled targets, identity and quality terms, fit(), replica independence, bad settings."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf import visualize
from legan_tf.errors import ConfigError
from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
from legan_tf.models.quality import QualityModel
from legan_tf.gan import LEGAN
from legan_tf.tasks.legan import LEGANTask
from legan_tf.labels import one_hot_labels
from tests.tasks.test_stargan_recipe import fit_equals_the_updates_by_hand

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
    # The step's translations, by the generator it starts from: the same ops on the same shapes as in the step.
    targets = model.random_targets(batch, tf.constant(1, tf.int64))
    fakes = model.generator((batch["image"], one_hot_labels(targets, LABELS)), training=True)
    real_embedding = model.identity_model(batch["image"], training=False).numpy().astype(np.float64)
    fake_embedding = model.identity_model(fakes, training=False).numpy().astype(np.float64)
    metrics = model.generator_step(batch, tf.constant(1, tf.int64))
    assert {"g/identity", "g/quality", "g/total"} <= set(metrics)
    cosine = np.sum(real_embedding * fake_embedding, 1) / (np.linalg.norm(real_embedding, axis=1)
                                                           * np.linalg.norm(fake_embedding, axis=1))
    # L_id in float32 against float64 from the same embeddings: two normalisations of 8 values and a sum of 8
    # products (<= ~20 roundings of 6e-8 per example, as below), then a mean of 8 terms <= 2 (8 more): < 3e-6.
    np.testing.assert_allclose(float(metrics["g/identity"]), np.mean(1.0 - cosine), rtol=0, atol=3e-6)
    assert all(np.isfinite(float(value)) for value in metrics.values())
    unchanged = [w.path for w, b in zip(model.generator.trainable_weights, before) if np.array_equal(w.numpy(), b)]
    assert not unchanged
    for weight, saved in zip(model.identity_model.weights + model.quality_model.weights, frozen):
        np.testing.assert_array_equal(weight.numpy(), saved)


def test_identity_term_is_one_minus_cosine_of_the_frozen_embeddings():
    model = _model()
    batch = {key: tf.constant(value) for key, value in _batch().items()}
    images, targets = batch["image"], {key: value for key, value in batch.items() if key != "image"}
    step = tf.constant(1, tf.int64)
    same = model.generator_losses(batch, images, images, targets, step)["identity"]
    # 1 - cos(a, a) in float32 (8-dim): two sums of 8 squares (<= 7 roundings each), rsqrt (<= 2 ulps, twice
    # over as r**2) and the products: <= ~20 * 6e-8 = 1.2e-6; 1 - c itself is exact near 1.
    np.testing.assert_allclose(same.numpy(), 0.0, atol=2e-6)
    other = -images  # the negative of each face
    changed = model.generator_losses(batch, other, images, targets, step)["identity"]
    f = model.identity_model
    expected = 1 - np.sum(tf.math.l2_normalize(f(images), 1) * tf.math.l2_normalize(f(other), 1), axis=1)
    # The same normalised float32 embeddings (same ops on the same shapes), whose 8 products (sum of |a b| <= 1)
    # tf and numpy add in other orders: each within 7 * 6e-8 of exact, so <= 8.4e-7 apart; 1 - c is exact near 1.
    np.testing.assert_allclose(changed.numpy(), expected, rtol=0, atol=1e-6)
    assert np.all(changed.numpy() > 0)


def test_fit_trains_through_train_step():
    model = _model(n_critic=2)
    model.compile()  # fit's default: a compiled train_step
    data = tf.data.Dataset.from_tensor_slices(_batch(32)).batch(8)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    assert int(model.d_optimizer.iterations.numpy()) == 4 and int(model.g_optimizer.iterations.numpy()) == 2
    assert "g/identity" in history.history and all(np.isfinite(v[-1]) for v in history.history.values())


def test_fit_runs_each_given_batch_through_the_d_and_g_updates_in_order():
    # LEGAN's shuffled targets and its identity and quality terms, on the batches fit() was given.
    # Two batches (D; then D and G) keep it quick: the StarGAN test runs the longer schedule of the same train_step.
    _, _, history = fit_equals_the_updates_by_hand(_model, num_batches=2)
    assert {"g/identity", "g/quality"} <= set(history.history)


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


def test_sample_grid_has_lightings_then_expressions_then_masks(monkeypatch):
    task = LEGANTask(NAMES, 32, 8, 10, lambda_id=0, lambda_qual=0, g_filters=4, g_residual_blocks=1, d_filters=4,
                     d_downsamples=5)
    task.build()
    batch = {key: tf.constant(value) for key, value in _batch(4).items()}
    mosaics = []
    real_mosaic = visualize.titled_mosaic

    def spy(columns, titles, **kwargs):
        mosaics.append((columns, titles))
        return real_mosaic(columns, titles, **kwargs)

    monkeypatch.setattr(visualize, "titled_mosaic", spy)
    grid = task.sample_grid(batch)
    [(columns, titles)] = mosaics
    assert titles == ["input", "ligh=0", "ligh=1", "ligh=2", "ligh=3", "expr=a", "expr=b", "expr=c", "joint edit",
                      "mask M_e", "mask M_l"]
    images, source = batch["image"], {name: batch[name] for name in LABELS}
    generator = task.model.sampling_generator

    def translated(expression, lighting):
        return generator((images, one_hot_labels({"expression": expression, "lighting": lighting}, LABELS)),
                         training=False)

    def full(value):
        return tf.fill([4], value)

    # The joint edit: the next expression and the light half-way round (4 lights: + 2).
    joint = generator.translate_with_masks((images, one_hot_labels(
        {"expression": (source["expression"] + 1) % 3, "lighting": (source["lighting"] + 2) % 4}, LABELS)))
    expected = ([images] + [translated(source["expression"], full(light)) for light in range(4)]
                + [translated(full(expression), source["lighting"]) for expression in range(3)] + list(joint))
    # Exact: the grid's columns come from the same generator ops on the same shapes, then the same to_uint8.
    assert len(columns) == len(expected)
    for title, column, want in zip(titles, columns, expected):
        np.testing.assert_array_equal(column, visualize.to_uint8(want.numpy()), err_msg=title)
    # Different targets give different pictures, so the order above is one the test can tell apart.
    assert len({column.tobytes() for column in columns[1:8]}) == 7
    # The image holds the columns side by side in that order: each block is one column's faces, row by row,
    # every 32 px face shown at 3x (96 px, visualize.MIN_CELL_PX) by pixel repetition.
    parameters = inspect.signature(real_mosaic).parameters
    gap, title_height = parameters["gap"].default, parameters["font_px"].default + 6
    cell = 3 * 32
    assert parameters["min_cell"].default == cell
    pitch = grid.shape[1] // len(columns)
    assert grid.dtype == np.uint8 and grid.shape == (title_height + 4 * (cell + gap), len(columns) * pitch, 3)
    for index, column in enumerate(columns):
        for row in range(4):
            top = title_height + row * (cell + gap)
            shown = grid[top:top + cell, index * pitch:index * pitch + cell]
            np.testing.assert_array_equal(shown, np.repeat(np.repeat(column[row], 3, axis=0), 3, axis=1))
