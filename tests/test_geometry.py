"""Normals from depth by finite differences, against analytic normals and the face lab's own."""

import numpy as np
import pytest
import tensorflow as tf

from legan_tf.data.synthetic.render import FaceLab
from legan_tf.geometry import (DEPTH_SPAN, depth_from_network, geometry_channels, geometry_from_depth,
                               geometry_to_rgb, normals_from_depth)

SIZE = 32
U = 2.0**-24  # float32 unit roundoff


def _pixel_centres(size=SIZE):
    """x to the right and y up, in image widths, centred: pixel (row, col) sits at (x[col], y[row])."""
    centres = (np.arange(size) + 0.5) / size - 0.5
    return np.meshgrid(centres, -centres)


def _analytic_normals(dz_dx, dz_dy):
    normals = np.stack([-dz_dx, -dz_dy, np.ones_like(dz_dx)], axis=-1)
    return normals / np.linalg.norm(normals, axis=-1, keepdims=True)


def _normals(depth):
    return normals_from_depth(depth[None, :, :, None].astype(np.float32)).numpy()[0]


def test_a_tilted_plane_has_its_analytic_normal_everywhere():
    x, y = _pixel_centres()
    a, b = 0.3, -0.2  # slopes in image widths of height per image width
    # Depth in depth units: height / DEPTH_SPAN, offset so every pixel is face (> 0).
    depth = 0.5 + (a * x + b * y) / DEPTH_SPAN
    normals = _normals(depth)
    expected = _analytic_normals(np.full_like(x, a), np.full_like(y, b))
    # Central and one-sided differences (the border's) of a linear function are exact in real
    # arithmetic. What remains is float32 roundoff: depth values of ~0.5 carry u * 0.5 each, a
    # difference of two of them 2 u * 0.5 = 6e-8, times the scale DEPTH_SPAN * SIZE = 20 gives 1.2e-6 in
    # dz/dx, and the normal moves by at most as much (g -> (-g, 1) / |(-g, 1)| is 1-Lipschitz).
    np.testing.assert_allclose(normals, expected, atol=1e-5)


def test_a_sphere_cap_has_radial_normals_within_the_central_difference_error():
    x, y = _pixel_centres()
    radius = 0.45  # image widths
    inside = x**2 + y**2 < (0.95 * radius) ** 2
    height = np.sqrt(np.clip(radius**2 - x**2 - y**2, 0, None))
    depth = np.where(inside, 0.05 + height / DEPTH_SPAN, 0.0)
    normals = _normals(depth)
    expected = np.stack([x, y, height], axis=-1) / radius
    # Compared where both neighbours along each axis are on the cap (central differences) and not
    # too close to the rim, where the sphere's slope blows up. The central difference's error is
    # h^2 / 6 * |f'''| at some point of the step (h = 1 / SIZE image widths); the bound below takes
    # the largest |f'''| of either axis on the compared region, computed in float64 from the closed form.
    compared = (x**2 + y**2 < (0.7 * radius) ** 2)
    h = 1.0 / SIZE
    fine_x, fine_y = np.meshgrid(np.linspace(-0.75 * radius, 0.75 * radius, 801), np.linspace(-0.75 * radius, 0.75 * radius, 801))
    keep = fine_x**2 + fine_y**2 < (0.7 * radius + h) ** 2
    fine_x, fine_y = fine_x[keep], fine_y[keep]
    r2 = radius**2 - fine_x**2 - fine_y**2
    # d3/dx3 sqrt(R^2 - x^2 - y^2) = -3 x (R^2 - y^2) / (R^2 - x^2 - y^2)^(5/2)
    third_x = np.abs(3 * fine_x * (radius**2 - fine_y**2) / r2**2.5).max()
    third_y = np.abs(3 * fine_y * (radius**2 - fine_x**2) / r2**2.5).max()
    gradient_error = h**2 / 6 * np.hypot(third_x, third_y)
    bound = gradient_error + 1e-5  # + float32 roundoff as in the plane test
    error = np.linalg.norm(normals[compared] - expected[compared], axis=-1)
    assert error.max() < bound, (error.max(), bound)
    # The bound is tight enough to mean something: a 20% error in the depth span would break it.
    wrong = normals_from_depth(depth[None, :, :, None].astype(np.float32), DEPTH_SPAN * 1.2).numpy()[0]
    assert np.linalg.norm(wrong[compared] - expected[compared], axis=-1).max() > 3 * bound


def test_background_has_zero_normals_and_the_silhouette_no_cliff():
    depth = np.zeros((SIZE, SIZE), np.float32)
    depth[8:24, 8:24] = 0.6  # a flat square face on black
    normals = _normals(depth)
    assert np.all(normals[depth == 0] == 0)
    # A flat face is flat up to its rim: one-sided differences never look across into the background.
    # The x and y components are exact zeros (zero differences times a scale). z is 1 * rsqrt(1): the
    # vectorised rsqrt of some CPUs is an approximation refined by a Newton step, a few units in the
    # last place off rather than correctly rounded (an Intel Xeon gives 1 - 2^-23), so z may miss 1.0
    # by up to 8 ulp (8 * 2^-24); a normal looking across the rim would be off by whole percents.
    flat = normals[depth > 0]
    np.testing.assert_array_equal(flat[:, :2], 0.0)
    np.testing.assert_allclose(flat[:, 2], 1.0, rtol=0, atol=8 * 2.0**-24)


def test_normals_match_the_face_labs_own_inside_the_face():
    lab = FaceLab(image_size=SIZE, expression_set="affectnet")
    out = lab.render(np.array([0, 1, 2]), np.array([0, 4, 7]), np.array([3, 3, 3]))
    normals = normals_from_depth(out["depth"][..., None]).numpy()
    mask = out["mask"] > 0
    # The lab takes np.gradient (central differences inside) of the height field; depth is
    # 0.2 + 0.8 * height, and DEPTH_SPAN is what makes the units agree. Compared where all four
    # neighbours are face and the depth is not clipped at the lab's minimum, so both sides take the
    # same central difference; they differ by float32 roundoff only: depth from height adds ~2 u per
    # value, 1.2e-7; a difference and the scale 0.5 * SIZE / 0.8 = 20 make 2.4e-6 in the gradient;
    # the lab's own gradient has the same order; 2e-5 leaves room for both and the normalisations.
    interior = mask.copy()
    for shift, axis in ((1, 1), (-1, 1), (1, 2), (-1, 2)):
        interior &= np.roll(mask, shift, axis=axis)
    interior &= out["depth"] > 0.05 + 1e-6
    interior[:, [0, -1], :] = False
    interior[:, :, [0, -1]] = False
    assert interior.sum() > 500
    np.testing.assert_allclose(normals[interior], out["normals"][interior], atol=2e-5)


def test_a_mirrored_depth_map_gives_mirrored_normals():
    lab = FaceLab(image_size=SIZE, expression_set="affectnet")
    depth = lab.render(3, 2, 0)["depth"][..., None]
    normals = normals_from_depth(depth).numpy()
    flipped = normals_from_depth(depth[:, :, ::-1]).numpy()
    # Mirroring is exact on both sides (same values, same differences): x flips sign, y and z stay.
    np.testing.assert_array_equal(flipped[..., 0], -normals[:, :, ::-1, 0])
    np.testing.assert_array_equal(flipped[..., 1:], normals[:, :, ::-1, 1:])


def test_network_scale_geometry_maps():
    depth = tf.constant([[[[0.0], [0.25]], [[0.5], [1.0]]]])
    np.testing.assert_array_equal(geometry_from_depth(depth, "depth").numpy()[0, ..., 0], [[-1.0, -0.5], [0.0, 1.0]])
    np.testing.assert_array_equal(depth_from_network(geometry_from_depth(depth, "depth")).numpy(), depth.numpy())
    assert geometry_from_depth(depth, "normals").shape == (1, 2, 2, 3)
    assert geometry_to_rgb(tf.zeros((1, 2, 2, 1))).shape == (1, 2, 2, 3)
    assert (geometry_channels("depth"), geometry_channels("normals")) == (1, 3)
    with pytest.raises(ValueError, match="geometry must be one of"):
        geometry_channels("height")
    with pytest.raises(ValueError, match=r"\(B, H, W, 1\)"):
        normals_from_depth(tf.zeros((2, 4, 4, 3)))
