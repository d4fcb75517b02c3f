"""LEGAN's expression_output="warp": the expression mask also read as a smooth displacement of the photo."""

import numpy as np
import pytest

import keras
from legan_tf.errors import ConfigError
from legan_tf.models.legan import LEGANGenerator, warp_bilinear

SIZE = 16


def _generator(**overrides):
    keras.utils.set_random_seed(0)
    options = dict(base_filters=4, num_residual_blocks=1, upsampling="resize", output_mode="attention",
                   grey_colour=True, lighting_output="ratio", shading_grid=4, expression_output="warp", warp_grid=4)
    return LEGANGenerator(SIZE, 2, 3, **{**options, **overrides})


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.concatenate([np.eye(2, dtype=np.float32)[[0, 1]], np.eye(3, dtype=np.float32)[[2, 0]]], axis=1)
    return images, labels


def test_warp_bilinear_on_known_inputs():
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, 6, 7, 3)).astype(np.float32)
    zero = np.zeros((2, 6, 7, 2), np.float32)
    # No displacement reads every pixel at its own place: the four weights are 1, 0, 0, 0 exactly.
    np.testing.assert_array_equal(np.asarray(warp_bilinear(images, zero)), images)
    # A whole-pixel shift right by two columns reads column x + 2; the last two columns clamp to the edge column.
    shift = zero.copy()
    shift[..., 1] = 2.0
    moved = np.asarray(warp_bilinear(images, shift))
    np.testing.assert_array_equal(moved[:, :, :-2], images[:, :, 2:])
    np.testing.assert_array_equal(moved[:, :, -2:], np.repeat(images[:, :, -1:], 2, axis=2))
    # Up by one row, clamped at the top.
    shift = zero.copy()
    shift[..., 0] = -1.0
    moved = np.asarray(warp_bilinear(images, shift))
    np.testing.assert_array_equal(moved[:, 1:], images[:, :-1])
    np.testing.assert_array_equal(moved[:, 0], images[:, 0])
    # On a plane a * row + b * col + c, bilinear reading is exact at any fractional position inside the image:
    # the output is the plane at the displaced position (float32 sums of a few terms below 20: within 1e-5).
    rows, cols = np.meshgrid(np.arange(6), np.arange(7), indexing="ij")
    plane = (0.3 * rows - 0.2 * cols + 1.0).astype(np.float32)[None, ..., None]
    displacement = np.stack([np.full((6, 7), 0.25), np.full((6, 7), 0.6)], -1)[None].astype(np.float32)
    inside = (slice(None), slice(0, 5), slice(0, 6))
    np.testing.assert_allclose(np.asarray(warp_bilinear(plane, displacement))[inside][..., 0],
                               (0.3 * (rows + 0.25) - 0.2 * (cols + 0.6) + 1.0)[:5, :6][None], atol=1e-5)


def test_warp_bilinear_gradient_reaches_the_displacement():
    import tensorflow as tf

    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    plane = tf.constant((0.5 * cols).astype(np.float32)[None, ..., None])
    displacement = tf.Variable(np.full((1, 8, 8, 2), 0.3, np.float32))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(warp_bilinear(plane, displacement)[:, :, :6])
    grad = tape.gradient(total, displacement).numpy()
    # d(0.5 * (col + dx)) / d dx = 0.5 for the pixels read inside the image; rows do not change a column ramp.
    np.testing.assert_allclose(grad[0, :, :6, 1], 0.5, atol=1e-6)
    np.testing.assert_allclose(grad[0, :, :, 0], 0.0, atol=1e-6)


def test_the_displacement_of_a_mask_on_known_inputs():
    generator = _generator()
    # A constant mask m gives a displacement of m * max_shift * image_size everywhere; the third channel is not
    # read.
    for value in (-1.0, 0.5, 1.0):
        mask = np.full((1, SIZE, SIZE, 3), value, np.float32)
        mask[..., 2] = -value
        field = np.asarray(generator.displacement_of_mask(mask))
        assert field.shape == (1, SIZE, SIZE, 2)
        np.testing.assert_allclose(field, value * 0.1 * SIZE, rtol=1e-6)
    # A pixel checkerboard averages to 0 in every 4x4 cell: the field cannot move detail finer than its grid.
    board = (np.indices((SIZE, SIZE)).sum(0) % 2 * 2.0 - 1.0)[None, ..., None] * np.ones((1, 1, 1, 3))
    np.testing.assert_allclose(np.asarray(generator.displacement_of_mask(board.astype(np.float32))), 0.0, atol=1e-6)


def test_the_translation_is_the_composite_over_the_moved_shaded_photo():
    generator = _generator()
    images, labels = _inputs()
    output = np.asarray(generator((images, labels)))
    _, colour, mask = (np.asarray(part) for part in generator.attention_edit((images, labels)))
    field = np.asarray(generator.displacement((images, labels)))
    ratio = np.asarray(generator.shading_ratio((images, labels)))
    assert np.abs(field).max() > 0 and np.abs(field).max() <= 0.1 * SIZE + 1e-5
    moved = np.asarray(warp_bilinear(images, field))
    base = np.clip((moved + 1.0) * ratio - 1.0, -1.0, 1.0)
    # The same float32 operations on the same operands, fused in another order: a few ulp of values below 4.
    np.testing.assert_allclose(output, mask * colour + (1.0 - mask) * base, atol=1e-5)


def test_the_displacement_follows_the_expression_target_only():
    generator = _generator()
    images, labels = _inputs()
    other_expression = labels.copy()
    other_expression[:, :2] = other_expression[:, 1::-1]
    other_light = labels.copy()
    other_light[:, 2:] = np.roll(other_light[:, 2:], 1, axis=1)
    field = np.asarray(generator.displacement((images, labels)))
    np.testing.assert_array_equal(np.asarray(generator.displacement((images, other_light))), field)
    assert not np.allclose(np.asarray(generator.displacement((images, other_expression))), field)


def test_training_reaches_the_expression_hourglass_through_the_warp():
    # With the final hourglass's last conv zeroed (C = 0, A = 1/2) and no shading ratio, the translation is half the
    # moved photo: every gradient reaching the expression hourglass comes through the displacement.
    import tensorflow as tf

    generator = _generator(lighting_output="mask")
    images, labels = _inputs()
    generator((images, labels))
    last = generator.final_hourglass.body[-1]
    assert not getattr(last, "use_bias", False)
    last.kernel.assign(np.zeros(last.kernel.shape, np.float32))
    field = np.asarray(generator.displacement((images, labels)))
    np.testing.assert_allclose(np.asarray(generator((images, labels))), 0.5 * np.asarray(warp_bilinear(images, field)),
                               atol=1e-6)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(generator((tf.constant(images), tf.constant(labels))) - 0.3))
    grads = tape.gradient(loss, generator.expression_hourglass.trainable_weights)
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_options_round_trip_and_bad_values(tmp_path):
    generator = _generator()
    images, labels = _inputs()
    output = np.asarray(generator((images, labels)))
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert (loaded.expression_output, loaded.warp_grid, loaded.max_shift) == ("warp", 4, 0.1)
    np.testing.assert_array_equal(np.asarray(loaded((images, labels))), output)
    # The paper's mask keeps its saved config unchanged (files saved before the option load the same).
    assert "expression_output" not in _generator(expression_output="mask").get_config()
    with pytest.raises(ValueError, match="output_mode='attention'"):
        LEGANGenerator(SIZE, 2, 3, expression_output="warp")
    with pytest.raises(ValueError, match="mask_channels is 1"):
        _generator(mask_channels=1)
    with pytest.raises(ValueError, match="warp_grid"):
        _generator(warp_grid=3)
    with pytest.raises(ValueError, match="expression_output must be"):
        _generator(expression_output="flow")
    with pytest.raises(ValueError, match="max_shift"):
        _generator(max_shift=0.0)
    with pytest.raises(ValueError, match="expression_output='mask'"):
        _generator(expression_output="mask").displacement((images, labels))


def test_legan_updates_with_the_warp_and_its_flag_needs_attention():
    from legan_tf.gan.legan import LEGAN
    from legan_tf.tasks.legan import LEGANTask

    with pytest.raises(ConfigError, match="g_expression='warp'.*g_output='attention'"):
        LEGAN(SIZE, {"expression": 2, "lighting": 3}, 4, g_filters=4, g_residual_blocks=1, d_filters=8,
              d_downsamples=3, g_expression="warp", lambda_qual=0.0, lambda_id=0.0)
    names = {"expression": ("a", "b"), "lighting": ("l0", "l1", "l2")}
    with pytest.raises(ConfigError, match="--legan_g_expression=warp .* needs --legan_g_output=attention"):
        LEGANTask(names, SIZE, 2, g_expression="warp", train_steps=10, g_filters=4, g_residual_blocks=0,
                  d_filters=4, d_downsamples=2, lambda_qual=0, lambda_id=0)
    model = LEGAN(SIZE, {"expression": 2, "lighting": 3}, 4, g_filters=4, g_residual_blocks=1, d_filters=8,
                  d_downsamples=3, g_upsampling="resize", g_output="attention", g_colour="grey",
                  g_expression="warp", lambda_qual=0.0, lambda_id=0.0)
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    assert model.generator.expression_output == "warp"
    rng = np.random.default_rng(6)
    batch = {"image": rng.uniform(-1, 1, (4, SIZE, SIZE, 3)).astype(np.float32), "expression": np.array([0, 1, 0, 1]),
             "lighting": np.array([0, 1, 2, 0])}
    before = [np.asarray(w).copy() for w in model.generator.expression_hourglass.trainable_weights]
    metrics = model.generator_step(batch, 1)
    assert all(np.isfinite(float(value)) for value in metrics.values())
    after = model.generator.expression_hourglass.trainable_weights
    assert any(not np.array_equal(b, np.asarray(a)) for b, a in zip(before, after))


def _jacobian_determinant(field):
    """det(I + grad field) of the move p -> p + field(p) on a (S, S, 2) field, by forward differences (exact within
    the bilinear field's linear pieces)."""
    d_rows, d_cols = field[1:, :-1] - field[:-1, :-1], field[:-1, 1:] - field[:-1, :-1]
    return (1.0 + d_rows[..., 0]) * (1.0 + d_cols[..., 1]) - d_cols[..., 0] * d_rows[..., 1]


def test_a_coarse_grid_and_small_shift_cannot_fold_the_photo():
    # The worst mask for folding: cells alternating +1 / -1 in both channels. Between two cell centres, S / grid px
    # apart, the field is linear and changes by at most 2 x max_shift x S, so every slope is at most
    # s = 2 x max_shift x grid and det(I + grad) >= (1 - s)^2 - s^2 = 1 - 4 x max_shift x grid: 0.04 for 0.06 on a
    # grid of 4. With 0.1 the same mask folds (1 - 1.6 < 0): the bound is what keeps the move one-to-one.
    cells = np.where(np.add.outer(np.arange(4), np.arange(4)) % 2 == 0, 1.0, -1.0)
    mask = np.repeat(np.repeat(cells, 16, axis=0), 16, axis=1)[None, ..., None].repeat(3, axis=-1).astype(np.float32)
    safe = _generator(warp_grid=4, max_shift=0.06)
    safe.image_size = 64            # displacement_of_mask reads only the size, grid and shift
    determinant = _jacobian_determinant(np.asarray(safe.displacement_of_mask(mask))[0].astype(np.float64))
    assert determinant.min() >= 1.0 - 4 * 0.06 * 4 - 1e-5
    assert determinant.min() < 0.2           # the bound is nearly reached: this mask is the worst case
    folding = _generator(warp_grid=4, max_shift=0.1)
    folding.image_size = 64
    assert _jacobian_determinant(np.asarray(folding.displacement_of_mask(mask))[0].astype(np.float64)).min() < 0.0


def test_the_warp_grid_and_shift_reach_the_generator_and_need_the_warp():
    from legan_tf.gan.legan import LEGAN

    options = dict(g_filters=4, g_residual_blocks=1, d_filters=8, d_downsamples=3, g_upsampling="resize",
                   g_output="attention", g_colour="grey", lambda_qual=0.0, lambda_id=0.0)
    model = LEGAN(SIZE, {"expression": 2, "lighting": 3}, 4, g_expression="warp", warp_grid=4, max_shift=0.06,
                  **options)
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    assert (model.generator.warp_grid, model.generator.max_shift) == (4, 0.06)
    with pytest.raises(ConfigError, match="warp_grid=4 is an option of the warp"):
        LEGAN(SIZE, {"expression": 2, "lighting": 3}, 4, warp_grid=4, **options)
    with pytest.raises(ConfigError, match="warp_grid=5 must divide the image size 16"):
        LEGAN(SIZE, {"expression": 2, "lighting": 3}, 4, g_expression="warp", warp_grid=5, **options)
