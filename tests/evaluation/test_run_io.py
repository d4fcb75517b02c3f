"""legan_tf.evaluation.run_io: a GAN run's settings, the lab's, saved models and written evaluations."""

import json

import pytest

from legan_tf.errors import ConfigError
from legan_tf.evaluation import run_io


def test_run_settings_are_read_with_their_types_and_absent_ones_left_out(tmp_path):
    (tmp_path / "flags.txt").write_text("--task=legan\n--image_size=32\n--expression_names=smile,scream\n"
                                        "--legan_lambda_id=2.0\n--data_path=lab/multipie/manifest.csv\n")
    assert run_io.read_run_settings(str(tmp_path)) == {
        "task": "legan", "image_size": 32, "expression_names": ["smile", "scream"],
        "data_path": "lab/multipie/manifest.csv"}


def test_load_model_names_the_flag_and_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^--generator=/nowhere/g.keras: no such generator file\.$"):
        run_io.load_model("/nowhere/g.keras", "generator", "--generator")
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    with pytest.raises(ConfigError, match=r"broken.keras: cannot load the classifier \("):
        run_io.load_model(str(broken), "classifier", "--classifier")


def test_read_evaluation_takes_a_run_or_the_file_and_refuses_other_json(tmp_path):
    evaluation = tmp_path / "run" / run_io.EVALUATION_DIR
    evaluation.mkdir(parents=True)
    (evaluation / run_io.METRICS_FILE).write_text(json.dumps({"metrics": {"both/l1_reduction": 0.5}}))
    assert run_io.read_evaluation(str(tmp_path / "run")) == {"both/l1_reduction": 0.5}
    assert run_io.read_evaluation(str(evaluation / run_io.METRICS_FILE)) == {"both/l1_reduction": 0.5}
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a translation_metrics.json"):
        run_io.read_evaluation(str(tmp_path / "other.json"))


def test_attributes_are_inferred_from_the_generators_label_count():
    counts = {"expression": 6, "lighting": 4}
    assert run_io.infer_attributes(10, counts) == ("expression", "lighting")
    assert run_io.infer_attributes(6, counts) == ("expression",)
    assert run_io.infer_attributes(4, counts) == ("lighting",)
    with pytest.raises(ConfigError, match="several of .* fit: pass --attributes"):
        run_io.infer_attributes(6, {"expression": 6, "lighting": 6})
    with pytest.raises(ConfigError, match="none of .* fit"):
        run_io.infer_attributes(7, counts)


def test_without_lab_json_the_expression_set_follows_the_runs_names():
    affectnet = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sadness", "surprise")
    settings = run_io.lab_settings(None, {"seed": 3}, affectnet, num_lightings=20, image_size=64)
    assert (settings["expression_set"], settings["seed"], settings["image_size"]) == ("affectnet", 3, 64)
    with pytest.raises(ConfigError, match="no face-lab expression set"):
        run_io.lab_settings(None, {}, ("happy", "sad"), num_lightings=20, image_size=64)
