"""LEGAN's tri-hourglass generator: paper-size shapes and parameters, masks, round trips."""

import numpy as np
import pytest

import keras
from legan_tf.models.legan import LEGANGenerator
from legan_tf.models.stargan import StarGANDiscriminator


def _stargan_generator_parameters(input_channels, output_channels, filters=64, downsamples=2, blocks=6):
    """The StarGAN body's count from its layer table: bias-free convs, instance norm with scale and offset."""
    count = 7 * 7 * input_channels * filters + 2 * filters
    for _ in range(downsamples):
        count += 4 * 4 * filters * 2 * filters + 2 * 2 * filters
        filters *= 2
    count += blocks * 2 * (3 * 3 * filters * filters + 2 * filters)
    for _ in range(downsamples):
        count += 4 * 4 * filters * (filters // 2) + 2 * (filters // 2)
        filters //= 2
    return count + 7 * 7 * filters * output_channels


def test_paper_size_hourglasses_inputs_masks_and_parameter_count():
    generator = LEGANGenerator(image_size=128, num_expressions=6, num_lightings=20)
    images = np.zeros((1, 128, 128, 3), np.float32)
    labels = np.zeros((1, 26), np.float32)
    translated, expression_mask, lighting_mask = generator.translate_with_masks((images, labels))
    assert translated.shape == expression_mask.shape == lighting_mask.shape == (1, 128, 128, 3)
    # The expression hourglass takes 128x128x9: the image and 6 tiled expression channels.
    assert generator.expression_hourglass.body[0].conv.kernel.shape == (7, 7, 9, 64)
    assert generator.lighting_hourglass.body[0].conv.kernel.shape == (7, 7, 23, 64)
    assert generator.final_hourglass.body[0].conv.kernel.shape == (7, 7, 9, 64)
    expected = (_stargan_generator_parameters(9, 3) + _stargan_generator_parameters(23, 3)
                + _stargan_generator_parameters(9, 3))
    assert expected == 25_344_896
    assert generator.count_params() == expected
    assert _stargan_generator_parameters(8, 3) == 8_430_528  # the helper agrees with StarGAN's reference count


def test_paper_size_discriminator_has_lighting_and_expression_heads():
    discriminator = StarGANDiscriminator(128, head_classes={"expression": 6, "lighting": 20})
    scores, logits = discriminator(np.zeros((2, 128, 128, 3), np.float32))
    assert scores.shape == (2, 2, 2, 1)
    assert {name: tuple(value.shape) for name, value in logits.items()} == {"expression": (2, 6), "lighting": (2, 20)}


def _tiny(**overrides):
    keras.utils.set_random_seed(0)
    return LEGANGenerator(**{**dict(image_size=32, num_expressions=3, num_lightings=4, base_filters=4,
                                    num_residual_blocks=1), **overrides})


def test_each_mask_depends_only_on_its_own_attribute():
    generator = _tiny()
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    first = np.eye(7, dtype=np.float32)[[0, 3]].sum(0, keepdims=True).repeat(2, 0)    # expression 0, light 0
    other_light = np.eye(7, dtype=np.float32)[[0, 5]].sum(0, keepdims=True).repeat(2, 0)
    other_expression = np.eye(7, dtype=np.float32)[[2, 3]].sum(0, keepdims=True).repeat(2, 0)
    base = [np.asarray(x) for x in generator.translate_with_masks((images, first))]
    light = [np.asarray(x) for x in generator.translate_with_masks((images, other_light))]
    expression = [np.asarray(x) for x in generator.translate_with_masks((images, other_expression))]
    np.testing.assert_array_equal(base[1], light[1])          # M_e ignores the lighting target
    assert not np.allclose(base[2], light[2])                 # M_l follows it
    np.testing.assert_array_equal(base[2], expression[2])     # M_l ignores the expression target
    assert not np.allclose(base[1], expression[1])
    assert np.all(np.abs(base[0]) <= 1.0)


def test_round_trip_through_a_keras_file(tmp_path):
    generator = _tiny()
    images = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    labels = np.eye(7, dtype=np.float32)[[1, 6]]
    labels[:, 0] = 1
    before = np.asarray(generator((images, labels)))
    path = str(tmp_path / "generator.keras")
    generator.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, LEGANGenerator) and loaded.get_config() == generator.get_config()
    np.testing.assert_array_equal(np.asarray(loaded((images, labels))), before)


def test_bad_arguments_and_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="num_lightings must be a positive integer"):
        LEGANGenerator(32, 3, 0)
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*num_downsamples"):
        LEGANGenerator(30, 3, 4)
    generator = _tiny()
    with pytest.raises(ValueError, match=r"labels of shape \(batch, 7\) = 3 expressions then 4 lightings"):
        generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 6), np.float32)))
    with pytest.raises(ValueError, match="built for 32x32 images"):
        generator((np.zeros((1, 64, 64, 3), np.float32), np.zeros((1, 7), np.float32)))
