import os

# Quiet TensorFlow's C++ start-up logs in test output; set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny, untrained Q saved as .keras (32 px), for tests of the scripts that load one."""
    from legan_tf.models.quality import QualityModel

    model = QualityModel(image_size=32, base_filters=4, num_downsamples=3, dense_units=8)
    model(np.zeros((1, 32, 32, 3), np.float32))
    path = str(tmp_path_factory.mktemp("model") / "q.keras")
    model.save(path)
    return path
