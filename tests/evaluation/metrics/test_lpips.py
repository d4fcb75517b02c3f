"""LPIPS plumbing with random local weights (not a value check of the published network, whose weights
cannot be had here): the TensorFlow network equals a numpy transcription of LPIPS' PyTorch definition
for VGG16 and AlexNet layouts, identical images give 0, and every bad weights file is a ConfigError."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics import lpips
from tests.evaluation.metrics.conftest import images

# Narrow widths keep the test fast; the layer pattern (kernels, strides, paddings, pools, taps) is LPIPS'.
NARROW = {"vgg": (3, 3, 4, 4, 5, 5, 5, 6, 6, 6, 4, 4, 4), "alex": (4, 5, 6, 5, 4)}


def random_state(net, seed=0, widths=None):
    """Arrays in the .npz layout (PyTorch names and OIHW kernels), plus a torchvision classifier key to drop."""
    rng = np.random.default_rng(seed)
    arrays, channels, taps = {}, 3, []
    convs = [layer for layer in lpips.BACKBONES[net] if layer[0] == "conv"]
    for (_, index, kernel, _, _, tapped), width in zip(convs, widths or NARROW[net]):
        arrays[f"features.{index}.weight"] = rng.normal(0, np.sqrt(2.0 / (channels * kernel * kernel)),
                                                        (width, channels, kernel, kernel)).astype(np.float32)
        arrays[f"features.{index}.bias"] = rng.normal(0, 0.1, width).astype(np.float32)
        channels = width
        if tapped:
            taps.append(width)
    linear = {f"lin{k}.model.1.weight": rng.uniform(0, 1, (1, width, 1, 1)).astype(np.float32)
              for k, width in enumerate(taps)}
    backbone = {**arrays, "classifier.0.weight": np.zeros((2, 2), np.float32)}
    return lpips.merge_state_dicts(backbone, linear)


def write(tmp_path, arrays, name="lpips.npz"):
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path


def reference_lpips(arrays, net, x, y):
    """LPIPS v0.1 as its PyTorch code defines it, in numpy: ScalingLayer, conv (OIHW, zero padding) + ReLU,
    max pools, unit-normalised taps, 1x1 linear layers, spatial mean, sum over layers."""
    def features(images):
        h = (images - lpips.SHIFT) / lpips.SCALE
        maps = []
        for layer in lpips.BACKBONES[net]:
            if layer[0] == "pool":
                _, size, stride = layer
                h = sliding_window_view(h, (size, size), axis=(1, 2))[:, ::stride, ::stride].max(axis=(-2, -1))
                continue
            _, index, size, stride, padding, tapped = layer
            h = np.pad(h, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
            windows = sliding_window_view(h, (size, size), axis=(1, 2))[:, ::stride, ::stride]
            h = np.maximum(np.einsum("nhwcij,ocij->nhwo", windows, arrays[f"features.{index}.weight"])
                           + arrays[f"features.{index}.bias"], 0.0)
            if tapped:
                maps.append(h / (np.sqrt(np.sum(h ** 2, axis=-1, keepdims=True)) + 1e-10))
        return maps

    total = 0.0
    for k, (a, b) in enumerate(zip(features(x.astype(np.float64)), features(y.astype(np.float64)))):
        weight = arrays[f"lin{k}.model.1.weight"].reshape(-1)
        total = total + np.mean(np.sum((a - b) ** 2 * weight, axis=-1), axis=(1, 2))
    return total


@pytest.mark.parametrize("net, size", [("vgg", 16), ("alex", 40)])
def test_the_network_is_lpips_as_pytorch_defines_it(tmp_path, net, size):
    arrays = random_state(net)
    metric = metrics.get("lpips")(weights=write(tmp_path, arrays), batch_size=3)
    x, y = images(4, size=size, seed=1), images(4, size=size, seed=2)
    result = metric.compute(outputs=x, targets_paired=y)
    # float32 convolutions against float64 numpy: relative round-off ~1e-6 per layer, through <= 13 layers.
    np.testing.assert_allclose(result.arrays["per_image"], reference_lpips(arrays, net, x, y), rtol=1e-4)
    assert result.protocol["backbone"] == net and result.protocol["published_widths"] is False
    assert "not comparable to published LPIPS" in result.notes[0]


def test_identical_images_give_zero_and_the_distance_is_symmetric(tmp_path):
    network = lpips.load_lpips_network(write(tmp_path, random_state("vgg")))
    x, y = images(3, size=16, seed=3), images(3, size=16, seed=4)
    assert np.all(network(x, x) == 0.0)
    # The two orders run the same float32 operations on swapped inputs; (a - b)^2 = (b - a)^2 exactly.
    np.testing.assert_allclose(network(x, y), network(y, x), rtol=1e-6)
    assert np.all(network(x, y) > 0)


def test_minimum_sizes():
    assert lpips.LPIPSNetwork(random_state("vgg")).min_size == 16  # four 2x2 pools
    assert lpips.LPIPSNetwork(random_state("alex")).min_size == 31  # 11x11/4 (pad 2), two 3x3/2 pools
    with pytest.raises(ValueError, match="at least 31 px"):
        lpips.LPIPSNetwork(random_state("alex"))(images(1, size=30), images(1, size=30))


def test_published_widths_are_recognised():
    widths = lpips.PUBLISHED_WIDTHS["alex"]
    network = lpips.LPIPSNetwork(random_state("alex", widths=widths))
    assert network.published and network.widths == widths


def test_no_weights_is_unavailable():
    result = metrics.get("lpips")().compute(outputs=images(2, size=16), targets_paired=images(2, size=16))
    assert not result.available and "no LPIPS weights given" in result.reason


def test_bad_weights_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        metrics.get("lpips")(weights=str(tmp_path / "absent.npz"))
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ConfigError, match="not an .npz"):
        metrics.get("lpips")(weights=str(tmp_path / "text.npz"))
    arrays = random_state("vgg")
    with pytest.raises(ConfigError, match="neither a VGG16 nor an AlexNet"):
        lpips.LPIPSNetwork({key: value for key, value in arrays.items() if key.startswith("lin")})
    with pytest.raises(ConfigError, match=r"not an LPIPS vgg network: missing features.28.bias, features.28.weight"):
        lpips.LPIPSNetwork({key: value for key, value in arrays.items() if not key.startswith("features.28")})
    with pytest.raises(ConfigError, match=r"missing lin3\.model\.1\.weight"):
        lpips.LPIPSNetwork({key: value for key, value in arrays.items() if key != "lin3.model.1.weight"})
    with pytest.raises(ConfigError, match="unexpected features.99.weight"):
        lpips.LPIPSNetwork({**arrays, "features.99.weight": np.zeros(1, np.float32)})
    with pytest.raises(ConfigError, match=r"features.2 has weight .* needs \(out, 3, 3, 3\)"):
        lpips.LPIPSNetwork({**arrays, "features.2.weight": np.zeros((3, 7, 3, 3), np.float32)})
    with pytest.raises(ConfigError, match=r"lin0.model.1.weight has shape .* must be \(1, 3, 1, 1\)"):
        lpips.LPIPSNetwork({**arrays, "lin0.model.1.weight": np.zeros((1, 5, 1, 1), np.float32)})


def test_merge_keeps_the_backbone_features_and_the_linear_layers():
    merged = lpips.merge_state_dicts({"features.0.weight": np.ones(1), "classifier.6.bias": np.ones(1)},
                                     {"lin0.model.1.weight": np.ones(1), "scaling_layer.shift": np.ones(1)})
    assert sorted(merged) == ["features.0.weight", "lin0.model.1.weight"]
