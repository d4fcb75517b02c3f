"""TFRecord shards: the record schema, writing a validated source into shards, and parsing them back.

A record holds the files' encoded bytes as given (PNG or JPEG), except depth, which is always stored
as a 16-bit PNG so one decoder normalises every shard alike. Shards are written under temporary
names and renamed only once everything succeeded, so a failure leaves no half-written dataset.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from legan_tf.data.errors import DataError, write_fault_report

# The shard layout is shared with the TensorFlow-free reader (legan_tf.data.numpy_input).
from legan_tf.data.shard_format import (BYTES_FEATURES, FLOAT_FEATURES, FORMAT_VERSION, INDEX_FEATURES,  # noqa: E402,F401
                                        INT_FEATURES, METADATA_FILE, MULTI_HOT_FEATURES, PARTIAL_PREFIX,
                                        SHARD_SUFFIX, SKIPPED_REPORT_FILE, counts_line, read_metadata, shard_name)


def feature_spec(features: List[str], multi_hot_sizes: Optional[Dict[str, int]] = None
                 ) -> Dict[str, tf.io.FixedLenFeature]:
    """Parsing spec for records holding `features` (a subset of the data features) + bookkeeping.
    `multi_hot_sizes`: the length of each multi-hot feature's vector (shard_format.multi_hot_sizes)."""
    spec = {}
    for name in features:
        if name in BYTES_FEATURES:
            spec[name] = tf.io.FixedLenFeature([], tf.string)
        elif name in INT_FEATURES:
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
        elif name in FLOAT_FEATURES:
            spec[name] = tf.io.FixedLenFeature([], tf.float32)
        elif name in MULTI_HOT_FEATURES and name in (multi_hot_sizes or {}):
            spec[name] = tf.io.FixedLenFeature([multi_hot_sizes[name]], tf.int64)
        else:
            raise DataError(f"{METADATA_FILE} names an unknown feature {name!r}")
    return spec


def _cast(name: str, value: tf.Tensor) -> tf.Tensor:
    if name in INT_FEATURES:
        return tf.cast(value, tf.int32)
    if name in MULTI_HOT_FEATURES:
        return tf.cast(value, tf.float32)
    return value


def parse_record(serialized: tf.Tensor, features: List[str],
                 multi_hot_sizes: Optional[Dict[str, int]] = None) -> Dict[str, tf.Tensor]:
    """Serialized record -> encoded example (bytes for pixel maps, int32 labels, float32 (K,) multi-hot
    vectors, float32 ratings)."""
    parsed = tf.io.parse_single_example(serialized, feature_spec(features, multi_hot_sizes))
    return {name: _cast(name, value) for name, value in parsed.items()}


def parse_index(serialized: tf.Tensor, label_features: List[str],
                multi_hot_sizes: Optional[Dict[str, int]] = None) -> Dict[str, tf.Tensor]:
    """Only the group, stratum and labels of a record: what splitting and class counts need."""
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in ("group", "stratum")}
    spec.update(feature_spec(label_features, multi_hot_sizes))
    return tf.io.parse_single_example(serialized, spec)


# --- writing --------------------------------------------------------------------------------------

def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _read_bytes(path: str) -> bytes:
    # Files were validated when the source was opened; one can still vanish or break since then.
    try:
        with open(path, "rb") as stored:
            return stored.read()
    except OSError as error:
        raise DataError(f"{path}: unreadable while writing shards ({error.strerror})") from None


def depth_as_16bit_png(path: str, bit_depth: int) -> bytes:
    """A depth PNG as 16-bit PNG bytes; 8-bit values are scaled by 257 so v/255 == v16/65535."""
    if bit_depth == 16:
        return _read_bytes(path)
    depth = np.asarray(Image.open(io.BytesIO(_read_bytes(path))), dtype=np.uint16) * np.uint16(257)
    encoded = io.BytesIO()
    Image.fromarray(depth).save(encoded, format="PNG")
    return encoded.getvalue()


def _record(columns: Dict[str, list], index: int, group: str, stratum: str) -> bytes:
    feature = {
        "group": _bytes_feature(group.encode()),
        "stratum": _bytes_feature(stratum.encode()),
        "path": _bytes_feature(columns["image"][index].encode()),
    }
    for name in BYTES_FEATURES:
        if name not in columns:
            continue
        path = columns[name][index]
        encoded = (depth_as_16bit_png(path, columns["depth_bits"][index]) if name == "depth"
                   else _read_bytes(path))
        feature[name] = _bytes_feature(encoded)
    for name in INT_FEATURES:
        if name in columns:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[columns[name][index]]))
    for name in FLOAT_FEATURES:
        if name in columns:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[columns[name][index]]))
    for name in MULTI_HOT_FEATURES:
        if name in columns:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=list(columns[name][index])))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    """Creates output_dir; refuses a non-empty one unless overwrite, which removes only our files."""
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not overwrite:
            raise DataError(f"{output_dir}: output folder is not empty (pass --overwrite to replace "
                            "its shards)")
        for name in os.listdir(output_dir):
            if (name.endswith(SHARD_SUFFIX) or name.startswith(PARTIAL_PREFIX)
                    or name in (METADATA_FILE, SKIPPED_REPORT_FILE)):
                os.remove(os.path.join(output_dir, name))
    os.makedirs(output_dir, exist_ok=True)


@dataclasses.dataclass
class WriteResult:
    output_dir: str
    records: Dict[str, int]
    class_counts: Dict[str, Dict[str, Dict[str, int]]]
    skipped: int
    skipped_report: Optional[str]
    seconds: float
    # Distinct groups (subjects, sources or images: group_kind) per split.
    groups: Dict[str, int] = dataclasses.field(default_factory=dict)
    group_kind: str = ""
    # What the data left out on purpose, a line each (source.left_out_lines()).
    left_out: List[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        lines = [f"wrote {sum(self.records.values())} records to {self.output_dir} "
                 f"in {self.seconds:.1f} s"]
        for split, count in self.records.items():
            groups = self.groups.get(split)
            people = f", {groups} {self.group_kind}{'' if groups == 1 else 's'}" if groups is not None else ""
            lines.append(f"  {split}: {count} records{people}")
            for attribute, counts in self.class_counts[split].items():
                lines.append(f"    {counts_line(attribute, counts)}")
        lines.extend(self.left_out)
        lines.append(f"skipped: {self.skipped}" + (
            f" (listed in {self.skipped_report})" if self.skipped_report else ""))
        return "\n".join(lines)


def write_tfrecords(source, output_dir: str, num_shards: int, holdout_fraction: float,
                    seed: int) -> WriteResult:
    """Writes a validated manifest/folder source as shards + dataset.json (+ skipped.csv).

    With holdout_fraction > 0 the records are split by group into train-* and test-* shards; with
    the data's own split (--split_pattern) into train-*, test-* and, when it has one, validation-*;
    otherwise all go to train-*. Records are shuffled (seeded) across shards so every shard holds
    a mix of classes.
    """
    if num_shards <= 0:
        raise DataError(f"num_shards must be positive, got {num_shards}")
    started = time.time()
    # The data's own split (--split_pattern) is kept as it is; otherwise one by group when asked.
    own_split = getattr(source, "predefined_split", False)
    splits = dict(zip(("train", "test"), source.split(holdout_fraction, seed))) \
        if holdout_fraction > 0 or own_split else {"train": source}
    if own_split and "validation" in source.own_split_names:
        # Stored beside train and test so it stays available (Source.stored_split); readers' split(),
        # and so training, return train and test only.
        splits["validation"] = source.stored_split("validation")
    rng = np.random.default_rng(seed)
    plans = []  # (split, final shard name, partial path, record indices)
    for split_name, split in splits.items():
        order = split.indices[rng.permutation(split.num_examples)]
        count = min(num_shards, split.num_examples)
        for shard in range(count):
            name = shard_name(split_name, shard, count)
            plans.append((split_name, name, os.path.join(output_dir, PARTIAL_PREFIX + name),
                          order[shard::count]))
    columns = source.all_columns
    try:
        with tqdm(total=source.num_examples, desc="writing shards", unit="record") as progress:
            for _, _, partial, indices in plans:
                with tf.io.TFRecordWriter(partial) as writer:
                    for index in indices:
                        writer.write(_record(columns, index, source.all_groups[index],
                                             source.all_strata[index]))
                        progress.update(1)
    except BaseException:
        for _, _, partial, _ in plans:
            if os.path.exists(partial):
                os.remove(partial)
        raise
    for _, name, partial, _ in plans:
        os.replace(partial, os.path.join(output_dir, name))

    report = None
    if source.faults:
        report = os.path.join(output_dir, SKIPPED_REPORT_FILE)
        write_fault_report(source.faults, report)
    metadata = {
        "format_version": FORMAT_VERSION,
        "data_format": source.data_format,
        "source_path": os.path.abspath(source.config.data_path),
        "features": source.features,
        "label_names": {k: list(v) for k, v in source.label_names.items()},
        "group_kind": source.group_kind,
        "stratified": source.stratified,
        "image_sizes": source.image_sizes(),
        "holdout_fraction": holdout_fraction,
        "split_seed": seed,
        "num_records": source.num_examples,
        "splits": {
            split_name: {
                "num_records": split.num_examples,
                "shards": [name for s, name, _, _ in plans if s == split_name],
                "class_counts": split.class_counts(),
            } for split_name, split in splits.items()},
        "skipped": len(source.faults),
        "skipped_report": SKIPPED_REPORT_FILE if report else None,
    }
    partial_metadata = os.path.join(output_dir, PARTIAL_PREFIX + METADATA_FILE)
    with open(partial_metadata, "w", encoding="utf-8") as meta_file:
        json.dump(metadata, meta_file, indent=2)
    os.replace(partial_metadata, os.path.join(output_dir, METADATA_FILE))
    return WriteResult(
        output_dir=output_dir,
        records={name: split.num_examples for name, split in splits.items()},
        class_counts={name: split.class_counts() for name, split in splits.items()},
        skipped=len(source.faults), skipped_report=report, seconds=time.time() - started,
        groups={name: len(set(split.groups)) for name, split in splits.items()}, group_kind=source.group_kind,
        left_out=source.left_out_lines())
