"""CelebA (data_format=celeba): its attribute file and a folder of its aligned images, into aligned columns.

The attribute file `list_attr_celeba.txt` holds, optionally, a first line with the number of rows (the
official file has it), then a header of attribute names separated by white space, then one row per image,
`<file> v1 ... vN`, each value 1 or -1. The images are CelebA's aligned 178x218 colour JPEGs, named either as
the rows name them (`000001.jpg`, the official layout, whose people `identity_CelebA.txt` names) or with the
person in front (`<identity>_000001.jpg`, as public samples of CelebA name them).

Only the images in the folder are used: a row without an image is counted, not a fault (a sample holds a
share of CelebA's 202,599 faces); an image without a row is a fault. A face's label is the 0/1 vector of
`attribute_names`, in that order (the multi-hot feature `attributes`); its person is its group, so held-out
splits keep a person's faces together, and `identity` numbers the people.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from legan_tf.data import images
from legan_tf.data.config import DataConfig
from legan_tf.data.errors import DataError
from legan_tf.data.manifests import (IMAGE_EXTENSIONS, ParsedData, RowFault, _assemble, _check_file, _size,
                                     _validate_all)

FEATURE = "attributes"
VALUES = {"1": 1, "-1": 0}
# <identity>_<file>: the person in front of the row's file name.
PREFIXED = re.compile(r"^([^_]+)_(.+)$")


@dataclasses.dataclass
class AttributeFile:
    """The attribute file's header and rows, each row kept as its line until an image asks for it."""

    name: str
    header: Tuple[str, ...]
    # file -> (row number, the row's line); rows are numbered from 1 under the header (row 0).
    rows: Dict[str, Tuple[int, str]]
    # file -> the number of a later row that names the file again.
    repeated: Dict[str, int]


def _text(path: str, what: str) -> str:
    with open(path, "rb") as raw:
        data = raw.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(f"{os.path.basename(path)}: not text (byte 0x{data[error.start]:02x} on line {line}); "
                        f"expected {what}") from None


def read_attribute_file(path: str) -> AttributeFile:
    """Reads the attribute file; a missing or empty file, or a header that is not one, is a DataError. The
    rows' values are checked where an image uses them (`attribute_vector`)."""
    name = os.path.basename(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: a folder; data_format=celeba reads CelebA's attribute file list_attr_celeba.txt "
                        "as --data_path (and the images from --celeba_images)")
    if not os.path.isfile(path):
        raise DataError(f"{path}: attribute file not found")
    lines = [(number, line) for number, line in enumerate(_text(path, "CelebA's attribute file").splitlines(), 1)
             if line.strip()]
    declared = None
    if lines and lines[0][1].strip().isdigit():
        declared = int(lines[0][1])  # the official file's row count
        lines = lines[1:]
    if not lines:
        raise DataError(f"{name}: no header (expected a line of attribute names, then one row per image)")
    header_line, header_text = lines[0]
    header = tuple(header_text.split())
    if header[0].lower().endswith(IMAGE_EXTENSIONS) or any(cell in VALUES for cell in header):
        raise DataError(f"{name}: line {header_line} is not a header of attribute names (it reads "
                        f"{' '.join(header[:4])} ...); the file starts with the attribute names, after a line with "
                        "the number of rows if it has one")
    repeats = sorted({cell for cell in header if header.count(cell) > 1})
    if repeats:
        raise DataError(f"{name}: its header names {', '.join(repeats)} more than once")
    rows: Dict[str, Tuple[int, str]] = {}
    repeated: Dict[str, int] = {}
    for number, (_, line) in enumerate(lines[1:], start=1):
        file = line.split(None, 1)[0]
        if file in rows:
            repeated.setdefault(file, number)
        else:
            rows[file] = (number, line)
    if not rows:
        raise DataError(f"{name}: no rows under its header")
    count = len(lines) - 1
    if declared is not None and declared != count:
        raise DataError(f"{name}: its first line gives {declared} rows, and {count} follow the header (a truncated "
                        "or edited file?); fix the count or remove that line")
    return AttributeFile(name, header, rows, repeated)


def attribute_columns(attribute_file: AttributeFile, wanted: Sequence[str]) -> List[int]:
    """The header positions of the wanted attributes; names the header lacks are one DataError naming close
    ones."""
    header = attribute_file.header
    missing = [name for name in wanted if name not in header]
    if missing:
        described = []
        for name in missing:
            # The same name in another case is the one meant; else the names spelt most alike.
            close = [cell for cell in header if cell.lower() == name.lower()] or \
                difflib.get_close_matches(name, header, n=3, cutoff=0.6)
            described.append(f"{name!r}" + (f" (close: {', '.join(close)})" if close else ""))
        raise DataError(f"{attribute_file.name}: no attribute {', '.join(described)} in its header of "
                        f"{len(header)} names ({', '.join(header[:5])}{', ...' if len(header) > 5 else ''}); "
                        "--attribute_names takes the header's names")
    return [header.index(name) for name in wanted]


def attribute_vector(attribute_file: AttributeFile, row: str, positions: Sequence[int], image: str) -> List[int]:
    """A row's 0/1 vector of the attributes at `positions`; a row whose width differs from the header's, or a
    value other than 1 and -1, is a fault of `image`."""
    header = attribute_file.header
    cells = attribute_file.rows[row][1].split()[1:]
    if len(cells) != len(header):
        raise RowFault(image, f"{len(cells)} values, and the header names {len(header)} attributes")
    vector = []
    for position in positions:
        value = cells[position]
        if value not in VALUES:
            raise RowFault(image, f"column {header[position]} (value {position + 1} of {len(header)}) is "
                           f"{value!r}; the values are 1 or -1")
        vector.append(VALUES[value])
    return vector


def read_identities(path: Optional[str]) -> Optional[Dict[str, str]]:
    """{file: person} from CelebA's identity_CelebA.txt, or None when none is given."""
    if not path:
        return None
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: celeba_identities not found (CelebA's identity_CelebA.txt)")
    people = {}
    for number, line in enumerate(_text(path, "CelebA's identity file").splitlines(), start=1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 2:
            raise DataError(f"{name}: line {number} is not '<image> <identity>' (it reads {line.strip()[:60]!r})")
        people.setdefault(cells[0], cells[1])
    if not people:
        raise DataError(f"{name}: no lines '<image> <identity>'")
    return people


@dataclasses.dataclass(frozen=True)
class _Image:
    """One file of the image folder: the attribute row it takes (None: none), its person, its row's number
    and, when it cannot be used, why."""

    name: str
    row: Optional[str]
    person: Optional[str]
    number: Optional[int]
    problem: Optional[str] = None


def _list_images(folder: str) -> List[str]:
    if not os.path.exists(folder):
        raise DataError(f"{folder}: celeba_images does not exist (the folder of CelebA's aligned images)")
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: celeba_images is not a folder (the folder of CelebA's aligned images)")
    # Files directly in the folder; hidden files and subfolders are not CelebA's images.
    names = sorted(entry.name for entry in os.scandir(folder) if not entry.name.startswith(".") and entry.is_file())
    if not names:
        raise DataError(f"{folder}: no files in celeba_images (expected CelebA's aligned .jpg images)")
    return names


def _match(names: List[str], attribute_file: AttributeFile, people: Optional[Dict[str, str]],
           config: DataConfig) -> List[_Image]:
    """Each image's row and person, in the attribute file's row order (images without a row last). The
    person is the identity file's where one is given, else the name's <identity>_ prefix."""
    rows = attribute_file.rows
    matched = []
    for name in names:
        prefixed = PREFIXED.match(name)
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            matched.append(_Image(name, None, None, None, "not a .png/.jpg/.jpeg file"))
            continue
        if name in rows:
            row, person = name, None
        elif prefixed and prefixed.group(2) in rows:
            row, person = prefixed.group(2), prefixed.group(1)
        else:
            wanted = prefixed.group(2) if prefixed else name
            matched.append(_Image(name, None, None, None, f"no row for {wanted}"))
            continue
        if people is not None:
            person = people.get(row)
        matched.append(_Image(name, row, person, rows[row][0]))
    with_rows = [image for image in matched if image.row is not None]
    if with_rows and people is None and not any(image.person for image in with_rows):
        raise DataError(f"{config.celeba_images}: the image names carry no person (e.g. {with_rows[0].name}; a public "
                        "sample names them <identity>_<file>), and a split by person needs one: give "
                        "--celeba_identities (CelebA's identity_CelebA.txt)")
    users = collections.defaultdict(list)
    for image in with_rows:
        users[image.row].append(image.name)
    checked = []
    for image in matched:
        problem = image.problem
        if image.row is not None and not image.person:
            identity_file = os.path.basename(config.celeba_identities or "")
            problem = (f"no identity for {image.row} in {identity_file}" if people is not None else
                       "no person in its name (expected <identity>_<file>; or give --celeba_identities)")
        elif image.row is not None and users[image.row][0] != image.name:
            problem = f"its row ({image.row}) is {users[image.row][0]}'s already"
        elif image.row in attribute_file.repeated:
            problem = f"{image.row} has a second row, row {attribute_file.repeated[image.row]}"
        checked.append(dataclasses.replace(image, problem=problem))
    return sorted(checked, key=lambda image: (image.number is None, image.number or 0, image.name))


def parse(config: DataConfig) -> ParsedData:
    """Parses and validates CelebA's attribute file and the images of config.celeba_images."""
    attribute_file = read_attribute_file(config.data_path)
    positions = attribute_columns(attribute_file, config.attribute_names)
    people = read_identities(config.celeba_identities)
    folder = os.path.abspath(config.celeba_images)
    items = _match(_list_images(config.celeba_images), attribute_file, people, config)

    def validate(image: _Image) -> dict:
        if image.problem:
            raise RowFault(image.name, image.problem)
        vector = attribute_vector(attribute_file, image.row, positions, image.name)
        info = _check_file(lambda path: images.inspect_rgb(path, config.convert_color), image.name, folder)
        return {"image": os.path.join(folder, image.name), FEATURE: vector, "group": image.person,
                "image_size": _size(info)}

    entries, faults = _validate_all(items, validate, attribute_file.name, config.on_error,
                                    describe_row=lambda image: image.number)
    parsed = _assemble(config, attribute_file.name, entries, faults, None, "subject",
                       {FEATURE: tuple(config.attribute_names)})
    used = {image.row for image in items if image.row is not None}
    parsed.rows_without_image = len(attribute_file.rows) - len(used)
    return parsed
