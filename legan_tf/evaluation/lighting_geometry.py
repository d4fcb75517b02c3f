"""The light of an edited face, fitted over that face's own geometry: a lighting judge with no learned weights.

A lighting classifier trained on relit faces can be pleased by shading no one would call a light from one
side (docs/relight_faces.md shows one reading 96.6% of wrecked faces as their target). This judge cannot be
trained against: for a held-out face whose normals make_depth.py fitted, the edit's linear luminance is fitted
with spherical-harmonic lighting over those normals and read as the one light that best explains it
(photos.relight.fit_lighting and light_of, the check relight_faces.py runs on its own relit faces, here over
the normals as make_depth.py wrote them, without the relighting's smoothing). Figures,
over the lighting-only edits G(x, (e, t)) to each grid light t (not `original`, which names no direction):

  error            median angle in degrees between the edit's fitted light and t
  unedited_error   the same angle for the unedited face x over the same pairs (what a generator that
                   changes nothing scores)
  nearest_rate     share of edits whose fitted light is nearer t than any other grid light; baseline: the
                   same for the unedited faces
  data             the unedited faces under a grid light l: median angle between their fitted light and l,
                   and the share nearest l (the ceiling of nearest_rate: relighting and fitting err too)

The shards' `identity` ids index the sorted subjects of the manifest they were prepared from (its path is in
their dataset.json), and a relit photo's subject is its source photo's name, so each face finds its normal
map in make_depth.py's output by that name. Shards whose subjects are people (prepare_data.py
--group_pattern, as for relit CK+48) name no photo: held-out people are then kept apart with --split_pattern
on the photo-keyed manifest instead (docs/relight_faces.md).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from legan_tf.errors import ConfigError
from legan_tf.evaluation.real_edits import _percent, _ratio, _share
from legan_tf.photos import relight, relight_faces


@dataclasses.dataclass
class FaceGeometry:
    normals: np.ndarray    # (N, H, W, 3) float32 unit normals (zeros where a face has none)
    masks: np.ndarray      # (N, H, W) bool: the face's interior, depth clipped by make_depth left out
    found: np.ndarray      # (N,) bool: the face's photo has a normal map
    normals_dir: str


def shard_subjects(data_path: str) -> List[str]:
    """Subject names in `identity` id order: the sorted subjects of the manifest the shards were made from."""
    info_path = os.path.join(data_path, "dataset.json")
    try:
        with open(info_path, encoding="utf-8") as handle:
            manifest = json.load(handle).get("source_path") or ""
    except (OSError, ValueError) as error:
        raise ConfigError(f"--normals_dir needs the shards' dataset.json ({info_path}): {error}") from None
    try:
        with open(manifest, newline="", encoding="utf-8") as handle:
            subjects = {row.get("subject", "") for row in csv.DictReader(handle)}
    except OSError as error:
        raise ConfigError(f"--normals_dir: the manifest the shards were prepared from cannot be read ({manifest}: "
                          f"{error.strerror}); its subjects name the photos whose normals are looked up") from None
    subjects.discard("")
    if not subjects:
        raise ConfigError(f"--normals_dir: {manifest} has no subject column (a multipie-layout manifest has one)")
    return sorted(subjects)


def load_geometry(normals_dir: str, subjects: Sequence[str], ids: np.ndarray, image_size: int) -> FaceGeometry:
    """The normal map and face interior of each face's photo (ids index `subjects`), from make_depth.py's output
    folder, read and named as relight_faces.py reads them; faces whose photo it did not fit, or whose row it
    would skip, are marked not found (counted, left out of the figures)."""
    if not os.path.isdir(normals_dir):
        raise ConfigError(f"--normals_dir={normals_dir}: no such folder")
    by_subject = {face.subject: face for face in relight_faces.read_faces(normals_dir)}
    wanted = {subjects[subject_id] for subject_id in np.unique(np.asarray(ids, np.int64))}
    if wanted and not wanted & set(by_subject):
        example = sorted(wanted)[0]
        raise ConfigError(f"--normals_dir={normals_dir}: none of the faces' {len(wanted)} subjects (e.g. {example}) "
                          "names a photo it holds; the shards' subjects must be the source photos (prepare_data.py "
                          "without --group_pattern, which makes them people; hold people out with --split_pattern)")
    count = len(ids)
    normals = np.zeros((count, image_size, image_size, 3), np.float32)
    masks = np.zeros((count, image_size, image_size), bool)
    found = np.zeros(count, bool)
    cache: Dict[int, tuple] = {}
    for index, subject_id in enumerate(np.asarray(ids, np.int64)):
        if subject_id not in cache:
            cache[subject_id] = _photo_geometry(normals_dir, by_subject.get(subjects[subject_id]), image_size)
        geometry = cache[subject_id]
        if geometry is not None:
            normals[index], masks[index] = geometry
            found[index] = True
    return FaceGeometry(normals, masks, found, normals_dir)


def _photo_geometry(normals_dir: str, face: Optional[relight_faces.Face], image_size: int):
    """(normals, the face's interior without make_depth's clipped plateau) of one photo, or None."""
    if face is None:
        return None
    try:
        _, normals, mask, clipped = relight_faces.load_face(normals_dir, face)
    except relight_faces.SkippedFace:
        return None
    if mask.shape != (image_size, image_size):
        raise ConfigError(f"--normals_dir: {os.path.join(normals_dir, face.normals)} is {mask.shape[1]}x"
                          f"{mask.shape[0]}, the generator's faces {image_size}x{image_size}; run make_depth.py with "
                          f"--image_size={image_size}")
    return normals.astype(np.float32), relight.interior(mask) & ~clipped


def fitted_direction(image: np.ndarray, normals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The unit direction of the one light that best explains a [-1, 1] face's shading over its normals; NaNs
    where the fit is degenerate (too little face, a black face)."""
    rgb = np.clip((np.asarray(image, np.float64) + 1.0) / 2.0, 0.0, 1.0)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    try:
        luminance = relight.linear_luminance(rgb)
        return relight.light_of(relight.fit_lighting(luminance, normals, mask), normals, mask)
    except relight.DegenerateFit:
        return np.full(3, np.nan)


class LightingFits:
    """Collects the fitted light of the unedited faces and of every lighting edit (joint_edits calls it)."""

    def __init__(self, geometry: FaceGeometry, num_lights: int):
        count = len(geometry.found)
        self.geometry = geometry
        self.input = np.full((count, 3), np.nan)
        self.edits = np.full((count, num_lights, 3), np.nan)

    def _fit(self, rows: slice, images: np.ndarray) -> np.ndarray:
        indices = range(*rows.indices(len(self.geometry.found)))
        return np.stack([fitted_direction(image, self.geometry.normals[index], self.geometry.masks[index])
                         if self.geometry.found[index] else np.full(3, np.nan)
                         for index, image in zip(indices, images)])

    def observe_input(self, rows: slice, images: np.ndarray) -> None:
        self.input[rows] = self._fit(rows, images)

    def observe(self, rows: slice, target: int, images: np.ndarray) -> None:
        self.edits[rows, target] = self._fit(rows, images)


def _degrees(cosines: np.ndarray) -> np.ndarray:
    """Angles in degrees between unit vectors from their dot products (clipped against rounding)."""
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


def _median(values: np.ndarray) -> Optional[float]:
    values = values[np.isfinite(values)]
    return round(float(np.median(values)), 1) if len(values) else None


def summarise(fits: LightingFits, own: np.ndarray, names: Sequence[str]) -> Dict[str, object]:
    """The figures of the module docstring, overall and per target light."""
    grid = [index for index, name in enumerate(names) if name in relight.GRID]
    if len(grid) < 2:
        raise ConfigError(f"--normals_dir: the generator's lightings ({', '.join(names)}) hold fewer than two of "
                          f"relight_faces.py's grid lights ({', '.join(relight.GRID)})")
    directions = np.stack([relight.light_direction(names[index]) for index in grid])

    def nearest(fitted: np.ndarray) -> np.ndarray:
        ids = np.asarray(grid)[np.argmax(np.nan_to_num(fitted) @ directions.T, axis=1)]
        return np.where(np.isfinite(fitted).all(axis=1), ids, -1)

    usable = np.isfinite(fits.input).all(axis=1)
    per_target, errors, unedited, hits, baseline = {}, [], [], [], []
    for index, target in zip(grid, directions):
        pairs = usable & (own != index) & np.isfinite(fits.edits[:, index]).all(axis=1)
        edit_angles, input_angles = _degrees(fits.edits[pairs, index] @ target), _degrees(fits.input[pairs] @ target)
        edit_hits, input_hits = nearest(fits.edits[pairs, index]) == index, nearest(fits.input[pairs]) == index
        per_target[names[index]] = {"pairs": int(pairs.sum()), "error": _median(edit_angles),
                                    "unedited_error": _median(input_angles), "nearest_rate": _share(edit_hits)}
        errors.append(edit_angles)
        unedited.append(input_angles)
        hits.append(edit_hits)
        baseline.append(input_hits)
    under_grid = usable & np.isin(own, grid)
    own_directions = np.stack([relight.light_direction(names[light]) for light in own[under_grid]]).reshape(-1, 3)
    data_angles = _degrees((fits.input[under_grid] * own_directions).sum(axis=1))
    data_hits = nearest(fits.input[under_grid]) == own[under_grid]
    rate, ceiling = _share(np.concatenate(hits)), _share(data_hits)
    return {
        "normals_dir": os.path.abspath(fits.geometry.normals_dir),
        "faces": int(len(own)), "faces_with_normals": int(fits.geometry.found.sum()),
        "faces_fitted": int(usable.sum()), "pairs": int(sum(len(h) for h in hits)),
        "error": _median(np.concatenate(errors)), "unedited_error": _median(np.concatenate(unedited)),
        "nearest_rate": rate, "baseline": _share(np.concatenate(baseline)),
        "data": {"faces": int(under_grid.sum()), "error": _median(data_angles), "nearest_accuracy": ceiling},
        "relative_to_ceiling": _ratio(rate, ceiling),
        "per_target": per_target,
    }


def report_lines(figures: Mapping[str, object]) -> List[str]:
    """Lines for the terminal and report.md."""
    def number(value):
        return "n/a" if value is None else f"{value:.1f}"

    data = figures["data"]
    return [f"lighting fitted over each face's own normals (no learned weights; {figures['faces_fitted']} of "
            f"{figures['faces']} faces fitted, {figures['pairs']} lighting edits): median angle to the target "
            f"light {number(figures['error'])} deg (unedited faces {number(figures['unedited_error'])}; relit data "
            f"against its own light {number(data['error'])}); nearest grid light is the target on "
            f"{_percent(figures['nearest_rate'])} (unedited {_percent(figures['baseline'])}; the data's own "
            f"{_percent(data['nearest_accuracy'])})"]
