"""Face geometry maps for the depth-guided StarGAN (Bodur et al.): depth, and normals from depth.

Conventions (the face lab's, and what `scripts/make_depth.py` writes):

- A depth map is float in [0, 1], nearer is brighter, 0 is background (AffectNet-D / RaFD-D).
- Depth is measured in a fixed unit: a depth difference of 1.0 spans `DEPTH_SPAN` image widths.
  The lab renders depth = 0.2 + 0.8 * height over an image 2 height units wide, so 1.0 of depth is
  1.25 height units = 0.625 image widths. Normals need this ratio: the same depth map read with
  another span gives flatter or steeper normals.
- A normal is (-dz/dx, dz/dy, 1) normalised with x to the right and y up (rows run downward, hence
  the sign of the row derivative), as the lab computes them; background normals are 0.

Inside the networks a geometry map is in [-1, 1] like an image: depth as 2 * depth - 1 (one
channel, background -1), normals as their components (three channels, background 0). The data
pipeline already delivers depth at that scale (`legan_tf.data.preprocess`: every pixel map in
[-1, 1]), so batches go through `geometry_from_network_depth`; depth in [0, 1] (the lab's renders,
files) through `geometry_from_depth`.
"""

from __future__ import annotations

from keras import ops

from legan_tf.losses import l2_normalize

DEPTH_SPAN = 0.625
GEOMETRIES = ("depth", "normals")
_CHANNELS = {"depth": 1, "normals": 3}


def _float32(values):
    return ops.cast(ops.convert_to_tensor(values), "float32")


def geometry_channels(geometry: str) -> int:
    """Channels of a geometry map: 1 for depth, 3 for normals."""
    if geometry not in _CHANNELS:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    return _CHANNELS[geometry]


def _one_sided_aware_difference(depth, inside, axis):
    """Derivative along `axis` (1 rows, 2 columns) per pixel, in depth units per pixel.

    Central difference where both neighbours are face, one-sided where only one is, 0 where neither
    is: the background's 0 is no surface, so differencing across the silhouette would invent a cliff.
    Beyond the image border counts as background, so border pixels take a one-sided difference.
    """
    pad = [[0, 0], [1, 1], [0, 0], [0, 0]] if axis == 1 else [[0, 0], [0, 0], [1, 1], [0, 0]]
    padded = ops.pad(depth, pad, mode="constant")
    padded_inside = ops.pad(inside, pad, mode="constant")
    size = depth.shape[axis]
    before = ops.take(padded, ops.arange(0, size), axis=axis)
    after = ops.take(padded, ops.arange(2, size + 2), axis=axis)
    before_in = ops.take(padded_inside, ops.arange(0, size), axis=axis)
    after_in = ops.take(padded_inside, ops.arange(2, size + 2), axis=axis)
    central = (after - before) / 2.0
    forward = after - depth
    backward = depth - before
    return ops.where(after_in * before_in > 0, central,
                     ops.where(after_in > 0, forward, ops.where(before_in > 0, backward, ops.zeros_like(depth))))


def normals_from_depth(depth, depth_span: float = DEPTH_SPAN):
    """Unit surface normals (B, H, W, 3) from depth maps (B, H, W, 1) in [0, 1] by finite differences.

    Pixels with depth 0 are background: their normal is 0, and they are not used as neighbours.
    The pixel pitch is 1 / W image widths, so dz/dx = (depth step per pixel) * depth_span * W.
    """
    depth = _float32(depth)
    if len(depth.shape) != 4 or depth.shape[-1] != 1:
        raise ValueError(f"normals_from_depth: expected depth maps (B, H, W, 1), got shape {tuple(depth.shape)}")
    inside = ops.cast(depth > 0, "float32")
    scale = depth_span * float(depth.shape[2])
    dz_drow = _one_sided_aware_difference(depth, inside, axis=1) * scale
    dz_dcol = _one_sided_aware_difference(depth, inside, axis=2) * scale
    normals = ops.concatenate([-dz_dcol, dz_drow, ops.ones_like(depth)], axis=-1)
    return l2_normalize(normals, axis=-1) * inside


def geometry_from_depth(depth, geometry: str, depth_span: float = DEPTH_SPAN):
    """The network-scale geometry map of depth maps (B, H, W, 1) in [0, 1] (module docstring)."""
    geometry_channels(geometry)
    depth = _float32(depth)
    if geometry == "depth":
        return depth * 2.0 - 1.0
    return normals_from_depth(depth, depth_span)


def geometry_from_network_depth(depth, geometry: str, depth_span: float = DEPTH_SPAN):
    """The network-scale geometry map of network-scale depth (B, H, W, 1) in [-1, 1], as batches hold it."""
    geometry_channels(geometry)
    depth = _float32(depth)
    if geometry == "depth":
        return depth
    return normals_from_depth(depth_from_network(depth), depth_span)


def depth_from_network(depth_map):
    """A network-scale depth map in [-1, 1] back to [0, 1] depth."""
    return (_float32(depth_map) + 1.0) / 2.0


def geometry_to_rgb(geometry_map):
    """A network-scale geometry map as a [-1, 1] RGB picture: depth as grey, normals as their colours."""
    geometry_map = _float32(geometry_map)
    if geometry_map.shape[-1] == 1:
        return ops.repeat(geometry_map, 3, axis=-1)
    return geometry_map
