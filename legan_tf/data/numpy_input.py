"""prepare_data's TFRecord shards as numpy batches, without TensorFlow: the JAX backend's input.

The JAX path must run where TensorFlow is not installed, so this module reads the shards itself: the
TFRecord framing (length, masked CRC-32C of the length, data, CRC of the data), a minimal parser of
the `tf.train.Example` protocol buffer, and Pillow for PNG and JPEG. It gives what
`legan_tf.data.pipeline` gives under TensorFlow: the same examples in each split, the same
preprocessing (centre square crop, antialiased bilinear resize to [-1, 1], nearest resize of
geometry maps, masks, flips), and in evaluation order the same examples in the same order.

Training order is this module's own: a seeded permutation per epoch and a seeded flip per example,
both pure functions of (seed, epoch, position). A resumed run (`start_step`) therefore reads the
batches an uninterrupted run would have read, and skipping costs no decoding. Examples decode on a
thread pool (Pillow releases the GIL while it decodes and resizes), a few batches ahead.
"""

from __future__ import annotations

import collections
import concurrent.futures
import copy
import io
import multiprocessing
import os
import struct
import warnings
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

from legan_tf.data import lighting_copies
from legan_tf.data.config import DataConfig
from legan_tf.data.errors import DataError
from legan_tf.data.shard_format import (BYTES_FEATURES, FLOAT_FEATURES, INT_FEATURES, MULTI_HOT_FEATURES,
                                        count_classes, counts_line, open_shards, record_count, resplit_filters,
                                        stored_split_files)

PREFETCH_BATCHES = 4
# Evaluation order under tf.data interleaves this many shards one record at a time (pipeline.py).
INTERLEAVE_CYCLE = 8

# --- TFRecord framing -----------------------------------------------------------------------------


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_spans(path: str) -> List[Tuple[int, int]]:
    """(offset, length) of every record's data in a TFRecord file.

    The length fields are checked against their CRCs and against the file's size, so a truncated or
    corrupt shard is an error naming the file. The data's own CRC is not computed (pure Python would
    read every image twice); a damaged image inside an intact frame fails in its decoder instead.
    """
    spans, offset = [], 0
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        while offset < size:
            header = handle.read(12)
            if len(header) < 12:
                raise DataError(f"{path}: truncated TFRecord file (a record header ends at byte {size})")
            length, length_crc = struct.unpack("<QI", header)
            if _masked_crc32c(header[:8]) != length_crc:
                raise DataError(f"{path}: corrupt TFRecord file (bad length checksum at byte {offset})")
            if offset + 12 + length + 4 > size:
                raise DataError(f"{path}: truncated TFRecord file (a record at byte {offset} runs past its end)")
            spans.append((offset + 12, length))
            offset += 12 + length + 4
            handle.seek(offset)
    return spans


# --- tf.train.Example, by the protocol buffer wire format -------------------------------------------


def _varint(data: bytes, position: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) of a message; value is an int or a bytes slice."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            value, position = data[position:position + length], position + length
        elif wire == 5:
            value, position = data[position:position + 4], position + 4
        elif wire == 1:
            value, position = data[position:position + 8], position + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _feature_value(feature: bytes):
    """The values of one Feature: a list of bytes, floats or ints."""
    for kind, _, content in _fields(feature):
        values = []
        for number, wire, value in _fields(content):
            if number != 1:
                continue
            if kind == 1:  # BytesList
                values.append(bytes(value))
            elif kind == 2:  # FloatList: packed or one fixed32 at a time
                values.extend(struct.unpack(f"<{len(value) // 4}f", value) if wire == 2 else
                              struct.unpack("<f", value))
            elif kind == 3:  # Int64List: packed or one varint at a time; negatives are 64-bit two's complement
                raw = []
                if wire == 2:
                    position = 0
                    while position < len(value):
                        number_value, position = _varint(value, position)
                        raw.append(number_value)
                else:
                    raw.append(value)
                values.extend(v - (1 << 64) if v >= 1 << 63 else v for v in raw)
        return values
    return []


def parse_example(data: bytes) -> Dict[str, list]:
    """A serialized tf.train.Example -> {feature name: list of values}."""
    parsed = {}
    for number, _, features in _fields(data):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(features):
            if entry_number != 1:
                continue
            key, value = None, b""
            for field, _, content in _fields(entry):
                if field == 1:
                    key = bytes(content).decode("utf-8")
                elif field == 2:
                    value = content
            parsed[key] = _feature_value(value)
    return parsed


# --- decoding and preprocessing (legan_tf.data.images and .preprocess, in numpy) -----------------------


def _open(encoded: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(encoded))
    image.load()
    return image


def decode_rgb(encoded: bytes) -> np.ndarray:
    """uint8 (H, W, 3); grey repeated, alpha composited over black (as images.decode_rgb)."""
    image = _open(encoded)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    color = pixels[..., :3 if pixels.shape[-1] >= 3 else 1].astype(np.float32)
    if pixels.shape[-1] % 2 == 0:
        color = np.round(color * (pixels[..., -1:].astype(np.float32) / 255.0))
    color = color.astype(np.uint8)
    return np.repeat(color, 3 // color.shape[-1], axis=-1)


def _decode_16bit(encoded: bytes) -> np.ndarray:
    """A one-channel PNG as uint16, 8-bit values scaled by 257 (as tf.io.decode_png with uint16)."""
    pixels = np.asarray(_open(encoded))
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    if pixels.dtype == np.uint8:
        return pixels.astype(np.uint16) * np.uint16(257)
    return pixels.astype(np.uint16)


def _center_crop(pixels: np.ndarray) -> np.ndarray:
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return pixels[top:top + side, left:left + side]


def _resize_bilinear(pixels: np.ndarray, size: int) -> np.ndarray:
    """float32 antialiased bilinear per channel (Pillow's triangle filter widens with the scale, as
    tf.image.resize's antialias does); no rounding to uint8 in between."""
    if pixels.shape[0] == size:
        return pixels.astype(np.float32)
    channels = [np.asarray(Image.fromarray(pixels[..., c].astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR)) for c in range(pixels.shape[-1])]
    return np.stack(channels, axis=-1)


def _resize_nearest(pixels: np.ndarray, size: int) -> np.ndarray:
    """Nearest neighbour with half-pixel centres, as tf.image.resize(method="nearest")."""
    side = pixels.shape[0]
    if side == size:
        return pixels
    index = np.minimum(np.floor((np.arange(size) + 0.5) * side / size).astype(np.int64), side - 1)
    return pixels[index][:, index]


def prepare(encoded: dict, image_size: int, apply_mask: bool) -> dict:
    """Encoded example -> model-ready example (legan_tf.data.preprocess.prepare)."""
    example = {name: value for name, value in encoded.items() if name not in BYTES_FEATURES}
    image = _resize_bilinear(_center_crop(decode_rgb(encoded["image"])), image_size)
    example["image"] = np.clip(image / 127.5 - 1.0, -1.0, 1.0).astype(np.float32)
    if "depth" in encoded:
        depth = _resize_nearest(_center_crop(_decode_16bit(encoded["depth"])), image_size)
        depth = (depth.astype(np.float32) / 65535.0)[..., None]
        example["depth"] = depth * 2.0 - 1.0
        example["mask"] = (depth > 0.0).astype(np.float32)
    elif "mask" in encoded:
        mask = _resize_nearest(_center_crop(np.asarray(_open(encoded["mask"]).convert("L"))), image_size)
        example["mask"] = (mask > 0).astype(np.float32)[..., None]
    if "normals" in encoded:
        normals = _resize_nearest(_center_crop(np.asarray(_open(encoded["normals"]).convert("RGB"))), image_size)
        example["normals"] = normals.astype(np.float32) / 127.5 - 1.0
    if apply_mask:
        example["image"] = np.where(example["mask"] > 0.5, example["image"], np.float32(-1.0))
    return example


def flip_horizontally(example: dict) -> dict:
    """Mirrors every pixel map left-right; mirrored normals point the other way along x."""
    flipped = dict(example)
    for name in ("image", "depth", "normals", "mask"):
        if name in example:
            flipped[name] = example[name][:, ::-1]
    if "normals" in example:
        flipped["normals"] = flipped["normals"] * np.float32([-1.0, 1.0, 1.0])
    return flipped


def read_example(span, features) -> dict:
    """The encoded example of one record: bytes for pixel maps, int32 labels, float32 (K,) multi-hot vectors,
    float32 ratings."""
    path, offset, length = span
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    try:
        parsed = parse_example(data)
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: a record at byte {offset} is not a tf.train.Example ({error})") from None
    example = {}
    for name in features:
        values = parsed.get(name)
        if not values:
            raise DataError(f"{path}: a record at byte {offset} has no {name!r}")
        if name in INT_FEATURES:
            example[name] = np.int32(values[0])
        elif name in MULTI_HOT_FEATURES:
            example[name] = np.asarray(values, np.float32)
        elif name in FLOAT_FEATURES:
            example[name] = np.float32(values[0])
        else:
            example[name] = values[0]
    return example


def load_example(item, features, image_size, apply_mask) -> dict:
    """(span, flip) -> one model-ready example; (span, flip, copy span or None, copy lighting id) -> the same
    with the face's copy under another light (`legan_tf.data.lighting_copies`; the face itself and -1 for none)."""
    span, flip, *paired = item
    example = _load_one(span, flip, features, image_size, apply_mask)
    if paired:
        copy_span, label = paired
        example[lighting_copies.COPY] = (example["image"] if copy_span is None else
                                         _load_one(copy_span, False, ["image"], image_size, False)["image"])
        example[lighting_copies.COPY_LABEL] = np.int32(label)
    return example


def _load_one(span, flip, features, image_size, apply_mask) -> dict:
    encoded = read_example(span, features)
    try:
        example = prepare(encoded, image_size, apply_mask)
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's words for bytes that are not an image
        path, offset, _ = span
        detail = "not a PNG or JPEG Pillow can read" if isinstance(error, Image.UnidentifiedImageError) else error
        raise DataError(f"{path}: the record at byte {offset} holds an image that does not decode ({detail}); "
                        f"prepare the shards again with scripts/prepare_data.py") from None
    return flip_horizontally(example) if flip else example


def _ignore_stop_signals():
    """In a worker process: Ctrl-C reaches the whole process group, but only the trainer decides when to
    stop (it finishes its step and checkpoints) and then ends the workers itself. A fork inherits the
    trainer's own SIGTERM handler (StopSignals, which only logs and asks for a checkpoint); a worker
    must die on SIGTERM like any process, so that `kill` and schedulers can end it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve(connection, function, arguments, siblings=()):
    """A worker process's loop: items in, (ok, batch or exception) out, until the pipe closes.
    `siblings`: the trainer's ends of this worker's pipe and of those forked before it, which the fork
    copied; closed, so that when the trainer dies (even by SIGKILL) every worker reads end of file."""
    _ignore_stop_signals()
    for other in siblings:
        other.close()
    while True:
        try:
            items = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, function(items, *arguments))
        except Exception as error:  # noqa: BLE001 -- handed to the trainer, which raises it
            reply = (False, error)
        try:
            connection.send(reply)
        except OSError:  # the trainer is gone
            return
        except Exception as error:  # an exception that does not pickle: its words still travel
            connection.send((False, DataError(f"{type(error).__name__}: {error}")))


class WorkerProcesses:
    """Forked decoding processes, each with a pipe of its own; batch i goes to worker i % n.

    Not multiprocessing.Pool: its workers share one result queue guarded by a cross-process lock, and
    terminate() kills workers that may hold that lock halfway through sending a batch larger than the
    pipe (a 32 px batch already is), after which its own handler threads wait on the lock for ever.
    CI saw Ctrl-C hang so under load, and left a worker waiting on that lock after its trainer was
    killed. Here no lock is shared, closing kills the workers outright, a worker that dies (killed, out
    of memory) is an error at the next batch instead of a wait for ever, and workers whose trainer died
    read end of file and exit.
    """

    def __init__(self, processes: int, function, arguments: tuple):
        context = multiprocessing.get_context("fork")
        self.workers = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # JAX's and Python's warning about forking threads
            for index in range(processes):
                ours, theirs = context.Pipe(duplex=True)
                # the fork copies every open descriptor, this worker's own trainer end included
                siblings = [connection for _, connection in self.workers] + [ours]
                process = context.Process(target=_serve, args=(theirs, function, arguments, siblings),
                                          name=f"legan-input-{index}", daemon=True)
                process.start()
                theirs.close()  # only the worker holds its end, so its death reads as end of file here
                self.workers.append((process, ours))

    def submit(self, index: int, items) -> None:
        process, connection = self.workers[index % len(self.workers)]
        try:
            connection.send(items)
        except OSError:  # BrokenPipeError: the worker is gone
            raise self._ended(process) from None

    def result(self, index: int):
        process, connection = self.workers[index % len(self.workers)]
        try:
            ok, value = connection.recv()
        except (EOFError, OSError):
            raise self._ended(process) from None
        if not ok:
            raise value
        return value

    @staticmethod
    def _ended(process) -> DataError:
        process.join(timeout=5)
        return DataError(f"input worker process {process.pid} ended (exit code {process.exitcode}) before sending "
                         f"its batch: killed from outside, or out of memory? --input_processes=0 decodes on "
                         f"threads in the trainer's process")

    def close(self) -> None:
        for process, _ in self.workers:
            if process.is_alive():
                process.kill()
        for process, connection in self.workers:
            process.join(timeout=10)
            connection.close()
        self.workers = []


def load_batch(items, features, image_size, apply_mask) -> Dict[str, np.ndarray]:
    """A whole batch in one worker process."""
    return _collate([load_example(item, features, image_size, apply_mask) for item in items])


# --- the source ---------------------------------------------------------------------------------------


class NumpySource:
    """A prepared dataset (or one split of it), read into numpy batches. Mirrors TFRecordSource."""

    def __init__(self, config: DataConfig, metadata: dict, files: List[str], split_name: str,
                 record_filter: Optional[np.ndarray] = None):
        self.config, self.metadata, self.files, self.split_name = config, metadata, files, split_name
        self.data_format = metadata["data_format"]
        self.label_names = {k: tuple(v) for k, v in metadata["label_names"].items()}
        self.features = list(metadata["features"])
        self.group_kind = metadata["group_kind"]
        self.stratified = metadata["stratified"]
        self.faults = []
        self.record_filter = record_filter
        self._spans = None
        self._index = None
        self._lighting_copies = None  # lighting_copies.copy_index over _spans_in_order(), once paired

    @classmethod
    def open(cls, config: DataConfig) -> "NumpySource":
        return cls(config, *open_shards(config), "all")

    # -- records -------------------------------------------------------------------------------------

    def _all_spans(self) -> List[Tuple[str, int, int]]:
        """(file, offset, length) of every record of `files`, in file order (before the filter)."""
        if self._spans is None:
            self._spans = [(path, offset, length) for path in self.files for offset, length in record_spans(path)]
        return self._spans

    def _spans_in_order(self) -> List[Tuple[str, int, int]]:
        spans = self._all_spans()
        if self.record_filter is None:
            return spans
        return [span for span, keep in zip(spans, self.record_filter) if keep]

    def _eval_order(self) -> List[Tuple[str, int, int]]:
        """The order tf.data reads an unfiltered split in: shards interleaved a record at a time."""
        if self.record_filter is not None or len(self.files) < 2:
            return self._spans_in_order()
        per_file = collections.OrderedDict((path, []) for path in self.files)
        for span in self._all_spans():
            per_file[span[0]].append(span)
        waiting = list(per_file.values())
        cycle = [collections.deque(waiting.pop(0)) for _ in range(min(INTERLEAVE_CYCLE, len(waiting)))]
        order = []
        while cycle:
            slot = 0
            while slot < len(cycle):
                if cycle[slot]:
                    order.append(cycle[slot].popleft())
                    slot += 1
                elif waiting:  # an exhausted shard's place goes to the next one
                    cycle[slot] = collections.deque(waiting.pop(0))
                else:
                    cycle.pop(slot)
        return order

    def _read(self, span) -> dict:
        return read_example(span, self.features)

    def _index_columns(self) -> Dict[str, np.ndarray]:
        """Group, stratum and labels of every record of `files` (before the filter), in record order."""
        if self._index is None:
            rows = collections.defaultdict(list)
            labels = [name for name in self.features if name in INT_FEATURES + MULTI_HOT_FEATURES]
            for path, offset, length in self._all_spans():
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    parsed = parse_example(handle.read(length))
                rows["group"].append(parsed["group"][0].decode())
                rows["stratum"].append(parsed["stratum"][0].decode())
                for name in labels:
                    rows[name].append(parsed[name] if name in MULTI_HOT_FEATURES else parsed[name][0])
            self._index = {key: np.asarray(values) for key, values in rows.items()}
        return self._index

    def _filtered(self, column: str) -> np.ndarray:
        values = self._index_columns()[column]
        return values if self.record_filter is None else values[self.record_filter]

    # -- what the trainer asks ------------------------------------------------------------------------

    @property
    def num_examples(self) -> int:
        return record_count(self.metadata, self.split_name, self.record_filter)

    @property
    def groups(self) -> List[str]:
        return list(self._filtered("group"))

    def class_counts(self) -> Dict[str, Dict[str, int]]:
        if self.record_filter is None and self.split_name != "all":
            return self.metadata["splits"][self.split_name]["class_counts"]
        return count_classes(self.label_names, {attribute: self._filtered(attribute) for attribute in self.label_names})

    def identities(self) -> np.ndarray:
        if "identity" not in self.features:
            return np.zeros(0, np.int64)
        return np.unique(self._filtered("identity").astype(np.int64))

    def with_lighting_copies(self) -> "NumpySource":
        """This source, whose training batches also hold each face's copy under another light
        (Source.with_lighting_copies of the tf.data reader)."""
        lighting_copies.check_pairable(self.features, self.label_names, self.config)
        paired = copy.copy(self)
        paired._lighting_copies = lighting_copies.copy_index(
            self._face_keys(), self._filtered("lighting"), len(self.label_names["lighting"]))
        return paired

    def _face_keys(self) -> np.ndarray:
        """`lighting_copies.face_keys` of the records of _spans_in_order()."""
        identities = self._filtered("identity")
        if "expression" not in self.label_names:
            return lighting_copies.face_keys(identities, np.zeros_like(identities), 1)
        return lighting_copies.face_keys(identities, self._filtered("expression"), len(self.label_names["expression"]))

    @property
    def pairable_faces(self) -> int:
        return lighting_copies.count_pairable(self._lighting_copies) if self._lighting_copies is not None else 0

    def split(self, holdout_fraction=None, seed=None) -> Tuple["NumpySource", "NumpySource"]:
        """The stored train/test shards when prepare_data held out a split; else split by group
        (TFRecordSource.split's rule, so both backends train and evaluate on the same examples)."""
        holdout_fraction = self.config.holdout_fraction if holdout_fraction is None else holdout_fraction
        seed = self.config.split_seed if seed is None else seed
        if self.split_name == "all" and self.record_filter is None:
            stored = stored_split_files(self.metadata, self.config.data_path, holdout_fraction)
            if stored is not None:
                return tuple(NumpySource(self.config, self.metadata, stored[name], name) for name in ("train", "test"))
        base = self.record_filter if self.record_filter is not None else np.ones(len(self._all_spans()), dtype=bool)
        filters = resplit_filters(self._filtered("group"), list(self._filtered("stratum")) if self.stratified else None,
                                  base, holdout_fraction, seed)
        subsets = []
        for name, record_filter in zip(("train", "test"), filters):
            subset = NumpySource(self.config, self.metadata, self.files, name, record_filter)
            subset._spans, subset._index = self._spans, self._index
            subsets.append(subset)
        return tuple(subsets)

    def summary(self) -> str:
        lines = [f"data_format: {self.data_format} (from TFRecord shards, read without TensorFlow)",
                 f"data_path: {os.path.abspath(self.config.data_path)}",
                 f"split: {self.split_name}",
                 f"examples: {self.num_examples} in {len(set(self.groups))} groups (by {self.group_kind})"]
        for attribute, counts in self.class_counts().items():
            lines.append(counts_line(attribute, counts))
        lines.append(f"shards: {len(self.files)}")
        return "\n".join(lines)

    def batches(self, batch_size: int, training: bool, seed: int = 0, repeat: bool = True, start_step: int = 0,
                num_workers: Optional[int] = None, processes: int = 0) -> Iterator[Dict[str, np.ndarray]]:
        """Batches of model-ready examples (dicts of float32 pixel maps in [-1, 1], int32 labels, float32 (B, K)
        multi-hot `attributes`).

        Training: a new seeded order every epoch, seeded flips (config.random_flip), the last partial
        batch dropped, and `start_step` continuing after that many batches. Evaluation: the tf.data
        reader's order, the last batch kept, `repeat` ignored. Decoding runs on `num_workers` threads
        (default: one per core) or, with `processes` > 0, in that many worker processes, a batch each.
        """
        spans = self._spans_in_order() if training else self._eval_order()
        if not spans:
            raise DataError(f"{self.config.data_path}: the {self.split_name} split has no examples")
        if training and len(spans) < batch_size:
            raise DataError(f"{self.config.data_path}: {len(spans)} training examples, fewer than one batch "
                            f"of {batch_size}")
        return self._batches(spans, batch_size, training, seed, repeat, start_step, num_workers, processes)

    def _plan(self, spans, batch_size, training, seed, repeat, start_step):
        """Batches as lists of (span, flip), lazily: which examples, never their pixels."""
        if not training:
            for start in range(0, len(spans), batch_size):
                yield [(span, False) for span in spans[start:start + batch_size]]
            return
        count, flips = len(spans), self.config.random_flip
        epochs = {}

        def epoch_draws(epoch):
            """(order, flip coins) of one epoch: functions of (seed, epoch) only."""
            if epoch not in epochs:
                epochs.clear()
                rng = np.random.default_rng([seed, epoch, 0x6C6567])
                epochs[epoch] = (rng.permutation(count), rng.integers(0, 2, count))
            return epochs[epoch]

        copies = self._lighting_copies
        if copies is not None:
            keys, lightings = self._face_keys(), self._filtered("lighting")
        position = start_step * batch_size
        while repeat or position + batch_size <= count:
            batch = []
            for k in range(position, position + batch_size):
                epoch, offset = divmod(k, count)
                order, coins = epoch_draws(epoch)
                item = (spans[order[offset]], bool(coins[offset]) and flips)
                if copies is not None:
                    # Drawn apart from the order and the flips, so pairing changes neither.
                    draw = np.random.default_rng([seed + lighting_copies.SEED_OFFSET, k]).integers(0, 2**62)
                    where, light = lighting_copies.choose(copies, int(keys[order[offset]]),
                                                          int(lightings[order[offset]]), draw)
                    item += (spans[where] if where >= 0 else None, light)
                batch.append(item)
            position += batch_size
            yield batch

    def _batches(self, spans, batch_size, training, seed, repeat, start_step, num_workers, processes):
        arguments = (self.features, self.config.image_size, self.config.apply_mask)
        plan = self._plan(spans, batch_size, training, seed, repeat, start_step)
        if processes:
            # Worker processes scale with cores where threads stop at the GIL (the parsing and the
            # small numpy steps between Pillow calls hold it). Forked, as PyTorch's DataLoader does:
            # a child runs only this module's numpy and Pillow code, never the parent's JAX or
            # TensorFlow, whose threads' locks are what forking a threaded process can leave held.
            # (Spawning would re-run the training script in every worker.)
            workers = WorkerProcesses(processes, load_batch, arguments)
            ahead = PREFETCH_BATCHES * max(1, processes // 2)
            submitted = collected = 0
            try:
                for batch in plan:
                    workers.submit(submitted, batch)
                    submitted += 1
                    if submitted - collected > ahead:
                        collected += 1
                        yield workers.result(collected - 1)
                while collected < submitted:
                    collected += 1
                    yield workers.result(collected - 1)
            finally:
                workers.close()
            return
        executor = concurrent.futures.ThreadPoolExecutor(num_workers or min(32, os.cpu_count() or 1),
                                                         thread_name_prefix="legan-input")
        pending = collections.deque()
        try:
            for batch in plan:
                pending.append([executor.submit(load_example, item, *arguments) for item in batch])
                if len(pending) > PREFETCH_BATCHES:
                    yield _collate([future.result() for future in pending.popleft()])
            while pending:
                yield _collate([future.result() for future in pending.popleft()])
        finally:
            executor.shutdown(wait=False, cancel_futures=True)


def _collate(examples: List[dict]) -> Dict[str, np.ndarray]:
    return {name: np.stack([example[name] for example in examples]) for name in examples[0]}


def open_numpy_source(config: DataConfig) -> NumpySource:
    """The JAX path's source: prepared shards only (`scripts/prepare_data.py` writes them)."""
    if config.data_format != "tfrecord":
        raise DataError(f"--data_format={config.data_format}: the JAX backend reads the TFRecord shards of "
                        "scripts/prepare_data.py (run it on this data with --output_dir=<folder>, then train with "
                        "--data_format=tfrecord --data_path=<folder>); converting on the fly needs TensorFlow.")
    return NumpySource.open(config)
