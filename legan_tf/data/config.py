"""Data configuration: which layout to read, where, the class names and the preprocessing switches."""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence, Tuple

from legan_tf.data.errors import DataError
from legan_tf.hparams import REQUIRED, hparam

MULTIPIE_EXPRESSIONS = ("neutral", "smile", "surprise", "squint", "disgust", "scream")
AFFECTNET_EXPRESSIONS = (
    "anger", "contempt", "disgust", "fear", "happy", "neutral", "sadness", "surprise")
MULTIPIE_NUM_LIGHTINGS = 20


def numbered_names(count: int) -> Tuple[str, ...]:
    """Class names 00, 01, ... for `count` classes (the Multi-PIE flash numbering)."""
    if count <= 0:
        raise DataError(f"the number of classes must be positive, got {count}")
    width = max(2, len(str(count - 1)))
    return tuple(f"{index:0{width}d}" for index in range(count))


MULTIPIE_LIGHTINGS = numbered_names(MULTIPIE_NUM_LIGHTINGS)

DATA_FORMATS = ("ratings", "multipie", "folder", "csv", "rgbd", "celeba", "tfrecord")
# StarGAN's CelebA attributes: the reference's default selection, in its order.
CELEBA_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
# Manifests of faces whose image column --split_pattern and --group_pattern may read (a dataset's own split, and
# its subjects, by file name).
MANIFEST_SPLIT_FORMATS = ("csv", "multipie", "rgbd")
ON_ERROR_CHOICES = ("fail", "skip")
# Declared bit depth of rgbd depth maps: auto accepts 8- and 16-bit files alike.
DEPTH_BITS_CHOICES = ("auto", "8", "16")
# Attributes a generic CSV may carry; each one's class names come from the matching *_names field.
LABEL_ATTRIBUTES = ("expression", "lighting")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Everything the readers need. Validated on construction, so a bad flag fails at start-up.

    Each field is also a flag of every script that reads data (legan_tf/data/flags.py defines them
    from these fields), listed under legan_tf.data.flags in --help.
    """

    data_format: str = hparam(
        REQUIRED, "Layout of --data_path (docs/data_formats.md): ratings = naturalness-ratings CSV; "
        "multipie = Multi-PIE-style manifest; folder = root/<expression>/*.png; csv = generic "
        "manifest with --label_columns; rgbd = RGB-depth pairs manifest; celeba = CelebA's attribute file "
        "and aligned images (--celeba_images); tfrecord = a prepare_data.py output folder.", choices=DATA_FORMATS)
    data_path: str = hparam(
        REQUIRED, "The manifest CSV (ratings, multipie, csv, rgbd), the class-folder root (folder), CelebA's "
        "attribute file list_attr_celeba.txt (celeba) or the shard folder (tfrecord). Paths inside a manifest "
        "are relative to its folder.")
    image_size: int = hparam(
        128, "Side of the square images the models see: images are centre-cropped to a square, then resized "
        "to this.")
    expression_names: Tuple[str, ...] = hparam(
        MULTIPIE_EXPRESSIONS, "Expression class names, in label-id order; their count is the number of "
        "expression classes. Default: Multi-PIE's six. AffectNet/RaFD: anger,contempt,disgust,fear,happy,"
        "neutral,sadness,surprise. Not used by data_format=celeba.")
    # None or () when the data has no lighting labels. Its flag defaults to None: --num_lightings then
    # names the classes.
    lighting_names: Optional[Tuple[str, ...]] = hparam(
        MULTIPIE_LIGHTINGS, "Lighting class names in label-id order. When not given, --num_lightings names "
        "them 00, 01, ...", flag_default=None)
    attribute_names: Tuple[str, ...] = hparam(
        CELEBA_ATTRIBUTES, "data_format=celeba and its shards: the binary attributes kept, in this order, as the "
        "attribute file's header names them; a face's label `attributes` is their 0/1 vector. Default: "
        "StarGAN's five.")
    celeba_images: Optional[str] = hparam(
        None, "data_format=celeba (required there): the folder of CelebA's aligned images, named as the attribute "
        "file's rows (000001.jpg, with --celeba_identities) or with the person in front (<identity>_000001.jpg). "
        "Only the images in it are used.")
    celeba_identities: Optional[str] = hparam(
        None, "data_format=celeba: CelebA's identity_CelebA.txt ('<image> <identity>' per line), which names the "
        "person of each image; needed when the image names carry no <identity>_ prefix.")
    label_columns: Tuple[str, ...] = hparam(
        ("expression", "lighting"), "data_format=csv only: the label columns the CSV carries (expression "
        "and/or lighting); values are class ids or names.")
    on_error: str = hparam(
        "fail", "What to do with a bad entry (missing or corrupt file, wrong colour mode, bad label or "
        "rating): fail = stop at the first one with its row and file; skip = leave it out, count it and list "
        "it in --skipped_report.", choices=ON_ERROR_CHOICES)
    convert_color: bool = hparam(
        False, "Accept grayscale (repeated to RGB), RGBA (composited over black) and palette images instead "
        "of rejecting them as faults.")
    depth_bits: str = hparam(
        "auto", "data_format=rgbd only: the bit depth of the depth PNGs. auto = 8- and 16-bit maps alike "
        "(each normalised by its own maximum); 8 or 16 = a map of the other bit depth is a bad entry (see "
        "--on_error).", choices=DEPTH_BITS_CHOICES)
    random_flip: bool = hparam(
        False, "Randomly mirror training images left-right (with their depth, normals and mask). The StarGAN "
        "reference flips its training images.")
    apply_mask: bool = hparam(
        False, "Set the background to black (-1) using the face mask (the mask column, or depth > 0 for "
        "rgbd), as the LEGAN quality model expects.")
    cache: bool = hparam(False, "Cache decoded, resized examples in memory after the first epoch.")
    shuffle_buffer: int = hparam(1000, "Shuffle buffer (in examples) for training input.")
    skipped_report: Optional[str] = hparam(
        None, "With --on_error=skip: CSV file (row,path,fault) listing every skipped entry.")
    holdout_fraction: float = hparam(
        0.0, "Fraction of the examples held out as a test split, by group (subject; for ratings the source "
        "image, stratified by generator). 0 = no held-out split.")
    split_seed: int = hparam(0, "Seed of the held-out split (the same seed gives the same split).")
    # The three patterns (docs/data_formats.md, "Selecting, grouping and splitting by file name") are
    # regular expressions searched in each file's path relative to data_path.
    exclude_pattern: str = hparam(
        "", "data_format=folder: leave out files whose path (relative to --data_path) matches this regular "
        "expression, e.g. FER2013's augmented copies: '\\.jpg\\d+\\.jpg$'. They are counted, not reported as "
        "faults; a pattern that matches no file is an error.")
    group_pattern: str = hparam(
        "", "data_format=folder, or the image column of a csv, multipie or rgbd manifest (where it replaces the "
        "subject column): a regular expression whose first capture group, searched in each path, names "
        "the file's subject, so splits keep a subject's faces together (CK+: '(S\\d+)_'). A file it does not "
        "match is a fault; a pattern that matches no file is an error.")
    # Named groups (?P<train>...), (?P<test>...) and optionally (?P<validation>...): the dataset's own
    # split. Training reads train and test; validation is stored beside them (Source.stored_split).
    split_pattern: str = hparam(
        "", "data_format=folder, or the image column of a csv, multipie or rgbd manifest: the dataset's own split "
        "instead of --holdout_fraction: a regular expression with named groups train and test (and optionally "
        "validation), searched in each path; files matching none are left out (counted). Training reads train "
        "and test; prepare_data stores validation beside them. FER2013: "
        "'(?P<train>Training_)|(?P<validation>PublicTest_)|(?P<test>PrivateTest_)'.")

    def __post_init__(self):
        # Accept lists from callers (flags give lists) but store tuples so the config stays hashable.
        object.__setattr__(self, "expression_names", _as_names("expression", self.expression_names))
        object.__setattr__(self, "lighting_names", _as_names("lighting", self.lighting_names or ()))
        object.__setattr__(self, "attribute_names", _as_names("attribute", self.attribute_names or ()))
        object.__setattr__(self, "label_columns", tuple(self.label_columns or ()))
        if self.data_format not in DATA_FORMATS:
            raise DataError(
                f"unknown data_format {self.data_format!r}; expected one of {', '.join(DATA_FORMATS)}")
        if not self.data_path:
            raise DataError("data_path is required")
        if not isinstance(self.image_size, int) or self.image_size <= 0:
            raise DataError(f"image_size must be a positive integer, got {self.image_size!r}")
        if self.on_error not in ON_ERROR_CHOICES:
            raise DataError(f"on_error must be 'fail' or 'skip', got {self.on_error!r}")
        object.__setattr__(self, "depth_bits", str(self.depth_bits))
        if self.depth_bits not in DEPTH_BITS_CHOICES:
            raise DataError(f"depth_bits must be one of {', '.join(DEPTH_BITS_CHOICES)}, "
                            f"got {self.depth_bits!r}")
        if not self.expression_names and self.data_format != "celeba":
            raise DataError("expression_names must name at least one expression")
        self._check_celeba()
        if self.data_format == "csv":
            if not self.label_columns:
                raise DataError("data_format=csv needs label_columns (e.g. expression,lighting)")
            unknown = [c for c in self.label_columns if c not in LABEL_ATTRIBUTES]
            if unknown:
                raise DataError(
                    f"label_columns {', '.join(unknown)} not supported; "
                    f"choose from {', '.join(LABEL_ATTRIBUTES)}")
            if len(set(self.label_columns)) != len(self.label_columns):
                raise DataError(f"label_columns repeats a column: {', '.join(self.label_columns)}")
        if self.uses_lighting and not self.lighting_names:
            raise DataError(
                f"data_format={self.data_format} has lighting labels; give lighting_names "
                "(--lighting_names or --num_lightings)")
        if self.shuffle_buffer <= 0:
            raise DataError(f"shuffle_buffer must be positive, got {self.shuffle_buffer}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise DataError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        self._check_patterns()

    def _check_celeba(self):
        if self.data_format != "celeba":
            given = [name for name in ("celeba_images", "celeba_identities") if getattr(self, name)]
            if given:
                raise DataError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} read by "
                                f"data_format=celeba only, not {self.data_format}")
            return
        if not self.celeba_images:
            raise DataError("data_format=celeba needs celeba_images: the folder of CelebA's aligned images")
        if not self.attribute_names:
            raise DataError("data_format=celeba needs attribute_names: the attributes to keep, e.g. "
                            + ",".join(CELEBA_ATTRIBUTES))

    def _check_patterns(self):
        patterns = {"exclude_pattern": self.exclude_pattern, "group_pattern": self.group_pattern,
                    "split_pattern": self.split_pattern}
        for name, pattern in patterns.items():
            if not pattern:
                continue
            manifest_name = name in ("split_pattern", "group_pattern") and self.data_format in MANIFEST_SPLIT_FORMATS
            if self.data_format != "folder" and not manifest_name:
                raise DataError(f"{name} selects files of data_format=folder; a manifest names its own rows"
                                + (f" ({name} also reads the image column of a "
                                   f"{'/'.join(MANIFEST_SPLIT_FORMATS)} manifest)" if name != "exclude_pattern"
                                   else ""))
            try:
                compiled = re.compile(pattern)
            except re.error as error:
                raise DataError(f"{name}={pattern!r} is not a regular expression: {error}") from None
            if name == "group_pattern" and compiled.groups < 1:
                raise DataError(f"group_pattern={pattern!r} needs a capture group: the part of the file name that "
                                "names the subject, e.g. '(S\\d+)_'")
            if name == "split_pattern":
                _check_split_groups(pattern, compiled)
        if self.split_pattern and self.holdout_fraction:
            raise DataError(f"give split_pattern (the dataset's own split) or holdout_fraction={self.holdout_fraction} "
                            "(a random split by group), not both")

    @property
    def uses_lighting(self) -> bool:
        """Whether the configured layout carries lighting labels."""
        if self.data_format == "multipie":
            return True
        if self.data_format == "csv":
            return "lighting" in self.label_columns
        return False


SPLIT_PATTERN_GROUPS = ("train", "validation", "test")
SPLIT_PATTERN_EXAMPLE = "'(?P<train>Training_)|(?P<validation>PublicTest_)|(?P<test>PrivateTest_)'"


def _check_split_groups(pattern: str, compiled: "re.Pattern") -> None:
    """A split pattern names its sides by named groups: train and test, and validation if it likes."""
    unknown = sorted(set(compiled.groupindex) - set(SPLIT_PATTERN_GROUPS))
    if unknown:
        # A misspelt side (e.g. `valid`) would otherwise leave its files out without a word.
        raise DataError(f"split_pattern={pattern!r} has a named group {unknown[0]!r}; the named groups are "
                        f"{', '.join(SPLIT_PATTERN_GROUPS)}, e.g. {SPLIT_PATTERN_EXAMPLE}")
    for side, role in (("test", "the held-out files"), ("train", "the training files")):
        if side not in compiled.groupindex:
            raise DataError(f"split_pattern={pattern!r} needs a named group (?P<{side}>...) for {role}, "
                            f"e.g. {SPLIT_PATTERN_EXAMPLE}")


def _as_names(attribute: str, names: Sequence[str]) -> Tuple[str, ...]:
    if isinstance(names, str):
        raise DataError(f"{attribute} names must be a sequence of names, not the string {names!r}")
    names = tuple(str(name).strip() for name in names)
    if any(not name for name in names):
        raise DataError(f"{attribute} names contain an empty name: {names}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"{attribute} names repeat {', '.join(duplicates)}")
    return names
