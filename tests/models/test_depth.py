"""The depth network's generator and discriminator: sizes at the paper's setting, both directions, save/load."""

import keras
import numpy as np
import pytest

from legan_tf.gan.depth import make_depth_discriminator
from legan_tf.models.depth import DepthGenerator
from legan_tf.models.stargan import StarGANDiscriminator, StarGANGenerator

# StarGAN's reference counts at 128 px with 5 labels (docs/stargan.md): G 8,430,528, D 44,762,048.
REFERENCE_G, REFERENCE_D = 8_430_528, 44_762_048


def test_paper_size_parameter_counts_follow_from_the_reference():
    generator = DepthGenerator(128, "depth")
    generator.build()
    # The same body with a 2-entry domain label instead of 5 labels: the first 7x7 conv (64 filters,
    # no bias) sees 3 fewer input channels, 3 * 64 * 49 = 9,408 fewer weights.
    assert generator.count_params() == REFERENCE_G - 3 * 64 * 49 == 8_421_120
    discriminator = make_depth_discriminator(128, "depth", 8, 64, 6)
    discriminator.build()
    # 1 input channel instead of 3: the first 4x4 conv has 2 * 16 * 64 fewer weights; 8 expression
    # logits instead of 5 labels: the 2x2 head over 2048 channels has 3 * 4 * 2048 more.
    assert discriminator.count_params() == REFERENCE_D - 2 * 16 * 64 + 3 * 4 * 2048 == 44_784_576
    normals = make_depth_discriminator(128, "normals", 8, 64, 6)
    normals.build()
    assert normals.count_params() == REFERENCE_D + 3 * 4 * 2048


def test_both_directions_share_one_body_conditioned_on_the_domain():
    keras.utils.set_random_seed(0)
    generator = DepthGenerator(32, "depth", base_filters=8, num_residual_blocks=1)
    rgb = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    depth = generator.to_geometry(rgb)
    assert depth.shape == (2, 32, 32, 1)
    assert np.all(np.abs(depth) <= 1.0)
    back = generator.to_rgb(depth)
    assert back.shape == (2, 32, 32, 3)
    # One translator: both directions are the same StarGAN body, told apart by the domain label.
    assert [w.path for w in generator.trainable_weights] == [w.path for w in generator.translator.trainable_weights]
    body = generator.translator((rgb, np.tile([[1.0, 0.0]], (2, 1)).astype(np.float32)))
    np.testing.assert_array_equal(np.asarray(depth), np.asarray(body)[..., :1])
    # A 1-channel map enters repeated to 3 channels.
    repeated = generator.translator((np.repeat(np.asarray(depth), 3, -1), np.tile([[0.0, 1.0]], (2, 1)).astype(np.float32)))
    np.testing.assert_array_equal(np.asarray(back), np.asarray(repeated))
    # The domain label matters (else G'_depth would be G_depth).
    other = generator.translator((rgb, np.tile([[0.0, 1.0]], (2, 1)).astype(np.float32)))
    assert np.abs(np.asarray(other) - np.asarray(body)).max() > 1e-3
    with pytest.raises(ValueError, match="expected 1-channel depth maps"):
        generator.to_rgb(rgb)


def test_normals_generator_gives_three_channels():
    generator = DepthGenerator(32, "normals", base_filters=4, num_residual_blocks=0)
    rgb = np.zeros((1, 32, 32, 3), np.float32)
    assert generator(rgb).shape == (1, 32, 32, 3)
    assert generator.to_rgb(generator(rgb)).shape == (1, 32, 32, 3)
    with pytest.raises(ValueError, match="geometry must be one of"):
        DepthGenerator(32, "height")


def test_save_and_load_round_trip(tmp_path):
    import legan_tf  # noqa: F401  (registers the networks)

    keras.utils.set_random_seed(1)
    generator = DepthGenerator(32, "normals", base_filters=4, num_residual_blocks=1, name="depth_generator")
    discriminator = make_depth_discriminator(32, "normals", 3, 4, 3)
    rgb = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    geometry = np.asarray(generator(rgb))
    generator.save(tmp_path / "g.keras")
    discriminator(geometry)
    discriminator.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert isinstance(loaded, DepthGenerator) and loaded.get_config() == generator.get_config()
    # The same ops on the same weights and shapes in one process: exact.
    np.testing.assert_array_equal(np.asarray(loaded(rgb)), geometry)
    np.testing.assert_array_equal(np.asarray(loaded.to_rgb(geometry)), np.asarray(generator.to_rgb(geometry)))
    loaded_d = keras.models.load_model(tmp_path / "d.keras")
    assert isinstance(loaded_d, StarGANDiscriminator)
    np.testing.assert_array_equal(np.asarray(loaded_d(geometry)[1]["expression"]),
                                  np.asarray(discriminator(geometry)[1]["expression"]))


def test_the_translator_is_a_reference_stargan_generator():
    generator = DepthGenerator(32, "depth", base_filters=8, num_residual_blocks=2)
    reference = StarGANGenerator(32, 2, 8, num_residual_blocks=2)
    generator.build()
    reference.build()
    assert generator.count_params() == reference.count_params()
