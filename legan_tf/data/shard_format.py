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
# Several binary attributes at once (CelebA's): per record an int64 list of 0/1, one value per name of
# label_names["attributes"], in that order. Both readers yield it as float32 (K,), batched (B, K).
MULTI_HOT_FEATURES = ("attributes",)
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


def open_shards(config) -> tuple:
    """(metadata, shard files of every split) of a prepare_data output, checked against the config:
    the same label names, and masks where apply_mask needs them. Shared by both readers."""
    metadata = read_metadata(config.data_path)
    configured = {"expression": config.expression_names, "lighting": config.lighting_names,
                  "attributes": config.attribute_names}
    for attribute, names in metadata["label_names"].items():
        if tuple(names) != configured[attribute]:
            raise DataError(
                f"{os.path.join(config.data_path, METADATA_FILE)}: the shards' {attribute} names "
                f"({', '.join(names)}) differ from the configured ones ({', '.join(configured[attribute]) or 'none'})"
                f"; pass --{names_flag(attribute)}")
    for name in MULTI_HOT_FEATURES:
        if name in metadata["features"] and name not in metadata["label_names"]:
            raise DataError(f"{os.path.join(config.data_path, METADATA_FILE)}: the records hold {name} vectors, and "
                            f"label_names does not name their values")
    if config.apply_mask and "mask" not in metadata["features"] and "depth" not in metadata["features"]:
        raise DataError(f"{config.data_path}: apply_mask needs masks, and these shards have none")
    files = [os.path.join(config.data_path, shard) for split in metadata["splits"].values() for shard in split["shards"]]
    return metadata, files


def names_flag(attribute: str) -> str:
    """The flag that names a label group's classes: --expression_names, --lighting_names, --attribute_names."""
    return "attribute_names" if attribute in MULTI_HOT_FEATURES else f"{attribute}_names"


def multi_hot_sizes(features, label_names) -> dict:
    """{multi-hot feature: its vector's length} of the records' features."""
    return {name: len(label_names[name]) for name in MULTI_HOT_FEATURES if name in features}


def count_classes(label_names, columns, indices=None) -> dict:
    """{attribute: {name: count}}: examples per class of a one-hot label (its int ids); for a multi-hot one
    (MULTI_HOT_FEATURES), the examples with each attribute (the positives of each name). `indices` select rows."""
    import numpy as np

    counts = {}
    for attribute, names in label_names.items():
        values = np.asarray(columns[attribute])
        if attribute in MULTI_HOT_FEATURES:
            values = values.reshape(-1, len(names))
            per_name = (values if indices is None else values[indices]).sum(axis=0)
        else:
            values = values.astype(np.int64)
            per_name = np.bincount(values if indices is None else values[indices], minlength=len(names))
        counts[attribute] = {name: int(n) for name, n in zip(names, per_name)}
    return counts


def counts_line(attribute: str, counts: dict) -> str:
    """A summary line of count_classes' counts for one attribute."""
    what = " (faces with each)" if attribute in MULTI_HOT_FEATURES else ""
    return f"{attribute}{what}: " + ", ".join(f"{name} {n}" for name, n in counts.items())


def stored_split_files(metadata, data_path, holdout_fraction):
    """{"train": files, "test": files} when prepare_data stored a held-out split, else None.

    A stored split is used for holdout_fraction 0 or the stored fraction; asking for another is an
    error rather than a silent re-split across the stored one."""
    stored = metadata["splits"]
    if "test" not in stored:
        return None
    if holdout_fraction not in (0.0, metadata["holdout_fraction"]):
        raise DataError(f"{data_path}: the shards were split with holdout_fraction={metadata['holdout_fraction']} by "
                        f"prepare_data; re-run prepare_data to hold out {holdout_fraction}")
    return {name: [os.path.join(data_path, shard) for shard in stored[name]["shards"]] for name in ("train", "test")}


def resplit_filters(groups, strata, base_filter, holdout_fraction, seed):
    """(train, test) boolean filters over all records, splitting the records `base_filter` keeps by group."""
    import numpy as np

    from legan_tf.data import splits

    train, test = splits.split_by_group(list(groups), holdout_fraction, seed, strata)
    positions = np.flatnonzero(base_filter)
    filters = []
    for chosen in (train, test):
        record_filter = np.zeros_like(base_filter)
        record_filter[positions[chosen]] = True
        filters.append(record_filter)
    return filters


def record_count(metadata, split_name, record_filter) -> int:
    """Records in a split of the shards, or in the subset `record_filter` keeps."""
    if record_filter is not None:
        return int(record_filter.sum())
    if split_name == "all":
        return int(metadata["num_records"])
    return int(metadata["splits"][split_name]["num_records"])
