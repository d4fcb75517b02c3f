"""What a smooth move of a face's own pixels can carry of an expression, with no generator.

An expression edit that only moves the photo (LEGAN's `--legan_g_expression=warp`) cannot draw marks, but it
can only carry what geometry carries. This module moves held-out faces along the mean landmark move of each
target expression and lets an expression judge read them:

1. Face-mesh landmarks (MediaPipe, 468 points, `legan_tf.photos.face_mesh`) of training faces of every class
   are brought into one frame by generalised Procrustes analysis (similarity transforms: scale, rotation,
   translation; `class_mean_shapes`). Each class's mean shape in that frame is its expression's geometry with
   the person averaged out.
2. A held-out face of class c is moved toward class t by `gain x (mean_t - mean_c)`, taken back into the
   face's own frame (`template_displacement`): its landmarks' targets.
3. A thin-plate spline through the moved landmarks (and the image border, held still) gives a dense backward
   field (`dense_field`); the photo is resampled along it, bilinearly (`warp_image`).

A gain of 1 is the average geometric difference of the two expressions; larger gains exaggerate it.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

# The border is held still: BORDER_ANCHORS evenly spaced anchors along each side, corners included.
BORDER_ANCHORS = 9


def procrustes(points: np.ndarray, reference: np.ndarray) -> Tuple[np.ndarray, float, np.ndarray]:
    """The similarity that maps `points` (N, 2) closest to `reference` (N, 2) in least squares.

    Returns (aligned, scale, rotation): aligned = scale * (points - mean(points)) @ rotation + mean(reference),
    rotation a proper 2x2 rotation (no reflection).
    """
    points = np.asarray(points, np.float64)
    reference = np.asarray(reference, np.float64)
    centred = points - points.mean(0)
    target = reference - reference.mean(0)
    u, singular, vt = np.linalg.svd(centred.T @ target)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    correction = np.diag([1.0, sign])
    rotation = u @ correction @ vt
    scale = float((singular * np.diag(correction)).sum() / (centred ** 2).sum())
    return scale * centred @ rotation + reference.mean(0), scale, rotation


def class_mean_shapes(points: np.ndarray, labels: np.ndarray, num_classes: int,
                      iterations: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes analysis of landmark sets (M, N, 2) with class labels (M,).

    Returns (reference (N, 2), means (num_classes, N, 2)): the mean shape of all faces and each class's mean
    shape, both in the frame of the reference (its scale is the faces' mean scale, in their pixels).
    ValueError for a class with no face.
    """
    points = np.asarray(points, np.float64)
    labels = np.asarray(labels)
    missing = [k for k in range(num_classes) if not np.any(labels == k)]
    if missing:
        raise ValueError(f"classes {missing} have no face with landmarks")
    reference = points.mean(0)
    for _ in range(iterations):
        aligned = np.stack([procrustes(face, reference)[0] for face in points])
        reference = aligned.mean(0)
    aligned = np.stack([procrustes(face, reference)[0] for face in points])
    means = np.stack([aligned[labels == k].mean(0) for k in range(num_classes)])
    return reference, means


def template_displacement(points: np.ndarray, reference: np.ndarray, means: np.ndarray, source: int, target: int,
                          gain: float) -> np.ndarray:
    """Each landmark's move (N, 2), in the face's own pixels, that carries the face `gain` times the mean move
    from class `source` to class `target` (the move is stated in the reference frame and turned and scaled back
    by the inverse of the face's own similarity to the reference)."""
    _, scale, rotation = procrustes(points, reference)
    move = gain * (means[target] - means[source])
    return move @ rotation.T / scale


def _border(size: int) -> np.ndarray:
    ticks = np.linspace(0.0, float(size), BORDER_ANCHORS)
    ends = (0.0, float(size))
    sides = [(x, y) for x in ticks for y in ends] + [(x, y) for y in ticks[1:-1] for x in ends]
    return np.array(sides, np.float64)


def dense_field(landmarks: np.ndarray, displacement: np.ndarray, size: int, smoothing: float = 1.0) -> np.ndarray:
    """The backward field (size, size, 2) of a move of `landmarks` (N, 2) by `displacement` (N, 2).

    Output pixel p reads the photo at p - field[p]; the field is the thin-plate spline through the moved
    landmarks' displacements and zero at anchors along the image border (`smoothing` 0 interpolates them
    exactly). Coordinates are pixel edges: a pixel's centre is at index + 0.5, x first.
    """
    from scipy.interpolate import RBFInterpolator

    border = _border(size)
    keys = np.concatenate([np.asarray(landmarks, np.float64) + displacement, border])
    values = np.concatenate([np.asarray(displacement, np.float64), np.zeros_like(border)])
    y, x = np.mgrid[0:size, 0:size] + 0.5
    grid = np.stack([x.ravel(), y.ravel()], 1)
    field = RBFInterpolator(keys, values, kernel="thin_plate_spline", smoothing=smoothing)(grid)
    return field.reshape(size, size, 2)


def warp_image(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """`image` (H, W, C) resampled bilinearly at p - field[p] (edges clamped), as float32."""
    from scipy.ndimage import map_coordinates

    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rows = y - field[..., 1]
    columns = x - field[..., 0]
    channels = [map_coordinates(np.asarray(image[..., c], np.float64), [rows, columns], order=1, mode="nearest")
                for c in range(image.shape[-1])]
    return np.stack(channels, -1).astype(np.float32)


def move_lengths(field: np.ndarray) -> float:
    """Mean length in pixels of a field over the image's central half (where the face is)."""
    size = field.shape[0]
    inner = field[size // 4: size - size // 4, size // 4: size - size // 4]
    return float(np.linalg.norm(inner, axis=-1).mean())


# ---- the inputs of the study's script (run.py), checked here so that a bad one is a one-line ConfigError

def read_manifest(path: str, flag: str):
    """The rows of a CSV with image and expression columns, each with "path": the image beside the CSV."""
    import csv
    import os

    from legan_tf.errors import ConfigError

    if not path or not os.path.isfile(path):
        raise ConfigError(f"--{flag}={path}: no such file.")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"image", "expression"} <= set(rows[0]):
        raise ConfigError(f"--{flag}={path}: needs image and expression columns and at least one row.")
    folder = os.path.dirname(os.path.abspath(path))
    for row in rows:
        row["path"] = os.path.join(folder, row["image"])
    return rows


def parse_gains(values) -> list:
    """--gains as numbers >= 0 (ConfigError otherwise)."""
    from legan_tf.errors import ConfigError

    text = ",".join(str(value) for value in values)
    try:
        gains = [float(value) for value in values]
    except ValueError:
        raise ConfigError(f"--gains={text}: not a list of numbers.") from None
    if not gains or any(not np.isfinite(gain) or gain < 0 for gain in gains):
        raise ConfigError(f"--gains={text}: give one or more gains >= 0.")
    return gains


def choose_rows(train_rows, heldout_rows, lighting: str):
    """(expression names, held-out rows): the names sorted from the training rows; held-out rows of `lighting`
    where the manifest has a lighting column. ConfigError when none is left or one names an unknown expression."""
    from legan_tf.errors import ConfigError

    if "lighting" in heldout_rows[0]:
        heldout_rows = [row for row in heldout_rows if row["lighting"] == lighting]
        if not heldout_rows:
            raise ConfigError(f"--heldout_manifest: no row has lighting {lighting!r} (--lighting).")
    names = sorted({row["expression"] for row in train_rows})
    if len(names) < 2:
        raise ConfigError(f"--train_manifest: the faces name {len(names)} expression; at least 2 are needed.")
    unknown = sorted({row["expression"] for row in heldout_rows} - set(names))
    if unknown:
        raise ConfigError(f"--heldout_manifest: expressions {unknown} are not among the training faces' {names}.")
    return names, heldout_rows
