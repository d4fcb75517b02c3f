"""FER2013 as its owner distributes it: Kaggle's `fer2013.csv`, unpacked into the folder layout.

The competition's file has one face per row: `emotion` (0-6), `pixels` (2,304 grey levels 0-255 as
space-separated text, row by row, 48x48) and `Usage` (Training, PublicTest or PrivateTest). Unpacking
writes each face losslessly as `<split>/<class>/<Usage>_<row>.png`, the layout (and file names) of the
folder copy that `configs/fer2013/fer2013_data.flags` reads, so the same flagfile prepares either (the csv has
no augmented copies for its `--exclude_pattern` to leave out, so that flag is emptied):

    python scripts/unpack_fer2013.py --csv=fer2013.csv --output_dir=data/raw/fer2013
    python scripts/prepare_data.py --flagfile=configs/fer2013/fer2013_data.flags --exclude_pattern=

Class ids are the competition's: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
Usage maps to the split folders as in the folder copy: Training -> train, PublicTest -> validation,
PrivateTest -> test. A row that cannot be a face (a class id outside 0-6, another Usage, a pixel count
other than 2,304, a value that is not an integer in 0-255) is skipped and listed in `skipped.csv`;
a file without the three columns stops before anything is written. Everything is written to a
temporary folder beside the output and renamed into place at the end, so an interrupted run leaves
no half-written output.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm

from legan_tf.data.errors import DataError, Fault, write_fault_report

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # the competition's ids 0-6
SPLITS = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
COLUMNS = ("emotion", "pixels", "Usage")
SIDE = 48


class RowFault(ValueError):
    pass


def parse_row(cells: Dict[str, str]):
    """(class name, split folder, Usage, (48, 48) uint8 face) of one row; RowFault says what is wrong."""
    emotion = (cells.get("emotion") or "").strip()
    if not emotion.isdigit() or int(emotion) >= len(CLASSES):
        raise RowFault(f"emotion {emotion!r} is not a class id 0-{len(CLASSES) - 1}")
    usage = (cells.get("Usage") or "").strip()
    if usage not in SPLITS:
        raise RowFault(f"Usage {usage!r} is not one of {', '.join(SPLITS)}")
    values = (cells.get("pixels") or "").split()
    if len(values) != SIDE * SIDE:
        raise RowFault(f"{len(values)} pixel values, not {SIDE * SIDE} ({SIDE}x{SIDE})")
    if not all(value.isdigit() for value in values):
        raise RowFault("a pixel value is not a non-negative integer")
    pixels = np.array([int(value) for value in values], np.int64)
    if pixels.max() > 255:
        raise RowFault(f"a pixel value is {int(pixels.max())}, above 255")
    return CLASSES[int(emotion)], SPLITS[usage], usage, pixels.astype(np.uint8).reshape(SIDE, SIDE)


def unpack(csv_path: str, output_dir: str, overwrite: bool = False, limit: Optional[int] = None,
           progress: bool = True) -> dict:
    """Writes the faces of `csv_path` under `output_dir`; returns the summary also written to
    `<output_dir>/unpack_fer2013.json` (faces per split and class, rows skipped)."""
    if not os.path.isfile(csv_path):
        raise DataError(f"{csv_path}: no such file (Kaggle's fer2013.csv)")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise DataError(f"{output_dir}: exists and is not a folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise DataError(f"{output_dir}: not empty; give an empty folder or --overwrite")
    origin = os.path.basename(csv_path)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise DataError(f"{csv_path}: no column {', '.join(missing)} (header: {', '.join(header) or 'none'}); "
                            f"fer2013.csv has {', '.join(COLUMNS)}")
        reader.fieldnames = header
        parent = os.path.dirname(os.path.abspath(output_dir))
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".unpack-fer2013-", dir=parent)
        try:
            counts: Dict[str, Dict[str, int]] = {split: {name: 0 for name in CLASSES} for split in SPLITS.values()}
            faults: List[Fault] = []
            rows = tqdm(reader, desc="fer2013.csv", unit="face", disable=not progress, file=sys.stderr)
            for number, cells in enumerate(rows, start=1):
                if limit is not None and number > limit:
                    break
                try:
                    name, split, usage, face = parse_row(cells)
                except RowFault as fault:
                    faults.append(Fault(number, "", str(fault), origin))
                    continue
                folder = os.path.join(staging, split, name)
                os.makedirs(folder, exist_ok=True)
                Image.fromarray(face, mode="L").save(os.path.join(folder, f"{usage}_{number}.png"))
                counts[split][name] += 1
            written = sum(sum(per_class.values()) for per_class in counts.values())
            if not written:
                raise DataError(f"{csv_path}: no row is a face ({len(faults)} skipped; first: {faults[0]})"
                                if faults else f"{csv_path}: no rows")
            summary = {"csv": os.path.abspath(csv_path), "faces": written, "skipped": len(faults),
                       "per_split_and_class": counts, "class_ids": dict(enumerate(CLASSES)), "splits": SPLITS}
            write_fault_report(faults, os.path.join(staging, "skipped.csv"))
            with open(os.path.join(staging, "unpack_fer2013.json"), "w", encoding="utf-8") as out:
                json.dump(summary, out, indent=2)
            if os.path.isdir(output_dir):
                shutil.rmtree(output_dir)
            os.replace(staging, output_dir)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
    return summary
