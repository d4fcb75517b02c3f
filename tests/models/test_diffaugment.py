"""DiffAugment on what D reads: the transformations on known images, their draws, their gradient, and that
StarGAN's D and G updates read the augmented images."""

import numpy as np
import pytest
import tensorflow as tf

from legan_tf import losses
from legan_tf.errors import ConfigError
from legan_tf.gan import StarGAN, diffaugment
from tests.tiny_gan import LABELS, TINY, tiny_batch, tiny_model



def _images(count=4, size=8, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype(np.float32)


def test_translation_moves_every_pixel_by_the_shift_and_fills_the_border_with_zero():
    images = _images(2)
    shifted = np.asarray(diffaugment.translate(images, np.array([2, 0], np.int32), np.array([-1, 3], np.int32)))
    expected = np.zeros_like(images)
    expected[0, 2:, :-1] = images[0, :-2, 1:]    # down 2, left 1
    expected[1, :, 3:] = images[1, :, :-3]       # right 3
    # One-hot products: each output is 1 * one input plus exact zeros, so the copy is exact.
    np.testing.assert_array_equal(shifted, expected)


def test_cutout_mask_zeroes_one_square_clipped_at_the_border():
    mask = np.asarray(diffaugment.cutout_mask(np.array([5, 0], np.int32), np.array([0, 4], np.int32), 8, 8, 4))[..., 0]
    expected = np.ones((2, 8, 8), np.float32)
    expected[0, 3:7, 0:2] = 0    # rows 5-2 .. 5+1, columns -2 .. 1 clipped to 0 .. 1
    expected[1, 0:2, 2:6] = 0
    np.testing.assert_array_equal(mask, expected)


def test_whole_number_draws_span_the_range_and_stay_inside_it():
    draws = np.array([0.0, 0.2, 0.5, 0.999999, 1.0], np.float32)
    np.testing.assert_array_equal(np.asarray(diffaugment._whole(draws, -4, 4)), [-4, -3, 0, 4, 4])


def test_policy_names_are_checked():
    assert diffaugment.parse_policy("") == ()
    assert diffaugment.parse_policy(" translation , cutout ") == ("translation", "cutout")
    with pytest.raises(ConfigError, match="unknown transformation 'color'"):
        diffaugment.parse_policy("translation,color")
    with pytest.raises(ConfigError, match="twice"):
        diffaugment.parse_policy("cutout,cutout")


def test_augment_is_seeded_per_role_and_step_and_an_empty_policy_is_the_identity():
    images = _images(6, 16)
    both = ("translation", "cutout")
    first = np.asarray(diffaugment.augment(images, both, "real", 0, 3, 6))
    np.testing.assert_array_equal(first, np.asarray(diffaugment.augment(images, both, "real", 0, 3, 6)))
    assert not np.array_equal(first, np.asarray(diffaugment.augment(images, both, "real", 0, 4, 6)))
    assert not np.array_equal(first, np.asarray(diffaugment.augment(images, both, "fake", 0, 3, 6)))
    assert diffaugment.augment(images, (), "real", 0, 3, 6) is images
    # A 16 px cutout square has side 8: at least 4 x 4 of it lies inside the image whatever its centre.
    zeros = (np.asarray(diffaugment.augment(images, ("cutout",), "real", 0, 3, 6)) == 0).all(-1).sum((1, 2))
    assert np.all((zeros >= 16) & (zeros <= 64)), zeros


def test_the_gradient_of_an_augmented_sum_counts_the_pixels_that_survive():
    images = tf.constant(_images(4, 16))
    with tf.GradientTape() as tape:
        tape.watch(images)
        augmented = diffaugment.augment(images, ("translation", "cutout"), "fake", 1, 7, 4)
        total = tf.reduce_sum(augmented)
    gradient = tape.gradient(total, images).numpy()
    # Translation is a permutation of the pixels it keeps and cutout a 0/1 mask, so d(sum)/d(pixel) is 1 for a
    # pixel that lands inside the image outside the square, else 0, and the ones add up to the kept pixels.
    assert set(np.unique(gradient)) <= {0.0, 1.0}
    kept = np.asarray(augmented) != 0
    assert gradient.sum() == kept.sum()


def _model(**overrides):
    return tiny_model(StarGAN, **overrides)


def test_discriminator_and_generator_updates_read_the_augmented_faces():
    model, batch, step = _model(d_augment="translation,cutout"), tiny_batch(), 5
    fakes = model.translate(batch["image"], model.random_targets(batch, step), training=False)
    terms = model.discriminator_losses(batch, fakes, step)
    _, logits = model.discriminator(model.augment(batch["image"], "real", step), training=True)
    by_hand = sum(losses.classification_loss(logits[name], batch[name]) for name in LABELS)
    # The same per-example maths as D's one call on reals and fakes together (no batch statistics): only the
    # float32 summation order of the convolutions may differ, far below 1e-4 on cross-entropies of order 1.
    np.testing.assert_allclose(terms["classification"], by_hand, atol=1e-4)
    _, plain_logits = model.discriminator(batch["image"], training=True)
    plain = sum(losses.classification_loss(plain_logits[name], batch[name]) for name in LABELS)
    assert np.abs(np.asarray(terms["classification"]) - np.asarray(plain)).max() > 1e-3

    targets = model.random_targets(batch, step)
    fakes = model.translate(batch["image"], targets, training=False)
    reconstructed = model.reconstruct(batch, fakes, training=False)
    terms = model.generator_losses(batch, fakes, reconstructed, targets, step)
    _, logits = model.discriminator(model.augment(fakes, "generator", step), training=False)
    by_hand = sum(losses.classification_loss(logits[name], targets[name]) for name in LABELS)
    np.testing.assert_allclose(terms["classification"], by_hand, atol=1e-4)


def test_without_a_policy_d_reads_the_faces_as_they_are():
    model, batch = _model(), tiny_batch()
    assert model.augment(batch["image"], "real", 1) is batch["image"]


def test_an_unknown_transformation_stops_the_model_before_any_network_is_built():
    with pytest.raises(ConfigError, match="unknown transformation 'flip'"):
        StarGAN(global_batch_size=4, d_augment="flip", **TINY)
