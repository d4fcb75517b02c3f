"""Parsing and validation of each on-disk layout (docs/data_formats.md) into aligned columns.

Every entry is checked before training starts: its labels or ratings, and every file it names,
decoded fully once with PIL. A fault either stops everything (on_error="fail", first fault in row
order) or leaves the entry out and is recorded (on_error="skip"). Structural problems (a missing
column, an empty manifest, a missing path) are always fatal.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import dataclasses
import math
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from legan_tf.data import images
from legan_tf.data.config import DataConfig
from legan_tf.data.errors import DataError, Fault

RATING_RANGE = (1.0, 10.0)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Below this many entries a progress bar is only noise.
PROGRESS_BAR_MIN_ENTRIES = 200
VALIDATION_THREADS = max(1, min(8, os.cpu_count() or 1))

REQUIRED_COLUMNS = {
    "ratings": ("image", "mean", "std"),
    "multipie": ("image", "subject", "session", "lighting", "expression"),
    "rgbd": ("image", "depth", "expression"),
}


class RowFault(Exception):
    """A fault in one entry; `path` is the offending file (or the entry's image for label faults)."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


@dataclasses.dataclass
class ParsedData:
    """Validated entries as aligned columns, plus what was left out and how to group them."""

    data_format: str
    origin: str
    columns: Dict[str, list]
    groups: List[str]
    # Split strata (the ratings' generator); None when the layout has none.
    strata: Optional[List[str]]
    # What a group is ("subject", "source" or "image"), for summaries.
    group_kind: str
    label_names: Dict[str, Tuple[str, ...]]
    faults: List[Fault]
    # Files left out on purpose (--exclude_pattern, or matching no side of --split_pattern).
    excluded: int = 0
    # Per entry, "train", "validation" or "test" when --split_pattern gives the dataset's own split;
    # else None.
    split_of: Optional[List[str]] = None
    # CelebA: rows of the attribute file whose image is not in the image folder (a sample's share).
    rows_without_image: int = 0


# --- small parsers (raise RowFault) ---------------------------------------------------------------

def parse_label(attribute: str, value: str, names: Sequence[str], path: str) -> int:
    """A label cell -> class id. An exact name wins; otherwise a non-negative integer is an id."""
    if value in names:
        return names.index(value)
    try:
        class_id = int(value)
    except ValueError:
        raise RowFault(path, f"unknown {attribute} {value!r} (known: {', '.join(names)})") from None
    if not 0 <= class_id < len(names):
        raise RowFault(
            path, f"{attribute} id {class_id} out of range 0..{len(names) - 1} "
            f"({len(names)} {attribute} names configured)")
    return class_id


def parse_number(column: str, value: str, path: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise RowFault(path, f"{column} {value!r} is not a number") from None
    if math.isnan(number):
        raise RowFault(path, f"{column} is NaN")
    return number


def _check_file(inspect: Callable[[str], images.ImageInfo], path: str, base: str) -> images.ImageInfo:
    try:
        return inspect(resolve(path, base))
    except images.ImageFault as fault:
        raise RowFault(path, str(fault)) from None


def _check_same_size(role: str, path: str, info, image_info) -> None:
    try:
        images.check_same_size(role, info, image_info)
    except images.ImageFault as fault:
        raise RowFault(path, str(fault)) from None


def _size(info: images.ImageInfo) -> str:
    return f"{info.width}x{info.height}"


def resolve(path: str, base: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


# --- manifests ------------------------------------------------------------------------------------

def read_manifest(manifest_path: str, required: Sequence[str]) -> Tuple[List[str], List[dict]]:
    """Reads a CSV manifest; a missing column or no data rows is fatal. Returns header and rows."""
    name = os.path.basename(manifest_path)
    if not os.path.isfile(manifest_path):
        raise DataError(f"{manifest_path}: manifest not found")
    # utf-8-sig: spreadsheet exports often start with a byte-order mark that would rename `image`.
    with open(manifest_path, "rb") as raw:
        data = raw.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(f"{name}: not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); save the "
                        "manifest as UTF-8 (a spreadsheet's 'CSV UTF-8' export)") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise DataError(f"{name}: a NUL byte on line {line}: not a text CSV file")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [column.strip() for column in (reader.fieldnames or [])]
    if not header:
        raise DataError(f"{name}: empty manifest (no header)")
    missing = [column for column in required if column not in header]
    if missing:
        raise DataError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(header: {','.join(header)})")
    reader.fieldnames = header
    rows = []
    for row in reader:
        # A quoted field never holds a line break in a face manifest: one that does is an unterminated
        # quote, which would swallow every following row into one field, silently.
        broken = [column for column, value in row.items()
                  if isinstance(value, str) and ("\n" in value or "\r" in value)]
        if broken:
            spanned = row[broken[0]].count("\n")
            raise DataError(f"{name}: line {reader.line_num - spanned}: the {broken[0]!r} field runs over "
                            f"{spanned + 1} lines (an unterminated quote?); fix the quoting")
        rows.append(row)
    if not rows:
        raise DataError(f"{name}: empty manifest (no data rows)")
    return header, rows


def write_manifest(path: str, columns: Sequence[str], rows) -> None:
    """Writes dict rows as a manifest CSV with `columns` as its header (keys outside them are dropped):
    the counterpart of read_manifest, for the tools that write manifests."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _cells(record: dict, header: Sequence[str], required: Sequence[str]) -> Dict[str, str]:
    """Stripped cells of one row; a short or long row or an empty required cell is a fault."""
    image = (record.get("image") or "").strip()
    if None in record:
        raise RowFault(image, f"row has more fields than the header's {len(header)}")
    if any(record[column] is None for column in header):
        raise RowFault(image, f"row has fewer fields than the header's {len(header)}")
    cells = {column: record[column].strip() for column in header}
    for column in required:
        if not cells[column]:
            raise RowFault(image, f"empty {column!r} value")
    return cells


def _ratings_row(cells, base, config):
    image = cells["image"]
    mean = parse_number("mean", cells["mean"], image)
    if not RATING_RANGE[0] <= mean <= RATING_RANGE[1]:
        raise RowFault(image, f"mean {cells['mean']} out of range [{RATING_RANGE[0]:g}, "
                       f"{RATING_RANGE[1]:g}]")
    std = parse_number("std", cells["std"], image)
    if std < 0:
        raise RowFault(image, f"std {cells['std']} is negative")
    if math.isinf(std):
        raise RowFault(image, "std is infinite")
    image_info = _check_file(lambda p: images.inspect_rgb(p, config.convert_color), image, base)
    entry = {"image": resolve(image, base), "mean": mean, "std": std,
             "image_size": _size(image_info), "group": cells.get("source") or image}
    if "generator" in cells:
        entry["stratum"] = cells["generator"]
    return entry


def _faces_row(cells, base, config, header, attributes):
    image = cells["image"]
    entry = {"image": resolve(image, base)}
    label_names = _face_label_names(config, attributes)
    for attribute in attributes:
        entry[attribute] = parse_label(attribute, cells[attribute], label_names[attribute], image)
    image_info = _check_file(lambda p: images.inspect_rgb(p, config.convert_color), image, base)
    entry["image_size"] = _size(image_info)
    if "mask" in header:
        mask = cells["mask"]
        if not mask:
            raise RowFault(image, "empty 'mask' value")
        _check_same_size("mask", mask, _check_file(images.inspect_mask, mask, base), image_info)
        entry["mask"] = resolve(mask, base)
    entry["group"] = cells.get("subject") or image
    return entry


def _rgbd_row(cells, base, config, header):
    image = cells["image"]
    entry = {
        "image": resolve(image, base),
        "expression": parse_label("expression", cells["expression"], config.expression_names, image),
    }
    image_info = _check_file(lambda p: images.inspect_rgb(p, config.convert_color), image, base)
    entry["image_size"] = _size(image_info)
    depth_info = _check_file(lambda p: images.inspect_depth(p, config.depth_bits), cells["depth"],
                             base)
    _check_same_size("depth map", cells["depth"], depth_info, image_info)
    entry["depth"] = resolve(cells["depth"], base)
    entry["depth_bits"] = depth_info.bit_depth
    if "normals" in header:
        normals = cells["normals"]
        if not normals:
            raise RowFault(image, "empty 'normals' value")
        _check_same_size("normal map", normals, _check_file(images.inspect_normals, normals, base),
                         image_info)
        entry["normals"] = resolve(normals, base)
    entry["group"] = cells.get("subject") or image
    return entry


def _face_label_names(config: DataConfig, attributes: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    names = {"expression": config.expression_names, "lighting": config.lighting_names}
    return {attribute: names[attribute] for attribute in attributes}


def _validate_all(items, validate_one, origin, on_error, describe_row) -> Tuple[List[dict], List[Fault]]:
    """Runs validate_one over items on a thread pool (PIL decoding releases the GIL), in order.

    Returns the good entries and the faults; under on_error="fail" raises on the first fault.
    """
    entries, faults = [], []
    executor = concurrent.futures.ThreadPoolExecutor(VALIDATION_THREADS)

    def guarded(item):
        try:
            return validate_one(item)
        except RowFault as fault:
            return fault

    try:
        results = executor.map(guarded, items)
        progress = tqdm(results, total=len(items), desc=f"validating {origin}", unit="entry",
                        # None: off when stderr is no terminal, so logs of background runs stay readable.
                        disable=True if len(items) <= PROGRESS_BAR_MIN_ENTRIES else None)
        for item, result in zip(items, progress):
            if isinstance(result, RowFault):
                fault = Fault(describe_row(item), result.path, result.message, origin)
                if on_error == "fail":
                    raise DataError(str(fault))
                faults.append(fault)
            else:
                entries.append(result)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return entries, faults


def _parse_manifest(config: DataConfig) -> ParsedData:
    fmt = config.data_format
    if fmt == "csv":
        attributes = tuple(config.label_columns)
        required = ("image",) + attributes
    elif fmt == "multipie":
        attributes = ("expression", "lighting")
        required = REQUIRED_COLUMNS[fmt]
    else:
        attributes = ("expression",) if fmt == "rgbd" else ()
        required = REQUIRED_COLUMNS[fmt]
    header, rows = read_manifest(config.data_path, required)
    base = os.path.dirname(os.path.abspath(config.data_path))
    origin = os.path.basename(config.data_path)

    def validate_row(numbered_row):
        _, record = numbered_row
        cells = _cells(record, header, required)
        if fmt == "ratings":
            return _ratings_row(cells, base, config)
        entry = _rgbd_row(cells, base, config, header) if fmt == "rgbd" else _faces_row(
            cells, base, config, header, attributes)
        if SPLIT_CELL in record:
            entry["split"] = record[SPLIT_CELL]
        if group_of is not None:
            image = str(record.get("image", ""))
            if group_of.get(image) is None:
                raise RowFault(image, f"no subject in its path (--group_pattern={config.group_pattern!r} does not "
                               "match)")
            entry["group"] = group_of[image]
        return entry

    numbered_rows = list(enumerate(rows, start=1))
    excluded, split_of = 0, None
    if config.split_pattern:
        # The dataset's own split by file name, read from the image column (as a folder's paths are).
        named = [(str(record.get("image", "")), numbered) for numbered, record in numbered_rows]
        kept, excluded, split_of = _select_by_name(named, config, origin)
        numbered_rows = [(numbered, {**rows[numbered - 1], SPLIT_CELL: split_of[image]}) for image, numbered in kept]
    group_of = None
    if config.group_pattern:
        # The subject by file name, read from the image column (as a folder's paths are); replaces a subject column.
        group_of = _groups_by_name([(str(record.get("image", "")), None) for _, record in numbered_rows], config,
                                   origin)
    entries, faults = _validate_all(
        numbered_rows, validate_row, origin, config.on_error, describe_row=lambda item: item[0])
    if fmt == "ratings":
        group_kind = "source" if "source" in header else "image"
    else:
        group_kind = "subject" if "subject" in header or group_of is not None else "image"
    stratified = fmt == "ratings" and "generator" in header
    strata = [entry.pop("stratum") for entry in entries] if stratified else None
    parsed = _assemble(config, origin, entries, faults, strata, group_kind, _face_label_names(config, attributes))
    if split_of is None:
        return parsed
    return dataclasses.replace(parsed, excluded=excluded, split_of=parsed.columns.pop("split"))


def _parse_folder(config: DataConfig) -> ParsedData:
    root = config.data_path
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder (data_format=folder expects root/<expression>/*.png)")
    origin = f"folder {os.path.basename(os.path.normpath(root))}"
    names = config.expression_names
    class_folders = _class_folders(root, names)
    faults: List[Fault] = []
    items: List[Tuple[str, int]] = []
    for folder in class_folders:
        files = sorted(name for name in os.listdir(os.path.join(root, folder))
                       if not name.startswith("."))
        if os.path.basename(folder) not in names:
            fault = Fault(None, f"{folder}/", f"class folder {folder!r} ({len(files)} files) is not "
                          f"one of the expression names ({', '.join(names)})", origin)
            if config.on_error == "fail":
                raise DataError(str(fault))
            faults.append(fault)
            continue
        items.extend((f"{folder}/{name}", names.index(os.path.basename(folder))) for name in files)
    if not items and not faults:
        raise DataError(f"{origin}: no images found (expected {root}/<expression>/*.png|jpg)")
    items, excluded, split_of = _select_by_name(items, config, origin)
    group_of = _groups_by_name(items, config, origin) if config.group_pattern else None

    def validate_file(item):
        relative, expression = item
        if not relative.lower().endswith(IMAGE_EXTENSIONS):
            raise RowFault(relative, "not a .png/.jpg/.jpeg file")
        if group_of is not None and group_of[relative] is None:
            raise RowFault(relative, f"no subject in its path (--group_pattern={config.group_pattern!r} does "
                           "not match)")
        info = _check_file(lambda p: images.inspect_rgb(p, config.convert_color), relative, root)
        entry = {"image": resolve(relative, root), "expression": expression,
                 "group": group_of[relative] if group_of is not None else relative, "image_size": _size(info)}
        if split_of is not None:
            entry["split"] = split_of[relative]
        return entry

    entries, file_faults = _validate_all(
        items, validate_file, origin, config.on_error, describe_row=lambda item: None)
    parsed = _assemble(config, origin, [dict(entry) for entry in entries], faults + file_faults, None,
                       "subject" if group_of is not None else "image", {"expression": names})
    splits_of_entries = parsed.columns.pop("split", None)
    return dataclasses.replace(parsed, excluded=excluded, split_of=splits_of_entries)


def _class_folders(root: str, names: Sequence[str]) -> List[str]:
    """Class folders under root: root/<class>/, or one level down (root/<split>/<class>/) for a folder
    that holds class folders itself, as FER2013's train/, validation/ and test/ do."""
    found = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if entry.name not in names:
            inner = sorted(sub.name for sub in os.scandir(entry.path) if sub.is_dir() and sub.name in names)
            if inner:
                found.extend(f"{entry.name}/{name}" for name in inner)
                continue
        found.append(entry.name)
    return found


# Where _parse_manifest notes a row's side of --split_pattern (not a column name a CSV header can have).
SPLIT_CELL = ("split",)
# The sides --split_pattern may name; when several of its groups match one path, the first of these wins.
SPLIT_SIDES = ("test", "validation", "train")


def _select_by_name(items, config, origin):
    """Applies --exclude_pattern and --split_pattern: (kept items, how many left out, split per path or None)."""
    excluded = 0
    if config.exclude_pattern:
        pattern = re.compile(config.exclude_pattern)
        kept = [item for item in items if not pattern.search(item[0])]
        if len(kept) == len(items):
            # A typo here would silently train on what it was meant to leave out.
            raise DataError(f"{origin}: --exclude_pattern={config.exclude_pattern!r} matches none of its "
                            f"{len(items)} files (e.g. {items[0][0]!r}); fix it or leave it out")
        excluded, items = len(items) - len(kept), kept
    split_of = None
    if config.split_pattern:
        pattern = re.compile(config.split_pattern)
        split_of, kept = {}, []
        for item in items:
            match = pattern.search(item[0])
            side = next((name for name in SPLIT_SIDES if match and match.groupdict().get(name) is not None), None)
            if side is None:
                excluded += 1
                continue
            split_of[item[0]] = side
            kept.append(item)
        if not kept and items:
            raise DataError(f"{origin}: --split_pattern={config.split_pattern!r} matches none of its "
                            f"{len(items)} files (e.g. {items[0][0]!r})")
        items = kept
        for side in ("train", "test"):
            if items and not any(value == side for value in split_of.values()):
                raise DataError(f"{origin}: --split_pattern={config.split_pattern!r} puts no file in the {side} split")
    if not items:
        raise DataError(f"{origin}: every file was left out by --exclude_pattern / --split_pattern")
    return items, excluded, split_of


def _groups_by_name(items, config, origin):
    """Subject per path from --group_pattern's first capture group (None where it finds none)."""
    pattern = re.compile(config.group_pattern)
    groups = {}
    for relative, _ in items:
        match = pattern.search(relative)
        groups[relative] = match.group(1) if match and match.group(1) else None
    if items and not any(groups.values()):
        # One line for the whole mistake instead of a fault per file.
        raise DataError(f"{origin}: --group_pattern={config.group_pattern!r} finds a subject in none of its "
                        f"{len(items)} files (e.g. {items[0][0]!r})")
    return groups


def _assemble(config, origin, entries, faults, strata, group_kind, label_names) -> ParsedData:
    if not entries:
        raise DataError(f"{origin}: no usable entries ({len(faults)} faulty); first fault: "
                        f"{faults[0] if faults else 'none'}")
    groups = [entry.pop("group") for entry in entries]
    keys = entries[0].keys()
    columns = {key: [entry[key] for entry in entries] for key in keys}
    if group_kind == "subject":
        # Ids by sorted subject name: a function of the subjects only, so every split agrees.
        subject_ids = {subject: index for index, subject in enumerate(sorted(set(groups)))}
        columns["identity"] = [subject_ids[subject] for subject in groups]
    return ParsedData(config.data_format, origin, columns, groups, strata, group_kind,
                      label_names, faults)


def parse(config: DataConfig) -> ParsedData:
    """Parses and validates a manifest or folder dataset (not TFRecord) named by config."""
    if config.data_format == "folder":
        return _parse_folder(config)
    return _parse_manifest(config)

