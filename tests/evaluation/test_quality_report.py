"""scripts/evaluate_quality.py and legan_tf.evaluation.quality_report on a tiny face lab and a random Q."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.naturalness import scoring  # importing legan_tf registers QualityModel for load_model
from legan_tf.data import DataConfig, open_source
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError
from legan_tf.evaluation import quality_report
from legan_tf.statistics import quality_metrics, separation_auc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "evaluate_quality.py")
HOLDOUT, SEED = 0.25, 3


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    write_face_lab(root, image_size=32, num_identities=8, parts=("quality",), naturalness_variants=4)
    return str(root / "quality" / "ratings.csv")


def _fake_run(run_dir, ratings_csv, model_file=None, task="quality"):
    """A run directory as train.py leaves it: flags.txt (trainer and task flags included) + the model."""
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "flags.txt"), "w") as handle:
        handle.write(f"--batch_size=8\n--nocache\n--data_format=ratings\n--data_path={ratings_csv}\n"
                     f"--holdout_fraction={HOLDOUT}\n--image_size=32\n--on_error=fail\n"
                     f"--quality_base_filters=4\n--norandom_flip\n--run_name=\n--split_seed={SEED}\n"
                     f"--task={task}\n--train_steps=2\n")
    if model_file:
        with open(model_file, "rb") as source, open(os.path.join(run_dir, "quality_model.keras"), "wb") as copy:
            copy.write(source.read())
    return str(run_dir)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, ratings_csv, model_file):
    return _fake_run(tmp_path_factory.mktemp("runs") / "quality-1", ratings_csv, model_file)


def _split(ratings_csv, name, seed=SEED):
    source = open_source(DataConfig("ratings", ratings_csv, image_size=32, holdout_fraction=HOLDOUT,
                                    split_seed=seed))
    train, test = source.split()
    return {"train": train, "test": test, "all": source}[name]


def _images(source):
    folder = os.path.dirname(source.config.data_path)
    return sorted(os.path.relpath(source.all_columns["image"][i], folder) for i in source.indices)


def _read_predictions(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_metrics_equal_quality_metrics_on_the_models_own_predictions(run_dir, ratings_csv, model_file):
    report = quality_report.evaluate_run(run_dir, batch_size=5, progress=False)
    output = os.path.join(run_dir, "evaluation")
    assert report["output_dir"] == output
    saved = json.load(open(os.path.join(output, "metrics.json")))
    assert saved["split"] == "test" and saved["model"] == os.path.abspath(os.path.join(run_dir, "quality_model.keras"))

    test = _split(ratings_csv, "test")
    model = scoring.load_quality_model(model_file)
    predicted, mean, std = [], [], []
    for batch in test.dataset(5, training=False, repeat=False):
        predicted.append(model(batch["image"]).numpy().reshape(-1))
        mean.append(batch["mean"].numpy())
        std.append(batch["std"].numpy())
    expected = quality_metrics(np.concatenate(predicted), np.concatenate(mean), np.concatenate(std))
    assert saved["count"] == test.num_examples
    # Exact: the same weights run the same ops on the same batch shapes (5) in this process, so the float32
    # predictions are bit-identical; quality_metrics is float64 numpy and JSON keeps a float64 exactly.
    assert saved["overall"] == expected

    generators = [test.all_strata[i] for i in test.indices]
    assert sorted(saved["per_generator"]) == sorted(set(generators))
    for generator, metrics in saved["per_generator"].items():
        assert metrics["count"] == generators.count(generator)
    # Each degradation kind against the split's clean images, from the same exact predictions.
    assert "clean" in generators
    scores, kinds = np.concatenate(predicted), np.asarray(generators)
    for generator, metrics in saved["per_generator"].items():
        if generator == "clean":
            assert "auc_vs_clean" not in metrics
        else:
            assert metrics["auc_vs_clean"] == separation_auc(scores[kinds == "clean"], scores[kinds == generator])

    rows = _read_predictions(os.path.join(output, "predictions.csv"))
    assert list(rows[0]) == ["image", "mean", "std", "predicted"]
    # The CSV prints 4 decimals: each value is within 5e-5 of the prediction (those being exact, above).
    assert [float(row["predicted"]) for row in rows] == pytest.approx(np.concatenate(predicted), abs=1e-4)
    with Image.open(os.path.join(output, "scatter.png")) as scatter:
        assert scatter.format == "PNG" and scatter.width > 300


@pytest.mark.parametrize("split", ["test", "train", "all"])
def test_each_split_holds_exactly_the_examples_of_source_split(run_dir, ratings_csv, tmp_path, split):
    # The run's seed must matter, or a reader that ignored flags.txt would pass too.
    assert _images(_split(ratings_csv, "test", SEED)) != _images(_split(ratings_csv, "test", 0))
    quality_report.evaluate_run(run_dir, split=split, output_dir=str(tmp_path), progress=False)
    evaluated = sorted(row["image"] for row in _read_predictions(tmp_path / "predictions.csv"))
    assert evaluated == _images(_split(ratings_csv, split))


def test_another_ratings_csv_is_evaluated_whole_by_default(run_dir, ratings_csv, tmp_path):
    report = quality_report.evaluate_run(run_dir, data_path=ratings_csv, output_dir=str(tmp_path), progress=False)
    assert report["split"] == "all" and report["count"] == 32


def test_the_run_dir_must_be_a_quality_run_with_flags(tmp_path, ratings_csv, model_file):
    os.makedirs(tmp_path / "no_flags")
    with pytest.raises(ConfigError, match="has no flags.txt"):
        quality_report.evaluate_run(str(tmp_path / "no_flags"))
    classifier_run = _fake_run(tmp_path / "classifier", ratings_csv, model_file, task="classifier")
    with pytest.raises(ConfigError, match="--task=classifier run"):
        quality_report.evaluate_run(classifier_run)


def _script(*arguments):
    return subprocess.run([sys.executable, SCRIPT, "--noprogress_bar", *arguments], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_script_prints_the_table(run_dir, tmp_path):
    result = _script(f"--run_dir={run_dir}", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "overall" in result.stdout and "spearman" in result.stdout and "clean" in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["metrics.json", "predictions.csv", "scatter.png"]


@pytest.mark.parametrize("problem", ["missing run dir", "missing model"])
def test_script_reports_a_bad_run_dir_in_one_line(tmp_path, ratings_csv, problem):
    run = str(tmp_path / "run")
    if problem == "missing model":
        _fake_run(run, ratings_csv)
    result = _script(f"--run_dir={run}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [message] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert ("no such run directory" if problem == "missing run dir" else "no quality_model.keras") in message
