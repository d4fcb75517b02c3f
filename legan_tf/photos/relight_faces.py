"""A folder of faces from `scripts/make_depth.py`, relit under the light grid and written in the multipie
layout (`scripts/relight_faces.py`, docs/relight_faces.md). The method itself is `legan_tf.photos.relight`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from legan_tf.photos.relight import (
    _median,
    _percentile,
    AMBIENT,
    DegenerateFit,
    ELEVATION_DEGREES,
    FEATHER,
    GRID,
    LightingFit,
    MAX_CLIPPED,
    MAX_CONDITION,
    MAX_RATIO,
    MIN_PIXELS,
    NORMAL_BLUR,
    ORIGINAL,
    SHADING_FLOOR,
    SPILL,
    TRIM_ROUNDS,
    TRIM_SIGMAS,
    _pixels,
    angular_error_degrees,
    decode_normals,
    fit_lighting,
    interior,
    light_direction,
    light_of,
    linear_luminance,
    relight,
    smooth_normals,
)

# --- a make_depth folder -> the multipie layout -----------------------------------------------------

MANIFEST_FILE = "manifest.csv"
SKIPPED_FILE = "skipped.csv"
SUMMARY_FILE = "relight_faces.json"
OUTPUTS = ("images", "masks", MANIFEST_FILE, SKIPPED_FILE, SUMMARY_FILE)
MANIFEST_COLUMNS = ["image", "subject", "session", "lighting", "expression", "mask"]
SESSION = 1


@dataclasses.dataclass(frozen=True)
class Face:
    row: int          # data row of the input manifest (1 = the first after the header)
    image: str        # as the manifest names it (relative to the input folder)
    normals: str
    depth: str        # "" when the manifest has no depth column
    expression: str
    stem: str         # the image's path under rgb/ without extension: names the outputs
    subject: str


def read_faces(input_dir: str) -> List[Face]:
    """The faces of a make_depth output folder's manifest.csv (image, depth, normals, expression)."""
    from legan_tf.data.errors import DataError
    from legan_tf.errors import ConfigError

    if not os.path.isdir(input_dir):
        raise ConfigError(f"--input_dir={input_dir}: no such folder")
    path = os.path.join(input_dir, MANIFEST_FILE)
    if not os.path.isfile(path):
        raise DataError(f"{input_dir}: no {MANIFEST_FILE}; expected a scripts/make_depth.py output folder "
                        "(rgb/, depth/, normals/, manifest.csv)")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in ("image", "normals", "expression") if column not in header]
        if missing:
            raise DataError(f"{path}: no {', '.join(missing)} column (header: {','.join(header)}); expected "
                            "make_depth's image,depth,normals,expression")
        records = list(reader)
    if not records:
        raise DataError(f"{path}: no faces (only a header)")
    faces = []
    for row, record in enumerate(records, start=1):
        image = record["image"] or ""
        inside = image[len("rgb/"):] if image.startswith("rgb/") else image
        stem = os.path.splitext(inside)[0]
        faces.append(Face(row, image, record["normals"] or "", record.get("depth") or "", record["expression"] or "",
                          stem, os.path.basename(stem)))
    counts: Dict[str, int] = {}
    for face in faces:
        counts[face.subject] = counts.get(face.subject, 0) + 1
    # Two photos with one file name (x/a.png, y/a.png) stay two subjects: their paths name them.
    return [dataclasses.replace(face, subject=face.stem) if counts[face.subject] > 1 else face for face in faces]


class SkippedFace(Exception):
    """A manifest row that cannot be relit (or fitted): the message says why."""


def load_face(input_dir: str, face: Face) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image uint8 RGB, unit normals, face mask, depth clipped at its maximum) of one manifest row; SkippedFace
    with the reason when the row cannot be used."""
    if not face.image or not face.normals:
        raise SkippedFace("empty image or normals value in the manifest")
    if not face.expression:
        raise SkippedFace("empty expression value in the manifest")
    image_path, normals_path = (os.path.join(input_dir, p) for p in (face.image, face.normals))
    if not os.path.isfile(image_path):
        raise SkippedFace(f"image {face.image} is missing")
    if not os.path.isfile(normals_path):
        raise SkippedFace(f"normal map {face.normals} is missing")
    try:
        with Image.open(image_path) as handle:
            image = np.asarray(handle.convert("RGB"))
        with Image.open(normals_path) as handle:
            if handle.mode != "RGB":
                raise SkippedFace(f"normal map {face.normals} is mode {handle.mode}; expected 8-bit RGB")
            normal_map = np.asarray(handle)
    except (OSError, SyntaxError, ValueError) as error:
        raise SkippedFace(f"unreadable image or normal map ({error})") from None
    if image.shape[:2] != normal_map.shape[:2]:
        raise SkippedFace(f"normal map is {normal_map.shape[1]}x{normal_map.shape[0]}, image is "
                    f"{image.shape[1]}x{image.shape[0]}")
    normals, mask = decode_normals(normal_map)
    clipped = np.zeros(mask.shape, bool)
    if face.depth:
        depth_path = os.path.join(input_dir, face.depth)
        if not os.path.isfile(depth_path):
            raise SkippedFace(f"depth map {face.depth} is missing")
        try:
            with Image.open(depth_path) as handle:
                depth = np.asarray(handle)
        except (OSError, SyntaxError, ValueError) as error:
            raise SkippedFace(f"unreadable depth map ({error})") from None
        if depth.shape[:2] != mask.shape:
            raise SkippedFace(f"depth map is {depth.shape[1]}x{depth.shape[0]}, image is "
                              f"{mask.shape[1]}x{mask.shape[0]}")
        if depth.ndim == 2 and np.issubdtype(depth.dtype, np.integer):
            # make_depth clips depth at 1 (the largest value): such pixels are a flat plateau, their normals (0, 0, 1).
            clipped = (depth == np.iinfo(depth.dtype).max) & mask
    return image, normals, mask, clipped


def check_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuses a non-empty output_dir unless overwrite, but removes nothing yet: an earlier run's outputs are
    replaced only when this run's are complete (_publish)."""
    from legan_tf.output_dirs import refuse_unless_empty

    refuse_unless_empty(output_dir, overwrite, "the relit faces")


def _publish(scratch: str, output_dir: str, overwrite: bool) -> None:
    """Moves the finished outputs from the scratch folder into output_dir (a rename on one file system)."""
    from legan_tf.output_dirs import remove_outputs

    os.makedirs(output_dir, exist_ok=True)
    if overwrite:
        remove_outputs(output_dir, OUTPUTS)
    for name in OUTPUTS:
        source = os.path.join(scratch, name)
        if os.path.exists(source):
            os.replace(source, os.path.join(output_dir, name))




def prepare_data_command(manifest: str, expressions: Sequence[str], lights: Sequence[str]) -> str:
    return (f"python scripts/prepare_data.py --data_format=multipie --data_path={manifest} "
            f"--expression_names={','.join(expressions)} --lighting_names={','.join(lights)} "
            "--output_dir=<shards folder> --holdout_fraction=0.2")


def relight_faces(input_dir: str, output_dir: str, lights: Optional[Sequence[str]] = None, overwrite: bool = False,
                  ambient: float = AMBIENT, floor: float = SHADING_FLOOR, feather: float = FEATHER,
                  spill: float = SPILL, normal_blur: float = NORMAL_BLUR, max_ratio: float = MAX_RATIO,
                  max_clipped: float = MAX_CLIPPED, contact_sheet: Optional[str] = None, sheet_count: int = 4,
                  progress: bool = True) -> dict:
    """Writes every face of a make_depth folder under each light (and `original`) in the multipie layout.

    OUT/images/<expression>/<name>_<light>.png, OUT/masks/<expression>/<name>.png (the face mask),
    OUT/manifest.csv (image,subject,session,lighting,expression,mask), OUT/skipped.csv (row,path,fault),
    OUT/relight_faces.json (settings, lights, counts, the check's angular errors, the skipped faces).
    Everything is written to a scratch folder beside OUT and moved in at the end (replacing an earlier
    run's outputs only then, with overwrite), so an interrupted run leaves OUT as it was. Returns the
    summary. Raises ConfigError for bad settings, DataError when the input is not a make_depth folder or no
    face could be relit (after writing skipped.csv and relight_faces.json).
    """
    from tqdm import tqdm

    from legan_tf.data.errors import DataError, Fault, write_fault_report
    from legan_tf.errors import ConfigError

    lights = list(GRID) if lights is None else list(lights)
    unknown = [name for name in lights if name not in GRID]
    if unknown or not lights:
        raise ConfigError(f"--lights: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(GRID)}")
    lights = [name for name in GRID if name in lights]   # the grid's order, each once
    if not 0.0 <= ambient < 1.0:
        raise ConfigError(f"--ambient must be in [0, 1), got {ambient!r}")
    if not 0.0 < floor < 1.0:
        raise ConfigError(f"--shading_floor must be in (0, 1), got {floor!r}")
    for name, value in (("feather", feather), ("spill", spill), ("normal_blur", normal_blur)):
        if not 0.0 <= value <= 0.25:
            raise ConfigError(f"--{name} must be in [0, 0.25] (a fraction of the image's side), got {value!r}")
    if not max_ratio > 1.0:
        raise ConfigError(f"--max_ratio must be > 1, got {max_ratio!r}")
    if not 0.0 <= max_clipped <= 1.0:
        raise ConfigError(f"--max_clipped must be in [0, 1], got {max_clipped!r}")
    if os.path.abspath(input_dir) == os.path.abspath(output_dir):
        raise ConfigError(f"--output_dir={output_dir} is --input_dir")
    faces = read_faces(input_dir)
    check_output_dir(output_dir, overwrite)
    names = (ORIGINAL, *lights)
    origin = MANIFEST_FILE
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".relight_faces-", dir=parent)   # beside OUT: the final move is a rename
    rows: List[list] = []
    faults: List[Fault] = []
    errors: Dict[str, List[float]] = {name: [] for name in lights}
    band_errors: Dict[str, List[float]] = {name: [] for name in lights}
    source_lights: List[np.ndarray] = []
    fits: List[LightingFit] = []
    sheet_rows: List[List[np.ndarray]] = []
    try:
        for face in tqdm(faces, desc="relighting", unit="face", disable=not progress, file=sys.stderr):
            try:
                image, normals, mask, clipped = load_face(input_dir, face)
                if clipped.sum() > max_clipped * max(1, mask.sum()):
                    raise SkippedFace(f"depth clipped at 1 on {clipped.sum() / mask.sum():.0%} of the face "
                                      f"(--max_clipped={max_clipped:g}): its normals are flat there")
                side = max(mask.shape)
                normals = smooth_normals(normals, mask, _pixels(normal_blur, side, 0.5))
                width, reach = _pixels(feather, side, 2.0), _pixels(spill, side, 2.0)
                # The fit leaves the clipped plateau out (its normals are not the face's); the relighting covers it.
                fitted = mask & ~clipped
                fit = fit_lighting(linear_luminance(image), normals, fitted)
                relit = {name: relight(image, normals, mask, name, fit, ambient, floor, width, reach, max_ratio)
                         for name in names}
                inner = interior(mask, width) & ~clipped
                refits = {name: fit_lighting(linear_luminance(relit[name]), normals, inner) for name in lights}
            except (SkippedFace, DegenerateFit) as fault:
                faults.append(Fault(face.row, face.image, str(fault), origin))
                tqdm.write(f"skipped {faults[-1]}", file=sys.stderr)
                continue
            fits.append(fit)
            source_lights.append(light_of(fit, normals, fitted))
            for name in lights:
                target = light_direction(name)
                errors[name].append(angular_error_degrees(light_of(refits[name], normals, inner), target))
                band_errors[name].append(angular_error_degrees(refits[name].linear_direction, target))
            mask_name = f"masks/{face.stem}.png"
            _save(os.path.join(scratch, mask_name), (mask * 255).astype(np.uint8))
            for name in names:
                image_name = f"images/{face.stem}_{name}.png"
                _save(os.path.join(scratch, image_name), relit[name])
                rows.append([image_name, face.subject, SESSION, name, face.expression, mask_name])
            if contact_sheet and len(sheet_rows) < sheet_count:
                sheet_rows.append([relit[name] for name in names])
        write_fault_report(faults, os.path.join(scratch, SKIPPED_FILE))
        if rows:
            with open(os.path.join(scratch, MANIFEST_FILE), "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(MANIFEST_COLUMNS)
                writer.writerows(rows)
        expressions = sorted({row[4] for row in rows})
        manifest_path = os.path.join(output_dir, MANIFEST_FILE)
        outcome = {
            "input_dir": input_dir,
            "output_dir": output_dir,
            "faces": len(faces),
            "relit": len(fits),
            "skipped": len(faults),
            "images": len(rows),
            "lights": {name: [round(float(v), 6) for v in light_direction(name)] for name in lights},
            "lighting_names": list(names),
            "expressions": {name: sum(row[4] == name and row[3] == ORIGINAL for row in rows) for name in expressions},
            "angular_error_degrees": {
                name: {"median": _median(errors[name]), "p90": _percentile(errors[name], 90),
                       "max": round(max(errors[name]), 2) if errors[name] else None} for name in lights},
            "median_angular_error_degrees": _median([e for name in lights for e in errors[name]]),
            # The same check read off the re-fitted first-order band alone (ill-posed on a face: see light_of).
            "linear_band_angular_error_degrees": {name: _median(band_errors[name]) for name in lights},
            "source_light": {
                "median_azimuth_degrees": _median([float(np.degrees(np.arctan2(d[0], d[2]))) for d in source_lights]),
                "median_elevation_degrees": _median([float(np.degrees(np.arcsin(np.clip(d[1], -1, 1))))
                                                     for d in source_lights]),
            },
            "source_fit": {
                "median_pixels": _median([f.pixels for f in fits]),
                "median_share_used": _median([f.used / f.pixels for f in fits]),
                "median_relative_rms": _median([f.rms for f in fits]),
                "median_condition": _median([f.condition for f in fits]),
            },
            "manifest": manifest_path if rows else None,
            "skipped_report": os.path.join(output_dir, SKIPPED_FILE),
            "prepare_data": prepare_data_command(manifest_path, expressions, names) if rows else None,
            "contact_sheet": None,
            "settings": {"ambient": ambient, "shading_floor": floor, "feather": feather, "spill": spill,
                         "normal_blur": normal_blur, "max_ratio": max_ratio, "max_clipped": max_clipped,
                         "elevation_degrees": ELEVATION_DEGREES, "min_pixels": MIN_PIXELS,
                         "trim_sigmas": TRIM_SIGMAS, "trim_rounds": TRIM_ROUNDS, "max_condition": MAX_CONDITION},
            "skipped_faces": [{"row": fault.row, "path": fault.path, "fault": fault.message} for fault in faults],
        }
        with open(os.path.join(scratch, SUMMARY_FILE), "w", encoding="utf-8") as handle:
            json.dump(outcome, handle, indent=2)
        _publish(scratch, output_dir, overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if sheet_rows:
        from legan_tf import visualize

        columns = [np.stack([row[index] for row in sheet_rows]) for index in range(len(names))]
        visualize.save_png(visualize.titled_mosaic(columns, list(names), min_cell=0), contact_sheet)
        outcome["contact_sheet"] = contact_sheet
    if not rows:
        raise DataError(f"{input_dir}: no face could be relit ({len(faults)} skipped, see "
                        f"{outcome['skipped_report']})")
    return outcome


def _save(path: str, array: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, compress_level=6)


def summary_line(outcome: dict) -> str:
    """What a run did, for the terminal: counts, the check's errors, and how to read the output."""
    errors = outcome["angular_error_degrees"]
    per_light = ", ".join(f"{name} {figures['median']}" for name, figures in errors.items())
    lines = [
        f"relit {outcome['relit']} of {outcome['faces']} faces under {len(outcome['lighting_names'])} lightings "
        f"({outcome['images']} images), skipped {outcome['skipped']} (see {outcome['skipped_report']})",
        f"check, median angle between each light and the direction fitted on the relit faces (degrees): {per_light}",
        f"manifest: {outcome['manifest']}",
        f"read it with: {outcome['prepare_data']}",
    ]
    if outcome["contact_sheet"]:
        lines.append(f"contact sheet: {outcome['contact_sheet']}")
    return "\n".join(lines)
