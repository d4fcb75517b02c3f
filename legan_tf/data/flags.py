"""absl flags for the data layer and the DataConfig they build."""

from __future__ import annotations

from absl import flags

from legan_tf.data.config import (
    DATA_FORMATS, DEPTH_BITS_CHOICES, MULTIPIE_EXPRESSIONS, MULTIPIE_NUM_LIGHTINGS,
    ON_ERROR_CHOICES, DataConfig, numbered_names)
from legan_tf.data.errors import DataError


def define_data_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the data flags; calling it again (another module also needs them) is a no-op."""
    if "data_format" in flag_values:
        return
    flags.DEFINE_enum(
        "data_format", None, list(DATA_FORMATS),
        "Layout of --data_path (docs/data_formats.md): ratings = naturalness-ratings CSV; "
        "multipie = Multi-PIE-style manifest; folder = root/<expression>/*.png; csv = generic "
        "manifest with --label_columns; rgbd = RGB-depth pairs manifest; tfrecord = a "
        "prepare_data.py output folder.", flag_values=flag_values)
    flags.DEFINE_string(
        "data_path", None,
        "The manifest CSV (ratings, multipie, csv, rgbd), the class-folder root (folder) or the "
        "shard folder (tfrecord). Paths inside a manifest are relative to its folder.",
        flag_values=flag_values)
    flags.DEFINE_integer(
        "image_size", 128, "Side of the square images the models see: images are centre-cropped "
        "to a square, then resized to this.", flag_values=flag_values)
    flags.DEFINE_list(
        "expression_names", list(MULTIPIE_EXPRESSIONS),
        "Expression class names, in label-id order; their count is the number of expression "
        "classes. Default: Multi-PIE's six. AffectNet/RaFD: anger,contempt,disgust,fear,happy,"
        "neutral,sadness,surprise.", flag_values=flag_values)
    flags.DEFINE_list(
        "lighting_names", None,
        "Lighting class names in label-id order. When not given, --num_lightings names them "
        "00, 01, ...", flag_values=flag_values)
    flags.DEFINE_integer(
        "num_lightings", MULTIPIE_NUM_LIGHTINGS,
        "Number of lighting classes, named 00..NN; ignored when --lighting_names is given. "
        "Default: Multi-PIE's 20 flashes.", flag_values=flag_values)
    flags.DEFINE_list(
        "label_columns", ["expression", "lighting"],
        "data_format=csv only: the label columns the CSV carries (expression and/or lighting); "
        "values are class ids or names.", flag_values=flag_values)
    flags.DEFINE_enum(
        "on_error", "fail", list(ON_ERROR_CHOICES),
        "What to do with a bad entry (missing or corrupt file, wrong colour mode, bad label or "
        "rating): fail = stop at the first one with its row and file; skip = leave it out, count "
        "it and list it in --skipped_report.", flag_values=flag_values)
    flags.DEFINE_string(
        "skipped_report", None,
        "With --on_error=skip: CSV file (row,path,fault) listing every skipped entry.",
        flag_values=flag_values)
    flags.DEFINE_bool(
        "convert_color", False,
        "Accept grayscale (repeated to RGB), RGBA (composited over black) and palette images "
        "instead of rejecting them as faults.", flag_values=flag_values)
    flags.DEFINE_enum(
        "depth_bits", "auto", list(DEPTH_BITS_CHOICES),
        "data_format=rgbd only: the bit depth of the depth PNGs. auto = 8- and 16-bit maps alike "
        "(each normalised by its own maximum); 8 or 16 = a map of the other bit depth is a bad "
        "entry (see --on_error).", flag_values=flag_values)
    flags.DEFINE_bool(
        "random_flip", False,
        "Randomly mirror training images left-right (with their depth, normals and mask). The "
        "StarGAN reference flips its training images.", flag_values=flag_values)
    flags.DEFINE_bool(
        "apply_mask", False,
        "Set the background to black (-1) using the face mask (the mask column, or depth > 0 for "
        "rgbd), as the LEGAN quality model expects.", flag_values=flag_values)
    flags.DEFINE_bool(
        "cache", False, "Cache decoded, resized examples in memory after the first epoch.",
        flag_values=flag_values)
    flags.DEFINE_integer(
        "shuffle_buffer", 1000, "Shuffle buffer (in examples) for training input.",
        flag_values=flag_values)
    flags.DEFINE_float(
        "holdout_fraction", 0.0,
        "Fraction of the examples held out as a test split, by group (subject; for ratings the "
        "source image, stratified by generator). 0 = no held-out split.", flag_values=flag_values)
    flags.DEFINE_integer(
        "split_seed", 0, "Seed of the held-out split (the same seed gives the same split).",
        flag_values=flag_values)
    flags.DEFINE_string(
        "exclude_pattern", "", "data_format=folder: leave out files whose path (relative to --data_path) matches "
        "this regular expression, e.g. FER2013's augmented copies: '\\.jpg\\d+\\.jpg$'. They are counted, "
        "not reported as faults; a pattern that matches no file is an error.", flag_values=flag_values)
    flags.DEFINE_string(
        "group_pattern", "", "data_format=folder: a regular expression whose first capture group, searched in "
        "each path, names the file's subject, so splits keep a subject's faces together (CK+: '(S\\d+)_'). "
        "A file it does not match is a fault; a pattern that matches no file is an error.",
        flag_values=flag_values)
    flags.DEFINE_string(
        "split_pattern", "", "data_format=folder: the dataset's own split instead of --holdout_fraction: a "
        "regular expression with named groups train and test (and optionally validation), searched in each "
        "path; files matching none are left out (counted). Training reads train and test; prepare_data "
        "stores validation beside them. FER2013: "
        "'(?P<train>Training_)|(?P<validation>PublicTest_)|(?P<test>PrivateTest_)'.",
        flag_values=flag_values)


def data_config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> DataConfig:
    """Builds (and so validates) a DataConfig from parsed flags; raises DataError when unusable."""
    if flag_values.data_format is None:
        raise DataError("--data_format is required")
    if flag_values.data_path is None:
        raise DataError("--data_path is required")
    lighting_names = (tuple(flag_values.lighting_names) if flag_values.lighting_names
                      else numbered_names(flag_values.num_lightings))
    return DataConfig(
        data_format=flag_values.data_format,
        data_path=flag_values.data_path,
        image_size=flag_values.image_size,
        expression_names=tuple(flag_values.expression_names),
        lighting_names=lighting_names,
        label_columns=tuple(flag_values.label_columns),
        on_error=flag_values.on_error,
        convert_color=flag_values.convert_color,
        depth_bits=flag_values.depth_bits,
        random_flip=flag_values.random_flip,
        apply_mask=flag_values.apply_mask,
        cache=flag_values.cache,
        shuffle_buffer=flag_values.shuffle_buffer,
        skipped_report=flag_values.skipped_report,
        holdout_fraction=flag_values.holdout_fraction,
        split_seed=flag_values.split_seed,
        exclude_pattern=flag_values.exclude_pattern,
        group_pattern=flag_values.group_pattern,
        split_pattern=flag_values.split_pattern,
    )
