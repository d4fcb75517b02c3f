"""A finished run directory holding one tiny model of each kind, and its TF-Serving export."""

import io
import json

import keras
import numpy as np
import pytest
from PIL import Image

from legan_tf.models.classifier import AttributeClassifier
from legan_tf.models.legan import LEGANGenerator
from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
from legan_tf.models.quality import QualityModel
from legan_tf.runs import RunDir
from legan_tf.serving import export

LABEL_NAMES = {"expression": ("neutral", "smile", "surprise"), "lighting": ("00", "01", "02", "03")}
SIZE = 32


def tiny_models():
    keras.utils.set_random_seed(0)
    generator = LEGANGenerator(SIZE, 3, 4, base_filters=4, num_residual_blocks=1, name="generator")
    generator((np.zeros((1, SIZE, SIZE, 3), np.float32), np.zeros((1, 7), np.float32)))
    quality = QualityModel(SIZE, base_filters=4, num_downsamples=3, dense_units=8)
    quality(np.zeros((1, SIZE, SIZE, 3), np.float32))
    classifier = AttributeClassifier(SIZE, {"expression": 3, "lighting": 4}, base_filters=4, num_downsamples=2)
    classifier(np.zeros((1, SIZE, SIZE, 3), np.float32))
    identity = IdentityEmbedder(LightCNN29v2(input_size=16, channels=(4, 4, 4, 4, 4), embedding_dim=8,
                                             num_blocks=(1, 1, 1, 1)))
    identity(np.zeros((1, SIZE, SIZE, 3), np.float32))
    return {"generator.keras": generator, "quality_model.keras": quality, "attribute_classifier.keras": classifier,
            "identity_model.keras": identity}


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def face(seed=0, height=SIZE, width=SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run directory as the trainer leaves it: flags.txt, labels.json, metrics.json and the .keras files."""
    run_dir = tmp_path_factory.mktemp("runs") / "legan-tiny-20261123-000000"
    run_dir.mkdir()
    (run_dir / "flags.txt").write_text("--task=legan\n--image_size=32\n--data_path=/nonexistent/manifest.csv\n")
    RunDir(str(run_dir)).write_label_names(LABEL_NAMES)
    (run_dir / "metrics.json").write_text(json.dumps({"step": 10, "eval/cycle_l1": 0.25}))
    models = tiny_models()
    for filename, model in models.items():
        model.save(str(run_dir / filename))
    return run_dir


@pytest.fixture(scope="session")
def serving_dir(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving") / "models"
    export.export_run(str(tiny_run), str(root))
    return root
