import subprocess
import sys

import keras
import numpy as np
import pytest

from legan_tf.models.classifier import AttributeClassifier


def test_heads_have_one_logit_per_class():
    model = AttributeClassifier(32, {"expression": 6, "lighting": 20}, base_filters=8, num_downsamples=3)
    outputs = model(np.zeros((3, 32, 32, 3), np.float32))
    assert outputs["expression"].shape == (3, 6)
    assert outputs["lighting"].shape == (3, 20)


def test_parameter_count_matches_the_layer_table():
    filters, heads, size = 8, {"expression": 6, "lighting": 20}, 32
    model = AttributeClassifier(size, heads, base_filters=filters, num_downsamples=3)
    model(np.zeros((1, size, size, 3), np.float32))
    expected, channels = 0, 3
    for stage in range(3):
        width = filters * 2**stage
        expected += 3 * 3 * channels * width + width  # 3x3 conv
        expected += 2 * width  # group norm scale and offset
        expected += 4 * 4 * width * width + width  # 4x4 stride-2 conv
        channels = width
    flat = (size // 8) ** 2 * channels
    expected += sum(flat * count + count for count in heads.values())
    assert model.count_params() == expected


def test_rejects_sizes_the_trunk_cannot_halve():
    with pytest.raises(ValueError, match="not divisible"):
        AttributeClassifier(36, {"expression": 6}, num_downsamples=3)


def test_keras_file_loads_in_a_fresh_process_with_identical_outputs(tmp_path):
    model = AttributeClassifier(32, {"expression": 6, "lighting": 20}, base_filters=8, num_downsamples=3)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    expected = model(images)
    path = tmp_path / "classifier.keras"
    model.save(path)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np, keras, legan_tf\n"
        f"model = keras.models.load_model({str(path)!r})\n"
        f"out = model(np.load({str(tmp_path / 'images.npy')!r}))\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, np.concatenate([out['expression'], out['lighting']], -1))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    reloaded = np.load(tmp_path / "out.npy")
    # Exact: the same weights run the same ops on the same shapes on the same CPU (the fresh process picks the
    # same kernels), so every sum is taken in the same order.
    np.testing.assert_array_equal(reloaded, np.concatenate([expected["expression"], expected["lighting"]], -1))
    assert keras.models.load_model(path).get_config()["head_classes"] == {"expression": 6, "lighting": 20}


def test_widths_that_eight_does_not_divide_still_build():
    model = AttributeClassifier(32, {"expression": 6}, base_filters=12, num_downsamples=3)
    assert model(np.zeros((1, 32, 32, 3), np.float32))["expression"].shape == (1, 6)
