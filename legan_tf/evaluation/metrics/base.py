"""What every metric shares: the result record, the base class, the registry and input handling.

A metric is a class registered under a name. An instance is one evaluation: it is configured by its
constructor (the networks or weights files it `requires`), fed batches with `update(**batch)` (the
data keys it `needs`), and asked for its `result()`. `compute(**inputs)` does the three at once for
inputs held in memory or given as iterables of batches.

Data keys (images are float32 NHWC in [-1, 1], the project's convention):

  outputs         the generated images
  reals           real faces: FID/KID's reference set, the quality score's real-face baseline
  targets_paired  the ground truth of each output, row by row (a paired set or a reconstruction)
  inputs          the input face of each output, row by row
  target_labels   the requested class of each output: (B,) ints or (B, C) one-hot, or a dict
                  attribute -> such an array

Every way a metric cannot be computed that is not a mistake in the call (no weights, no network
given, no paired truth fed) gives a result with `available=False` and a `reason`, never an exception
that would end a whole report; a file that is given but broken is a `legan_tf.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Dict, Iterable, Iterator, List, Mapping, Optional

import numpy as np

from legan_tf.errors import ConfigError

# Images may overshoot [-1, 1] by float rounding of a tanh or of a resize; more than this is a wrong scale.
RANGE_TOLERANCE = 1e-3
DEFAULT_BATCH_SIZE = 64


# --- the result record ----------------------------------------------------------------------------

def _to_jsonable(value):
    """Plain Python types that `json.dumps(..., allow_nan=False)` accepts; inf/nan become "inf"/"-inf"/"nan"."""
    if isinstance(value, Mapping):
        return {str(key): _to_jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _from_jsonable(value):
    if isinstance(value, dict):
        return {key: _from_jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(item) for item in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


@dataclasses.dataclass
class MetricResult:
    """The outcome of one metric on one model.

    metric     the registry name
    available  False when the metric could not be computed; `reason` then says why and what to do
    values     the figures, a flat dict name -> float ("fid", "kid", "kid_standard_error", "accuracy/expression", ...)
    protocol   how they were computed: image size, resize filter, sample counts, weights source, ...
    arrays     data for plots: per-pair scores, confusion matrices (lists or numpy arrays)
    notes      what a reader should know (a regularised covariance, an identity network used in training)
    """

    metric: str
    available: bool
    values: Dict[str, float] = dataclasses.field(default_factory=dict)
    reason: str = ""
    protocol: Dict[str, Any] = dataclasses.field(default_factory=dict)
    arrays: Dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: List[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        """A dict of plain types for `json.dump`; non-finite floats (PSNR of identical images) become
        the strings "inf", "-inf", "nan", so the text is strict JSON. `from_json` reverses it."""
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: Mapping) -> "MetricResult":
        data = _from_jsonable(dict(data))
        return cls(**data)

    @classmethod
    def unavailable(cls, metric: str, reason: str, protocol: Optional[dict] = None) -> "MetricResult":
        return cls(metric=metric, available=False, reason=reason, protocol=dict(protocol or {}))


class Unavailable(Exception):
    """Raised inside this package when a metric cannot be had (no weights, no download); metrics turn
    it into an unavailable result. Never raised to the caller of `Metric`'s methods."""


# --- the registry ---------------------------------------------------------------------------------

_REGISTRY: Dict[str, type] = {}


def register(name: str):
    """Class decorator: files a `Metric` subclass under `name` (sets its `name`)."""
    def decorate(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"metric {name!r} is registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return decorate


def get(name: str) -> type:
    """The metric class registered under `name`; a ConfigError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(names())}.") from None


def names() -> tuple:
    """The registered metric names, sorted."""
    return tuple(sorted(_REGISTRY))


# --- the base class -------------------------------------------------------------------------------

class Metric:
    """One evaluation of one metric. Subclasses set the class attributes and `_update`/`_result`.

    Class attributes:
      name         the registry name (set by `register`)
      description  one line for a report
      needs        the data keys `update` must get (see the module docstring)
      optional     data keys it also takes (the quality score's `reals`)
      requires     the constructor arguments that name networks or weights; without them the
                   result is unavailable
      paired       True when the data keys of one `update` call are aligned row by row (then every
                   needed key comes in the same call); False when they are separate sets (FID's
                   outputs and reals may come in different calls, in different numbers)

    Constructor keywords every metric takes: `batch_size` (the largest batch sent through a network
    at once; bigger arrays given to `update` are split) and `context` (a dict merged into the
    result's protocol: the reference split, the model's name, anything the caller wants kept).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs: ClassVar[frozenset] = frozenset()
    optional: ClassVar[frozenset] = frozenset()
    requires: ClassVar[tuple] = ()
    paired: ClassVar[bool] = True
    # Set by a subclass constructor (before calling this one) when it cannot compute anything.
    unavailable_reason: str = ""

    def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE, context: Optional[Mapping] = None):
        if batch_size < 1:
            raise ValueError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.context = dict(context or {})
        self.reset()

    # -- what subclasses implement --
    def reset(self) -> None:
        """Forgets everything fed so far."""

    def _update(self, batch: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _result(self) -> MetricResult:
        raise NotImplementedError

    def protocol(self) -> dict:
        """How the metric computes (sizes, filters, weights); the result adds sample counts."""
        return {}

    # -- the public interface --
    @property
    def available(self) -> bool:
        """False when the constructor already knows the result will be unavailable (then `update` is free)."""
        return not self.unavailable_reason

    def update(self, **batch) -> None:
        """Feeds one batch: keyword arguments among `needs` and `optional` (all of `needs` at once when `paired`)."""
        unknown = set(batch) - set(self.needs) - set(self.optional)
        if unknown:
            raise ValueError(f"{self.name}: unknown input(s) {sorted(unknown)}; it takes "
                             f"{sorted(set(self.needs) | set(self.optional))}")
        batch = {key: value for key, value in batch.items() if value is not None}
        if self.paired and batch:
            missing = set(self.needs) - set(batch)
            if missing:
                raise ValueError(f"{self.name}: a batch needs {sorted(self.needs)} together (row by row); "
                                 f"missing {sorted(missing)}")
            lengths = {key: _length(value) for key, value in batch.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"{self.name}: the inputs of a batch differ in length: {lengths}")
        if not batch or not self.available:
            return
        self._update(batch)

    def result(self) -> MetricResult:
        """The result over everything fed since construction or `reset()`."""
        protocol = {**self.protocol(), **self.context}
        if not self.available:
            return MetricResult.unavailable(self.name, self.unavailable_reason, protocol)
        result = self._result()
        result.protocol = {**protocol, **result.protocol}
        return result

    def compute(self, **inputs) -> MetricResult:
        """`reset()`, feed `inputs` (arrays, dicts of arrays, or iterables of such batches) in batches
        of `batch_size`, and return the `result()`. Paired inputs are split and zipped row by row."""
        self.reset()
        inputs = {key: value for key, value in inputs.items() if value is not None}
        if self.paired:
            streams = {key: iter_batches(value, self.batch_size) for key, value in inputs.items()}
            for parts in _zip_strict(streams):
                self.update(**parts)
        else:
            for key, value in inputs.items():
                for part in iter_batches(value, self.batch_size):
                    self.update(**{key: part})
        return self.result()


def update_all(metrics: Iterable[Metric], **batch) -> None:
    """Feeds one batch to several metrics, each getting the keys it takes (an unpaired metric gets
    whatever keys it takes; a paired one only when all of its `needs` are in the batch)."""
    for metric in metrics:
        takes = set(metric.needs) | set(metric.optional)
        part = {key: value for key, value in batch.items() if key in takes and value is not None}
        if metric.paired and not set(metric.needs) <= set(part):
            continue
        if part:
            metric.update(**part)


# --- inputs ---------------------------------------------------------------------------------------

def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _length(value) -> int:
    if isinstance(value, Mapping):
        lengths = {_length(item) for item in value.values()}
        if len(lengths) != 1:
            raise ValueError(f"the arrays of a dict input differ in length: {sorted(lengths)}")
        return lengths.pop()
    return int(value.shape[0]) if _is_array(value) else len(value)


def iter_batches(value, batch_size: int) -> Iterator:
    """An array (or a dict of arrays, or a list of numbers) in slices of `batch_size` rows; any other
    iterable (a list of arrays, a generator, a tf.data.Dataset) as the batches it yields."""
    if isinstance(value, (list, tuple)) and value and np.isscalar(value[0]):
        value = np.asarray(value)
    if isinstance(value, Mapping):
        value = {key: np.asarray(item) if isinstance(item, (list, tuple)) else item for key, item in value.items()}
    if _is_array(value) or (isinstance(value, Mapping) and all(_is_array(item) for item in value.values())):
        count = _length(value)
        for start in range(0, count, batch_size):
            if isinstance(value, Mapping):
                yield {key: item[start:start + batch_size] for key, item in value.items()}
            else:
                yield value[start:start + batch_size]
        return
    yield from value


def _zip_strict(streams: Dict[str, Iterator]) -> Iterator[Dict[str, Any]]:
    keys = list(streams)
    iterators = [iter(streams[key]) for key in keys]
    while True:
        parts, ended = {}, []
        for key, iterator in zip(keys, iterators):
            try:
                parts[key] = next(iterator)
            except StopIteration:
                ended.append(key)
        if ended:
            if len(ended) != len(keys):
                raise ValueError(f"paired inputs ran out at different batches: {sorted(ended)} ended first")
            return
        yield parts


def as_images(images, what: str = "images") -> np.ndarray:
    """float32 NHWC in [-1, 1] (1 or 3 channels), or a ValueError that says what is wrong."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{what}: expected NHWC images with 1 or 3 channels, got shape {images.shape}")
    if images.size:
        low, high = float(images.min()), float(images.max())
        if low < -1.0 - RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
            raise ValueError(f"{what}: values in [{low:.3g}, {high:.3g}]; images must be in [-1, 1] "
                             "(x / 127.5 - 1 for 8-bit images)")
    return images


def as_numpy(value) -> np.ndarray:
    """A network's output (tensor, array) as a numpy array."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def resize_images(images: np.ndarray, size, method: str = "bilinear", antialias: bool = True) -> np.ndarray:
    """`tf.image.resize` to (size, size) (or an (H, W) pair); no-op when the images already have it."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if images.shape[1:3] == (height, width):
        return images
    import tensorflow as tf

    return tf.image.resize(images, (height, width), method=method, antialias=antialias).numpy()


def model_image_size(model) -> Optional[int]:
    """The square input size a project network requires (`image_size`: QualityModel, AttributeClassifier), if
    any. Networks that resize for themselves (IdentityEmbedder, with `input_size`) are left to do so."""
    size = getattr(model, "image_size", None)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return int(size)
    return None


def fit_to_model(images: np.ndarray, model, protocol: dict) -> np.ndarray:
    """Resizes images to the input size `model` declares (bilinear, antialiased) and records it in `protocol`."""
    size = model_image_size(model)
    if size is None or images.shape[1:3] == (size, size):
        return images
    protocol["model_input_resize"] = {"from": list(images.shape[1:3]), "to": [size, size],
                                      "filter": "bilinear, antialiased (tf.image.resize)"}
    return resize_images(images, size)


def call_in_batches(function, images: np.ndarray, batch_size: int):
    """`function` over slices of `batch_size` rows; array outputs are concatenated, dict outputs per key."""
    parts = [function(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
    if not parts:
        raise ValueError("call_in_batches: no images")
    if isinstance(parts[0], Mapping):
        return {key: np.concatenate([as_numpy(part[key]) for part in parts]) for key in parts[0]}
    return np.concatenate([as_numpy(part) for part in parts])


def call_model(model, images):
    """Calls a Keras model in inference mode, or any other callable with the images only."""
    import keras

    if isinstance(model, keras.Model):
        return model(images, training=False)
    return model(images)
