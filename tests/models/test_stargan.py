import subprocess
import sys

import keras
import numpy as np
import pytest

from legan_tf.layers import ConvBlock, ResidualBlock
from legan_tf.models.stargan import StarGANDiscriminator, StarGANGenerator

RNG = np.random.default_rng(0)


def _generator_parameters_from_the_reference_table(num_labels=5, conv_dim=64, num_downsamples=2, repeat_num=6):
    """yunjey/stargan Generator: bias-free convs; each InstanceNorm2d(affine=True) adds 2 per channel."""
    total = 7 * 7 * (3 + num_labels) * conv_dim + 2 * conv_dim
    dim = conv_dim
    for _ in range(num_downsamples):
        total += 4 * 4 * dim * (2 * dim) + 2 * (2 * dim)
        dim *= 2
    total += repeat_num * 2 * (3 * 3 * dim * dim + 2 * dim)
    for _ in range(num_downsamples):
        total += 4 * 4 * dim * (dim // 2) + 2 * (dim // 2)
        dim //= 2
    return total + 7 * 7 * dim * 3


def _discriminator_parameters_from_the_reference_table(image_size=128, num_labels=5, conv_dim=64, repeat_num=6):
    """yunjey/stargan Discriminator: trunk convs 4x4 with bias; both heads bias-free."""
    total, channels, dim = 0, 3, conv_dim
    for _ in range(repeat_num):
        total += 4 * 4 * channels * dim + dim
        channels, dim = dim, dim * 2
    kernel = image_size // 2**repeat_num
    return total + 3 * 3 * channels * 1 + kernel * kernel * channels * num_labels


def _tiny_inputs(batch=2, size=32, num_labels=3):
    images = RNG.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    labels = np.eye(num_labels, dtype=np.float32)[RNG.integers(0, num_labels, batch)]
    return images, labels


def test_paper_size_generator_layer_shapes_and_parameter_count():
    generator = StarGANGenerator()  # the reference: 128 px, 5 labels, conv_dim 64, 6 residual blocks
    images = np.zeros((1, 128, 128, 3), np.float32)
    labels = np.zeros((1, 5), np.float32)
    features = generator.tile([images, labels])
    assert tuple(features.shape) == (1, 128, 128, 8)
    shapes = []
    for layer in generator.body:
        features = layer(features)
        shapes.append((layer.__class__.__name__, tuple(features.shape[1:])))
    assert shapes == [
        ("ConvBlock", (128, 128, 64)),
        ("ConvBlock", (64, 64, 128)),
        ("ConvBlock", (32, 32, 256)),
        *[("ResidualBlock", (32, 32, 256))] * 6,
        ("ConvBlock", (64, 64, 128)),
        ("ConvBlock", (128, 128, 64)),
        ("Conv2D", (128, 128, 3)),
    ]
    assert generator((images, labels)).shape == (1, 128, 128, 3)
    assert generator.count_params() == _generator_parameters_from_the_reference_table() == 8_430_528
    assert not any("bias" in weight.path for weight in generator.weights)


def test_paper_size_discriminator_layer_shapes_and_parameter_count():
    discriminator = StarGANDiscriminator()  # the reference: 128 px, 5 labels, conv_dim 64, repeat_num 6
    features = np.zeros((1, 128, 128, 3), np.float32)
    shapes = []
    for layer in discriminator.trunk:
        features = layer(features)
        if isinstance(layer, keras.layers.Conv2D):
            shapes.append(tuple(features.shape[1:]))
    assert shapes == [(64, 64, 64), (32, 32, 128), (16, 16, 256), (8, 8, 512), (4, 4, 1024), (2, 2, 2048)]
    src, cls = discriminator(np.zeros((1, 128, 128, 3), np.float32))
    assert src.shape == (1, 2, 2, 1) and cls.shape == (1, 5)
    assert discriminator.cls_heads["cls"].kernel.shape == (2, 2, 2048, 5)
    assert discriminator.count_params() == _discriminator_parameters_from_the_reference_table() == 44_762_048


def test_tiny_generator_translates_conditioned_on_the_labels():
    keras.utils.set_random_seed(0)  # the weights, so the size of the label's effect is not a random outcome
    generator = StarGANGenerator(image_size=32, num_labels=3, base_filters=8, num_residual_blocks=2)
    images, _ = _tiny_inputs()
    to_first = generator((images, np.tile([[1, 0, 0]], (2, 1)).astype(np.float32)))
    to_second = generator([images, np.tile([[0, 1, 0]], (2, 1)).astype(np.float32)])
    assert to_first.shape == (2, 32, 32, 3)
    assert np.abs(np.asarray(to_first)).max() <= 1.0  # tanh
    # The label moves this output by ~0.7 (0.57-0.81 over seeds 0-9). A label lost to the instance norms would
    # leave only rounding: ~8 layers of <= 300-term float32 sums, ~8 * 300 * 6e-8 * a few = ~1e-3 at worst.
    assert np.abs(np.asarray(to_first) - np.asarray(to_second)).max() > 0.01
    assert generator.count_params() == _generator_parameters_from_the_reference_table(3, 8, 2, 2)


def test_generator_channels_depth_and_unconditioned_variant():
    generator = StarGANGenerator(
        image_size=16,
        num_labels=0,
        base_filters=4,
        num_downsamples=3,
        num_residual_blocks=1,
        input_channels=9,
        output_channels=1,
    )
    out = generator(np.zeros((2, 16, 16, 9), np.float32))
    assert out.shape == (2, 16, 16, 1)
    assert [type(layer) for layer in generator.body[:4]] == [ConvBlock] * 4
    assert isinstance(generator.body[4], ResidualBlock) and generator.body[4].filters == 32


def test_tiny_discriminator_and_named_heads():
    discriminator = StarGANDiscriminator(image_size=32, num_labels=3, base_filters=8, num_downsamples=3)
    images, _ = _tiny_inputs()
    src, cls = discriminator(images)
    assert src.shape == (2, 4, 4, 1) and cls.shape == (2, 3)
    assert discriminator.count_params() == _discriminator_parameters_from_the_reference_table(32, 3, 8, 3)

    two_heads = StarGANDiscriminator(
        image_size=32, base_filters=8, num_downsamples=3, head_classes={"lighting": 4, "expression": 3}
    )
    src, cls = two_heads(images)
    assert src.shape == (2, 4, 4, 1)
    assert list(cls) == ["lighting", "expression"]
    assert cls["lighting"].shape == (2, 4) and cls["expression"].shape == (2, 3)
    # Two heads hold exactly the weights of one head with the summed class count.
    assert two_heads.count_params() == _discriminator_parameters_from_the_reference_table(32, 7, 8, 3)


def test_discriminator_max_filters_caps_the_trunk():
    discriminator = StarGANDiscriminator(image_size=32, num_labels=2, base_filters=8, num_downsamples=4, max_filters=16)
    src, cls = discriminator(np.zeros((1, 32, 32, 3), np.float32))
    assert [layer.filters for layer in discriminator.trunk[::2]] == [8, 16, 16, 16]
    assert src.shape == (1, 2, 2, 1) and cls.shape == (1, 2)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: StarGANGenerator(image_size=30), "not divisible"),
        (lambda: StarGANDiscriminator(image_size=96), "not divisible"),
        (lambda: StarGANDiscriminator(image_size=32, num_downsamples=6), "not divisible"),
        (lambda: StarGANDiscriminator(image_size=32, num_downsamples=3, head_classes={"a": 0}), "head_classes"),
        (lambda: StarGANGenerator(num_labels=-1), "num_labels"),
    ],
)
def test_rejects_configurations_the_network_cannot_take(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_rejects_inputs_that_do_not_match_the_network():
    generator = StarGANGenerator(image_size=32, num_labels=3, base_filters=4, num_residual_blocks=1)
    images, labels = _tiny_inputs()
    with pytest.raises(ValueError, match="built for 32x32"):
        generator((np.zeros((2, 64, 64, 3), np.float32), labels))
    with pytest.raises(ValueError, match=r"labels of shape \(batch, 3\)"):
        generator((images, np.zeros((2, 5), np.float32)))
    with pytest.raises(ValueError, match="pair"):
        generator(images)
    discriminator = StarGANDiscriminator(image_size=32, num_labels=3, base_filters=4, num_downsamples=3)
    with pytest.raises(ValueError, match="built for 32x32"):
        discriminator(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="3 image channels"):
        discriminator(np.zeros((1, 32, 32, 1), np.float32))


def test_keras_round_trip_in_process(tmp_path):
    generator = StarGANGenerator(image_size=32, num_labels=3, base_filters=8, num_residual_blocks=2)
    discriminator = StarGANDiscriminator(
        image_size=32, base_filters=8, num_downsamples=3, head_classes={"lighting": 4, "expression": 3}
    )
    images, labels = _tiny_inputs()
    expected_g = np.asarray(generator((images, labels)))
    expected_src, expected_cls = discriminator(images)
    generator.save(tmp_path / "g.keras")
    discriminator.save(tmp_path / "d.keras")

    loaded_g = keras.models.load_model(tmp_path / "g.keras")
    loaded_d = keras.models.load_model(tmp_path / "d.keras")
    assert isinstance(loaded_g, StarGANGenerator) and loaded_g.get_config() == generator.get_config()
    np.testing.assert_array_equal(np.asarray(loaded_g((images, labels))), expected_g)
    src, cls = loaded_d(images)
    np.testing.assert_array_equal(np.asarray(src), np.asarray(expected_src))
    assert list(cls) == ["lighting", "expression"]
    for name in cls:
        np.testing.assert_array_equal(np.asarray(cls[name]), np.asarray(expected_cls[name]))


def test_keras_files_load_in_a_fresh_process(tmp_path):
    generator = StarGANGenerator(image_size=32, num_labels=3, base_filters=8, num_residual_blocks=2)
    discriminator = StarGANDiscriminator(image_size=32, num_labels=3, base_filters=8, num_downsamples=3)
    images, labels = _tiny_inputs()
    expected_g = np.asarray(generator((images, labels)))
    expected_src, expected_cls = (np.asarray(t) for t in discriminator(images))
    generator.save(tmp_path / "g.keras")
    discriminator.save(tmp_path / "d.keras")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", labels)
    # Registration happens on import of the module (legan_tf.models re-exports it once wired in).
    script = (
        "import numpy as np, keras, legan_tf, legan_tf.models.stargan\n"
        f"d = {str(tmp_path)!r}\n"
        "images, labels = np.load(d + '/images.npy'), np.load(d + '/labels.npy')\n"
        "g = keras.models.load_model(d + '/g.keras')\n"
        "np.save(d + '/g_out.npy', np.asarray(g((images, labels))))\n"
        "src, cls = keras.models.load_model(d + '/d.keras')(images)\n"
        "np.save(d + '/src.npy', np.asarray(src)); np.save(d + '/cls.npy', np.asarray(cls))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "g_out.npy"), expected_g)
    np.testing.assert_array_equal(np.load(tmp_path / "src.npy"), expected_src)
    np.testing.assert_array_equal(np.load(tmp_path / "cls.npy"), expected_cls)
