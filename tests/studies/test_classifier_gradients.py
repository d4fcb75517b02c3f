"""studies/classifier_gradients (its run.py and classifier_gradients module): faces steered toward a class."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from keras import ops
from PIL import Image

from legan_tf.errors import ConfigError
from legan_tf.losses import classification_loss
from legan_tf.models.classifier import AttributeClassifier
from studies.classifier_gradients import classifier_gradients

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = ("neutral", "happy", "sad")


def _classifier(size=16):
    classifier = AttributeClassifier(size, {"expression": len(NAMES)}, base_filters=4, num_downsamples=2)
    classifier(np.zeros((1, size, size, 3), np.float32))
    return classifier


def _faces(count=3, size=16):
    return np.random.default_rng(0).uniform(-0.5, 0.5, (count, size, size, 3)).astype("float32")


def test_steering_lowers_the_targets_loss_within_the_radius():
    # The first step moves eps along the negated, normalised gradient: the target's cross-entropy falls by
    # about eps * |g|, while curvature terms are O(eps^2); at eps = 1e-2 on a freshly built network the fall
    # dominates for every face. The change's L2 norm never exceeds eps (the projection).
    classifier, faces = _classifier(), _faces()
    steered = classifier_gradients.steer(classifier, faces, "expression", 2, 1e-2, 3)

    def loss(images):
        return ops.convert_to_numpy(classification_loss(classifier(images)["expression"], np.full(3, 2, np.int32)))

    assert np.all(loss(steered) < loss(faces))
    assert np.all(np.sqrt(np.sum((steered - faces) ** 2, axis=(1, 2, 3))) <= 1e-2 * (1 + 1e-5))


def test_the_figure_has_a_row_per_face_and_classifier_and_a_rate_per_target():
    classifiers = {"a": _classifier(), "b": _classifier()}
    mosaic, rates = classifier_gradients.steering_figure(classifiers, _faces(2), "expression", NAMES,
                                                         ["happy", "sad"], 4.0, 5)
    assert set(rates) == {(label, target) for label in "ab" for target in ("happy", "sad")}
    assert all(0.0 <= rate <= 1.0 for rate in rates.values())
    assert mosaic.dtype == np.uint8 and mosaic.ndim == 3
    # 4 rows of upscaled 16 px cells under a title: taller than 4 cells of the original size.
    assert mosaic.shape[0] > 4 * 16


def test_faces_are_read_grey_resized_and_in_range(tmp_path):
    colour = np.zeros((20, 30, 3), np.uint8)
    colour[..., 0] = 255                                  # pure red: grey 76 (ITU-R 601-2 luma)
    Image.fromarray(colour).save(tmp_path / "b.png")
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    names, faces = classifier_gradients.read_faces(str(tmp_path), 16)
    assert names == ["a.jpg", "b.png"] and faces.shape == (2, 16, 16, 3)
    assert np.all(faces[..., 0] == faces[..., 2])
    np.testing.assert_allclose(faces[1], 76 / 127.5 - 1.0, atol=1e-6)
    assert faces[0].max() <= 1.0 and faces[0].min() >= 0.9
    assert len(classifier_gradients.read_faces(str(tmp_path), 16, limit=1)[0]) == 1


def test_bad_face_folders_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        classifier_gradients.read_faces(str(tmp_path / "missing"), 16)
    with pytest.raises(ConfigError, match="no images"):
        classifier_gradients.read_faces(str(tmp_path), 16)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="broken.png is not a readable image"):
        classifier_gradients.read_faces(str(tmp_path), 16)


def _saved_classifier(folder):
    folder.mkdir()
    _classifier().save(str(folder / "attribute_classifier.keras"))
    (folder / "labels.json").write_text(json.dumps({"expression": list(NAMES)}))
    return str(folder / "attribute_classifier.keras")


def _script(*arguments):
    return subprocess.run([sys.executable, os.path.join(REPO, "studies", "classifier_gradients", "run.py"), *arguments],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_the_script_writes_the_mosaic_and_refuses_an_unknown_target(tmp_path):
    model = _saved_classifier(tmp_path / "run")
    faces = tmp_path / "faces"
    faces.mkdir()
    for index in range(2):
        Image.fromarray(np.full((24, 24), 60 * index, np.uint8)).save(faces / f"{index}.png")
    output = tmp_path / "steered.png"
    result = _script(f"--faces={faces}", f"--classifiers={model}", "--targets=happy", "--steps=2",
                     f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "run: -> happy:" in result.stdout and "of 2 steered faces" in result.stdout
    assert Image.open(output).size[0] > 2 * 16
    result = _script(f"--faces={faces}", f"--classifiers={model}", "--targets=joy", f"--output={output}")
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: --targets: 'joy' is not one of the expression classes")


def test_two_classifiers_of_one_folder_get_a_row_each_and_a_file_named_twice_is_refused(tmp_path):
    model = _saved_classifier(tmp_path / "run")
    second = str(tmp_path / "run" / "other.keras")
    _classifier().save(second)
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.fromarray(np.full((24, 24), 90, np.uint8)).save(faces / "0.png")
    result = _script(f"--faces={faces}", f"--classifiers={model},{second}", "--targets=sad", "--steps=1",
                     f"--output={tmp_path / 'steered.png'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "run: -> sad:" in result.stdout and f"{os.path.normpath(second)}: -> sad:" in result.stdout
    result = _script(f"--faces={faces}", f"--classifiers={model},{model}", f"--output={tmp_path / 'twice.png'}")
    assert result.returncode == 1 and "--classifiers names a file twice" in result.stderr

