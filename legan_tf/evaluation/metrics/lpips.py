"""LPIPS (Zhang et al. 2018, v0.1): the learned perceptual distance of the outputs to their paired ground truth.

    LPIPS(x, y) = sum_l mean_{h,w} sum_c w_{l,c} (n_l(x) - n_l(y))^2_{h,w,c},   n_l(x) = f_l(x) / (|f_l(x)|_c + 1e-10)

where f_l are five ReLU feature maps of an ImageNet backbone (torchvision's VGG16: relu1_2, relu2_2,
relu3_3, relu4_3, relu5_3; or AlexNet: relu1..relu5) of the input scaled as LPIPS does,
(x - shift) / scale on [-1, 1] RGB, and w_l the learned non-negative linear layers. Images are
compared at their own size (no resize); VGG needs >= 16 px, AlexNet >= 31 px.

Weights. The official weights are PyTorch files: the linear layers in the lpips package
(`lpips/weights/v0.1/vgg.pth`, `alex.pth`) and the backbone in torchvision's ImageNet checkpoints
(`vgg16-397923af.pth`, `alexnet-owt-7be5be79.pth`); the Keras VGG16 weights are another network
(Caffe's) and would give other numbers. Nothing is downloaded here: LPIPS runs from one local .npz
holding both, under their PyTorch names, as PyTorch lays them out:

    features.<i>.weight  (out, in, kh, kw)   features.<i>.bias  (out,)   the backbone's convolutions,
                         i = 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 (VGG16) or 0, 3, 6, 8, 10 (AlexNet)
    lin<k>.model.1.weight  (1, C_k, 1, 1)    the linear layer of feature map k = 0..4

The backbone is recognised from the convolutions' indices. To make the file, where torch is installed (it is not a
dependency of this project):

    import numpy as np, torch
    from legan_tf.evaluation.metrics.lpips import merge_state_dicts
    backbone = torch.load("vgg16-397923af.pth", map_location="cpu", weights_only=True)  # torchvision's file
    linear = torch.load("vgg.pth", map_location="cpu", weights_only=True)               # lpips v0.1's file
    arrays = merge_state_dicts({k: v.numpy() for k, v in backbone.items()},
                               {k: v.numpy() for k, v in linear.items()})
    np.savez("lpips_vgg.npz", **arrays)

(torchvision's checkpoints download from https://download.pytorch.org/models/; the lpips files ship in
the `lpips` pip package.) Without such a file the metric is unavailable, never computed with random
weights; a file given that does not hold a whole LPIPS network is a ConfigError. A file whose
widths are not the published ones (a test's small network) is computed but noted as not comparable.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Mapping

import numpy as np

from legan_tf.errors import ConfigError
from legan_tf.evaluation.metrics.base import Metric, MetricResult, as_images, register
from legan_tf.models.weights import load_npz_arrays

# LPIPS' ScalingLayer constants, for RGB in [-1, 1].
SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)
NORM_EPS = 1e-10
DEFAULT_FLAG_NAME = "--lpips_weights"

# Backbones as torchvision's `features` lay them out: ("conv", index, kernel, stride, padding, tapped after
# its ReLU) or ("pool", kernel, stride). Max pools are 'valid' (PyTorch's default floor mode).
_VGG16 = (
    ("conv", 0, 3, 1, 1, False), ("conv", 2, 3, 1, 1, True), ("pool", 2, 2),
    ("conv", 5, 3, 1, 1, False), ("conv", 7, 3, 1, 1, True), ("pool", 2, 2),
    ("conv", 10, 3, 1, 1, False), ("conv", 12, 3, 1, 1, False), ("conv", 14, 3, 1, 1, True), ("pool", 2, 2),
    ("conv", 17, 3, 1, 1, False), ("conv", 19, 3, 1, 1, False), ("conv", 21, 3, 1, 1, True), ("pool", 2, 2),
    ("conv", 24, 3, 1, 1, False), ("conv", 26, 3, 1, 1, False), ("conv", 28, 3, 1, 1, True),
)
_ALEXNET = (
    ("conv", 0, 11, 4, 2, True), ("pool", 3, 2),
    ("conv", 3, 5, 1, 2, True), ("pool", 3, 2),
    ("conv", 6, 3, 1, 1, True), ("conv", 8, 3, 1, 1, True), ("conv", 10, 3, 1, 1, True),
)
BACKBONES = {"vgg": _VGG16, "alex": _ALEXNET}
PUBLISHED_WIDTHS = {"vgg": (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512),
                    "alex": (64, 192, 384, 256, 256)}
# The conv indices only one of the two backbones has (both have 0 and 10): they tell which one a file holds.
_OWN_CONVS = {"vgg": (2, 5, 7, 12, 14, 17, 19, 21, 24, 26, 28), "alex": (3, 6, 8)}
_LIN_KEY = re.compile(r"^lin(\d)\.model\.\d+\.weight$")


def _convs(net):
    return [layer for layer in BACKBONES[net] if layer[0] == "conv"]


def merge_state_dicts(backbone: Mapping[str, np.ndarray], linear: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The arrays of an LPIPS .npz: the backbone's `features.*` (its classifier dropped) and the `lin*` layers."""
    arrays = {key: np.asarray(value, np.float32) for key, value in backbone.items() if key.startswith("features.")}
    arrays.update({key: np.asarray(value, np.float32) for key, value in linear.items() if _LIN_KEY.match(key)})
    return arrays


class LPIPSNetwork:
    """The LPIPS network from its arrays (PyTorch layout, see the module docstring); call it on two image
    batches in [-1, 1] to get (B,) distances. `net` is "vgg" or "alex"; `widths` the conv widths found."""

    def __init__(self, arrays: Mapping[str, np.ndarray], described: str = "LPIPS weights"):
        import tensorflow as tf

        keys = set(arrays)
        found = {net for net in BACKBONES if any(f"features.{index}.weight" in keys for index in _OWN_CONVS[net])}
        if len(found) != 1:
            raise ConfigError(f"{described}: neither a VGG16 nor an AlexNet LPIPS network (its convolutions are "
                              f"{sorted(key for key in keys if key.startswith('features.'))[:6] or 'absent'}); "
                              "make the .npz as legan_tf/evaluation/metrics/lpips.py says.")
        self.net = found.pop()
        convs = _convs(self.net)
        expected = {f"features.{layer[1]}.{part}" for layer in convs for part in ("weight", "bias")}
        linear_keys = {int(_LIN_KEY.match(key).group(1)): key for key in keys if _LIN_KEY.match(key)}
        missing = sorted(expected - keys) + [f"lin{k}.model.1.weight" for k in range(5) if k not in linear_keys]
        unexpected = sorted(keys - expected - set(linear_keys.values()))
        if missing or unexpected:
            faults = [f"{what} {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}"
                      for what, names in (("missing", missing), ("unexpected", unexpected)) if names]
            raise ConfigError(f"{described}: not an LPIPS {self.net} network: {'; '.join(faults)}.")
        self.layers = []
        channels, widths, tap_widths = 3, [], []
        for layer in BACKBONES[self.net]:
            if layer[0] == "pool":
                self.layers.append(layer)
                continue
            _, index, kernel_size, stride, padding, tapped = layer
            kernel = np.asarray(arrays[f"features.{index}.weight"], np.float32)
            bias = np.asarray(arrays[f"features.{index}.bias"], np.float32)
            fits = kernel.ndim == 4 and kernel.shape[1:] == (channels, kernel_size, kernel_size)
            if not fits or bias.shape != kernel.shape[:1]:
                raise ConfigError(f"{described}: features.{index} has weight {kernel.shape} and bias {bias.shape}; "
                                  f"LPIPS {self.net} needs (out, {channels}, {kernel_size}, {kernel_size}) and (out,).")
            channels = kernel.shape[0]
            widths.append(int(channels))
            if tapped:
                tap_widths.append(int(channels))
            self.layers.append(("conv", tf.constant(kernel.transpose(2, 3, 1, 0)), tf.constant(bias),
                                stride, padding, tapped))
        self.linear = []
        for k, width in enumerate(tap_widths):
            weight = np.asarray(arrays[linear_keys[k]], np.float32)
            if weight.size != width or weight.ndim != 4 or weight.shape[0] != 1:
                raise ConfigError(f"{described}: {linear_keys[k]} has shape {weight.shape}; feature map {k} has "
                                  f"{width} channels, so it must be (1, {width}, 1, 1).")
            self.linear.append(tf.constant(weight.reshape(-1)))
        self.widths = tuple(widths)
        self.published = self.widths == PUBLISHED_WIDTHS[self.net]
        self.min_size = self._min_size()
        self._distance = tf.function(self._distances, reduce_retracing=True)

    def _min_size(self) -> int:
        """The smallest square input for which every feature map is at least 1x1."""
        for size in range(1, 256):
            side = size
            for layer in BACKBONES[self.net]:
                if layer[0] == "pool":
                    side = (side - layer[1]) // layer[2] + 1
                else:
                    side = (side + 2 * layer[4] - layer[2]) // layer[3] + 1
                if side < 1:
                    break
            else:
                return size
        raise AssertionError("unreachable")

    def features(self, images) -> List:
        """The five unit-normalised feature maps of images in [-1, 1]."""
        import tensorflow as tf

        x = (images - SHIFT) / SCALE
        maps = []
        for layer in self.layers:
            if layer[0] == "pool":
                x = tf.nn.max_pool2d(x, layer[1], layer[2], "VALID")
                continue
            _, kernel, bias, stride, padding, tapped = layer
            x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, stride, "VALID") + bias)
            if tapped:
                norm = tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True))
                maps.append(x / (norm + NORM_EPS))
        return maps

    def _distances(self, a, b):
        import tensorflow as tf

        total = 0.0
        for map_a, map_b, weight in zip(self.features(a), self.features(b), self.linear):
            total += tf.reduce_mean(tf.reduce_sum(tf.square(map_a - map_b) * weight, axis=-1), axis=[1, 2])
        return total

    def __call__(self, a, b) -> np.ndarray:
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if min(a.shape[1:3]) < self.min_size:
            raise ValueError(f"LPIPS ({self.net}) needs images of at least {self.min_size} px, got {a.shape[1:3]}")
        return self._distance(a, b).numpy().astype(np.float64)


def load_lpips_network(path: str, flag_name: str = DEFAULT_FLAG_NAME) -> LPIPSNetwork:
    """The LPIPS network in the .npz at `path`; a ConfigError naming the file for anything wrong with it."""
    described = f"{flag_name}={path}"
    if not os.path.isfile(path):
        raise ConfigError(f"{described}: LPIPS weights file not found; leave {flag_name} out to report LPIPS as "
                          "unavailable.")
    arrays = load_npz_arrays(path, described, "LPIPS weights", "make one as legan_tf/evaluation/metrics/lpips.py says")
    return LPIPSNetwork(arrays, described)


@register("lpips")
class LPIPS(Metric):
    """Mean LPIPS over output / ground-truth pairs (0 = identical; lower is better).

    Args:
        weights: the path of an LPIPS .npz (module docstring); None: unavailable.
        network: an `LPIPSNetwork` to use instead (its source is then `network_source`).
    """

    description = "learned perceptual distance (LPIPS v0.1) to the paired ground truth (lower is better)"
    needs = frozenset({"outputs", "targets_paired"})
    requires = ("weights",)
    paired = True

    def __init__(self, weights=None, network=None, flag_name: str = DEFAULT_FLAG_NAME, keep_per_image: bool = True,
                 network_source: str = "given", batch_size: int = 32, context=None):
        self.keep_per_image = bool(keep_per_image)
        self.network, self.source = network, network_source
        if network is None:
            weights = "" if weights is None else str(weights).strip()
            if weights.lower() in ("", "none"):
                self.unavailable_reason = (
                    f"no LPIPS weights given ({flag_name}): LPIPS needs its network's weights (PyTorch files) "
                    "converted to a local .npz, see legan_tf/evaluation/metrics/lpips.py; it is never computed "
                    "with random weights")
            else:
                self.network, self.source = load_lpips_network(weights, flag_name), os.path.abspath(weights)
        super().__init__(batch_size=batch_size, context=context)

    def reset(self) -> None:
        self.per_image = []

    def protocol(self) -> dict:
        protocol = {"version": "LPIPS v0.1 (linear layers on unit-normalised features)", "weights": self.source,
                    "input": "RGB in [-1, 1], (x - shift) / scale, at the images' own size"}
        if self.network is not None:
            protocol.update(backbone=self.network.net, widths=list(self.network.widths),
                            published_widths=self.network.published)
        return protocol

    def _update(self, batch) -> None:
        outputs = as_images(batch["outputs"], "outputs")
        truth = as_images(batch["targets_paired"], "targets_paired")
        if outputs.shape != truth.shape:
            raise ValueError(f"lpips: outputs {outputs.shape} and targets_paired {truth.shape} differ in shape")
        if outputs.shape[-1] == 1:
            outputs, truth = np.repeat(outputs, 3, axis=-1), np.repeat(truth, 3, axis=-1)
        for start in range(0, len(outputs), self.batch_size):
            self.per_image.append(self.network(outputs[start:start + self.batch_size],
                                               truth[start:start + self.batch_size]))

    def _result(self) -> MetricResult:
        if not self.per_image:
            return MetricResult.unavailable(self.name, "no paired ground truth was given (targets_paired): LPIPS "
                                                       "needs the true image of each output")
        scores = np.concatenate(self.per_image)
        notes = [] if self.network.published else [
            f"the LPIPS network's widths {self.network.widths} are not the published {self.network.net}'s: "
            "the values are not comparable to published LPIPS"]
        return MetricResult(self.name, True, values={"lpips": float(scores.mean()), "lpips_std": float(scores.std()),
                                                     "count": len(scores)},
                            protocol={"num_pairs": len(scores)},
                            arrays={"per_image": scores} if self.keep_per_image else {}, notes=notes)
