"""The feature network V of the perceptual loss (Bodur et al., WACV 2021, eq. 10), pluggable.

`build_feature_network(spec, weights, image_size, input_channels)` returns a frozen
`FeatureNetwork`: maps in [-1, 1] of shape (B, image_size, image_size, input_channels) -> a list of
feature maps, for `legan_tf.losses.perceptual_loss(V(true_depth), V(predicted_depth))`. Depth maps
have 1 channel, which is repeated to 3; normal maps and RGB have 3.

`spec`:

- `"vgg19"` (the paper's network): `keras.applications.VGG19` without its classifier, with weights
  from `weights`: `"imagenet"` (Keras' download, cached in `$KERAS_HOME/models`, default
  `~/.keras/models`; a cached file is used without the network) or the path of a local weights file
  (the official `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, or a `.weights.h5` that Keras
  wrote for `VGG19(include_top=False)`). Maps go from [-1, 1] to 0..255 RGB and then through
  `keras.applications.vgg19.preprocess_input` (BGR, ImageNet mean subtracted), as VGG was trained.
  Features: the last convolution of each of the five blocks, after its ReLU (`VGG19_FEATURE_LAYERS`:
  relu1_2, relu2_2, relu3_4, relu4_4, relu5_4). The paper does not name its layers; these give one
  map per scale, each the most processed one at its resolution, the usual choice for VGG19 (SRGAN's
  "VGG54" is the last; style and perceptual losses use the set). VGG19 needs inputs of >= 32 px, and
  then the deepest of these maps is 2x2 (32 / 16), so none is ever smaller than 1x1.
- a path to a `.keras` file: your own feature network, loaded with `keras.models.load_model` (safe
  mode). It receives the maps as given, in [-1, 1] (a 1-channel map repeated to 3 when the network
  takes 3 channels), and does its own preprocessing; all its outputs are the features. A saved
  `FeatureNetwork` (e.g. this VGG19 one, saved where the ImageNet weights could be downloaded) also
  works, with its preprocessing.
- `"none"`: no feature network (returns None): train without the perceptual loss.

Nothing here falls back to random weights: every way the network cannot be had is a `ConfigError`
naming the flags (`flag_names`) and what to do. Offline, Keras' download fails with a bare
`Exception("URL fetch failure on <url>: None -- [Errno -2] Name or service not known")` within a
second when DNS fails; where connections hang instead (a firewall that drops packets), the download
runs under a socket timeout of `DOWNLOAD_TIMEOUT_S` per connect or read, not Python's default of none.
Downloading, the cache and checking that a weights file set every variable are
`legan_tf.models.weights`' (shared with FID/KID's Inception-v3).
"""

import os

import keras
import numpy as np

from legan_tf.errors import ConfigError
from legan_tf.models.weights import (DOWNLOAD_TIMEOUT_S, keras_cache_download, keras_cache_path, load_all_weights,
                                     short_error)

VGG19_FEATURE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4")
VGG19_MIN_SIZE = 32
# keras.applications.vgg19's own download of the notop weights, and the MD5 it checks.
VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_NOTOP_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{VGG19_NOTOP_FILE}"
VGG19_NOTOP_MD5 = "253f8cb515780f3b799900260a226db6"
VGG19_NOTOP_NETWORK = "VGG19(include_top=False)"
PREPROCESSING = ("none", "vgg19")
DEFAULT_FLAG_NAMES = ("--perceptual_net", "--perceptual_weights")


@keras.saving.register_keras_serializable(package="legan_tf")
class FeatureNetwork(keras.Model):
    """V of the perceptual loss: maps in [-1, 1] (B, H, W, input_channels) -> a list of feature maps.

    Wraps an `extractor` (any Keras model; its outputs, one or several, are the features). A
    1-channel input is repeated to 3 when the extractor takes 3 channels. `preprocessing="vgg19"`
    maps [-1, 1] to 0..255 RGB and applies `keras.applications.vgg19.preprocess_input`; `"none"`
    passes the maps on as they are. Always returns a list, also for an extractor with one output.
    """

    def __init__(self, extractor, input_channels, preprocessing="none", **kwargs):
        super().__init__(**kwargs)
        if isinstance(extractor, dict):
            extractor = keras.saving.deserialize_keras_object(extractor)
        if input_channels not in (1, 3):
            raise ValueError(f"FeatureNetwork: input_channels must be 1 or 3, got {input_channels!r}.")
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"FeatureNetwork: preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}.")
        self.extractor = extractor
        self.input_channels = int(input_channels)
        self.preprocessing = preprocessing
        shape = _single_input_shape(extractor)
        self.extractor_channels = shape[-1] if shape is not None and shape[-1] is not None else self.input_channels

    def build(self, input_shape):
        if not self.extractor.built:
            self.extractor.build((input_shape[0], input_shape[1], input_shape[2], self.extractor_channels))

    def call(self, maps):
        if maps.shape[-1] != self.input_channels:
            raise ValueError(f"FeatureNetwork: expected maps with {self.input_channels} channel(s), "
                             f"got shape {tuple(maps.shape)}.")
        inputs = maps
        if self.input_channels == 1 and self.extractor_channels == 3:
            inputs = keras.ops.repeat(inputs, 3, axis=-1)
        if self.preprocessing == "vgg19":
            inputs = keras.applications.vgg19.preprocess_input((inputs + 1.0) * 127.5)
        features = self.extractor(inputs)
        if isinstance(features, dict):
            return list(features.values())
        if isinstance(features, (list, tuple)):
            return list(features)
        return [features]

    def get_config(self):
        config = super().get_config()
        config.update(extractor=keras.saving.serialize_keras_object(self.extractor),
                      input_channels=self.input_channels, preprocessing=self.preprocessing)
        return config


def _single_input_shape(model):
    """The shape of a model's one input, or None when the model does not declare it."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    return tuple(inputs[0].shape)


def build_feature_network(spec, weights, image_size, input_channels, flag_names=DEFAULT_FLAG_NAMES):
    """The frozen feature network named by `spec` (see the module docstring), or None for "none".

    Raises ConfigError, naming `flag_names` (the spec's flag, the weights' flag), when it cannot be had.
    """
    net_flag, weights_flag = flag_names
    spec = (spec or "").strip()
    if input_channels not in (1, 3):
        raise ValueError(f"build_feature_network: input_channels must be 1 (depth) or 3 (normals, RGB), "
                         f"got {input_channels!r}.")
    if spec.lower() == "none":
        return None
    if spec.lower() == "vgg19":
        network = _vgg19_network(weights, image_size, input_channels, net_flag, weights_flag)
    elif spec.endswith(".keras"):
        if weights not in (None, "", "imagenet"):
            raise ConfigError(f"{weights_flag}={weights}: only {net_flag}=vgg19 takes weights; the feature "
                              f"network {spec} carries its own. Leave {weights_flag} out.")
        network = _keras_file_network(spec, image_size, input_channels, net_flag)
    else:
        raise ConfigError(f"{net_flag}={spec!r}: unknown feature network; give vgg19, the path of your own "
                          f"feature network as a .keras file, or {net_flag}=none to train without the "
                          "perceptual loss.")
    network.trainable = False
    return network


# --- VGG19 ---------------------------------------------------------------------------------------

def _vgg19_network(weights, image_size, input_channels, net_flag, weights_flag):
    local_file = f"{weights_flag}=<a local {VGG19_NOTOP_FILE} or .weights.h5 of VGG19(include_top=False)>"
    offline_hint = f"give {local_file}, or {net_flag}=none to train without the perceptual loss"
    if image_size < VGG19_MIN_SIZE:
        raise ConfigError(f"{net_flag}=vgg19 needs images of at least {VGG19_MIN_SIZE} px, VGG19's smallest "
                          f"input; --image_size is {image_size}. Train at {VGG19_MIN_SIZE} px or more, give "
                          f"your own feature network as a .keras file, or {net_flag}=none to train without "
                          "the perceptual loss.")
    weights = (weights or "").strip()
    if not weights:
        raise ConfigError(f"{net_flag}=vgg19 needs {weights_flag}: imagenet (downloaded once, on a machine with "
                          f"internet), {local_file}, or {net_flag}=none to train without the perceptual loss.")
    if weights == "imagenet":
        path = _imagenet_weights_file(weights_flag, offline_hint)
        described = f"{weights_flag}=imagenet ({path})"
    else:
        path = weights
        described = f"{weights_flag}={path}"
        if not os.path.isfile(path):
            raise ConfigError(f"{described}: weights file not found; {offline_hint}.")
        if not path.endswith((".h5", ".hdf5")):
            raise ConfigError(f"{described}: not a weights file (.h5 as published, or .weights.h5 written by "
                              f"Keras); {offline_hint}.")
    vgg = keras.applications.VGG19(include_top=False, weights=None,
                                   input_shape=(image_size, image_size, 3))
    load_all_weights(vgg, path, described, VGG19_NOTOP_NETWORK, offline_hint)
    layers = [name for name in VGG19_FEATURE_LAYERS
              if all(size is None or size >= 1 for size in vgg.get_layer(name).output.shape[1:3])]
    extractor = keras.Model(vgg.input, [vgg.get_layer(name).output for name in layers], name="vgg19_features")
    network = FeatureNetwork(extractor, input_channels, preprocessing="vgg19", name="perceptual_vgg19")
    network.build((None, image_size, image_size, input_channels))
    return network


def _imagenet_weights_file(weights_flag, offline_hint):
    """Keras' cached VGG19 notop weights, downloading them (once) when absent or not the published file."""
    try:
        # DOWNLOAD_TIMEOUT_S read at call time, so that it can be changed on this module.
        return keras_cache_download(VGG19_NOTOP_FILE, VGG19_NOTOP_URL, VGG19_NOTOP_MD5, timeout_s=DOWNLOAD_TIMEOUT_S)
    except Exception as error:  # get_file raises a bare Exception for URL failures
        raise ConfigError(f"{weights_flag}=imagenet: cannot download VGG19's ImageNet weights "
                          f"({type(error).__name__}: {error}). On a machine with internet, download "
                          f"{VGG19_NOTOP_URL} and copy it to {keras_cache_path(VGG19_NOTOP_FILE)}, or "
                          f"{offline_hint}.") from None


# --- your own network ----------------------------------------------------------------------------

def _keras_file_network(path, image_size, input_channels, net_flag):
    hint = f"or {net_flag}=none to train without the perceptual loss"
    if not os.path.isfile(path):
        raise ConfigError(f"{net_flag}={path}: feature network not found; give an existing .keras file, "
                          f"{net_flag}=vgg19, {hint}.")
    try:
        loaded = keras.models.load_model(path)
    except Exception as error:  # zip, config and deserialisation errors have many types
        raise ConfigError(f"{net_flag}={path}: cannot load it as a Keras model ({type(error).__name__}: "
                          f"{short_error(error)}); give a .keras file saved by model.save (a network with "
                          f"legan_tf layers needs `import legan_tf`), {hint}.") from None
    if isinstance(loaded, FeatureNetwork):
        extractor, preprocessing = loaded.extractor, loaded.preprocessing
    else:
        extractor, preprocessing = loaded, "none"
    maps = (None, image_size, image_size, input_channels)
    shape = _single_input_shape(extractor)
    if shape is not None:
        fits = (len(shape) == 4 and all(size is None or size == image_size for size in shape[1:3])
                and shape[3] in (input_channels, 3 if input_channels == 1 else input_channels))
        if not fits:
            raise ConfigError(f"{net_flag}={path}: the network takes inputs of shape {shape}, but the maps are "
                              f"{maps} (--image_size={image_size}, {input_channels} channel(s); a 1-channel map "
                              f"can feed a 3-channel network). Give a network for this size, {hint}.")
    network = FeatureNetwork(extractor, input_channels, preprocessing=preprocessing, name="perceptual_features")
    try:
        features = network(np.zeros((1, image_size, image_size, input_channels), np.float32))
    except Exception as error:
        raise ConfigError(f"{net_flag}={path}: the network fails on maps of shape {maps} "
                          f"({type(error).__name__}: {short_error(error)}); {hint}.") from None
    if not features or any(len(feature.shape) < 2 for feature in features):
        raise ConfigError(f"{net_flag}={path}: the network's outputs are not feature maps with a batch axis "
                          f"({[tuple(feature.shape) for feature in features]}); {hint}.")
    return network
