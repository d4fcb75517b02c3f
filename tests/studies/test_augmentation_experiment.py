"""studies/augmentation_experiment (its experiment module and run.py): the augmentation experiment."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from legan_tf.data import DataConfig, open_source
from legan_tf.data.config import numbered_names
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError
from studies.augmentation_experiment import experiment as augmentation

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "studies", "augmentation_experiment", "run.py")
EXPRESSIONS = ("neutral", "smile", "surprise", "squint", "disgust", "scream")
LIGHTINGS = numbered_names(4)


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A 32 px lab of 4 identities x 6 expressions x 4 lights (16 faces of each expression)."""
    root = tmp_path_factory.mktemp("lab")
    write_face_lab(root, image_size=32, num_identities=4, num_lightings=4, parts=("multipie",), progress=False)
    return root / "multipie"


def _config(manifest, **overrides):
    return DataConfig("multipie", str(manifest), image_size=32, expression_names=EXPRESSIONS,
                      lighting_names=LIGHTINGS, **overrides)


def test_imbalanced_split_oversampling_and_per_class_accuracy(lab, tmp_path):
    from legan_tf.models.classifier import AttributeClassifier

    config = _config(lab / "manifest.csv", holdout_fraction=0.25, split_seed=0)
    counts = augmentation.write_imbalanced_split(config, str(tmp_path / "split"), {"smile": 0.25}, seed=0)
    train, test = _rows(tmp_path / "split" / "train.csv"), _rows(tmp_path / "split" / "test.csv")
    # One of the 4 subjects is held out: 3 x 4 lights = 12 training faces per expression, a quarter of smile's.
    assert not {r["subject"] for r in train} & {r["subject"] for r in test}
    assert counts["train"]["expression"]["smile"] == 3 and counts["train"]["expression"]["neutral"] == 12
    assert counts["test"]["expression"]["smile"] == 4 and len(test) == 24
    oversampled = augmentation.write_oversampled(str(tmp_path / "split" / "train.csv"),
                                                 str(tmp_path / "split" / "over.csv"))
    assert oversampled == {str(i): 12 for i in range(6)}
    assert open_source(_config(tmp_path / "split" / "over.csv")).num_examples == 72
    classifier = AttributeClassifier(image_size=32, head_classes={"expression": 6, "lighting": 4}, base_filters=4,
                                     num_downsamples=2)
    classifier(np.zeros((1, 32, 32, 3), np.float32))
    classifier.save(str(tmp_path / "c.keras"))
    result = augmentation.per_class_accuracy(str(tmp_path / "c.keras"), _config(tmp_path / "split" / "test.csv"))
    confusion = np.asarray(result["expression"]["confusion"])
    assert result["examples"] == confusion.sum() == 24
    assert result["expression"]["accuracy"] == pytest.approx(np.trace(confusion) / 24)
    assert result["expression"]["per_class"]["smile"] == pytest.approx(confusion[1, 1] / 4)


def _eval(path, per_class):
    with open(path, "w") as handle:
        json.dump({"expression": {"accuracy": float(np.mean(list(per_class.values()))), "per_class": per_class}},
                  handle)


def test_summary_is_the_mean_and_range_over_seeds(tmp_path):
    (tmp_path / "eval").mkdir()
    others = {"neutral": 1.0, "surprise": 0.5, "squint": 1.0, "scream": 0.5}
    _eval(tmp_path / "eval" / "base-s0.json", {"smile": 0.25, "disgust": 0.0, **others})
    _eval(tmp_path / "eval" / "base-s1.json", {"smile": 0.75, "disgust": 0.5, **others})
    results = augmentation.summarize(str(tmp_path), ["base"], [0, 1], {"smile": 0.1, "disgust": 0.1})
    stats = results["accuracy"]["base"]
    assert stats["smile"] == {"mean": 0.5, "min": 0.25, "max": 0.75, "seeds": [0.25, 0.75]}
    assert stats["others"]["mean"] == 0.75  # the mean of the four other classes, the same in both seeds
    assert "| imbalanced | " in (tmp_path / "results.md").read_text()
    assert "| 50.0 (25.0-75.0) | 25.0 (0.0-50.0) | 75.0 (75.0-75.0) |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "per_class.png").stat().st_size > 0


def test_bad_settings_are_clear_errors(lab, tmp_path):
    config = _config(lab / "manifest.csv", holdout_fraction=0.25)
    with pytest.raises(ConfigError, match="write class:fraction"):
        augmentation.parse_rare(["smile"])
    with pytest.raises(ConfigError, match="between 0 and 1"):
        augmentation.Experiment(config, "g.keras", str(tmp_path), {"smile": 1.5}, arms=["base"])
    with pytest.raises(ConfigError, match="the q arm needs --quality_model"):
        augmentation.Experiment(config, "g.keras", str(tmp_path), {"smile": 0.5})
    with pytest.raises(ConfigError, match="unknown grin"):
        augmentation.Experiment(config, "g.keras", str(tmp_path), {"smile": 0.5}, arms=["base", "grin"])
    with pytest.raises(ConfigError, match="held-out subjects"):
        augmentation.write_imbalanced_split(_config(lab / "manifest.csv"), str(tmp_path / "s"), {"smile": 0.5})
    with pytest.raises(ConfigError, match="unknown expression grin"):
        augmentation.write_imbalanced_split(config, str(tmp_path / "s"), {"grin": 0.5})



@pytest.mark.slow
def test_the_script_runs_every_step_and_resumes(lab, generator_file, model_file, tmp_path):
    out = tmp_path / "exp"
    command = [sys.executable, SCRIPT, "--data_format=multipie", f"--data_path={lab / 'manifest.csv'}",
               "--image_size=32", f"--expression_names={','.join(EXPRESSIONS)}", "--num_lightings=4",
               "--holdout_fraction=0.25", "--rare=smile:0.25", "--seeds=0", "--arms=base,q",
               f"--generator={generator_file}", f"--quality_model={model_file}", "--min_quality=-1000",
               "--classifier_flagfile=", "--classifier_flags=--train_steps=2,--batch_size=8,"
               "--classifier_base_filters=4,--classifier_downsamples=2,--log_every=1,--eval_every=2,"
               "--sample_every=2,--checkpoint_every=2", f"--output_dir={out}", "--noprogress_bar"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["arms"] == ["base", "q"] and results["seeds"] == [0]
    # The q arm's training set: the 3 kept smiles plus 9 translations (every output passes -1000).
    assert len(_rows(out / "aug-q-s0" / "synthetic.csv")) == 9
    assert len(_rows(out / "aug-q-s0" / "manifest.csv")) == 5 * 12 + 3 + 9
    for arm in ("base", "q"):
        assert json.loads((out / "eval" / f"{arm}-s0.json").read_text())["examples"] == 24
    assert "| augmented + Q filter |" in done.stdout
    runs = sorted(os.listdir(out / "runs"))
    assert len(runs) == 2
    # Again, in this process (no second TensorFlow start-up): every step's output is there, so nothing is
    # trained or generated again and the results are the same.
    again = augmentation.run(augmentation.Experiment(
        _config(lab / "manifest.csv", holdout_fraction=0.25), generator_file, str(out), {"smile": 0.25}, seeds=[0],
        arms=["base", "q"], quality_model=model_file, min_quality=-1000.0, progress=False))
    assert sorted(os.listdir(out / "runs")) == runs and again["accuracy"] == results["accuracy"]
