"""The StarGAN generator's departures from the reference: resize-convolution upsampling and the
attention output (colour map and mask), with the losses that go with the mask."""

import numpy as np
import keras
import pytest

from legan_tf import losses
from legan_tf.gan.stargan import StarGAN
from legan_tf.layers import ConvBlock
from legan_tf.models.stargan import StarGANGenerator


def _parity_spread(image):
    """Largest difference between the means of the four pixel-parity classes of an (H, W) interior."""
    means = [image[i::2, j::2].mean() for i in (0, 1) for j in (0, 1)]
    return max(means) - min(means)


def test_resize_convolution_of_a_constant_map_is_constant_but_a_strided_transposed_one_is_not():
    # A constant input: every interior output pixel of nearest-resize + 3x3 conv sums the same nine
    # kernel taps times the same value, so the interior is constant up to float32 summation order
    # (9 * 8 products of O(1): differences of order 1e-6). A 4x4 stride-2 transposed conv gives
    # pixels of each parity their own four taps: with random weights the parity classes differ by
    # O(kernel scale), here > 1e-2 (the taps are drawn with PyTorch's default init, about U(-0.1, 0.1)).
    features = np.ones((1, 8, 8, 8), np.float32)
    resize = ConvBlock(4, 3, upsample=2)
    resize.build(features.shape)
    transposed = ConvBlock(4, 4, strides=2, transpose=True)
    transposed.build(features.shape)
    resized = np.asarray(resize.conv(resize.resize(features)))[0, 2:-2, 2:-2]
    strided = np.asarray(transposed.conv(features))[0, 2:-2, 2:-2]
    assert resized.shape == strided.shape == (12, 12, 4)
    assert np.ptp(resized, axis=(0, 1)).max() < 1e-5
    assert max(_parity_spread(strided[..., c]) for c in range(4)) > 1e-2


def test_conv_block_rejects_upsampling_with_a_stride():
    with pytest.raises(ValueError, match="upsample"):
        ConvBlock(4, 3, strides=2, upsample=2)


@pytest.mark.parametrize("upsampling", ["transpose", "resize"])
def test_attention_output_is_the_mask_blend_of_colour_and_input(upsampling):
    generator = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, upsampling=upsampling,
                                 output_mode="attention")
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 2]]
    color, mask = (np.asarray(part) for part in generator.edit_parts((images, labels)))
    assert color.shape == (2, 16, 16, 3) and mask.shape == (2, 16, 16, 1)
    assert 0.0 <= mask.min() and mask.max() <= 1.0 and np.abs(color).max() <= 1.0
    output = np.asarray(generator((images, labels)))
    np.testing.assert_allclose(output, mask * color + (1 - mask) * images, atol=1e-6)


def test_the_blend_follows_the_last_layer_exactly():
    generator = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, output_mode="attention")
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[1, 2]]
    generator((images, labels))
    last = generator.body[-1]
    last.kernel.assign(np.zeros(last.kernel.shape, np.float32))
    # Every logit 0: mask sigmoid(0) = 1/2, colour tanh(0) = 0, so the output is half the input.
    np.testing.assert_allclose(np.asarray(generator((images, labels))), 0.5 * images, atol=1e-6)


def test_options_round_trip_through_keras_files_and_defaults_keep_the_reference_config(tmp_path):
    generator = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, upsampling="resize",
                                 output_mode="attention")
    images = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1]]
    before = np.asarray(generator((images, labels)))
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert loaded.upsampling == "resize" and loaded.output_mode == "attention"
    np.testing.assert_array_equal(np.asarray(loaded((images, labels))), before)
    reference = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1).get_config()
    assert "upsampling" not in reference and "output_mode" not in reference
    # Parameters: resize-conv's 3x3 kernels against the reference's 4x4; one more output channel for the mask.
    resize = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, upsampling="resize")
    resize((images, labels))
    plain = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1)
    plain((images, labels))
    assert plain.count_params() - resize.count_params() == (16 * 32 + 8 * 16) * (16 - 9)
    assert generator.count_params() - resize.count_params() == 8 * 7 * 7


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="upsampling"):
        StarGANGenerator(16, 3, upsampling="bilinear")
    with pytest.raises(ValueError, match="output_mode"):
        StarGANGenerator(16, 3, output_mode="mask")
    with pytest.raises(ValueError, match="input_channels == output_channels"):
        StarGANGenerator(16, 3, input_channels=1, output_mode="attention")


def test_mask_losses_on_known_masks():
    mask = np.zeros((2, 4, 4, 1), np.float32)
    mask[0, :, 2:] = 1.0           # left half closed, right half open: one vertical edge
    np.testing.assert_allclose(np.asarray(losses.mask_size(mask)), [0.5, 0.0])
    # Horizontal neighbours: 4 rows x 3 pairs, one pair per row differs by 1 -> 4 / 12; vertical: none.
    np.testing.assert_allclose(np.asarray(losses.total_variation(mask)), [4 / 12, 0.0], rtol=1e-6)


def test_stargan_with_attention_reports_and_weights_the_mask_terms():
    model = StarGAN(16, {"expression": 3}, 4, g_filters=8, g_residual_blocks=1, d_filters=8, d_downsamples=3,
                    g_upsampling="resize", g_output="attention", lambda_mask=0.5, lambda_mask_tv=2.0)
    assert model.generator_loss_weights()["mask"] == 0.5
    assert model.generator_loss_weights()["mask_smoothness"] == 2.0
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(3)
    batch = {"image": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32), "expression": np.array([0, 1, 2, 0])}
    metrics = {name: float(value) for name, value in model.generator_step(batch, 1).items()}
    assert 0.0 < metrics["g/mask"] < 1.0 and metrics["g/mask_smoothness"] >= 0.0
    weights = model.generator_loss_weights()
    total = sum(weights[name] * metrics[f"g/{name}"] for name in weights)
    assert metrics["g/total"] == pytest.approx(total, rel=1e-5)


def test_the_mask_penalty_alone_closes_the_mask():
    # With only the mask terms weighted, G's updates must shrink the mask: learning on the easiest task.
    model = StarGAN(16, {"expression": 3}, 4, g_filters=8, g_residual_blocks=1, d_filters=8, d_downsamples=3,
                    g_output="attention", lambda_cls=0.0, lambda_rec=0.0, lambda_mask=1.0)
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(4)
    batch = {"image": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32), "expression": np.array([0, 1, 2, 0])}
    first = float(model.generator_step(batch, 1)["g/mask"])
    for step in range(2, 30):
        last = float(model.generator_step(batch, step)["g/mask"])
    assert last < 0.5 * first


def test_legan_takes_the_resize_upsampling():
    from legan_tf.gan.legan import LEGAN

    sizes = {"expression": 2, "lighting": 3}
    model = LEGAN(16, sizes, 2, g_filters=4, g_residual_blocks=0, d_filters=4, d_downsamples=2, g_upsampling="resize")
    assert model.generator.expression_hourglass.upsampling == "resize"
    assert model.generator.output_mode == "image" and "output_mode" not in model.generator.get_config()


def test_legan_attention_output_is_the_blend_of_its_parts_and_round_trips(tmp_path):
    """LEGAN with output_mode="attention": the translation is A * C + (1 - A) * I with (C, A) from
    edit_parts; a grey colour map keeps a grey face grey; the config saves and loads."""
    from legan_tf.models.legan import LEGANGenerator

    rng = np.random.default_rng(5)
    grey = np.repeat(rng.uniform(-1, 1, (2, 16, 16, 1)), 3, axis=-1).astype(np.float32)
    labels = np.concatenate([np.eye(2, dtype=np.float32)[[0, 1]], np.eye(3, dtype=np.float32)[[2, 0]]], axis=1)
    generator = LEGANGenerator(16, 2, 3, base_filters=4, num_residual_blocks=1, upsampling="resize",
                               output_mode="attention", grey_colour=True)
    output = np.asarray(generator((grey, labels)))
    color, mask = (np.asarray(part) for part in generator.edit_parts((grey, labels)))
    assert color.shape == (2, 16, 16, 3) and mask.shape == (2, 16, 16, 1)
    assert 0.0 <= mask.min() and mask.max() <= 1.0 and np.abs(color).max() <= 1.0
    # The same float32 operations on the same operands in either call: equal up to the order XLA or
    # oneDNN fuses them in (a few ulp of values bounded by 1).
    np.testing.assert_allclose(output, mask * color + (1.0 - mask) * grey, atol=1e-6)
    # One colour channel repeated: every channel of the blend is the same float32 numbers.
    np.testing.assert_array_equal(output[..., 0], output[..., 2])
    # The final hourglass's last 7x7 conv gives 1 colour + 1 mask map instead of the image's 3 (over 4 filters).
    image = LEGANGenerator(16, 2, 3, base_filters=4, num_residual_blocks=1, upsampling="resize")
    image((grey, labels))
    assert image.count_params() - generator.count_params() == 1 * 4 * 7 * 7
    with pytest.raises(ValueError, match="output_mode='image'"):
        image.edit_parts((grey, labels))
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert loaded.output_mode == "attention" and loaded.grey_colour
    np.testing.assert_array_equal(np.asarray(loaded((grey, labels))), output)
    with pytest.raises(ValueError, match="grey_colour"):
        LEGANGenerator(16, 2, 3, grey_colour=True)
    with pytest.raises(ValueError, match="output_mode"):
        LEGANGenerator(16, 2, 3, output_mode="mask")


@pytest.mark.slow
def test_legan_mask_penalty_alone_closes_its_mask():
    # LEGAN's updates with only the mask terms weighted must shrink the final hourglass's mask.
    from legan_tf.gan.legan import LEGAN

    model = LEGAN(16, {"expression": 2, "lighting": 3}, 4, g_filters=4, g_residual_blocks=1, d_filters=8,
                  d_downsamples=3, g_upsampling="resize", g_output="attention", lambda_cls=0.0, lambda_rec=0.0,
                  lambda_mask=1.0, lambda_qual=0.0, lambda_id=0.0)
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(6)
    batch = {"image": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32), "expression": np.array([0, 1, 0, 1]),
             "lighting": np.array([0, 1, 2, 0])}
    first = float(model.generator_step(batch, 1)["g/mask"])
    for step in range(2, 30):
        last = float(model.generator_step(batch, step)["g/mask"])
    assert last < 0.5 * first


def test_a_grey_colour_map_keeps_grey_faces_grey_and_round_trips(tmp_path):
    """grey_colour: one colour channel repeated on all three, so a grey input (equal channels) gives a grey
    edit whatever the weights; the default three-channel map does not (random weights differ per channel)."""
    rng = np.random.default_rng(3)
    grey = np.repeat(rng.uniform(-1, 1, (2, 16, 16, 1)), 3, axis=-1).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 2]]
    generator = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, output_mode="attention",
                                 grey_colour=True)
    output = np.asarray(generator((grey, labels)))
    # The same float32 numbers in every channel (the blend is per channel on equal operands): exactly equal.
    np.testing.assert_array_equal(output[..., 0], output[..., 1])
    np.testing.assert_array_equal(output[..., 0], output[..., 2])
    colour = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, output_mode="attention")
    assert np.abs(np.diff(np.asarray(colour((grey, labels))), axis=-1)).max() > 1e-3
    # One colour channel instead of three: 2 fewer output maps of the 7x7 last conv over 8 filters.
    assert colour.count_params() - generator.count_params() == 2 * 8 * 7 * 7
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert loaded.grey_colour and "grey_colour" not in colour.get_config()
    np.testing.assert_array_equal(np.asarray(loaded((grey, labels))), output)
    with pytest.raises(ValueError, match="grey_colour"):
        StarGANGenerator(16, 3, grey_colour=True)


def test_the_grey_colour_flag_needs_the_attention_output():
    from legan_tf.errors import ConfigError
    from legan_tf.tasks.stargan import StarGANTask

    with pytest.raises(ConfigError, match="--stargan_g_colour=grey .* needs --stargan_g_output=attention"):
        StarGANTask({"expression": ("a", "b")}, 16, 2, train_steps=10, d_downsamples=2, g_colour="grey")
    task = StarGANTask({"expression": ("a", "b")}, 16, 2, train_steps=10, g_filters=4, g_residual_blocks=0,
                       d_filters=4, d_downsamples=2, g_colour="grey", g_output="attention")
    task.build()
    assert task.model.generator.grey_colour


def test_the_model_checks_attention_options_before_building_a_network(monkeypatch):
    """The GAN's own check (for Keras users who build StarGAN directly) runs before make_generator: the error
    is the model's ConfigError naming the hyperparameters, not the generator's ValueError."""
    from legan_tf.errors import ConfigError
    from legan_tf.gan.stargan import StarGAN

    built = []
    monkeypatch.setattr(StarGAN, "make_generator", lambda self, name: built.append(name))
    for option in ({"g_colour": "grey"}, {"g_colour_map": "residual"}):
        with pytest.raises(ConfigError, match=f"{next(iter(option))}='.*' is an option of the attention output; "
                                              "it needs g_output='attention' \\(got 'image'\\)"):
            StarGAN(16, {"expression": 2}, 2, g_filters=4, g_residual_blocks=0, d_filters=4, d_downsamples=2,
                    **option)
    assert built == []
    assert StarGAN.attention_options_without_attention(StarGAN.Hyperparameters(g_colour="grey")) == [
        ("g_colour", "grey")]
    assert StarGAN.attention_options_without_attention(
        StarGAN.Hyperparameters(g_colour="grey", g_output="attention")) == []


def test_a_residual_colour_map_shifts_the_input_and_round_trips(tmp_path):
    """colour_map="residual": C = clip(x + 2 tanh(r), -1, 1) with r the colour channels of the last conv,
    so with the last conv zeroed C is the input exactly and the edit returns the input (whatever the mask);
    with a constant r the change is that constant, clipped at the ends of the range."""
    rng = np.random.default_rng(7)
    images = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 2]]
    generator = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, output_mode="attention",
                                 colour_map="residual")
    generator((images, labels))
    last = generator.body[-1]
    last.kernel.assign(np.zeros(last.kernel.shape, np.float32))
    color, mask = (np.asarray(part) for part in generator.edit_parts((images, labels)))
    # tanh(0) = 0 and x + 0 = x exactly in float32; the blend A x + (1 - A) x rounds within a few ulp of 1.
    np.testing.assert_array_equal(color, images)
    np.testing.assert_allclose(np.asarray(generator((images, labels))), images, atol=1e-6)
    # A known change: the parts' function on chosen last-conv outputs (a constant colour channel).
    from legan_tf.models.stargan import attention_parts

    features = np.concatenate([np.full((2, 16, 16, 3), 0.25, np.float32), np.zeros((2, 16, 16, 1), np.float32)], -1)
    color, mask = (np.asarray(part) for part in attention_parts(features, 3, 3, residual_of=images))
    np.testing.assert_allclose(color, np.clip(images + 2.0 * np.tanh(0.25), -1.0, 1.0), atol=1e-6)
    np.testing.assert_allclose(mask, 0.5, atol=1e-7)  # sigmoid(0)
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert loaded.colour_map == "residual"
    np.testing.assert_array_equal(np.asarray(loaded((images, labels))), np.asarray(generator((images, labels))))
    absolute = StarGANGenerator(16, 3, base_filters=8, num_residual_blocks=1, output_mode="attention")
    assert "colour_map" not in absolute.get_config() and absolute.colour_map == "absolute"
    with pytest.raises(ValueError, match="colour_map"):
        StarGANGenerator(16, 3, colour_map="residual")
    with pytest.raises(ValueError, match="colour_map"):
        StarGANGenerator(16, 3, output_mode="attention", colour_map="delta")


def test_the_residual_colour_flag_needs_the_attention_output():
    from legan_tf.errors import ConfigError
    from legan_tf.tasks.stargan import StarGANTask

    with pytest.raises(ConfigError, match="--stargan_g_colour_map=residual .* needs --stargan_g_output=attention"):
        StarGANTask({"expression": ("a", "b")}, 16, 2, train_steps=10, d_downsamples=2, g_colour_map="residual")
    task = StarGANTask({"expression": ("a", "b")}, 16, 2, train_steps=10, g_filters=4, g_residual_blocks=0,
                       d_filters=4, d_downsamples=2, g_colour="grey", g_output="attention", g_colour_map="residual")
    task.build()
    assert task.model.generator.colour_map == "residual"
