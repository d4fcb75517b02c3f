"""From a face mesh to the depth-guided StarGAN's maps: aligned crop, dense depth, normals.

Units follow `legan_tf.geometry` (the face lab's): depth in [0, 1], nearer is brighter, 0 is
background, and a depth difference of 1.0 spans `DEPTH_SPAN` (0.625) image widths. The mesh's
heights are in pixels of the frame they are drawn in, so a height difference of `h` pixels in a
frame `W` pixels wide is `h / (W * DEPTH_SPAN)` depth units. The farthest landmark gets
`MIN_FACE_DEPTH` (0.05, as the lab's minimum face depth), so every face pixel is > 0, and depth is
clipped to [0, 1] (a face deeper than 0.95 units, about 0.6 crop widths, loses its nearest part).

Dense depth is the mesh linearly interpolated over the Delaunay triangulation of the 468 landmarks'
(x, y): the face is the landmarks' convex hull, and everything outside it is background.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import Delaunay
from threadpoolctl import threadpool_limits

from legan_tf.geometry import DEPTH_SPAN, normals_from_depth
from legan_tf.photos.face_mesh import Mesh

MIN_FACE_DEPTH = 0.05
DEFAULT_MARGIN = 0.2


def interpolate_heights(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Heights (H, W) at the pixel centres, linear over the Delaunay triangles of points[:, :2]; NaN outside.

    points: (N, 3) x, y in pixel-edge coordinates (pixel (i, j) has its centre at x = j + 0.5,
    y = i + 0.5) and a height. Outside the convex hull of the (x, y) the value is NaN.
    """
    points = np.asarray(points, np.float64)
    columns, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    # SciPy computes each triangle's barycentric transform with its own tiny LAPACK call; on a busy machine a
    # multithreaded OpenBLAS turns those ~1000 calls from 2 ms into seconds (measured: 0.002 s vs 0.7-8 s).
    with threadpool_limits(limits=1, user_api="blas"):
        interpolator = LinearNDInterpolator(Delaunay(points[:, :2]), points[:, 2], fill_value=np.nan)
        return interpolator(columns, rows)


def heights_to_depth(heights: np.ndarray, floor: float, frame_width: int,
                     min_face_depth: float = MIN_FACE_DEPTH, depth_span: float = DEPTH_SPAN):
    """Pixel heights (NaN = background) to [0, 1] depth in legan_tf.geometry's units.

    `floor` is the height that maps to `min_face_depth` (the farthest landmark's). Returns
    (depth float32, number of face pixels clipped at 1).
    """
    face = np.isfinite(heights)
    depth = np.zeros(heights.shape, np.float64)
    depth[face] = min_face_depth + (heights[face] - floor) / (frame_width * depth_span)
    clipped = int((depth > 1.0).sum())
    depth[face] = np.clip(depth[face], min_face_depth, 1.0)
    return depth.astype(np.float32), clipped


def depth_from_mesh(points: np.ndarray, height: int, width: int, min_face_depth: float = MIN_FACE_DEPTH):
    """A depth map (H, W) float32 in [0, 1] of a mesh whose points are in this frame's pixels.

    Returns (depth, clipped pixel count).
    """
    heights = interpolate_heights(points, height, width)
    return heights_to_depth(heights, float(points[:, 2].min()), width, min_face_depth)


def normals_of(depth: np.ndarray) -> np.ndarray:
    """Unit normals (H, W, 3) of a [0, 1] depth map by legan_tf.geometry.normals_from_depth; 0 on background."""
    return normals_from_depth(depth[None, :, :, None]).numpy()[0]


@dataclasses.dataclass(frozen=True)
class Alignment:
    """A similarity transform from the photo to a square crop of `size` pixels.

    The crop is rotated so the eye corners are level and centred on the landmarks' bounding box
    (in the rotated frame); its side is the box's longer side times (1 + 2 * margin).
    crop = scale * R(-angle) (photo - centre) + size / 2, in pixel-edge coordinates.
    """

    angle: float      # radians; the photo's eye line angle (y down)
    centre: tuple     # (x, y) in the photo, the crop's centre
    scale: float      # crop pixels per photo pixel
    size: int

    @classmethod
    def of(cls, mesh: Mesh, size: int, margin: float = DEFAULT_MARGIN, rotate: bool = True) -> "Alignment":
        angle = mesh.eye_angle if rotate else 0.0
        rotated = _rotate(mesh.points[:, :2], -angle)
        low, high = rotated.min(0), rotated.max(0)
        side = float((high - low).max()) * (1.0 + 2.0 * margin)
        centre = _rotate(((low + high) / 2.0)[None], angle)[0]
        return cls(angle, (float(centre[0]), float(centre[1])), size / side, int(size))

    def points(self, points: np.ndarray) -> np.ndarray:
        """Mesh points (N, 3) in the crop's pixels: x, y transformed, heights scaled."""
        xy = _rotate(points[:, :2] - self.centre, -self.angle) * self.scale + self.size / 2.0
        return np.concatenate([xy, points[:, 2:3] * self.scale], axis=1)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The photo (H, W, 3) uint8 resampled into the crop (size, size, 3); black beyond the photo.

        Rotated and cropped at the photo's resolution (bicubic), then resized with antialiasing when
        the crop shrinks the face, so small outputs do not alias.
        """
        side = self.size / self.scale                      # the crop's side in photo pixels
        work = max(self.size, int(math.ceil(side)))        # intermediate resolution
        # PIL maps output pixel-edge coordinates u to input coordinates A u + b.
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        step = side / work
        offset = -work / 2.0 * step
        a, b, d, e = step * cos, -step * sin, step * sin, step * cos
        c = self.centre[0] + cos * offset - sin * offset
        f = self.centre[1] + sin * offset + cos * offset
        picture = Image.fromarray(image).transform((work, work), Image.Transform.AFFINE, (a, b, c, d, e, f),
                                                   resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
        if work != self.size:
            picture = picture.resize((self.size, self.size), Image.Resampling.LANCZOS)
        return np.asarray(picture)


def _rotate(xy: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return xy @ np.array([[cos, sin], [-sin, cos]])


@dataclasses.dataclass
class FaceMaps:
    rgb: np.ndarray       # (S, S, 3) uint8
    depth: np.ndarray     # (S, S) float32 in [0, 1]
    normals: np.ndarray   # (S, S, 3) float32 unit vectors, 0 on background
    clipped: int          # face pixels whose depth was clipped at 1
    mesh: Mesh


def face_maps(image: np.ndarray, mesh: Mesh, size: int, margin: float = DEFAULT_MARGIN,
              rotate: bool = True, min_face_depth: float = MIN_FACE_DEPTH) -> FaceMaps:
    """The aligned crop of a photo with its depth and normal maps, all `size` x `size`."""
    alignment = Alignment.of(mesh, size, margin, rotate)
    depth, clipped = depth_from_mesh(alignment.points(mesh.points), size, size, min_face_depth)
    return FaceMaps(alignment.crop(image), depth, normals_of(depth), clipped, mesh)


# as_given framing: the black border added around a dataset's own crop before the mesh is fitted, as
# a fraction of its longer side, so that a face cut by the crop (FER2013, CK+48: brow to chin fill the
# frame) still has every landmark inside the picture the mesh model sees. Measured on 40 FER2013 and
# 40 CK+48 faces: a black border of 0.5 let the mesh fit 38 and 40 (edge-replicated: 36 and 40;
# mirrored: 31 and 40; a border of 1.0 mirrored: 2 and 0).
AS_GIVEN_PAD = 0.5
FRAMINGS = ("aligned", "as_given")


def face_maps_as_given(image: np.ndarray, mesh_of, size: int, pad: float = AS_GIVEN_PAD,
                       min_face_depth: float = MIN_FACE_DEPTH) -> FaceMaps:
    """The photo framed as it is (resized to `size` x `size`) with the depth and normals of its face.

    For datasets that are already face crops: the RGB keeps the dataset's framing, pixel for pixel
    with the depth. The mesh is fitted on a copy with a black border (`pad` of the longer side), so
    landmarks beyond the crop are allowed; depth covers the part of the face inside the crop.
    `mesh_of(image) -> Mesh` is the face-mesh model.
    """
    height, width = image.shape[:2]
    border = int(round(pad * max(height, width)))
    mesh = mesh_of(np.pad(image, ((border, border), (border, border), (0, 0))))
    scale = np.array([size / width, size / height, size / width])
    points = (mesh.points - np.array([border, border, 0.0])) * scale
    depth, clipped = depth_from_mesh(points, size, size, min_face_depth)
    shrinking = size < max(height, width)
    rgb = np.asarray(Image.fromarray(image).resize(
        (size, size), Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC))
    return FaceMaps(rgb, depth, normals_of(depth), clipped, mesh)
