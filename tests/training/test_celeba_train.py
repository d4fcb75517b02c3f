"""StarGAN's CelebA benchmark end to end on a tiny generated CelebA: prepare_data's shards, a multi-label StarGAN
and its judge trained by scripts/train.py, the attribute-edit judge on the held-out people, and the CelebA
presets' recipe at test widths under both backends."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.data.test_celeba import ATTRIBUTES, PEOPLE, PER_PERSON, write_celeba

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
PREPARE = os.path.join(REPO, "scripts", "prepare_data.py")
JUDGE = os.path.join(REPO, "scripts", "judge_attribute_edits.py")
PREPARE_ATTRIBUTES = ",".join(ATTRIBUTES)
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(script, *arguments, timeout=600):
    return subprocess.run([sys.executable, script, *arguments], capture_output=True, text=True, timeout=timeout,
                          env=ENV, cwd=REPO)


@pytest.fixture(scope="module")
def celeba_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    celeba = write_celeba(str(root))
    output = str(root / "shards")
    result = _run(PREPARE, "--data_format=celeba", f"--data_path={celeba.attribute_file}",
                  f"--celeba_images={celeba.images}", f"--attribute_names={PREPARE_ATTRIBUTES}", "--image_size=32",
                  "--holdout_fraction=0.3", "--split_seed=0", f"--output_dir={output}", "--num_shards=2")
    assert result.returncode == 0, result.stderr[-3000:]
    return output, celeba.vectors


STARGAN_TINY = ("--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1", "--stargan_d_filters=4",
                "--stargan_d_downsamples=3", "--stargan_n_critic=2")


def _train(shards, runs_root, name, *extra):
    return _run(TRAIN, f"--run_name={name}", f"--runs_root={runs_root}", "--data_format=tfrecord",
                f"--data_path={shards}", f"--attribute_names={PREPARE_ATTRIBUTES}", "--image_size=32",
                "--batch_size=4", "--log_every=1", "--sample_every=4", "--eval_every=4", "--checkpoint_every=4",
                "--num_samples=4", "--noprogress_bar", *extra)


def _only_run(root, name):
    [run] = [entry for entry in os.listdir(root) if entry.startswith(name + "-")]
    return os.path.join(root, run)


def test_prepared_shards_split_by_person_and_hold_the_vectors(celeba_shards):
    shards, _ = celeba_shards
    with open(os.path.join(shards, "dataset.json")) as handle:
        metadata = json.load(handle)
    assert metadata["label_names"] == {"attributes": list(ATTRIBUTES)}
    assert {"train", "test"} <= set(metadata["splits"])
    assert sum(split["num_records"] for split in metadata["splits"].values()) == len(PEOPLE) * PER_PERSON


@pytest.mark.slow
def test_a_multi_label_stargan_and_its_judge_train_and_the_judge_reads_the_edits(celeba_shards, tmp_path):
    shards, _ = celeba_shards
    result = _train(shards, tmp_path, "stargan", *STARGAN_TINY, "--train_steps=4")
    assert result.returncode == 0, result.stderr[-3000:]
    run = _only_run(tmp_path, "stargan")
    with open(os.path.join(run, "labels.json")) as handle:
        assert json.load(handle) == {"attributes": list(ATTRIBUTES)}
    logged = [json.loads(line) for line in open(os.path.join(run, "logs", "scalars.jsonl"))]
    assert any("d/classification" in row and np.isfinite(row["d/classification"]) for row in logged)
    assert any("eval/d_accuracy/attributes" in row for row in logged)
    assert os.listdir(os.path.join(run, "samples"))

    result = _train(shards, tmp_path, "judge", "--task=classifier", "--classifier_base_filters=4",
                    "--classifier_downsamples=2", "--train_steps=4")
    assert result.returncode == 0, result.stderr[-3000:]
    judge = os.path.join(_only_run(tmp_path, "judge"), "attribute_classifier.keras")
    assert os.path.isfile(judge)

    output = str(tmp_path / "judged")
    result = _run(JUDGE, f"--run_dir={run}", f"--judge={judge}", "--num_faces=0", f"--output_dir={output}",
                  "--noprogress_bar")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(output, "metrics.json")) as handle:
        metrics = json.load(handle)
    # The held-out people's faces only: some of the people, all of each one's faces.
    assert 0 < metrics["faces"] < len(PEOPLE) * PER_PERSON and metrics["faces"] % PER_PERSON == 0
    assert set(metrics["asked"]) == set(ATTRIBUTES) and 0.0 <= metrics["asked_mean"] <= 1.0
    assert os.path.isfile(os.path.join(output, "edits_grid.png")) and "read as asked" in result.stdout


def test_a_judge_file_that_is_not_there_is_one_line_not_a_traceback(tmp_path):
    result = _run(JUDGE, f"--run_dir={tmp_path}", "--judge=missing.keras", "--noprogress_bar")
    assert result.returncode == 1 and "error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_celeba_recipe_trains_under_the_jax_backend(celeba_shards, tmp_path):
    pytest.importorskip("jax", reason="the JAX backend's tests need jax (pip install 'legan-tf[jax]')")
    shards, _ = celeba_shards
    result = _train(shards, tmp_path, "jax", *STARGAN_TINY, "--backend=jax", "--train_steps=4")
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [json.loads(line) for line in open(os.path.join(_only_run(tmp_path, "jax"), "logs", "scalars.jsonl"))]
    assert any("g/classification" in row and np.isfinite(row["g/classification"]) for row in logged)
