"""How far a warping generator moves the photo: LEGANGenerator(expression_output="warp").

Such a generator resamples the photo along a smooth displacement field read from its expression hourglass
before it shades and composites it. Whether the field is used is not visible in the rates of
`joint_edits`: the composite can paint the same expression. This module measures the field itself:

  displacement_lengths   (N, C_e): for each face and each target expression (the face's lighting kept), the
                         mean length in pixels of the field over the central half of the face (rows and columns
                         from 1/4 to 3/4 of the side: the eyes, nose and mouth of an aligned crop)
  summarise              the mean over expression edits (target != the face's own), its 90th percentile and
                         per target, beside the mean for the face's own expression (what a field that ignores
                         the target gives) and the largest move allowed (max_shift x image size)
  lattice_grid           faces (rows) x target expressions (columns): each edit with a lattice of lines drawn
                         on the photo, moved by the same field, so a person sees where the pixels went

`scripts/judge_joint_edits.py` adds these to its report for a warping generator.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from legan_tf.evaluation.translation_metrics import one_hot_labels

CENTRAL = (0.25, 0.75)   # the central half of the side, both axes
LATTICE_PX = 8           # lattice spacing on the photo, in photo pixels
LATTICE_COLOUR = np.array([0.1, 0.9, 0.2], np.float32)   # RGB in [0, 1]


def warps(generator) -> bool:
    """Whether `generator` moves the photo along a displacement field (has `displacement(inputs)`)."""
    return getattr(generator, "expression_output", "mask") == "warp"


def allowed_px(generator) -> float:
    """The largest displacement along each axis, in pixels."""
    return float(generator.max_shift) * int(generator.image_size)


def _fields(generator, images: np.ndarray, expression: np.ndarray, lighting: np.ndarray) -> np.ndarray:
    sizes = {"expression": generator.num_expressions, "lighting": generator.num_lightings}
    labels = one_hot_labels({"expression": expression, "lighting": lighting}, sizes)
    return np.asarray(generator.displacement((np.asarray(images, np.float32), labels)), np.float64)


def central_mean_length(fields: np.ndarray) -> np.ndarray:
    """(N,) mean Euclidean length of fields (N, S, S, 2) over the central half of the image."""
    size = fields.shape[1]
    low, high = int(round(CENTRAL[0] * size)), int(round(CENTRAL[1] * size))
    return np.linalg.norm(fields[:, low:high, low:high], axis=-1).mean(axis=(1, 2))


def displacement_lengths(generator, images: np.ndarray, lighting_ids: np.ndarray, batch_size: int = 64,
                         progress: bool = False) -> np.ndarray:
    """(N, C_e): the field's mean length (pixels, central half) for each face and target expression, each face at
    its own lighting."""
    count, targets = len(images), int(generator.num_expressions)
    lengths = np.zeros((count, targets))
    lighting_ids = np.asarray(lighting_ids, np.int64)
    for start in tqdm(range(0, count, batch_size), desc="warp field", unit="batch", disable=not progress,
                      file=sys.stderr):
        rows = slice(start, start + batch_size)
        for target in range(targets):
            expression = np.full(len(images[rows]), target, np.int64)
            lengths[rows, target] = central_mean_length(_fields(generator, images[rows], expression,
                                                                lighting_ids[rows]))
    return lengths


def summarise(lengths: np.ndarray, expression_ids: np.ndarray, names: Sequence[str], allowed: float) -> Dict:
    """The figures of the module docstring from `displacement_lengths`' output and each face's own expression."""
    lengths = np.asarray(lengths, np.float64)
    own = np.asarray(expression_ids, np.int64)
    if lengths.ndim != 2 or lengths.shape != (len(own), len(names)):
        raise ValueError(f"lengths must be (faces, expressions) = ({len(own)}, {len(names)}), got {lengths.shape}.")
    is_own = own[:, None] == np.arange(len(names))[None, :]
    edits = lengths[~is_own]

    def mean(values):
        return float(values.mean()) if values.size else None

    return {"region": f"rows and columns {CENTRAL[0]:g}-{CENTRAL[1]:g} of the side", "allowed_px": float(allowed),
            "faces": int(len(own)), "edit_px": mean(edits), "own_px": mean(lengths[is_own]),
            "edit_p90_px": float(np.percentile(edits, 90)) if edits.size else None,
            "by_target": {name: mean(lengths[~is_own[:, target], target]) for target, name in enumerate(names)}}


def report_lines(figures: Mapping) -> List[str]:
    """Markdown lines for `summarise`'s figures."""
    def px(value):
        return "n/a" if value is None else f"{value:.2f} px"

    targets = ", ".join(f"{name} {px(value)}" for name, value in figures["by_target"].items())
    return ["", f"Warp field ({figures['region']}, {figures['faces']} faces, at most {figures['allowed_px']:.1f} px "
                "along each axis):", "",
            "| expression edits: mean | 90th percentile | own expression: mean |", "|---|---|---|",
            f"| {px(figures['edit_px'])} | {px(figures['edit_p90_px'])} | {px(figures['own_px'])} |", "",
            f"By target: {targets}."]


def lattice(size: int, spacing: int) -> np.ndarray:
    """(size, size) float: 1 on every spacing-th row and column (from spacing // 2), 0 elsewhere."""
    lines = np.zeros(size, np.float32)
    lines[spacing // 2::spacing] = 1.0
    return np.maximum(lines[:, None], lines[None, :])


def draw_moved_lattice(edits: np.ndarray, fields: np.ndarray, scale: int, spacing: int = LATTICE_PX) -> np.ndarray:
    """Edits (B, S, S, 3) in [-1, 1] upscaled `scale` times (nearest) in [0, 1], with a lattice of one-pixel lines
    every `spacing` photo pixels moved by fields (B, S, S, 2) (photo pixels): output pixel p shows the lattice
    where the photo is read from, p + field(p), so the lines bend the way the face's pixels moved."""
    from legan_tf.models.legan import warp_bilinear

    edits, fields = np.asarray(edits, np.float32), np.asarray(fields, np.float32)
    size = edits.shape[1]
    big = np.repeat(np.repeat((edits + 1.0) / 2.0, scale, axis=1), scale, axis=2)
    coarse = np.repeat(np.repeat(fields, scale, axis=1), scale, axis=2) * scale
    grid = np.repeat(lattice(size * scale, spacing * scale)[None, :, :, None], len(edits), axis=0)
    moved = np.asarray(warp_bilinear(grid, coarse))
    return np.clip(big * (1.0 - moved) + LATTICE_COLOUR * moved, 0.0, 1.0)


def lattice_grid(generator, translate, images: np.ndarray, labels: Mapping[str, np.ndarray],
                 names: Mapping[str, Sequence[str]], scale: int = 2) -> np.ndarray:
    """Faces (rows) x [input, every target expression] (columns), the face's lighting kept: each edit with the
    photo's lattice moved by its field (`draw_moved_lattice`); the input column shows the lattice unmoved."""
    from legan_tf.visualize import row_labelled_mosaic

    expression, lighting = (np.asarray(labels[name], np.int64) for name in ("expression", "lighting"))
    def cells(pictures):
        return np.round(pictures * 255.0).astype(np.uint8)

    still = np.zeros(tuple(images.shape[:3]) + (2,), np.float32)
    columns = [cells(draw_moved_lattice(images, still, scale))]
    for target in range(len(names["expression"])):
        targets = np.full(len(images), target, np.int64)
        edits = np.asarray(translate(images, {"expression": targets, "lighting": lighting}), np.float32)
        columns.append(cells(draw_moved_lattice(edits, _fields(generator, images, targets, lighting), scale)))
    rows = [f"{names['expression'][e]}\n{names['lighting'][light]}" for e, light in zip(expression, lighting)]
    return row_labelled_mosaic(columns, ["input", *names["expression"]], rows)
