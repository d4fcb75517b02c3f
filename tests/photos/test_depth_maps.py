"""legan_tf.photos.depth_maps: interpolation of a mesh into dense depth, units, the aligned crop."""

import math

import numpy as np
import pytest
from scipy.spatial import Delaunay
from threadpoolctl import threadpool_limits

from legan_tf.geometry import DEPTH_SPAN, normals_from_depth
from legan_tf.photos import depth_maps
from legan_tf.photos.face_mesh import LEFT_EYE_OUTER, NUM_LANDMARKS, RIGHT_EYE_OUTER, Mesh

SIZE = 64
CENTRE = 32.0
CAP_RADIUS = 24.0     # landmarks lie in the disk r <= 24 around the frame's centre
BOUNDARY_POINTS = 60  # of them on the circle r = 24, so the convex hull is a 60-gon


def _cap_points(heights_of, seed=0):
    """Landmarks in the disk: 60 on its rim, the rest random inside; (N, 3) x, y, height."""
    rng = np.random.default_rng(seed)
    angles = np.arange(BOUNDARY_POINTS) * 2 * np.pi / BOUNDARY_POINTS
    rim = CAP_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1)
    radius = CAP_RADIUS * np.sqrt(rng.uniform(0, 0.97, 400))
    theta = rng.uniform(0, 2 * np.pi, 400)
    inner = np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1)
    xy = np.concatenate([rim, inner]) + CENTRE
    return np.concatenate([xy, heights_of(xy)[:, None]], 1)


def _pixel_centres():
    columns, rows = np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5)
    return columns, rows


def _inside_and_outside():
    """Pixels surely inside the 60-gon (within its inscribed circle) and surely outside it (beyond the rim)."""
    columns, rows = _pixel_centres()
    r = np.hypot(columns - CENTRE, rows - CENTRE)
    return r < CAP_RADIUS * math.cos(math.pi / BOUNDARY_POINTS) - 1e-9, r > CAP_RADIUS + 1e-9


def test_a_plane_is_interpolated_exactly_and_is_background_outside_the_hull():
    plane = lambda xy: 0.3 * xy[:, 0] - 0.2 * xy[:, 1] + 5.0  # noqa: E731
    points = _cap_points(plane)
    heights = depth_maps.interpolate_heights(points, SIZE, SIZE)
    inside, outside = _inside_and_outside()
    columns, rows = _pixel_centres()
    expected = 0.3 * columns - 0.2 * rows + 5.0
    # Linear interpolation reproduces a linear function; only float64 rounding of the barycentric weights of
    # values below 30 remains (a few 1e-15).
    np.testing.assert_allclose(heights[inside], expected[inside], rtol=0, atol=1e-9)
    assert np.isnan(heights[outside]).all()

    depth, clipped = depth_maps.heights_to_depth(heights, float(points[:, 2].min()), SIZE)
    assert clipped == 0 and (depth[outside] == 0).all() and (depth[inside] > 0).all()
    # Units: the farthest landmark is at MIN_FACE_DEPTH, and DEPTH_SPAN image widths of height are 1.0.
    np.testing.assert_allclose(
        depth[inside], depth_maps.MIN_FACE_DEPTH + (expected[inside] - points[:, 2].min()) / (SIZE * DEPTH_SPAN),
        rtol=0, atol=1e-6)  # float32 storage of values <= 1: 6e-8


def test_a_sphere_cap_is_within_the_linear_interpolation_bound():
    radius = 40.0
    sphere = lambda xy: np.sqrt(radius**2 - ((xy - CENTRE) ** 2).sum(1))  # noqa: E731
    points = _cap_points(sphere, seed=1)
    heights = depth_maps.interpolate_heights(points, SIZE, SIZE)
    columns, rows = _pixel_centres()
    r2 = (columns - CENTRE) ** 2 + (rows - CENTRE) ** 2
    inside, outside = _inside_and_outside()
    error = np.abs(heights - np.sqrt(np.maximum(radius**2 - r2, 0)))

    # The bound: for p in a triangle with vertices v_i and barycentric weights l_i, Taylor's theorem about p gives
    # L(p) - f(p) = 1/2 sum_i l_i (v_i - p)^T H(xi_i) (v_i - p), so |error| <= M/2 * max_i |v_i - p|^2 <= M/2 * h^2,
    # h the triangle's longest edge (no point of a triangle is farther from a vertex than that). M bounds the
    # Hessian's norm on the disk r <= 24: the eigenvalues of sqrt(R^2 - r^2) are -R^2/z^3 and -1/z, largest at the
    # lowest z = sqrt(40^2 - 24^2) = 32: M = 1600 / 32^3 = 0.049. Only float64 rounding (1e-13) comes on top.
    triangulation = Delaunay(points[:, :2])
    with threadpool_limits(limits=1, user_api="blas"):   # as in interpolate_heights: fast on a busy machine
        simplex = triangulation.find_simplex(np.stack([columns, rows], -1).reshape(-1, 2)).reshape(SIZE, SIZE)
    corners = points[triangulation.simplices][..., :2]
    longest = np.max([np.linalg.norm(corners[:, i] - corners[:, (i + 1) % 3], axis=1) for i in range(3)], axis=0)
    hessian_bound = radius**2 / (radius**2 - CAP_RADIUS**2) ** 1.5
    bound = hessian_bound / 2 * longest[simplex] ** 2 + 1e-9
    assert (error[inside] <= bound[inside]).all()
    assert error[inside].max() > 0  # a curved surface really is approximated (the test is not vacuous)
    assert np.isnan(heights[outside]).all()

    depth, _ = depth_maps.depth_from_mesh(points, SIZE, SIZE)
    assert (depth[outside] == 0).all() and (depth[inside] >= depth_maps.MIN_FACE_DEPTH).all()
    # Nearer is brighter: the cap's top (the frame's centre) is the deepest value.
    assert depth[int(CENTRE), int(CENTRE)] == pytest.approx(depth.max(), abs=0.01)


def test_depth_is_clipped_at_one_and_the_clipped_pixels_counted():
    steep = lambda xy: 5.0 * xy[:, 0]  # noqa: E731   # 5 px of height per px: far deeper than 1.0 depth
    depth, clipped = depth_maps.depth_from_mesh(_cap_points(steep), SIZE, SIZE)
    assert depth.max() == 1.0 and clipped == (depth == 1.0).sum() > 0


def test_normals_are_those_of_legan_tf_geometry():
    sphere = lambda xy: np.sqrt(40.0**2 - ((xy - CENTRE) ** 2).sum(1))  # noqa: E731
    depth, _ = depth_maps.depth_from_mesh(_cap_points(sphere), SIZE, SIZE)
    normals = depth_maps.normals_of(depth)
    np.testing.assert_array_equal(normals, normals_from_depth(depth[None, ..., None]).numpy()[0])
    assert (normals[depth == 0] == 0).all()
    np.testing.assert_allclose(np.linalg.norm(normals[depth > 0], axis=-1), 1.0, atol=1e-5)


def _fake_mesh(angle_degrees, centre=(70.0, 50.0), size=40.0):
    """468 points on an ellipse-ish face whose eye corners lie on a line at `angle_degrees` (y down)."""
    rng = np.random.default_rng(2)
    xy = rng.uniform(-0.5, 0.5, (NUM_LANDMARKS, 2)) * size
    xy[RIGHT_EYE_OUTER], xy[LEFT_EYE_OUTER] = (-size / 3, -size / 6), (size / 3, -size / 6)
    angle = math.radians(angle_degrees)
    rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    xy = xy @ rotation + centre
    heights = rng.uniform(0, 10, NUM_LANDMARKS)
    return Mesh(np.concatenate([xy, heights[:, None]], 1), 0.9)


@pytest.mark.parametrize("size", [32, 96])   # the crop shrinks (antialiased resize) or enlarges the face
def test_the_crop_and_the_transformed_mesh_agree(size):
    mesh = _fake_mesh(25.0)
    alignment = depth_maps.Alignment.of(mesh, size, margin=0.2)
    points = alignment.points(mesh.points)
    # The eye corners come out level, the mesh centred, its longer side 1 / 1.4 of the crop.
    assert points[RIGHT_EYE_OUTER, 1] == pytest.approx(points[LEFT_EYE_OUTER, 1], abs=1e-9)
    low, high = points[:, :2].min(0), points[:, :2].max(0)
    np.testing.assert_allclose((low + high) / 2, size / 2, atol=1e-9)
    assert (high - low).max() == pytest.approx(size / 1.4)
    np.testing.assert_allclose(points[:, 2], mesh.points[:, 2] * alignment.scale)  # heights scale like x and y

    # A bright square around one landmark lands where the transform puts that landmark.
    photo = np.zeros((120, 160, 3), np.uint8)
    x, y = mesh.points[LEFT_EYE_OUTER, :2]
    photo[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4] = 255
    centre_of_square = np.array([int(x) + 0.5, int(y) + 0.5])
    crop = alignment.crop(photo).astype(np.float64)[..., 0]
    assert crop.shape == (size, size)
    columns, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    found = np.array([(crop * columns).sum(), (crop * rows).sum()]) / crop.sum()
    expected = alignment.points(np.array([[*centre_of_square, 0.0]]))[0, :2]
    # Resampling a 7 px square: its brightness centroid moves by well under a crop pixel.
    np.testing.assert_allclose(found, expected, atol=0.5)
