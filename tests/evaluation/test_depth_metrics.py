"""legan_tf.evaluation.depth_metrics: the depth network's error against the mean-map baseline."""

import numpy as np
import pytest
import tensorflow as tf

from legan_tf.evaluation import depth_metrics
from legan_tf.geometry import geometry_from_depth


class FakeSource:
    """Batches as the pipeline gives them (depth in [-1, 1]) whose image carries its own depth in channel 0,
    so a fake network can read it."""

    def __init__(self, depth):
        self.depth = depth.astype(np.float32)  # [0, 1]

    def dataset(self, batch_size, training, repeat):
        network_depth = self.depth * 2 - 1
        images = np.repeat(network_depth, 3, axis=-1)
        return tf.data.Dataset.from_tensor_slices({"image": images, "depth": network_depth}).batch(batch_size)


class ReadsTheDepth:
    """A perfect depth network for FakeSource, or (with `fixed`) one that predicts the same map for every face."""

    def __init__(self, geometry, fixed=None):
        self.geometry, self.fixed = geometry, fixed

    def to_geometry(self, images, training=False):
        depth = (images[..., :1] + 1) / 2 if self.fixed is None else tf.broadcast_to(self.fixed, images.shape[:3] + (1,))
        return geometry_from_depth(depth, self.geometry)


def _faces(count, seed):
    """Domes of random height and position on a black background: a shared layout with differences."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:16, :16] / 15.0 - 0.5
    faces = []
    for _ in range(count):
        cx, cy, height = rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(0.3, 0.9)
        r2 = (x - cx) ** 2 + (y - cy) ** 2
        faces.append(np.where(r2 < 0.16, 0.05 + height * np.sqrt(np.clip(0.16 - r2, 0, None)) / 0.4, 0.0))
    return np.stack(faces)[..., None]


@pytest.mark.parametrize("geometry", ["depth", "normals"])
def test_a_perfect_network_has_no_error_and_the_mean_map_ratio_one(geometry):
    train, held_out = FakeSource(_faces(12, 0)), FakeSource(_faces(5, 1))
    mean_map = depth_metrics.mean_depth_map(train, batch_size=4)
    np.testing.assert_allclose(mean_map, train.depth.mean(axis=0), rtol=1e-6)  # float64 sums of 12 maps, then float32
    perfect = depth_metrics.depth_errors(ReadsTheDepth(geometry), held_out, mean_map, batch_size=2, keep_samples=3)
    unit = "depth" if geometry == "depth" else "angle_deg"
    metrics = perfect["metrics"]
    assert metrics["faces"] == 5 and len(perfect["samples"]) == 3
    # Reading depth back from 2d - 1 and the same normals from the same maps: exact up to float32 roundoff of
    # (2d - 1 + 1) / 2, a few u of 1 (u = 6e-8); an angle between equal unit vectors is acos(1 - few u), < 0.1 degree.
    # Normals are checked on the face: the background has none (0 vectors, counted as 90 degrees off).
    assert metrics[f"{unit}_error" if geometry == "depth" else "angle_deg_error_face"] < (1e-6 if geometry == "depth" else 0.1)
    assert metrics[f"{unit}_error_mean_map"] > 0.01 and metrics["passed"]
    # The mean map scored as a network is the baseline itself: ratio 1 (same values, same sums).
    baseline = depth_metrics.depth_errors(ReadsTheDepth(geometry, fixed=mean_map), held_out, mean_map)["metrics"]
    assert baseline["ratio"] == pytest.approx(1.0, rel=1e-6) and baseline["ratio_face"] == pytest.approx(1.0, rel=1e-6)
    assert not baseline["passed"]
