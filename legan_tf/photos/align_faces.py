"""Canonical face crops of a folder of photos: what `scripts/align_faces.py` does.

Every photo under --input_dir (searched recursively; sub-folders such as class folders are kept) with
exactly one face becomes OUT/<same sub-path>.png: the face aligned to legan_tf.photos.faces.TEMPLATE,
the crop scripts/edit_photo.py feeds its generator, so a model trained on these crops sees the faces
it will edit framed the same way. Then `scripts/prepare_data.py --data_format=folder` reads OUT.

  OUT/<sub-path>/<name>.png   the crops, size x size, RGB (or grey with grey=True)
  OUT/skipped.csv             row,path,fault: every file left out and why (row empty)
  OUT/align_faces.json        settings, counts, the skipped files

A photo without a face, with several, or whose face is under min_face_size is skipped and reported;
the run fails (DataError) only when no photo could be used. `scripts/prepare_data.py --align` runs
this first and makes its shards from the crops (`align_for_shards`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import List, Optional

from PIL import Image
from tqdm import tqdm

from legan_tf.data.errors import DataError, Fault, write_fault_report
from legan_tf.data.manifests import IMAGE_EXTENSIONS
from legan_tf.errors import ConfigError
from legan_tf.data.input_files import leave_out_matching
from legan_tf.output_dirs import prepare_output_dir
from legan_tf.photos import faces as face_tools

SKIPPED_FILE = "skipped.csv"
SUMMARY_FILE = "align_faces.json"


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def find_files(input_dir: str, exclude: Optional[str] = None) -> List[str]:
    """Non-hidden files under input_dir, relative to it, sorted; nothing under `exclude`."""
    found = []
    for current, folders, files in os.walk(input_dir):
        folders[:] = sorted(name for name in folders if not name.startswith(".")
                            and not (exclude and _inside(os.path.join(current, name), exclude)))
        found += [os.path.relpath(os.path.join(current, name), input_dir) for name in sorted(files)
                  if not name.startswith(".")]
    return found


def output_names(photos: List[str]) -> dict:
    """relative photo path -> relative .png path; photos that would share one (a.jpg, a.png) keep their extension."""
    stems = [os.path.splitext(path)[0] for path in photos]
    return {path: stem + ("_" + os.path.splitext(path)[1].lstrip(".").lower() if stems.count(stem) > 1 else "")
            + ".png" for path, stem in zip(photos, stems)}


def align_folder(input_dir: str, output_dir: str, size: int = 48, grey: bool = False, detector: str = "auto",
                 min_face_size: float = face_tools.MIN_FACE_SIZE, overwrite: bool = False,
                 progress: bool = True, exclude_pattern: str = "") -> dict:
    """Writes the canonical crop of every one-face photo in input_dir to output_dir (module docstring).

    exclude_pattern: a regular expression searched in each file's path under input_dir; matching files
    are left out before detection (counted as `excluded`), as prepare_data's --exclude_pattern does.
    """
    if not isinstance(size, int) or size < 16:
        raise ConfigError(f"--size must be an integer >= 16, got {size!r}")
    if not os.path.isdir(input_dir):
        raise ConfigError(f"--input_dir={input_dir}: no such folder")
    if os.path.abspath(input_dir) == os.path.abspath(output_dir) or _inside(input_dir, output_dir):
        raise ConfigError(f"--input_dir={input_dir} is --output_dir={output_dir} or lies inside it")
    files = find_files(input_dir, exclude=output_dir if _inside(output_dir, input_dir) else None)
    excluded = 0
    if exclude_pattern:
        files, excluded = leave_out_matching(files, exclude_pattern, input_dir)
    photos = [path for path in files if path.lower().endswith(IMAGE_EXTENSIONS + (".webp", ".tif", ".tiff", ".bmp"))]
    origin = f"folder {os.path.basename(os.path.normpath(input_dir))}"
    faults = [Fault(None, path, "not an image file (.png/.jpg/.jpeg/.webp/.tif/.bmp)", origin)
              for path in files if path not in photos]
    if not photos:
        raise DataError(f"{input_dir}: no photos found (searched it recursively)")
    prepare_output_dir(output_dir, [*sorted({path.split(os.sep)[0] for path in output_names(photos).values()}),
                                    SKIPPED_FILE, SUMMARY_FILE], overwrite, "the aligned faces")
    finder = face_tools.FaceFinder(detector, min_face_size=min_face_size)
    for fault in faults:
        print(f"skipped {fault}", file=sys.stderr)
    names, written = output_names(photos), []
    for path in tqdm(photos, desc="aligning", unit="photo", disable=not progress, file=sys.stderr):
        try:
            photo = face_tools.load_photo(os.path.join(input_dir, path))
            found, skipped = finder(photo.rgb)
            if len(found) != 1:
                why = f"{len(found)} faces found" if found else "no face found"
                if len(found) > 1:
                    why += " (one face per photo here: crop them apart, or edit them with scripts/edit_photo.py)"
                raise face_tools.PhotoError(why + (f"; skipped: {'; '.join(skipped)}" if skipped and not found else ""))
        except face_tools.PhotoError as error:
            message = str(error)
            prefix = os.path.join(input_dir, path) + ": "
            faults.append(Fault(None, path, message[len(prefix):] if message.startswith(prefix) else message, origin))
            tqdm.write(f"skipped {faults[-1]}", file=sys.stderr)
            continue
        crop = face_tools.Alignment.of(found[0], size).crop(photo.rgb)
        target = os.path.join(output_dir, names[path])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        image = Image.fromarray(crop)
        (image.convert("L") if grey else image).save(target)
        written.append(names[path])
    skipped_path = os.path.join(output_dir, SKIPPED_FILE)
    write_fault_report(faults, skipped_path)
    outcome = {
        "input_dir": input_dir, "output_dir": output_dir, "photos": len(photos), "aligned": len(written),
        "skipped": len(faults), "skipped_report": skipped_path, "excluded": excluded,
        "settings": {"size": size, "grey": grey, "detector": detector, "min_face_size": min_face_size,
                     "template": face_tools.TEMPLATE},
        "skipped_files": [{"path": fault.path, "fault": fault.message} for fault in faults],
    }
    with open(os.path.join(output_dir, SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump(outcome, handle, indent=2)
    if not written:
        raise DataError(f"{origin}: no photo could be used ({len(faults)} skipped, see {skipped_path})")
    return outcome


def summary(outcome: dict) -> str:
    excluded = f", left out {outcome['excluded']} by --exclude_pattern" if outcome.get("excluded") else ""
    return (f"aligned {outcome['aligned']} of {outcome['photos']} photos into {outcome['output_dir']} "
            f"({outcome['settings']['size']} px), skipped {outcome['skipped']} files (see {outcome['skipped_report']})"
            + excluded)


ALIGNED_SUBDIR = "aligned"


def align_for_shards(config, output_dir: str, size: int, detector: str = "auto",
                     min_face_size: float = face_tools.MIN_FACE_SIZE, overwrite: bool = False,
                     progress: bool = True):
    """prepare_data --align: aligns a folder dataset's photos into output_dir/aligned/ and returns
    (the DataConfig that reads the crops, the alignment outcome).

    The crops keep each photo's path with a .png name, so class folders, split folders and the
    --group_pattern / --split_pattern rules (searched in the names' stems) still apply;
    --exclude_pattern is applied here, to the original names, and not again.
    """
    if config.data_format != "folder":
        raise DataError(f"--align aligns a folder of photos (--data_format=folder), not --data_format="
                        f"{config.data_format}: align the photos first (scripts/align_faces.py), then list the crops")
    aligned_dir = os.path.join(output_dir, ALIGNED_SUBDIR)
    outcome = align_folder(config.data_path, aligned_dir, size=size, detector=detector, min_face_size=min_face_size,
                           overwrite=overwrite, progress=progress, exclude_pattern=config.exclude_pattern)
    return dataclasses.replace(config, data_path=aligned_dir, exclude_pattern=""), outcome
