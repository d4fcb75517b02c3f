"""Data sources and their tf.data pipelines.

`open_source(config)` validates a dataset and returns a Source; `Source.dataset()` turns it into
batches of model-ready examples; `distribute()` gives each replica its own input pipeline.
"""

from __future__ import annotations

import collections
import copy
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from legan_tf.data import celeba, images, lighting_copies, manifests, preprocess, shard_format, splits, tfrecord
from legan_tf.data.config import DataConfig
from legan_tf.data.errors import DataError, Fault, write_fault_report

AUTOTUNE = tf.data.AUTOTUNE
# The features a record's index holds beside its group: one-hot ids (and identity) and multi-hot vectors.
LABEL_FEATURES = tfrecord.INT_FEATURES + tfrecord.MULTI_HOT_FEATURES
# How many faults summary() lists before pointing at the report.
SUMMARY_MAX_FAULTS = 20


class Source:
    """A validated dataset (or one split of it) that can be read as a tf.data pipeline."""

    config: DataConfig
    data_format: str           # the layout the data came from: ratings, multipie, folder, csv, rgbd
    label_names: Dict[str, Tuple[str, ...]]
    faults: List[Fault]        # entries left out under on_error="skip" (the whole dataset's)
    features: List[str]        # the per-example keys in the encoded form (see tfrecord.py)
    group_kind: str
    stratified: bool
    split_name: str
    # (copy_index table, encoded images in record order) once with_lighting_copies() pairs the faces.
    _lighting_copies = None

    @property
    def num_examples(self) -> int:
        raise NotImplementedError

    @property
    def groups(self) -> List[str]:
        """Per-example group (subject, source or image) that splits keep together."""
        raise NotImplementedError

    def class_counts(self) -> Dict[str, Dict[str, int]]:
        raise NotImplementedError

    def identities(self) -> np.ndarray:
        """Sorted distinct `identity` ids in this split (ids index the whole dataset's sorted subjects).

        Empty when the data has no subjects (folder, ratings, manifests without a subject column).
        """
        raise NotImplementedError

    @property
    def num_identities(self) -> int:
        return len(self.identities())

    def split(self, holdout_fraction: Optional[float] = None,
              seed: Optional[int] = None) -> Tuple["Source", "Source"]:
        raise NotImplementedError

    def stored_split(self, name: str) -> "Source":
        """One split the data defines itself (--split_pattern, or prepare_data's shards) by name,
        including a validation split, which split() and so training never read."""
        raise DataError(f"{self.config.data_path}: the {self.data_format} data has no stored splits")

    def with_lighting_copies(self) -> "Source":
        """This source, whose training batches also hold each face's copy under another light
        (`legan_tf.data.lighting_copies`): a DataError where the data cannot name copies."""
        lighting_copies.check_pairable(self.features, self.label_names, self.config)
        identities, expressions, lightings, encoded = self._images_with_subjects()
        keys = lighting_copies.face_keys(identities, expressions, self._num_expressions)
        paired = copy.copy(self)
        paired._lighting_copies = (
            lighting_copies.copy_index(keys, lightings, len(self.label_names["lighting"])), encoded)
        return paired

    @property
    def _num_expressions(self) -> int:
        return len(self.label_names.get("expression", ())) or 1

    @property
    def pairable_faces(self) -> int:
        """Subjects with copies under two or more lights (0 before with_lighting_copies())."""
        return lighting_copies.count_pairable(self._lighting_copies[0]) if self._lighting_copies else 0

    def _images_with_subjects(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[bytes]]:
        """(identity, expression (0 without expression labels), lighting, encoded image) of every example of
        this source, in one fixed order."""
        raise NotImplementedError

    def _attach_lighting_copies(self, dataset: tf.data.Dataset, seed: int, skip: int) -> tf.data.Dataset:
        """Adds `lighting_copy` and `lighting_copy_label` to each example, the copy drawn from a seeded stream
        beside the examples (as the flips are), so a resumed run draws what an uninterrupted one did."""
        table, encoded = self._lighting_copies
        index, stored = tf.constant(table), tf.constant(encoded)
        lights_all = tf.range(table.shape[1], dtype=tf.int64)
        image_size = self.config.image_size

        num_expressions = self._num_expressions

        def attach(example, draw):
            key = tf.cast(example["identity"], tf.int64) * num_expressions
            if "expression" in example:
                key += tf.cast(example["expression"], tf.int64)
            row = tf.cond(key < tf.shape(index, out_type=tf.int64)[0], lambda: tf.gather(index, key),
                          lambda: -tf.ones_like(lights_all))
            lights = tf.boolean_mask(lights_all, (row >= 0) & (lights_all != tf.cast(example["lighting"], tf.int64)))
            count = tf.size(lights, out_type=tf.int64)
            # lighting_copies.choose's pick, padded so that a face with no copy gathers something harmless.
            light = tf.gather(tf.concat([lights, [0]], 0), tf.math.floormod(draw, tf.maximum(count, 1)))
            position = tf.maximum(tf.gather(row, light), 0)
            paired = dict(example)
            paired[lighting_copies.COPY] = preprocess.resize_rgb(
                preprocess.center_crop_square(images.decode_rgb(tf.gather(stored, position))), image_size)
            paired[lighting_copies.COPY].set_shape([image_size, image_size, 3])
            paired[lighting_copies.COPY_LABEL] = tf.cast(tf.where(count > 0, light, -1), tf.int32)
            return paired

        draws = tf.data.Dataset.random(seed=seed + lighting_copies.SEED_OFFSET).skip(skip)
        return tf.data.Dataset.zip((dataset, draws)).map(attach, num_parallel_calls=AUTOTUNE)

    def _encoded_dataset(self, training: bool, seed: int,
                         input_context: Optional[tf.distribute.InputContext]) -> tf.data.Dataset:
        """This input pipeline's share of the examples in encoded form (file bytes, labels)."""
        raise NotImplementedError

    def _uncached_shuffle_buffer(self) -> int:
        return self.config.shuffle_buffer

    def dataset(self, batch_size: int, training: bool, seed: int = 0, repeat: bool = True,
                input_context: Optional[tf.distribute.InputContext] = None,
                start_step: int = 0) -> tf.data.Dataset:
        """Batches of examples: dicts of float32 pixel maps in [-1, 1], int32 labels and float32 (B, K)
        multi-hot `attributes`.

        batch_size is the global batch; with an input_context each pipeline batches its
        per-replica share. Training shuffles, (optionally) flips and drops the last partial batch.
        `start_step` continues the same seeded stream after that many global batches, as a resumed
        run must: the examples are skipped before decoding, so skipping costs little.
        """
        examples_per_step = batch_size
        if input_context is not None:
            examples_per_step = batch_size // input_context.num_input_pipelines
            batch_size = input_context.get_per_replica_batch_size(batch_size)
            seed += input_context.input_pipeline_id
        skip = start_step * examples_per_step
        image_size, apply_mask = self.config.image_size, self.config.apply_mask

        def decode(encoded):
            decoded = dict(encoded)
            decoded["image"] = images.decode_rgb(encoded["image"])
            for key, decoder in (("depth", images.decode_depth), ("normals", images.decode_normals),
                                 ("mask", images.decode_mask)):
                if key in encoded:
                    decoded[key] = decoder(encoded[key])
            return preprocess.prepare(decoded, image_size, apply_mask)

        dataset = self._encoded_dataset(training, seed, input_context)
        if self.config.cache:
            # Cache decoded examples, then shuffle, so each epoch still sees a new order.
            dataset = dataset.map(decode, num_parallel_calls=AUTOTUNE).cache()
        if training:
            buffer = self.config.shuffle_buffer if self.config.cache else self._uncached_shuffle_buffer()
            dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        if skip:
            # A fixed seed with reshuffle_each_iteration gives the same sequence of epoch orders on
            # every iterator, so the stream after `skip` examples is the one a run never stopped saw.
            dataset = dataset.skip(skip)
        if not self.config.cache:
            dataset = dataset.map(decode, num_parallel_calls=AUTOTUNE)
        if training and self.config.random_flip:
            # A seeded random stream beside the examples keeps flips reproducible under parallelism.
            coins = tf.data.Dataset.random(seed=seed).skip(skip)
            dataset = tf.data.Dataset.zip((dataset, coins)).map(
                lambda example, coin: preprocess.flip_horizontally(example, coin % 2 == 0),
                num_parallel_calls=AUTOTUNE)
        if training and self._lighting_copies is not None:
            dataset = self._attach_lighting_copies(dataset, seed, skip)
        dataset = dataset.batch(batch_size, drop_remainder=training)
        return dataset.prefetch(AUTOTUNE)

    def summary(self) -> str:
        """Multi-line description: format, path, counts per class, faults."""
        lines = [
            f"data_format: {self.data_format}"
            + (" (from TFRecord shards)" if self.config.data_format == "tfrecord" else ""),
            f"data_path: {os.path.abspath(self.config.data_path)}",
            f"split: {self.split_name}",
            f"examples: {self.num_examples} in {len(set(self.groups))} groups (by {self.group_kind})",
        ]
        for attribute, counts in self.class_counts().items():
            lines.append(shard_format.counts_line(attribute, counts))
        lines.extend(self._extra_summary_lines())
        lines.append(f"faults: {len(self.faults)} skipped")
        for fault in self.faults[:SUMMARY_MAX_FAULTS]:
            lines.append(f"  {fault}")
        if len(self.faults) > SUMMARY_MAX_FAULTS:
            report = self.config.skipped_report or "the skipped report"
            lines.append(f"  ... and {len(self.faults) - SUMMARY_MAX_FAULTS} more (see {report})")
        return "\n".join(lines)

    def _extra_summary_lines(self) -> List[str]:
        return []

    def _resolve_split_args(self, holdout_fraction, seed):
        return (self.config.holdout_fraction if holdout_fraction is None else holdout_fraction,
                self.config.split_seed if seed is None else seed)


def _count_classes(label_names, columns, indices) -> Dict[str, Dict[str, int]]:
    return shard_format.count_classes(label_names, columns, indices)


class ManifestSource(Source):
    """A manifest or folder dataset, validated entry by entry; `indices` select one split of it."""

    def __init__(self, config: DataConfig, parsed: manifests.ParsedData,
                 indices: Optional[np.ndarray] = None, split_name: str = "all"):
        self.config = config
        self.data_format = parsed.data_format
        self.label_names = parsed.label_names
        self.faults = parsed.faults
        self.group_kind = parsed.group_kind
        self.stratified = parsed.strata is not None
        self.split_name = split_name
        self._parsed = parsed
        total = len(parsed.groups)
        self.indices = np.arange(total) if indices is None else np.asarray(indices, dtype=np.int64)
        self.features = [name for name in (*tfrecord.BYTES_FEATURES, *tfrecord.INT_FEATURES,
                                           *tfrecord.MULTI_HOT_FEATURES, *tfrecord.FLOAT_FEATURES)
                         if name in parsed.columns]

    # The whole dataset's columns (all splits); `indices` index into them. Used by the writer.
    @property
    def all_columns(self) -> Dict[str, list]:
        return self._parsed.columns

    @property
    def all_groups(self) -> List[str]:
        return self._parsed.groups

    @property
    def all_strata(self) -> List[str]:
        return self._parsed.strata or [""] * len(self._parsed.groups)

    @property
    def num_examples(self) -> int:
        return len(self.indices)

    @property
    def groups(self) -> List[str]:
        return [self._parsed.groups[i] for i in self.indices]

    def class_counts(self) -> Dict[str, Dict[str, int]]:
        return _count_classes(self.label_names, self._parsed.columns, self.indices)

    def identities(self) -> np.ndarray:
        if "identity" not in self._parsed.columns:
            return np.zeros(0, np.int64)
        return np.unique(np.asarray(self._parsed.columns["identity"], np.int64)[self.indices])

    def _images_with_subjects(self):
        columns = self._parsed.columns
        encoded = []
        for i in self.indices:
            with open(columns["image"][i], "rb") as handle:
                encoded.append(handle.read())
        expressions = columns.get("expression", np.zeros(len(columns["identity"]), np.int64))
        return tuple(np.asarray(columns[name] if name != "expression" else expressions, np.int64)[self.indices]
                     for name in ("identity", "expression", "lighting")) + (encoded,)

    def image_sizes(self) -> Dict[str, int]:
        sizes = collections.Counter(self._parsed.columns["image_size"][i] for i in self.indices)
        return dict(sorted(sizes.items()))

    @property
    def predefined_split(self) -> bool:
        """Whether the data names its own train/test split (--split_pattern)."""
        return self._parsed.split_of is not None

    @property
    def own_split_names(self) -> Tuple[str, ...]:
        """The sides of the data's own split that hold files: train, validation, test (or none)."""
        if not self.predefined_split:
            return ()
        present = set(self._parsed.split_of)
        return tuple(name for name in ("train", "validation", "test") if name in present)

    def stored_split(self, name):
        if name not in self.own_split_names:
            have = ", ".join(self.own_split_names) or "none (give --split_pattern)"
            raise DataError(f"{self._parsed.origin}: no {name!r} split of its own (its splits: {have})")
        sides = np.asarray([self._parsed.split_of[i] for i in self.indices])
        return ManifestSource(self.config, self._parsed, self.indices[sides == name], name)

    def split(self, holdout_fraction=None, seed=None):
        """(train, test) split by group, stratified by generator when the data has one; or the data's
        own split when --split_pattern gives one."""
        if self.predefined_split:
            # A validation side (FER2013's PublicTest) is in neither: training keeps to train and test.
            return self.stored_split("train"), self.stored_split("test")
        holdout_fraction, seed = self._resolve_split_args(holdout_fraction, seed)
        strata = self._parsed.strata
        train, test = splits.split_by_group(
            self.groups, holdout_fraction, seed,
            [strata[i] for i in self.indices] if strata is not None else None)
        return (ManifestSource(self.config, self._parsed, self.indices[train], "train"),
                ManifestSource(self.config, self._parsed, self.indices[test], "test"))

    def _uncached_shuffle_buffer(self) -> int:
        # Before decoding the elements are just paths and labels: shuffle them all.
        return max(1, self.num_examples)

    def _encoded_dataset(self, training, seed, input_context):
        indices = self.indices
        if training:
            # Manifests usually list one subject's images together. A cached pipeline shuffles decoded
            # images in a bounded buffer, which would keep each batch to a few neighbouring subjects;
            # reading the rows in a random order (the same on every input pipeline, before sharding)
            # makes every buffer a random sample.
            base_seed = seed - (input_context.input_pipeline_id if input_context is not None else 0)
            indices = indices[np.random.default_rng(base_seed).permutation(len(indices))]
        columns = {}
        for name in self.features:
            values = [self._parsed.columns[name][i] for i in indices]
            if name in tfrecord.INT_FEATURES:
                columns[name] = np.asarray(values, np.int32)
            elif name in tfrecord.MULTI_HOT_FEATURES:
                columns[name] = np.asarray(values, np.float32).reshape(len(values), len(self.label_names[name]))
            elif name in tfrecord.FLOAT_FEATURES:
                columns[name] = np.asarray(values, np.float32)
            else:
                columns[name] = np.asarray(values, dtype=object).astype(str)
        dataset = tf.data.Dataset.from_tensor_slices(columns)
        if input_context is not None:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        file_keys = [name for name in self.features if name in tfrecord.BYTES_FEATURES]

        def read_files(element):
            read = dict(element)
            for key in file_keys:
                read[key] = tf.io.read_file(element[key])
            return read

        return dataset.map(read_files, num_parallel_calls=AUTOTUNE)

    def left_out_lines(self) -> List[str]:
        """What the data leaves out on purpose (not faults), a line each: files a pattern leaves out, CelebA
        attribute rows without an image."""
        lines = []
        if self._parsed.excluded:
            lines.append(f"left out by --exclude_pattern / --split_pattern: {self._parsed.excluded} files")
        if self._parsed.rows_without_image:
            lines.append(f"rows of {self._parsed.origin} without an image (not used): "
                         f"{self._parsed.rows_without_image}")
        return lines

    def _extra_summary_lines(self):
        lines = ["image sizes: " + ", ".join(f"{s} ({n})" for s, n in self.image_sizes().items())]
        lines.extend(self.left_out_lines())
        if self.predefined_split:
            sides = [self._parsed.split_of[i] for i in self.indices]
            lines.append("the data's own split (--split_pattern): " + ", ".join(
                f"{name} {sides.count(name)}" for name in ("train", "validation", "test") if name in sides)
                + ("; training reads train and test only" if "validation" in sides else ""))
        columns = self._parsed.columns
        if "mean" in columns:
            means = np.asarray(columns["mean"])[self.indices]
            stds = np.asarray(columns["std"])[self.indices]
            lines.append(f"ratings: mean {means.min():g}..{means.max():g} (average {means.mean():.2f}), "
                         f"std {stds.min():g}..{stds.max():g}")
        if self.stratified:
            generators = collections.Counter(self._parsed.strata[i] for i in self.indices)
            lines.append("generators: " + ", ".join(f"{g or '(empty)'} {n}"
                                                    for g, n in sorted(generators.items())))
        if "depth_bits" in columns:
            bits = collections.Counter(columns["depth_bits"][i] for i in self.indices)
            lines.append("depth maps: " + ", ".join(f"{b}-bit {n}" for b, n in sorted(bits.items())))
        return lines


class TFRecordSource(Source):
    """Shards written by prepare_data. Records keep their group, so they can be re-split by group."""

    def __init__(self, config: DataConfig, metadata: dict, files: List[str], split_name: str,
                 record_filter: Optional[np.ndarray] = None):
        self.config = config
        self.metadata = metadata
        self.data_format = metadata["data_format"]
        self.label_names = {k: tuple(v) for k, v in metadata["label_names"].items()}
        self.faults = []
        self.features = list(metadata["features"])
        self.group_kind = metadata["group_kind"]
        self.stratified = metadata["stratified"]
        self.split_name = split_name
        self.files = files
        # Boolean per record of `files` (read in order) when this is a re-split subset.
        self.record_filter = record_filter
        self._index = None
        self._multi_hot_sizes = shard_format.multi_hot_sizes(self.features, self.label_names)

    @classmethod
    def open(cls, config: DataConfig) -> "TFRecordSource":
        return cls(config, *shard_format.open_shards(config), "all")

    def _index_columns(self) -> Dict[str, np.ndarray]:
        """Group, stratum and labels of every record in this source, read once in record order."""
        if self._index is None:
            labels = [name for name in self.features if name in LABEL_FEATURES]
            sizes = self._multi_hot_sizes
            dataset = self._records_in_order().map(
                lambda record: tfrecord.parse_index(record, labels, sizes), num_parallel_calls=AUTOTUNE)
            rows = list(dataset.as_numpy_iterator())
            self._index = {key: np.asarray([row[key] for row in rows])
                           for key in ("group", "stratum", *labels)}
            for key in ("group", "stratum"):
                self._index[key] = np.asarray([value.decode() for value in self._index[key]])
        return self._index

    def _records_in_order(self) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(self.files)
        if self.record_filter is None:
            return records
        keep = tf.constant(self.record_filter)
        return records.enumerate().filter(lambda i, _: keep[i]).map(lambda _, record: record)

    @property
    def num_examples(self) -> int:
        return shard_format.record_count(self.metadata, self.split_name, self.record_filter)

    @property
    def groups(self) -> List[str]:
        return list(self._index_columns()["group"])

    def class_counts(self):
        if self.record_filter is None and self.split_name != "all":
            return self.metadata["splits"][self.split_name]["class_counts"]
        index = self._index_columns()
        return _count_classes(self.label_names, index, np.arange(len(index["group"])))

    def identities(self) -> np.ndarray:
        if "identity" not in self.features:  # shards without subjects, or written before identities existed
            return np.zeros(0, np.int64)
        return np.unique(self._index_columns()["identity"].astype(np.int64))

    def _images_with_subjects(self):
        names = [name for name in ("identity", "expression", "lighting") if name in self.features]
        rows = self._records_in_order().map(lambda record: tfrecord.parse_record(record, ["image", *names]),
                                            num_parallel_calls=AUTOTUNE)
        columns = {name: [] for name in ("image", *names)}
        for row in rows.as_numpy_iterator():
            for name in columns:
                columns[name].append(row[name])
        zeros = np.zeros(len(columns["image"]), np.int64)
        return (*(np.asarray(columns.get(name, zeros), np.int64) for name in ("identity", "expression", "lighting")),
                columns["image"])

    def split(self, holdout_fraction=None, seed=None):
        """The stored train/test shards when prepare_data held out a split; else split by group.

        A stored split is returned for holdout_fraction None, 0 or the stored fraction; asking for
        another fraction is an error rather than a silent re-split across the stored one.
        """
        holdout_fraction, seed = self._resolve_split_args(holdout_fraction, seed)
        if self.split_name == "all" and self.record_filter is None:
            stored = shard_format.stored_split_files(self.metadata, self.config.data_path, holdout_fraction)
            if stored is not None:
                return tuple(TFRecordSource(self.config, self.metadata, stored[name], name) for name in ("train", "test"))
        index = self._index_columns()  # this source's records, in order
        base = (self.record_filter if self.record_filter is not None
                else np.ones(len(index["group"]), dtype=bool))
        filters = shard_format.resplit_filters(index["group"], list(index["stratum"]) if self.stratified else None,
                                               base, holdout_fraction, seed)
        subsets = []
        for name, record_filter in zip(("train", "test"), filters):
            subsets.append(TFRecordSource(self.config, self.metadata, self.files, name, record_filter))
        return tuple(subsets)

    def stored_split(self, name):
        stored = self.metadata["splits"]
        if name not in stored:
            raise DataError(f"{self.config.data_path}: no stored {name!r} split among the shards "
                            f"(stored: {', '.join(stored)})")
        if self.split_name != "all" or self.record_filter is not None:
            raise DataError(f"{self.config.data_path}: stored_split({name!r}) reads the opened shards, "
                            f"not their {self.split_name} part")
        return TFRecordSource(self.config, self.metadata,
                              [os.path.join(self.config.data_path, shard) for shard in stored[name]["shards"]], name)

    def _encoded_dataset(self, training, seed, input_context):
        pipelines = input_context.num_input_pipelines if input_context is not None else 1
        if self.record_filter is None and len(self.files) >= pipelines:
            files = tf.data.Dataset.from_tensor_slices(self.files)
            if input_context is not None:
                files = files.shard(pipelines, input_context.input_pipeline_id)
            if training:
                files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
            records = files.interleave(
                tf.data.TFRecordDataset, cycle_length=min(len(self.files), 8),
                num_parallel_calls=AUTOTUNE)
        else:
            records = self._records_in_order()
            if input_context is not None:
                records = records.shard(pipelines, input_context.input_pipeline_id)
        features, sizes = self.features, self._multi_hot_sizes
        return records.map(lambda record: tfrecord.parse_record(record, features, sizes),
                           num_parallel_calls=AUTOTUNE)

    def _extra_summary_lines(self):
        lines = []
        if self.split_name == "all" and self.record_filter is None:
            # Training reads train and test only; a stored validation split is for stored_split().
            lines.append("stored splits: " + ", ".join(
                f"{name} {split['num_records']}" for name, split in self.metadata["splits"].items()))
        return lines + [f"shards: {len(self.files)}",
                        f"skipped when the shards were written: {self.metadata['skipped']}"]


def open_source(config: DataConfig) -> Source:
    """Parses and validates the dataset config names; raises DataError under on_error="fail".

    Under on_error="skip" the faulty entries are left out, kept in `source.faults` and written to
    config.skipped_report when one is given.
    """
    if config.data_format == "tfrecord":
        return TFRecordSource.open(config)
    if not os.path.exists(config.data_path):
        raise DataError(f"{config.data_path}: data_path does not exist")
    parsed = celeba.parse(config) if config.data_format == "celeba" else manifests.parse(config)
    if config.apply_mask and "mask" not in parsed.columns and "depth" not in parsed.columns:
        raise DataError(f"{parsed.origin}: apply_mask needs a face mask (a `mask` column, or depth "
                        "for rgbd), and this data has none")
    if parsed.faults and config.skipped_report:
        write_fault_report(parsed.faults, config.skipped_report)
    return ManifestSource(config, parsed)


def distribute(strategy: tf.distribute.Strategy, source: Source, global_batch_size: int,
               training: bool, seed: int = 0, repeat: bool = True,
               start_step: int = 0) -> tf.distribute.DistributedDataset:
    """One input pipeline per worker, each batching its replicas' share of global_batch_size.

    `start_step` resumes the data stream where a run stopped (see `Source.dataset`)."""
    def dataset_fn(input_context):
        return source.dataset(global_batch_size, training=training, seed=seed, repeat=repeat,
                              input_context=input_context, start_step=start_step)

    return strategy.distribute_datasets_from_function(dataset_fn)
