"""Naturalness ratings for a folder of face photos: what `scripts/make_naturalness.py` does.

Every photo is read upright (EXIF orientation; grey, palette, CMYK and 16-bit files converted to 8-bit
RGB, transparency composited over black as the data layer does), centre-cropped to a square and resized
to --image_size with the data layer's own resize (`legan_tf.data.preprocess`), which is what
`scripts/score_faces.py` and the `ratings` reader do to an image: the crop is the photo as given, its
background kept (docs/quality.md, "Naturalness data from your own photos").

Per photo the output holds the clean crop, rated as the face lab rates its clean renders, and
`variants_per_source` copies degraded by the face lab's artifacts (legan_tf.data.synthetic.naturalness):
the kinds cycle through `kinds` in a seeded order, the severities are spread over [0, 1] (one in each of
`variants_per_source` equal bins), and the lab's three simulated raters score each one from its kind and
severity. With a GAN run (`generator_run`), the run's generator also translates the photo to a random
target label; that output is kind `generator`, rated as the lab's strongest artifact at
`generator_severity` (an early checkpoint's output is a strong artifact).

  OUT/images/<photo id>/v00_clean.png, v01_<kind>_s<severity>.png, ..., vNN_generator.png
  OUT/ratings.csv          image,mean,std,source,generator,kind,severity,target,photo (--data_format=ratings)
  OUT/skipped.csv          row,path,fault: every photo left out and why (row empty)
  OUT/make_naturalness.json  settings, counts per kind, the rating model, the skipped photos
  OUT/contact_sheet.png    a few photos x kinds

`source` is the photo's id (or its folder's, with source_by="folder"), so a held-out split by group
never separates one photo's variants; `generator` repeats the kind, as the face lab's ratings do, so
evaluate_quality.py breaks its metrics down by kind.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import glob
import json
import os
import re
import sys
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from legan_tf.data.errors import DataError, Fault, write_fault_report
from legan_tf.data.synthetic.naturalness import (ARTIFACT_KINDS, KIND_WEIGHTS, MAX_SCORE, RATER_BIASES,
                                                 RATER_NOISE, SEVERITY_PENALTY, apply_artifact, simulate_ratings,
                                                 summarise_ratings)
from legan_tf.data.synthetic.writer import PNG_COMPRESSION, to_uint8
from legan_tf.errors import ConfigError
from legan_tf.data.input_files import files_under, is_inside
from legan_tf.output_dirs import prepare_output_dir, remove_outputs

KINDS = tuple(kind for kind in ARTIFACT_KINDS if kind != "clean")
GENERATOR_KIND = "generator"
# The generator's output is rated as the lab's strongest artifact kind (the largest weight) would be.
GENERATOR_RATED_AS = max(KINDS, key=lambda kind: KIND_WEIGHTS[kind])
DEFAULT_GENERATOR_SEVERITY = 0.8
SOURCE_BY = ("photo", "folder")
ON_ERROR = ("skip", "fail")
# Extensions searched for in a folder; Pillow reads them all. Other files are ignored (and counted).
PHOTO_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

IMAGES_DIR = "images"
RATINGS_FILE = "ratings.csv"
SKIPPED_FILE = "skipped.csv"
SUMMARY_FILE = "make_naturalness.json"
SHEET_FILE = "contact_sheet.png"
OUTPUTS = (IMAGES_DIR, RATINGS_FILE, SKIPPED_FILE, SUMMARY_FILE, SHEET_FILE)
RATINGS_COLUMNS = ["image", "mean", "std", "source", "generator", "kind", "severity", "target", "photo"]
# Photos read, degraded and translated together (a generator runs on a batch of them).
BATCH_PHOTOS = 32
BACKGROUND = ("the photo as given: centre-cropped to a square and resized, background kept (not masked), "
              "as scripts/score_faces.py and the ratings reader crop an image")


@dataclasses.dataclass(frozen=True)
class PhotoFile:
    path: str       # on disk
    name: str       # what reports call it: relative to its input folder (or the pattern's fixed folder)
    photo_id: str   # its folder under images/, and its source (by default)
    folder: str     # its folder relative to the same base (the base's name for a photo directly in it): its
                    # source under source_by="folder"


# --- finding the photos ---------------------------------------------------------------------------

def _fixed_prefix(pattern: str) -> str:
    """The folder a glob pattern starts in: its leading components without wildcards."""
    parts = []
    for part in pattern.split(os.sep):
        if glob.has_magic(part):
            break
        parts.append(part)
    if parts == [""]:
        return os.sep
    return os.sep.join(parts) or "."


def _clean_id(text: str) -> str:
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", part).lstrip(".") or "_" for part in text.replace(os.sep, "/").split("/")]
    return "/".join(part for part in parts if part not in ("", ".")) or "_"


def find_photos(inputs: Sequence[str], exclude: Sequence[str] = ()) -> Tuple[List[PhotoFile], int, str]:
    """The photos named by --input: (photos, files ignored as not photos, origin for messages).

    Each input is a folder (searched recursively; hidden files and folders left out), a file, or a glob
    pattern (`**` matches folders at any depth). A photo's id is its path relative to its folder without
    the extension, made safe for a folder name; two photos with one id (a.jpg and a.png) keep their
    extensions in it. Files under `exclude` (this run's outputs) are left out; so is a file named twice.
    """
    inputs = [item for item in (item.strip() for item in inputs) if item]
    if not inputs:
        raise ConfigError("--input is required: a folder of face photos, photo files, or a glob pattern.")
    candidates: List[Tuple[str, str]] = []    # (path, base folder)
    for item in inputs:
        if os.path.isdir(item):
            candidates.extend((path, item) for path in files_under(item, exclude))
        elif os.path.isfile(item):
            candidates.append((item, os.path.dirname(item) or "."))
        elif glob.has_magic(item):
            base = _fixed_prefix(item)
            for match in sorted(glob.glob(item, recursive=True)):
                if os.path.isdir(match):
                    candidates.extend((path, base) for path in files_under(match, exclude))
                elif not os.path.basename(match).startswith(".") and not any(is_inside(match, x) for x in exclude):
                    candidates.append((match, base))
        else:
            raise ConfigError(f"--input={item}: no such folder or file, and not a glob pattern")
    origin = (f"folder {os.path.basename(os.path.normpath(inputs[0]))}" if len(inputs) == 1 and os.path.isdir(inputs[0])
              else "--input")

    photos, seen, used_ids, ignored = [], set(), set(), 0
    for path, base in candidates:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        if not path.lower().endswith(PHOTO_EXTENSIONS):
            ignored += 1
            continue
        name = os.path.relpath(path, base)
        stem, extension = os.path.splitext(name)
        photo_id = _clean_id(stem)
        if photo_id in used_ids:
            photo_id = _clean_id(f"{stem}_{extension.lstrip('.').lower()}")
        number = 2
        unique = photo_id
        while unique in used_ids:
            unique, number = f"{photo_id}_{number}", number + 1
        used_ids.add(unique)
        # A photo directly in its input folder has that folder's name as its folder.
        folder = os.path.dirname(name) or os.path.basename(os.path.abspath(base))
        photos.append(PhotoFile(path, name, unique, _clean_id(folder)))
    if not photos:
        searched = ", ".join(inputs)
        raise DataError(f"{searched}: no photos found ({', '.join(PHOTO_EXTENSIONS)}, searched recursively"
                        + (f"; {ignored} other file(s) ignored" if ignored else "") + ")")
    return photos, ignored, origin


# --- one photo ------------------------------------------------------------------------------------

def read_photo(path: str) -> np.ndarray:
    """A photo as upright (H, W, 3) uint8 RGB; transparency composited over black, as the data layer's
    decoder does. A file that cannot be read is a ConfigError whose message does not repeat the path."""
    from legan_tf.photos import faces

    try:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise faces.PhotoError(f"{path}: empty file (0 bytes)")
        photo = faces.load_photo(path)
    except faces.PhotoError as error:
        message = str(error)
        raise ConfigError(message[len(path) + 2:] if message.startswith(f"{path}: ") else message) from None
    if photo.alpha is None:
        return photo.rgb
    alpha = photo.alpha.astype(np.float32)[..., None] / 255.0
    return np.round(photo.rgb.astype(np.float32) * alpha).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def _cropper(size: int):
    """The ratings reader's preprocessing (centre square crop, antialiased bilinear resize) as a function
    of uint8 (H, W, 3) -> float32 (size, size, 3) in [0, 1]."""
    import tensorflow as tf

    from legan_tf.data import preprocess

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    def crop(rgb):
        return (preprocess.resize_rgb(preprocess.center_crop_square(rgb), size) + 1.0) / 2.0

    return crop


def crop_photo(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) float32 in [0, 1]: the centred square, resized as the data layer does."""
    return _cropper(size)(np.ascontiguousarray(rgb, np.uint8)).numpy()


def plan_variants(kinds: Sequence[str], count: int, rng: np.random.Generator) -> Tuple[List[str], np.ndarray]:
    """`count` (kind, severity) pairs: kinds cycling through `kinds` in a seeded order, severities one in each
    of `count` equal bins of [0, 1] in a seeded order, so each photo gets mild to severe variants."""
    kinds = list(kinds)
    cycled = [kinds[index % len(kinds)] for index in range(count)]
    chosen = [cycled[index] for index in rng.permutation(count)] if count else []
    severity = ((rng.permutation(count) + rng.uniform(0.0, 1.0, count)) / max(count, 1)).astype(np.float32)
    return chosen, np.clip(severity, 0.0, 1.0)


def _rate(kinds: Sequence[str], severity: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """The simulated raters' (mean, std) per image; the generator kind is rated as GENERATOR_RATED_AS."""
    rated_as = np.array([GENERATOR_RATED_AS if kind == GENERATOR_KIND else kind for kind in kinds])
    return summarise_ratings(simulate_ratings(rated_as, np.asarray(severity, np.float64), rng))


@dataclasses.dataclass
class Variant:
    kind: str
    severity: float
    rgb: np.ndarray        # (S, S, 3) uint8
    mean: float = 0.0
    std: float = 0.0
    target: str = ""       # the generator's target labels, "expression=smile;lighting=03"
    file: str = ""         # relative to the output folder


def degrade(crop: np.ndarray, kinds: Sequence[str], variants: int, rng: np.random.Generator) -> List[Variant]:
    """The clean crop and `variants` degraded copies (unrated), in file order."""
    planned, severity = plan_variants(kinds, variants, rng)
    out = [Variant("clean", 0.0, to_uint8(crop))]
    out += [Variant(kind, float(value), None) for kind, value in zip(planned, severity)]
    for kind in dict.fromkeys(planned):
        chosen = [index for index, name in enumerate(planned) if name == kind]
        degraded = apply_artifact(np.repeat(crop[None], len(chosen), axis=0), kind, severity[chosen], rng)
        for index, image in zip(chosen, degraded):
            out[1 + index].rgb = to_uint8(image)
    return out


def _file_name(index: int, variant: Variant) -> str:
    if variant.kind in ("clean", GENERATOR_KIND):
        return f"v{index:02d}_{variant.kind}.png"
    return f"v{index:02d}_{variant.kind}_s{variant.severity:.2f}.png"


# --- the generator --------------------------------------------------------------------------------

class Translator:
    """A GAN run's generator with its label names: photos in, translations to random targets out."""

    def __init__(self, run_dir: str):
        from legan_tf.runs import LABELS_FILE, RunDir, model_file

        if not os.path.isdir(run_dir):
            raise ConfigError(f"--generator_run={run_dir}: no such folder (give a GAN run directory holding "
                              f"{model_file('generator')} and {LABELS_FILE})")
        if not RunDir(run_dir).has_model("generator"):
            raise ConfigError(f"--generator_run={run_dir}: it has no {model_file('generator')} (is the GAN run "
                              "finished? a StarGAN or LEGAN run writes it at the end)")
        from legan_tf.photos.edit_photo import KerasEditor

        self.editor = KerasEditor(run_dir)
        self.run_dir = run_dir
        self.image_size = self.editor.image_size
        self.label_names = self.editor.label_names

    def crop(self, photo: np.ndarray) -> np.ndarray:
        """The photo as the generator takes it: the centred square at its own size, uint8."""
        return to_uint8(crop_photo(photo, self.image_size))

    def translate(self, crops: np.ndarray, size: int, rng_of: Sequence[np.random.Generator]):
        """Per crop (from `crop`): (size, size, 3) uint8 translation and its target text; the generator's
        output is resized to `size` when that differs from its own."""
        targets = [{attribute: names[int(rng.integers(len(names)))] for attribute, names in self.label_names.items()}
                   for rng in rng_of]
        edited = np.clip(np.round(self.editor.edit(crops, targets)), 0, 255).astype(np.uint8)
        if self.image_size != size:
            edited = np.stack([to_uint8(crop_photo(image, size)) for image in edited])
        return edited, [";".join(f"{attribute}={name}" for attribute, name in target.items()) for target in targets]

    def record(self) -> dict:
        return {"run_dir": os.path.abspath(self.run_dir), "generator": self.editor.source,
                "image_size": int(self.image_size),
                "label_names": {name: list(values) for name, values in self.label_names.items()}}


# --- the folder -----------------------------------------------------------------------------------

def _check_settings(image_size, variants_per_source, kinds, generator_run, generator_severity, source_by, on_error,
                    max_images, sheet_count):
    if not isinstance(image_size, int) or image_size < 16:
        raise ConfigError(f"--image_size must be an integer >= 16, got {image_size!r}")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"--kinds: {'unknown ' + ', '.join(unknown) if unknown else 'none given'}; choose from "
                          f"{', '.join(KINDS)} (the clean photo is always kept; --generator_run adds "
                          f"{GENERATOR_KIND})")
    if variants_per_source < 0 or (variants_per_source == 0 and not generator_run):
        raise ConfigError(f"--variants_per_source={variants_per_source}: give at least 1 (0 only with "
                          "--generator_run, whose translations are then the only degraded variants)")
    if not 0.0 <= generator_severity <= 1.0:
        raise ConfigError(f"--generator_severity={generator_severity} must be in [0, 1]")
    if source_by not in SOURCE_BY:
        raise ConfigError(f"--source_by={source_by!r}: expected one of {', '.join(SOURCE_BY)}")
    if on_error not in ON_ERROR:
        raise ConfigError(f"--on_error={on_error!r}: expected one of {', '.join(ON_ERROR)}")
    if max_images < 0 or sheet_count < 0:
        raise ConfigError("--max_images and --sheet_count must be >= 0")


def _photo_rng(seed: int, photo: PhotoFile) -> np.random.Generator:
    """A photo's own stream: its variants do not change when other photos are added or removed."""
    return np.random.default_rng([seed, zlib.crc32(photo.photo_id.encode("utf-8"))])


def make_naturalness(inputs: Sequence[str], output_dir: str, image_size: int = 64, variants_per_source: int = 9,
                     kinds: Sequence[str] = KINDS, seed: int = 0, generator_run: Optional[str] = None,
                     generator_severity: float = DEFAULT_GENERATOR_SEVERITY, max_images: int = 0,
                     on_error: str = "skip", source_by: str = "photo", overwrite: bool = False, sheet_count: int = 4,
                     progress: bool = True, flag_values: Optional[dict] = None) -> dict:
    """Writes the ratings layout for the photos of `inputs` into output_dir (module docstring).

    Returns the summary written to make_naturalness.json. Raises ConfigError for bad settings and DataError
    when no photo could be used, or (on_error="fail") at the first photo that cannot be, after removing
    what this run wrote.
    """
    kinds = list(dict.fromkeys(kinds))
    _check_settings(image_size, variants_per_source, kinds, generator_run, generator_severity, source_by, on_error,
                    max_images, sheet_count)
    if isinstance(inputs, str):
        inputs = [inputs]
    if not output_dir:
        raise ConfigError("--output_dir is required.")
    outputs = [os.path.join(output_dir, name) for name in OUTPUTS]
    if any(os.path.exists(item) and is_inside(item, path) for item in inputs for path in outputs):
        raise ConfigError(f"--input lies inside this tool's outputs in --output_dir={output_dir} (which a rerun "
                          "replaces); write the ratings elsewhere")
    # This run's outputs may lie inside an input folder (an earlier run's too); they are not photos.
    photos, ignored, origin = find_photos(inputs, exclude=outputs)
    found = len(photos)
    if max_images:
        photos = photos[:max_images]
    translator = Translator(generator_run) if generator_run else None
    prepare_output_dir(output_dir, OUTPUTS, overwrite, "the naturalness data")

    faults: List[Fault] = []
    rows: List[list] = []
    counts: Dict[str, int] = {kind: 0 for kind in ["clean", *kinds] + ([GENERATOR_KIND] if translator else [])}
    sheet_rows: List[Tuple[str, List[Variant]]] = []
    bar = tqdm(total=len(photos), desc="naturalness", unit="photo", disable=not progress, file=sys.stderr)
    try:
        for start in range(0, len(photos), BATCH_PHOTOS):
            loaded = []
            for photo in photos[start:start + BATCH_PHOTOS]:
                try:
                    rgb = read_photo(photo.path)
                except ConfigError as error:
                    fault = Fault(None, photo.name, str(error), origin)
                    if on_error == "fail":
                        raise DataError(f"{fault} (--on_error=skip leaves such photos out)") from None
                    faults.append(fault)
                    tqdm.write(f"skipped {fault}", file=sys.stderr)  # above the bar, not through it
                    bar.update(1)
                    continue
                # Only the crops are kept: a batch of full-size photos could fill the memory.
                loaded.append((photo, crop_photo(rgb, image_size), translator.crop(rgb) if translator else None))
            if not loaded:
                continue
            rngs = [_photo_rng(seed, photo) for photo, _, _ in loaded]
            per_photo = [degrade(crop, kinds, variants_per_source, rng) for (_, crop, _), rng in zip(loaded, rngs)]
            if translator is not None:
                translated, targets = translator.translate(np.stack([crop for _, _, crop in loaded]), image_size, rngs)
                for variants, image, target in zip(per_photo, translated, targets):
                    variants.append(Variant(GENERATOR_KIND, float(generator_severity), image, target=target))
            for (photo, _, _), variants, rng in zip(loaded, per_photo, rngs):
                mean, std = _rate([v.kind for v in variants], np.array([v.severity for v in variants]), rng)
                folder = os.path.join(output_dir, IMAGES_DIR, *photo.photo_id.split("/"))
                os.makedirs(folder, exist_ok=True)
                source = photo.photo_id if source_by == "photo" else photo.folder
                for index, variant in enumerate(variants):
                    variant.mean, variant.std = float(mean[index]), float(std[index])
                    name = _file_name(index, variant)
                    variant.file = f"{IMAGES_DIR}/{photo.photo_id}/{name}"
                    Image.fromarray(variant.rgb).save(os.path.join(folder, name), compress_level=PNG_COMPRESSION)
                    rows.append([variant.file, f"{variant.mean:.4f}", f"{variant.std:.4f}", source, variant.kind,
                                 variant.kind, f"{variant.severity:.4f}", variant.target, photo.name])
                    counts[variant.kind] += 1
                if len(sheet_rows) < sheet_count:
                    sheet_rows.append((photo.name, variants))
                bar.update(1)
    except BaseException:
        bar.close()
        if on_error == "fail" or not rows:
            remove_outputs(output_dir, OUTPUTS)  # a run that stopped leaves no half-written dataset behind
        raise
    bar.close()

    skipped_path = os.path.join(output_dir, SKIPPED_FILE)
    write_fault_report(faults, skipped_path)   # header only when nothing was skipped
    if not rows:
        raise DataError(f"{origin}: no photo could be used ({len(faults)} skipped, see {skipped_path})")
    ratings_path = os.path.join(output_dir, RATINGS_FILE)
    with open(ratings_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RATINGS_COLUMNS)
        writer.writerows(rows)
    sheet_path = None
    if sheet_rows:
        from legan_tf import visualize

        sheet_path = os.path.join(output_dir, SHEET_FILE)
        visualize.save_png(contact_sheet(sheet_rows, ["clean", *kinds] + ([GENERATOR_KIND] if translator else [])),
                           sheet_path)

    outcome = {
        "inputs": list(inputs),
        "output_dir": output_dir,
        "photos_found": found,
        "photos_read": len(photos) - len(faults),
        "photos_skipped": len(faults),
        "other_files_ignored": ignored,
        "variants_written": len(rows),
        "counts": counts,
        "ratings": ratings_path,
        "skipped_report": skipped_path,
        "contact_sheet": sheet_path,
        "settings": {
            "image_size": image_size, "variants_per_source": variants_per_source, "kinds": kinds, "seed": seed,
            "generator_run": generator_run, "generator_severity": generator_severity if translator else None,
            "max_images": max_images, "on_error": on_error, "source_by": source_by,
            "background": BACKGROUND,
        },
        "rating_model": {
            "simulated": "the face lab's three simulated raters (legan_tf.data.synthetic.naturalness), not people",
            "base_score": f"{MAX_SCORE:g} - {SEVERITY_PENALTY:g} * weight(kind) * severity",
            "kind_weights": {kind: KIND_WEIGHTS[kind] for kind in ("clean", *kinds)},
            "generator_rated_as": GENERATOR_RATED_AS if translator else None,
            "rater_biases": list(RATER_BIASES), "rater_noise": RATER_NOISE,
            "severities": "per photo one in each of variants_per_source equal bins of [0, 1]",
        },
        "generator": translator.record() if translator else None,
        "flags": dict(flag_values or {}),
        "skipped_files": [{"path": fault.path, "fault": fault.message} for fault in faults],
    }
    with open(os.path.join(output_dir, SUMMARY_FILE), "w", encoding="utf-8") as handle:
        json.dump(outcome, handle, indent=2)
    return outcome


def contact_sheet(sheet_rows: Sequence[Tuple[str, List[Variant]]], columns: Sequence[str]) -> np.ndarray:
    """Rows: photos; columns: the clean crop, then per kind the photo's most severe variant of it (blank
    where the photo has none), each captioned with its severity and mean rating."""
    from legan_tf import visualize

    pictures, captions = [], []
    size = sheet_rows[0][1][0].rgb.shape[0]
    for photo_name, variants in sheet_rows:
        for column, kind in enumerate(columns):
            of_kind = [v for v in variants if v.kind == kind]
            if not of_kind:
                pictures.append(np.full((size, size, 3), 255, np.uint8))
                captions.append(f"{kind}\n(none)")
                continue
            variant = max(of_kind, key=lambda v: v.severity)
            pictures.append(variant.rgb)
            severity = "" if kind in ("clean", GENERATOR_KIND) else f" s{variant.severity:.2f}"
            caption = f"{kind}{severity}\nm {variant.mean:.1f}"
            captions.append(f"{_short(photo_name)}\n{caption}" if column == 0 else caption)
    return visualize.labelled_grid(np.stack(pictures), captions, columns=len(columns))


def _short(name: str, width: int = 16) -> str:
    name = os.path.basename(name)
    return name if len(name) <= width else "..." + name[-(width - 3):]


def summary_line(outcome: dict) -> str:
    counts = ", ".join(f"{kind} {count}" for kind, count in outcome["counts"].items())
    lines = [f"read {outcome['photos_read']} photos, skipped {outcome['photos_skipped']}"
             + (f" (see {outcome['skipped_report']})" if outcome["photos_skipped"] else "")
             + (f", ignored {outcome['other_files_ignored']} files that are not photos"
                if outcome["other_files_ignored"] else "")
             + (f", left {outcome['photos_found'] - outcome['settings']['max_images']} out by --max_images"
                if outcome["settings"]["max_images"] and outcome["photos_found"] > outcome["settings"]["max_images"]
                else "")
             + f"; wrote {outcome['variants_written']} rated images ({counts})"]
    reasons: Dict[str, int] = {}
    for skipped in outcome["skipped_files"]:
        reason = skipped["fault"].split(" (")[0]
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        lines.append("skipped: " + "; ".join(f"{count} {reason}" for reason, count in reasons.items()))
    lines.append(f"ratings: {outcome['ratings']}")
    lines.append(f"read it with --data_format=ratings --data_path={outcome['ratings']} "
                 f"--image_size={outcome['settings']['image_size']}")
    if outcome["contact_sheet"]:
        lines.append(f"contact sheet: {outcome['contact_sheet']}")
    return "\n".join(lines)
