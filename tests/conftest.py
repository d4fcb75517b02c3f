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


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    """A tiny untrained StarGAN generator in a run directory's layout (generator.keras + labels.json), for
    the 32 px lab's 6 expressions x 4 lights: tests of the tools that take a run's generator."""
    import json

    from legan_tf.data.config import numbered_names
    from legan_tf.models.stargan import StarGANGenerator

    run = tmp_path_factory.mktemp("run")
    generator = StarGANGenerator(image_size=32, num_labels=10, base_filters=4, num_downsamples=2,
                                 num_residual_blocks=1)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 10), np.float32)))
    generator.save(str(run / "generator.keras"))
    with open(run / "labels.json", "w") as handle:
        json.dump({"expression": ["neutral", "smile", "surprise", "squint", "disgust", "scream"],
                   "lighting": list(numbered_names(4))}, handle)
    return str(run / "generator.keras")
