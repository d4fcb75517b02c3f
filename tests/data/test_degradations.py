import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from legan_tf.data.degradations import (BLUR_RADIUS, DegradationConfig, gaussian_blur, random_degradations,
                                        translate)

OFF = DegradationConfig(max_blur_sigma=0.0, max_shift=0.0, contrast=0.0, brightness=0.0, max_noise=0.0,
                        max_blotches=0.0)


def _images(count=4, height=16, width=12, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (count, height, width, 3)).astype(np.float32)


def test_gaussian_blur_matches_scipy_per_example_and_sigma_zero_is_identity():
    images = _images(3)
    sigmas = np.array([0.0, 0.7, 1.5], np.float32)
    blurred = gaussian_blur(images, sigmas).numpy()
    np.testing.assert_array_equal(blurred[0], images[0])
    for index in (1, 2):
        # TF's REFLECT padding is scipy's "mirror"; the kernel stops at BLUR_RADIUS taps.
        reference = np.stack([ndimage.gaussian_filter(images[index, :, :, c], sigmas[index], mode="mirror",
                                                      truncate=BLUR_RADIUS / sigmas[index]) for c in range(3)], -1)
        # float32: two passes of 9 taps (weights summing to 1, values <= 1) round <= 2 * 17 * 6e-8 plus the
        # kernel's own exp/normalise rounding: < 3e-6; scipy rounds its float64 result to float32 once.
        np.testing.assert_allclose(blurred[index], reference, atol=1e-5)


def test_translate_moves_a_dot_by_the_offset_and_fills_with_black():
    image = np.full((1, 9, 9, 1), -1.0, np.float32)
    image[0, 4, 4, 0] = 1.0
    moved = translate(image, [[2.0, -1.0]]).numpy()[0, :, :, 0]
    assert [tuple(p) for p in np.argwhere(moved > 0)] == [(3, 6)]   # (row y - 1, column x + 2)
    assert moved.min() == -1.0


def test_random_degradations_are_seeded_bounded_and_off_when_all_strengths_are_zero():
    images = _images()
    first = random_degradations(images, [1, 2]).numpy()
    np.testing.assert_array_equal(first, random_degradations(images, [1, 2]).numpy())
    assert not np.allclose(first, random_degradations(images, [1, 3]).numpy())
    assert first.shape == images.shape and first.min() >= -1.0 and first.max() <= 1.0
    # Exact: with every strength zero only the clip to [-1, 1] runs, on values already inside it.
    np.testing.assert_array_equal(random_degradations(images, [1, 2], OFF).numpy(), images)


def test_blur_alone_lowers_high_frequency_energy_and_keeps_the_mean():
    images = _images(8)
    blur_only = DegradationConfig(max_blur_sigma=1.2, blur_probability=1.0, max_shift=0.0, contrast=0.0,
                                  brightness=0.0, max_noise=0.0, max_blotches=0.0)
    out = random_degradations(images, [5, 6], blur_only).numpy()
    energy = lambda x: np.mean(np.square(np.diff(x, axis=2)), axis=(1, 2, 3))  # noqa: E731
    # Each image's sigma is drawn from [0, 1.2]: none gains high frequencies, and the batch loses them.
    # A symmetric kernel with weights summing to 1 has gain <= 1 at every frequency, so energy cannot rise
    # exactly; float32 moves each pixel <= 3e-6 (above), a difference <= 6e-6, an energy of ~0.67 by
    # <= 2 * sqrt(0.67) * 6e-6 ~ 1e-5 (Cauchy-Schwarz): slack 2e-5.
    assert np.all(energy(out) <= energy(images) + 2e-5) and energy(out).mean() < 0.8 * energy(images).mean()
    # Mirror padding keeps the mean with the border rows and columns at half weight exactly (the mirrored
    # signal's period sum, which a normalised kernel keeps); float32 leaves <= 3e-6 a pixel (above).
    # (The plain mean moves at the borders by up to 0.17 at sigma 1.2 for values within [-1, 1].)
    def border_halved_mean(x):
        weights = np.ones(x.shape[1:3])
        weights[[0, -1], :] *= 0.5
        weights[:, [0, -1]] *= 0.5
        return np.einsum("bhwc,hw->b", x.astype(np.float64), weights) / (weights.sum() * x.shape[3])
    np.testing.assert_allclose(border_halved_mean(out), border_halved_mean(images), atol=1e-5)


def test_a_batch_split_in_two_places_is_degraded_as_the_whole_batch():
    # A replica's share of the global batch (offset, total) gets the draws the whole batch gives its rows.
    images = _images(6)
    whole = random_degradations(images, [3, 4]).numpy()
    halves = [random_degradations(images[start:start + 3], [3, 4], offset=start, total=6).numpy() for start in (0, 3)]
    # Same draws, same per-example arithmetic; only the blur's conv runs on 3 images' channels instead of 6,
    # which may re-associate its 2 x 9 taps: weights summing to 1 on values within [-1, 1] (plus noise of
    # std <= 0.15), so each output moves by at most about 18 roundings of magnitude <= 2, 18 * 2 * 2**-24 < 3e-6.
    np.testing.assert_allclose(np.concatenate(halves), whole, atol=3e-6)
    shifted = random_degradations(images[3:], [3, 4]).numpy()
    # Without the offset the second half draws other values; 1e-3 is far above the 3e-6 rounding above.
    assert not np.allclose(shifted, whole[3:], atol=1e-3)


def test_works_on_an_unknown_batch_size_in_a_graph():
    degrade = tf.function(lambda x: random_degradations(x, [0, 1]),
                          input_signature=[tf.TensorSpec([None, 16, 12, 3], tf.float32)])
    assert degrade(_images(5)).shape == (5, 16, 12, 3)


def test_blotches_alone_are_smooth_colour_fields():
    images = np.zeros((6, 20, 20, 3), np.float32)
    blotches_only = DegradationConfig(max_blur_sigma=0.0, max_shift=0.0, contrast=0.0, brightness=0.0, max_noise=0.0,
                                      max_blotches=0.15)
    field = random_degradations(images, [2, 2], blotches_only).numpy()
    assert np.abs(field).max() > 0.01
    # Smooth: neighbouring pixels differ far less than the field varies overall; the channels differ.
    assert np.abs(np.diff(field, axis=1)).mean() < 0.5 * np.abs(field - field.mean(axis=(1, 2), keepdims=True)).mean()
    assert not np.allclose(field[..., 0], field[..., 1])


@pytest.mark.parametrize("field, value", [("max_noise", -0.1), ("max_blotches", -0.1), ("blur_probability", 1.5),
                                          ("max_blur_sigma", BLUR_RADIUS)])
def test_config_rejects_bad_strengths(field, value):
    with pytest.raises(ValueError, match=field):
        DegradationConfig(**{field: value})
