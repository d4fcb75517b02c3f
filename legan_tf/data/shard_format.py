"""The layout of prepare_data's output (TFRecord shards + dataset.json), without TensorFlow.

Shared by the tf.data reader (legan_tf.data.tfrecord, legan_tf.data.pipeline) and the numpy reader
of the JAX path (legan_tf.data.numpy_input).
"""

from __future__ import annotations

import json
import os

from legan_tf.data.errors import DataError

METADATA_FILE = "dataset.json"
SKIPPED_REPORT_FILE = "skipped.csv"
SHARD_SUFFIX = ".tfrecord"
PARTIAL_PREFIX = ".partial-"
FORMAT_VERSION = 1

BYTES_FEATURES = ("image", "depth", "normals", "mask")
# `identity` is the subject's index among the sorted subjects of the whole dataset: an identity
# label for face-recognition training, never an attribute (it is not in `label_names`).
INT_FEATURES = ("expression", "lighting", "identity")
FLOAT_FEATURES = ("mean", "std")
# Bookkeeping kept in every record so stored shards can be re-split by group later.
INDEX_FEATURES = ("group", "stratum", "path")


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def read_metadata(directory: str) -> dict:
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isdir(directory):
        raise DataError(f"{directory}: not a folder (data_format=tfrecord expects a prepare_data output)")
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing (is {directory} a prepare_data output?)")
    try:
        with open(path, encoding="utf-8") as meta_file:
            metadata = json.load(meta_file)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    if metadata.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: format_version {metadata.get('format_version')!r}, "
                        f"this reader understands {FORMAT_VERSION}")
    for split in metadata["splits"].values():
        for shard in split["shards"]:
            if not os.path.isfile(os.path.join(directory, shard)):
                raise DataError(f"{directory}: shard {shard} listed in {METADATA_FILE} is missing")
    return metadata
