"""Scoring face images with Q, the perceptual quality model: what `scripts/score_faces.py` does.

Every image is validated with PIL and preprocessed by the data layer's own functions (decode,
centre crop, antialiased resize, [-1, 1]), so a file scores exactly as it would inside a ratings
dataset. A file that fails is reported with its fault and skipped; the rest are still scored.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import shutil
import sys
from typing import List, Optional

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from legan_tf import visualize
from legan_tf.data import images, manifests, preprocess
from legan_tf.data.errors import DataError, Fault, write_fault_report
from legan_tf.errors import ConfigError
from legan_tf.data.input_files import is_inside
from legan_tf.models.quality import QualityModel

MODEL_FILE = "quality_model.keras"
SCORES_FILE = "quality_scores.csv"
SKIPPED_SUFFIX = ".skipped.csv"
SHEET_SUFFIX = "_sheet.png"


# --- the model ------------------------------------------------------------------------------------

def quality_model_path(model_path: Optional[str] = None, run_dir: Optional[str] = None) -> str:
    """The .keras file to load: `model_path` when given, else the run directory's exported Q."""
    if model_path:
        if not os.path.isfile(model_path):
            raise ConfigError(f"--model={model_path}: no such file.")
        return model_path
    if not run_dir:
        raise ConfigError("give --model=<quality_model.keras> or --run_dir=<a quality run directory>.")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"--run_dir={run_dir}: no such run directory.")
    path = os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"--run_dir={run_dir}: it has no {MODEL_FILE} (is the run finished, and "
                          "was it a --task=quality run?); or pass --model=<file.keras>.")
    return path


def load_quality_model(path: str) -> QualityModel:
    """Loads a saved Q; anything else (another model, a broken file) is a ConfigError."""
    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"{path}: cannot load the model ({error}).") from None
    if not isinstance(model, QualityModel):
        raise ConfigError(f"{path}: a {type(model).__name__}, not a QualityModel (Q).")
    return model


# --- images ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ImageEntry:
    path: str            # where the file is (as given, joined to the input folder or manifest folder)
    name: str            # what reports call it: relative to the input folder or manifest
    row: Optional[int]   # manifest data row (1-based); None for a folder


def find_images(input_path: str, exclude: tuple = ()) -> tuple[List[ImageEntry], List[Fault], str]:
    """The images named by --input: (entries, manifest-row faults, origin for messages).

    A folder is searched recursively for .png/.jpg/.jpeg (any case); hidden files and anything under
    `exclude` (this run's own outputs) are left out. A CSV is a manifest with an `image` column,
    paths relative to the CSV's folder.
    """
    if os.path.isdir(input_path):
        entries = []
        for folder, subfolders, files in os.walk(input_path):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")
                                   and not any(is_inside(os.path.join(folder, d), x) for x in exclude))
            for name in sorted(files):
                path = os.path.join(folder, name)
                if name.startswith(".") or not name.lower().endswith(manifests.IMAGE_EXTENSIONS):
                    continue
                if any(os.path.abspath(path) == os.path.abspath(x) for x in exclude):
                    continue
                entries.append(ImageEntry(path, os.path.relpath(path, input_path), None))
        if not entries:
            raise DataError(f"{input_path}: no .png/.jpg/.jpeg images found (searched recursively)")
        return entries, [], f"folder {os.path.basename(os.path.normpath(input_path))}"
    if os.path.isfile(input_path):
        _, rows = manifests.read_manifest(input_path, required=["image"])
        base = os.path.dirname(os.path.abspath(input_path))
        origin = os.path.basename(input_path)
        entries, faults = [], []
        for row, record in enumerate(rows, start=1):
            image = (record.get("image") or "").strip()
            if not image:
                faults.append(Fault(row, "", "empty 'image' value", origin))
                continue
            entries.append(ImageEntry(manifests.resolve(image, base), image, row))
        return entries, faults, origin
    raise DataError(f"--input={input_path}: no such folder or file")


@functools.lru_cache(maxsize=None)
def _preparer(image_size: int):
    """The ratings reader's decode + prepare, so a file scores as it would during training."""
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def prepare_encoded(encoded):
        return preprocess.prepare({"image": images.decode_rgb(encoded)}, image_size, apply_mask=False)["image"]

    return prepare_encoded


def load_for_model(path: str, image_size: int) -> np.ndarray:
    """One validated, preprocessed image (image_size, image_size, 3) in [-1, 1]; ImageFault if bad.

    Grayscale, RGBA and palette images are converted (alpha composited over black), as the data
    layer's --convert_color does.
    """
    images.inspect_rgb(path, convert_color=True)
    with open(path, "rb") as handle:
        encoded = handle.read()
    try:
        return _preparer(image_size)(tf.constant(encoded)).numpy()
    except tf.errors.OpError as error:  # PIL accepted it but TensorFlow's decoder did not
        raise images.ImageFault(f"undecodable image ({error.message.splitlines()[0]})") from None


# --- scoring --------------------------------------------------------------------------------------

@dataclasses.dataclass
class ScoringResult:
    scored: List[ImageEntry]
    scores: np.ndarray
    faults: List[Fault]


def score_images(model: QualityModel, entries: List[ImageEntry], origin: str, batch_size: int = 64,
                 progress: bool = True) -> ScoringResult:
    """Scores every entry that loads; a bad file becomes a Fault, named on stderr as it is met."""
    scored, scores, faults = [], [], []
    pending, pending_entries = [], []

    def flush():
        if pending:
            scores.append(model(np.stack(pending), training=False).numpy().reshape(-1))
            scored.extend(pending_entries)
            pending.clear()
            pending_entries.clear()

    for entry in tqdm(entries, desc="scoring", unit="img", disable=not progress, file=sys.stderr):
        try:
            pending.append(load_for_model(entry.path, model.image_size))
            pending_entries.append(entry)
        except images.ImageFault as fault:
            faults.append(Fault(entry.row, entry.name, str(fault), origin))
            tqdm.write(f"skipped {faults[-1]}", file=sys.stderr)  # above the bar, not through it
        if len(pending) == batch_size:
            flush()
    flush()
    return ScoringResult(scored, np.concatenate(scores) if scores else np.zeros(0, np.float32), faults)


# --- outputs --------------------------------------------------------------------------------------

def default_output_csv(input_path: str) -> str:
    folder = input_path if os.path.isdir(input_path) else os.path.dirname(os.path.abspath(input_path))
    return os.path.join(folder, SCORES_FILE)


def sibling_path(csv_path: str, suffix: str) -> str:
    """`scores.csv` -> `scores<suffix>`: the files that belong to one scores CSV sit beside it."""
    stem = csv_path[:-4] if csv_path.lower().endswith(".csv") else csv_path
    return stem + suffix


def write_scores_csv(path: str, entries: List[ImageEntry], scores: np.ndarray,
                     passed: Optional[np.ndarray]) -> None:
    """Columns image, score, passed (true/false; empty without a threshold), best score first."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "score", "passed"])
        for index in np.argsort(-scores, kind="stable"):
            verdict = "" if passed is None else str(bool(passed[index])).lower()
            writer.writerow([entries[index].name, f"{scores[index]:.4f}", verdict])


def copy_passing(entries: List[ImageEntry], destination: str) -> None:
    """Copies the files under `destination`, keeping their paths relative to the input.

    A manifest path that leaves the manifest's folder (absolute, or ../) is copied by its file name.
    """
    for entry in entries:
        relative = os.path.normpath(entry.name)
        if os.path.isabs(relative) or relative.startswith(os.pardir):
            relative = os.path.basename(relative)
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        shutil.copy2(entry.path, target)


def write_path_list(path: str, entries: List[ImageEntry]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{entry.path}\n" for entry in entries)


def contact_sheet(entries: List[ImageEntry], scores: np.ndarray, image_size: int, count: int,
                  threshold: Optional[float] = None) -> np.ndarray:
    """The `count` best then the `count` worst images as Q sees them, captioned with their scores.

    With fewer than 2 * count images every image is shown once, best first. Captions are green
    for passing and red for failing images when a threshold is given.
    """
    order = np.argsort(-scores, kind="stable")
    chosen = order if len(order) <= 2 * count else np.concatenate([order[:count], order[-count:]])
    pictures = visualize.to_uint8(np.stack([load_for_model(entries[i].path, image_size) for i in chosen]))
    captions = [f"{scores[i]:.2f}\n{_short(entries[i].name)}" for i in chosen]
    colours = None if threshold is None else ["green" if scores[i] >= threshold else "red" for i in chosen]
    return visualize.labelled_grid(pictures, captions, colours, columns=max(1, min(count, len(chosen))))


def _short(name: str, width: int = 18) -> str:
    name = os.path.basename(name)
    return name if len(name) <= width else "..." + name[-(width - 3):]


def score_faces(input_path: str, model_path: Optional[str] = None, run_dir: Optional[str] = None,
                output_csv: Optional[str] = None, min_quality: Optional[float] = None,
                copy_to: Optional[str] = None, list_passing: Optional[str] = None,
                contact_sheet_path: Optional[str] = None, sheet_count: int = 8, batch_size: int = 64,
                progress: bool = True) -> dict:
    """Scores the images of --input and writes the CSV, reports and optional copies.

    Returns counts and the paths written. Raises DataError when no image could be scored.
    """
    if (copy_to or list_passing) and min_quality is None:
        raise ConfigError("--copy_to and --list_passing need --min_quality.")
    if sheet_count < 1 or batch_size < 1:
        raise ConfigError("--sheet_count and --batch_size must be positive.")
    model = load_quality_model(quality_model_path(model_path, run_dir))
    output_csv = output_csv or default_output_csv(input_path)
    sheet_path = contact_sheet_path or sibling_path(output_csv, SHEET_SUFFIX)
    skipped_path = sibling_path(output_csv, SKIPPED_SUFFIX)
    # This run's outputs may lie inside the input folder; they are not faces to score.
    exclude = tuple(path for path in (sheet_path, copy_to) if path)
    entries, faults, origin = find_images(input_path, exclude)
    for fault in faults:
        print(f"skipped {fault}", file=sys.stderr)

    result = score_images(model, entries, origin, batch_size, progress)
    faults = faults + result.faults
    if faults:
        write_fault_report(faults, skipped_path)
    elif os.path.exists(skipped_path):
        os.remove(skipped_path)  # a report left from an earlier run would describe other files
    if not result.scored:
        raise DataError(f"{origin}: no image could be scored ({len(faults)} skipped, see {skipped_path})")

    passed = None if min_quality is None else result.scores >= min_quality
    write_scores_csv(output_csv, result.scored, result.scores, passed)
    passing = [] if passed is None else [e for e, ok in zip(result.scored, passed) if ok]
    if copy_to:
        copy_passing(passing, copy_to)
    if list_passing:
        write_path_list(list_passing, passing)
    os.makedirs(os.path.dirname(os.path.abspath(sheet_path)), exist_ok=True)
    visualize.save_png(contact_sheet(result.scored, result.scores, model.image_size, sheet_count,
                                     min_quality), sheet_path)
    return {
        "scored": len(result.scored),
        "skipped": len(faults),
        "passed": None if passed is None else len(passing),
        "output_csv": output_csv,
        "skipped_report": skipped_path if faults else None,
        "contact_sheet": sheet_path,
    }


def summary_line(outcome: dict, min_quality: Optional[float]) -> str:
    line = f"scored {outcome['scored']}, skipped {outcome['skipped']}"
    if outcome["skipped_report"]:
        line += f" (see {outcome['skipped_report']})"
    if min_quality is not None:
        line += f"; {outcome['passed']} passed --min_quality={min_quality:g}"
    return line + f"\nscores: {outcome['output_csv']}\ncontact sheet: {outcome['contact_sheet']}"
