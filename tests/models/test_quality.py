import subprocess
import sys

import numpy as np
import pytest

from legan_tf.models.quality import QualityModel

PAPER_FILTERS = (64, 128, 256, 512, 1024, 2048)


def _parameters_from_the_paper_table(image_size=128, filters=PAPER_FILTERS, dense_units=256):
    total, channels = 0, 3
    for width in filters:
        total += 4 * 4 * channels * width + width  # 4x4 conv with bias
        channels = width
    spatial = image_size // 2 ** len(filters)
    flat = spatial * spatial * channels  # 2 x 2 x 2048 = 8192 at 128 px
    return total + flat * dense_units + dense_units + dense_units + 1


def test_paper_size_layer_shapes_and_parameter_count():
    model = QualityModel()  # the paper's defaults: 128 px, 64..2048 filters, dense 256
    images = np.zeros((1, 128, 128, 3), np.float32)
    assert model(images).shape == (1, 1)
    features, sizes = images, []
    for layer in model.trunk:
        features = layer(features)
        if layer.name.startswith("conv"):
            sizes.append(tuple(features.shape[1:]))
    assert sizes == [(64, 64, 64), (32, 32, 128), (16, 16, 256), (8, 8, 512), (4, 4, 1024), (2, 2, 2048)]
    assert model.hidden.kernel.shape == (8192, 256)
    assert model.count_params() == _parameters_from_the_paper_table() == 46_800_321


def test_width_and_size_are_arguments():
    model = QualityModel(image_size=32, base_filters=4, num_downsamples=3, dense_units=8)
    assert model(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 1)
    assert model.count_params() == _parameters_from_the_paper_table(32, (4, 8, 16), 8)


def test_rejects_an_image_size_the_trunk_cannot_halve_six_times():
    with pytest.raises(ValueError, match="not divisible"):
        QualityModel(image_size=96)


def test_keras_file_loads_in_a_fresh_process_after_import_legan_tf(tmp_path):
    model = QualityModel(image_size=32, base_filters=4, num_downsamples=3, dense_units=8)
    images = np.random.default_rng(1).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    expected = np.asarray(model(images))
    model.save(tmp_path / "q.keras")
    np.save(tmp_path / "images.npy", images)
    script = (
        "import numpy as np, keras, legan_tf\n"
        f"model = keras.models.load_model({str(tmp_path / 'q.keras')!r})\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, np.asarray(model(np.load({str(tmp_path / 'images.npy')!r}))))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
