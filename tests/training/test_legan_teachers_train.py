"""scripts/train.py with LEGAN's expression teacher and paired lighting: the terms train and are logged, and
a teacher or data that cannot serve them stops at start-up with one line and no run directory."""

import csv
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from legan_tf.data.config import MULTIPIE_EXPRESSIONS
from legan_tf.models.stargan import StarGANGenerator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
LEGAN_TINY = ("--task=legan", "--legan_g_filters=4", "--legan_g_residual_blocks=1", "--legan_d_filters=4",
              "--legan_d_downsamples=5", "--legan_n_critic=2", "--legan_lambda_id=0", "--legan_lambda_qual=0")


def _teacher(folder, names):
    """A tiny StarGAN generator .keras with the labels.json of its names beside it."""
    os.makedirs(folder, exist_ok=True)
    keras.utils.set_random_seed(3)
    teacher = StarGANGenerator(image_size=32, num_labels=len(names), base_filters=4, num_residual_blocks=1)
    teacher((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, len(names)), np.float32)))
    teacher.save(os.path.join(folder, "generator.keras"))
    with open(os.path.join(folder, "labels.json"), "w") as handle:
        json.dump({"expression": list(names)}, handle)
    return os.path.join(folder, "generator.keras")


def _train(data_flags, runs_root, *extra):
    command = [sys.executable, TRAIN, *LEGAN_TINY, "--run_name=tiny", f"--runs_root={runs_root}", *data_flags,
               "--image_size=32", "--norandom_flip", "--batch_size=4", "--log_every=1", "--sample_every=4",
               "--eval_every=4", "--checkpoint_every=4", "--num_samples=4", "--noprogress_bar", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.slow
def test_a_taught_and_paired_legan_trains_and_logs_both_terms(tiny_lab, tmp_path):
    # The lab renders each person's expressions under every light: each face has its copies.
    teacher = _teacher(str(tmp_path / "teacher"), MULTIPIE_EXPRESSIONS[::-1])
    result = _train(tiny_lab, tmp_path, "--train_steps=4", "--legan_paired_lighting_weight=1",
                    "--legan_teacher_pixel_weight=1", f"--legan_expression_teacher={teacher}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Paired lighting: " in result.stderr and " of the training subjects have copies" in result.stderr
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    logged = [json.loads(line) for line in open(os.path.join(run, "logs", "scalars.jsonl"))]
    assert {2, 4} <= {row["step"] for row in logged if "g/teacher_pixel" in row}  # the G steps, n_critic 2
    assert all(row["g/teacher_pixel"] > 0 and row["g/paired_lighting"] > 0 for row in logged if "g/total" in row)
    flags = open(os.path.join(run, "flags.txt")).read()
    assert f"--legan_expression_teacher={teacher}" in flags and "--legan_paired_lighting_weight=1.0" in flags


@pytest.mark.slow
def test_a_supervised_warm_up_trains_g_alone_then_the_gan(tiny_lab, tmp_path):
    teacher = _teacher(str(tmp_path / "teacher"), MULTIPIE_EXPRESSIONS[::-1])
    result = _train(tiny_lab, tmp_path, "--train_steps=8", "--legan_teacher_pixel_weight=1",
                    f"--legan_expression_teacher={teacher}", "--legan_supervised_warmup_steps=3")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert os.path.isfile(os.path.join(run, "generator.keras"))
    logged = {row["step"]: row for row in map(json.loads, open(os.path.join(run, "logs", "scalars.jsonl")))}
    assert sorted(logged) == list(range(1, 9))
    for step, row in logged.items():
        kinds = {name.split("/")[0] for name in row if "/" in name and not name.startswith("throughput")}
        # Steps 1-3 the warm-up alone; from 4 D every step, G every n_critic (2) steps: its figures from step 4.
        assert kinds == ({"warmup"} if step <= 3 else {"d", "g"}), (step, sorted(row))
        assert (row["warmup/teacher_pixel"] > 0) if step <= 3 else (row["g/teacher_pixel"] > 0)


@pytest.fixture(scope="module")
def unpaired_csv(tmp_path_factory):
    """A csv layout with expression and lighting labels but no subject column."""
    from PIL import Image

    root = tmp_path_factory.mktemp("csv")
    rows = []
    for number in range(8):
        path = root / f"{number}.png"
        Image.fromarray(np.full((32, 32, 3), 30 * number, np.uint8)).save(path)
        rows.append({"image": str(path), "expression": number % 2, "lighting": number % 3})
    with open(root / "faces.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "expression", "lighting"])
        writer.writeheader()
        writer.writerows(rows)
    return ["--data_format=csv", f"--data_path={root / 'faces.csv'}", "--label_columns=expression,lighting",
            "--expression_names=a,b", "--lighting_names=x,y,z"]


def test_a_teacher_or_data_that_cannot_serve_stops_at_start_up(tiny_lab, unpaired_csv, tmp_path):
    short = _teacher(str(tmp_path / "short"), MULTIPIE_EXPRESSIONS[:4])
    cases = [
        (tiny_lab, ("--legan_teacher_pixel_weight=1", f"--legan_expression_teacher={short}"),
         f"--legan_expression_teacher={short}: its expression labels"),
        (unpaired_csv, ("--legan_paired_lighting_weight=1",), "needs data that names each face's subject"),
        (tiny_lab, ("--legan_paired_lighting_weight=1", "--random_flip"), "paired lighting needs --norandom_flip"),
    ]
    for data, flags, words in cases:
        result = _train(data, tmp_path / "runs", "--train_steps=2", *flags)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and words in errors[0], result.stderr[-2000:]
        assert not os.path.exists(tmp_path / "runs")  # nothing written
