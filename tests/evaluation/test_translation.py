"""legan_tf.evaluation.translation and scripts/evaluate_translation.py: the learning check of a saved generator."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from legan_tf.data import DataConfig, open_source
from legan_tf.data.synthetic.render import FaceLab
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError
from legan_tf.evaluation import translation
from legan_tf.evaluation.run_under_test import recipe_check
from legan_tf.evaluation.translation_metrics import CHECK_SETS, to_model_images
from legan_tf.models.classifier import AttributeClassifier
from tests.evaluation.conftest import save_tiny_generator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "evaluate_translation.py")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 3-identity lab, an untrained generator in a run directory and an untrained classifier."""
    root = tmp_path_factory.mktemp("translation")
    lab_dir = root / "lab"
    write_face_lab(lab_dir, image_size=32, num_identities=3, num_lightings=4, parts=("multipie",), progress=False)
    run_dir = root / "run"
    run_dir.mkdir()
    save_tiny_generator(run_dir, (
        "--task=stargan\n--data_format=multipie\n"
        f"--data_path={lab_dir / 'multipie' / 'manifest.csv'}\n--image_size=32\n"
        "--expression_names=neutral,smile,surprise,squint,disgust,scream\n--num_lightings=4\n"))
    classifier = AttributeClassifier(image_size=32, head_classes={"expression": 6, "lighting": 4}, base_filters=4,
                                     num_downsamples=2)
    classifier(np.zeros((1, 32, 32, 3), np.float32))
    classifier.save(str(root / "classifier.keras"))
    return {"root": root, "run_dir": str(run_dir), "classifier": str(root / "classifier.keras")}


@pytest.mark.parametrize("image_size", [32, 16])
def test_inputs_are_what_training_reads_from_the_labs_pngs(tiny_run, image_size):
    manifest = str(tiny_run["root"] / "lab" / "multipie" / "manifest.csv")
    source = open_source(DataConfig("multipie", manifest, image_size=image_size,
                                    lighting_names=("00", "01", "02", "03")))
    batch = next(iter(source.dataset(4, training=False, repeat=False)))  # identity 0's first rows
    rgb = FaceLab(image_size=32, num_lightings=4).render(0, batch["expression"].numpy(), batch["lighting"].numpy())
    assert np.array_equal(to_model_images(rgb["rgb"], image_size), batch["image"].numpy())


def test_script_end_to_end(tiny_run):
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--run_dir={tiny_run['run_dir']}", f"--classifier={tiny_run['classifier']}",
         "--num_faces=6", "--num_identities=2", "--sample_rows=2", "--kind=legan", "--noprogress_bar"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    output = os.path.join(tiny_run["run_dir"], "evaluation")
    report = json.load(open(os.path.join(output, "translation_metrics.json")))
    assert report["attributes"] == ["expression", "lighting"] and report["identities"] == [100000, 100001]
    assert report["lab"]["num_lightings"] == 4 and report["lab"]["lab_json"].endswith("lab.json")
    for name in ("both/accuracy/expression", "both/l1_reduction", "lighting_only/kept/expression",
                 "lighting_only/region_l1_reduction", "expression_only/region_l1_reduction",
                 "classifier_on_truth/lighting"):
        assert name in report["metrics"]
    assert [row["name"] for row in report["verdict"]][-2:] == ["expression_only/kept/lighting",
                                                             "lighting_only/kept/expression"]
    assert os.path.getsize(os.path.join(output, "translation_samples.png")) > 0
    assert "both/accuracy/expression" in result.stdout and "learning check (legan)" in result.stdout
    breakdown = report["kept_breakdown"]["lighting_only/kept/expression"]
    assert sum(row["edits"] for row in breakdown["by_source"].values()) == 6
    assert "lighting_only/kept/expression:" in result.stdout and "kept by source:" in result.stdout


def test_script_missing_classifier_is_one_line(tiny_run):
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--run_dir={tiny_run['run_dir']}", "--classifier=/nowhere/c.keras"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: --classifier=/nowhere/c.keras: no such classifier file."


def test_run_errors(tiny_run, tmp_path):
    def evaluate(**kwargs):
        arguments = dict(classifier_path=tiny_run["classifier"], run_dir=tiny_run["run_dir"], num_faces=2,
                         output_dir=str(tmp_path), progress=False)
        return translation.evaluate_run(**{**arguments, **kwargs})

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "flags.txt").write_text(open(os.path.join(tiny_run["run_dir"], "flags.txt")).read())
    with pytest.raises(ConfigError, match="it has no generator.keras"):
        evaluate(run_dir=str(unfinished))
    other_size = AttributeClassifier(image_size=64, head_classes={"expression": 6, "lighting": 4}, base_filters=4,
                                     num_downsamples=2)
    other_size(np.zeros((1, 64, 64, 3), np.float32))
    other_size.save(str(tmp_path / "classifier64.keras"))
    with pytest.raises(ConfigError, match="size mismatch: the classifier .* 64 px images, the generator on 32 px"):
        evaluate(classifier_path=str(tmp_path / "classifier64.keras"))
    with pytest.raises(ConfigError, match="identities 0..2 are in the lab"):
        evaluate(first_identity=0)
    with pytest.raises(ConfigError, match="lab has 4 lights, the run 20"):
        evaluate(settings={"num_lightings": 20})


def test_the_check_defaults_to_the_runs_recipe(tiny_run, tmp_path):
    flags_text = open(os.path.join(tiny_run["run_dir"], "flags.txt")).read()
    assert flags_text.startswith("--task=stargan\n")
    legan_run = tmp_path / "legan-run"
    legan_run.mkdir()
    shutil.copy(os.path.join(tiny_run["run_dir"], "generator.keras"), legan_run)
    (legan_run / "flags.txt").write_text(flags_text.replace("--task=stargan", "--task=legan"))
    report = translation.evaluate_run(tiny_run["classifier"], run_dir=str(legan_run), num_faces=2, progress=False)
    assert (report["task"], report["kind"]) == ("legan", "legan")
    assert [row["name"] for row in report["verdict"]][-2:] == ["expression_only/kept/lighting",
                                                             "lighting_only/kept/expression"]
    saved = json.load(open(legan_run / "evaluation" / "translation_metrics.json"))
    assert saved["kind"] == "legan"
    # --kind wins over the recipe's check.
    report = translation.evaluate_run(tiny_run["classifier"], run_dir=str(legan_run), num_faces=2, kind="stargan",
                                      output_dir=str(tmp_path / "as_stargan"), progress=False)
    assert report["kind"] == "stargan" and not any("/kept/" in row["name"] for row in report["verdict"])


def test_recipe_check_names_a_check_set_and_falls_back_to_stargan():
    assert recipe_check("stargan") == "stargan"
    assert recipe_check("legan") == "legan"
    # Recipes that name no check (not GANs) and runs with no --task get the default.
    assert recipe_check("classifier") == recipe_check(None) == "stargan"
    from legan_tf import tasks

    for name in tasks.task_names():  # every recipe's check exists
        assert getattr(tasks.get_task_class(name), "translation_check", "stargan") in CHECK_SETS, name
    with pytest.raises(ConfigError, match="Unknown task 'cyclegan'.*pass --kind"):
        recipe_check("cyclegan")


def test_the_figures_are_read_back_from_a_run_or_the_file_and_other_json_is_refused(tmp_path):
    evaluation = tmp_path / "run" / "evaluation"
    evaluation.mkdir(parents=True)
    (evaluation / translation.METRICS_FILE).write_text(json.dumps({"metrics": {"both/l1_reduction": 0.5}}))
    assert translation.read_translation_figures(str(tmp_path / "run")) == [(None, {"both/l1_reduction": 0.5})]
    assert translation.read_translation_figures(str(evaluation / translation.METRICS_FILE)) == [
        (None, {"both/l1_reduction": 0.5})]
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a translation_metrics.json of scripts/evaluate_translation.py nor a "
                                          "metrics.json of scripts/evaluate.py"):
        translation.read_translation_figures(str(tmp_path / "other.json"))
    with pytest.raises(ConfigError, match="no translation metrics here; run scripts/evaluate_translation.py first"):
        translation.read_translation_figures(str(tmp_path / "nowhere"))
