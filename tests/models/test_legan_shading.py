"""LEGAN's lighting_output="ratio": the lighting mask read as a smooth shading ratio of the photo."""

import math

import numpy as np
import pytest

import keras
from legan_tf.errors import ConfigError
from legan_tf.models.legan import LEGANGenerator

SIZE = 16


def _generator(**overrides):
    keras.utils.set_random_seed(0)
    options = dict(base_filters=4, num_residual_blocks=1, upsampling="resize", output_mode="attention",
                   grey_colour=True, lighting_output="ratio", shading_grid=4)
    return LEGANGenerator(SIZE, 2, 3, **{**options, **overrides})


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    grey = np.repeat(rng.uniform(-1, 1, (2, SIZE, SIZE, 1)), 3, axis=-1).astype(np.float32)
    labels = np.concatenate([np.eye(2, dtype=np.float32)[[0, 1]], np.eye(3, dtype=np.float32)[[2, 0]]], axis=1)
    return grey, labels


def test_the_ratio_of_a_mask_on_known_inputs():
    generator = _generator()
    # A constant mask m gives max_ratio ** m everywhere (the cell mean and the bilinear resize of a constant are it).
    for value in (-1.0, -0.25, 0.0, 0.5, 1.0):
        ratio = np.asarray(generator.ratio_of_mask(np.full((1, SIZE, SIZE, 3), value, np.float32)))
        assert ratio.shape == (1, SIZE, SIZE, 1)
        # float32 exp of a value within [-1.4, 1.4]: a few ulp of a number at most 4.
        np.testing.assert_allclose(ratio, 4.0 ** value, rtol=1e-6)
    # A pixel checkerboard (or channels that cancel) averages to 0 in every 4x4 cell: no shading at all, so the
    # ratio cannot draw detail finer than its grid.
    board = np.indices((SIZE, SIZE)).sum(0) % 2 * 2.0 - 1.0
    ratio = np.asarray(generator.ratio_of_mask(np.repeat(board[None, ..., None], 3, -1).astype(np.float32)))
    np.testing.assert_allclose(ratio, 1.0, atol=1e-6)
    cancelling = np.stack([np.full((SIZE, SIZE), 0.8), np.full((SIZE, SIZE), -0.8), np.zeros((SIZE, SIZE))], -1)
    np.testing.assert_allclose(np.asarray(generator.ratio_of_mask(cancelling[None].astype(np.float32))), 1.0,
                               atol=1e-6)
    # A left-right step (left half +1, right half -1): bright on the left, dark on the right, monotone between,
    # and every value within [1/4, 4].
    step = np.where(np.arange(SIZE) < SIZE // 2, 1.0, -1.0)[None, None, :, None] * np.ones((1, SIZE, 1, 3))
    row = np.asarray(generator.ratio_of_mask(step.astype(np.float32)))[0, 5, :, 0]
    assert np.all(np.diff(row) <= 1e-6) and row[0] == pytest.approx(4.0, rel=1e-5)
    assert row[-1] == pytest.approx(0.25, rel=1e-5) and 0.25 - 1e-6 <= row.min() and row.max() <= 4 + 1e-5


def test_the_translation_is_the_composite_over_the_shaded_photo():
    generator = _generator()
    images, labels = _inputs()
    output = np.asarray(generator((images, labels)))
    _, colour, mask = (np.asarray(part) for part in generator.attention_edit((images, labels)))
    ratio = np.asarray(generator.shading_ratio((images, labels)))
    shaded = np.clip((images + 1.0) * ratio - 1.0, -1.0, 1.0)
    # The same float32 operations on the same operands: equal up to the order they are fused in (a few ulp of
    # values bounded by 1, the ratio's exp by 4).
    np.testing.assert_allclose(output, mask * colour + (1.0 - mask) * shaded, atol=1e-5)
    edit_colour, edit_mask = (np.asarray(part) for part in generator.edit_parts((images, labels)))
    np.testing.assert_allclose(edit_colour, colour, atol=1e-6)
    np.testing.assert_allclose(edit_mask, mask, atol=1e-6)
    assert np.all(np.abs(output) <= 1.0)


def test_the_ratio_follows_the_lighting_target_only():
    generator = _generator()
    images, labels = _inputs()
    other_expression = labels.copy()
    other_expression[:, :2] = other_expression[:, 1::-1]
    other_light = labels.copy()
    other_light[:, 2:] = np.roll(other_light[:, 2:], 1, axis=1)
    base = np.asarray(generator.shading_ratio((images, labels)))
    np.testing.assert_array_equal(np.asarray(generator.shading_ratio((images, other_expression))), base)
    assert not np.allclose(np.asarray(generator.shading_ratio((images, other_light))), base)


def test_training_reaches_the_lighting_hourglass_through_the_ratio():
    # With the final hourglass's last conv zeroed (bias-free: C = tanh 0 = 0, A = sigmoid 0 = 1/2) the translation
    # is half the shaded photo, whatever the masks feed the final hourglass, so every gradient reaching the
    # lighting hourglass comes through the ratio.
    import tensorflow as tf

    generator = _generator()
    images, labels = _inputs()
    generator((images, labels))
    last = generator.final_hourglass.body[-1]
    assert not getattr(last, "use_bias", False)
    last.kernel.assign(np.zeros(last.kernel.shape, np.float32))
    ratio = np.asarray(generator.shading_ratio((images, labels)))
    np.testing.assert_allclose(np.asarray(generator((images, labels))),
                               0.5 * np.clip((images + 1.0) * ratio - 1.0, -1.0, 1.0), atol=1e-6)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(generator((tf.constant(images), tf.constant(labels))) - 0.5))
    grads = tape.gradient(loss, generator.lighting_hourglass.trainable_weights)
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_options_round_trip_and_bad_values(tmp_path):
    generator = _generator()
    images, labels = _inputs()
    output = np.asarray(generator((images, labels)))
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert (loaded.lighting_output, loaded.shading_grid, loaded.max_ratio) == ("ratio", 4, 4.0)
    np.testing.assert_array_equal(np.asarray(loaded((images, labels))), output)
    # The paper's mask keeps its saved config unchanged (files saved before the option load the same).
    assert "lighting_output" not in _generator(lighting_output="mask").get_config()
    with pytest.raises(ValueError, match="output_mode='attention'"):
        LEGANGenerator(SIZE, 2, 3, lighting_output="ratio")
    with pytest.raises(ValueError, match="shading_grid"):
        _generator(shading_grid=5)
    with pytest.raises(ValueError, match="lighting_output"):
        _generator(lighting_output="shade")
    with pytest.raises(ValueError, match="max_ratio"):
        _generator(max_ratio=1.0)
    with pytest.raises(ValueError, match="lighting_output='mask'"):
        _generator(lighting_output="mask").shading_ratio((images, labels))
    with pytest.raises(ValueError, match="edit_parts_and_ratio: .*lighting_output='mask'"):
        _generator(lighting_output="mask").edit_parts_and_ratio((images, labels))
    assert math.isclose(_generator(max_ratio=2.0).max_ratio, 2.0)


def test_legan_updates_with_the_ratio_and_its_flag_needs_attention():
    from legan_tf.gan.legan import LEGAN

    with pytest.raises(ConfigError, match="g_lighting='ratio'.*g_output='attention'"):
        LEGAN(SIZE, {"expression": 2, "lighting": 3}, 4, g_filters=4, g_residual_blocks=1, d_filters=8,
              d_downsamples=3, g_lighting="ratio", lambda_qual=0.0, lambda_id=0.0)
    model = LEGAN(SIZE, {"expression": 2, "lighting": 3}, 4, g_filters=4, g_residual_blocks=1, d_filters=8,
                  d_downsamples=3, g_upsampling="resize", g_output="attention", g_colour="grey", g_lighting="ratio",
                  lambda_qual=0.0, lambda_id=0.0)
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    assert model.generator.lighting_output == "ratio"
    rng = np.random.default_rng(6)
    batch = {"image": rng.uniform(-1, 1, (4, SIZE, SIZE, 3)).astype(np.float32), "expression": np.array([0, 1, 0, 1]),
             "lighting": np.array([0, 1, 2, 0])}
    before = [np.asarray(w).copy() for w in model.generator.lighting_hourglass.trainable_weights]
    metrics = model.generator_step(batch, 1)
    assert all(np.isfinite(float(value)) for value in metrics.values())
    after = model.generator.lighting_hourglass.trainable_weights
    assert any(not np.array_equal(b, np.asarray(a)) for b, a in zip(before, after))


def test_the_ratio_flag_needs_the_attention_output_before_anything_is_built():
    from legan_tf.tasks.legan import LEGANTask

    names = {"expression": ("a", "b"), "lighting": ("l0", "l1", "l2")}
    options = dict(train_steps=10, g_filters=4, g_residual_blocks=0, d_filters=4, d_downsamples=2, lambda_qual=0,
                   lambda_id=0)
    with pytest.raises(ConfigError, match="--legan_g_lighting=ratio .* needs --legan_g_output=attention"):
        LEGANTask(names, SIZE, 2, g_lighting="ratio", **options)
    # The LEGAN recipe checks StarGAN's attention options too, under its own flag names.
    with pytest.raises(ConfigError, match="--legan_g_colour=grey is an option of the attention output"):
        LEGANTask(names, SIZE, 2, g_colour="grey", **options)
    task = LEGANTask(names, SIZE, 2, g_lighting="ratio", g_output="attention", **options)
    task.build()
    assert task.model.generator.lighting_output == "ratio"
