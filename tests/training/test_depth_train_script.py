"""scripts/train.py for the depth recipes: pre-train, then train end to end from that run; clear errors."""

import glob
import math
import json
import os
import subprocess
import sys

import keras
import pytest

from legan_tf.data.synthetic.writer import write_face_lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
EXPRESSIONS = "anger,contempt,disgust,fear,happy,neutral,sadness,surprise"


@pytest.fixture(scope="module")
def rgbd_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgbd_lab")
    write_face_lab(root, image_size=32, num_identities=4, seed=0, num_lightings=4, rgbd_lightings_per_face=1,
                   parts=("rgbd", "multipie"), progress=False)
    return root


def _train(lab, runs_root, task, *extra):
    prefix = f"--{task}_"
    command = [
        sys.executable, TRAIN, f"--task={task}", f"--runs_root={runs_root}", "--data_format=rgbd",
        f"--data_path={lab / 'rgbd' / 'manifest.csv'}", "--image_size=32", f"--expression_names={EXPRESSIONS}",
        "--holdout_fraction=0.25", "--batch_size=8", f"{prefix}g_filters=4", f"{prefix}g_residual_blocks=1",
        f"{prefix}d_filters=4", f"{prefix}d_downsamples=3", f"{prefix}n_critic=2", "--log_every=2",
        "--sample_every=2", "--eval_every=2", "--checkpoint_every=2", "--num_samples=4", "--noprogress_bar", *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.fixture(scope="module")
def pretrained(rgbd_lab, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = _train(rgbd_lab, runs, "depth_pretrain", "--train_steps=2", "--depth_pretrain_perceptual_net=none")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(runs / "depth_pretrain-*"))
    return run


def test_pretraining_writes_the_depth_network_metrics_and_samples(pretrained):
    assert sorted(os.listdir(os.path.join(pretrained, "samples"))) == ["step_0000002.png"]
    metrics = json.load(open(os.path.join(pretrained, "metrics.json")))
    assert {"eval/depth_mae", "eval/depth_mae_face", "eval/cycle_l1", "eval/d_accuracy/expression"} <= set(metrics)
    import legan_tf  # noqa: F401

    generator = keras.models.load_model(os.path.join(pretrained, "depth_generator.keras"))
    assert generator.geometry == "depth" and generator.image_size == 32
    assert keras.models.load_model(os.path.join(pretrained, "depth_discriminator.keras")).head_classes == {"expression": 8}


@pytest.mark.slow
def test_end_to_end_training_starts_from_the_pretrained_run_and_resumes(rgbd_lab, pretrained, tmp_path):
    args = (f"--stargan_depth_pretrained_run={pretrained}", "--stargan_depth_depth_weight=0.3",
            "--stargan_depth_ema_decay=0.999")
    first = _train(rgbd_lab, tmp_path, "stargan_depth", "--train_steps=2", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "stargan_depth-*"))
    assert {"generator.keras", "discriminator.keras", "depth_generator.keras", "depth_discriminator.keras"} <= set(
        os.listdir(run))
    assert "eval/depth_network_l1" in json.load(open(os.path.join(run, "metrics.json")))
    flags = open(os.path.join(run, "flags.txt")).read()
    assert "--stargan_depth_depth_weight=0.3" in flags and f"--stargan_depth_pretrained_run={pretrained}" in flags
    resumed = _train(rgbd_lab, tmp_path, "stargan_depth", "--train_steps=4", f"--resume={run}", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 2" in resumed.stderr
    assert [json.loads(line)["step"] for line in open(os.path.join(run, "metrics.jsonl"))] == [2, 4]


@pytest.mark.parametrize("extra, message", [
    (("--stargan_depth_depth_weight=0.3",), "needs the pre-trained depth network: give --stargan_depth_pretrained_run"),
    (("--stargan_depth_geometry=normals", "PRETRAINED"), "predicts depth, but --stargan_depth_geometry=normals"),
    (("--stargan_depth_pretrained_run=/no/such/run",), "no depth_generator.keras there"),
])
def test_clear_errors_before_any_run_directory(rgbd_lab, pretrained, tmp_path, extra, message):
    extra = [f"--stargan_depth_pretrained_run={pretrained}" if value == "PRETRAINED" else value for value in extra]
    result = _train(rgbd_lab, tmp_path, "stargan_depth", "--train_steps=1", *extra)
    assert result.returncode == 1 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not glob.glob(str(tmp_path / "stargan_depth-*"))


def test_pretraining_needs_depth_data_and_names_the_perceptual_flag(rgbd_lab, tmp_path):
    no_depth = subprocess.run(
        [sys.executable, TRAIN, "--task=depth_pretrain", f"--runs_root={tmp_path}", "--data_format=multipie",
         f"--data_path={rgbd_lab / 'multipie' / 'manifest.csv'}", "--image_size=32", "--num_lightings=4",
         "--train_steps=1"], capture_output=True, text=True, timeout=300)
    assert no_depth.returncode == 1 and "use --data_format=rgbd" in no_depth.stderr, no_depth.stderr[-2000:]
    missing = _train(rgbd_lab, tmp_path, "depth_pretrain", "--train_steps=1",
                     f"--depth_pretrain_perceptual_weights={tmp_path / 'vgg19.h5'}")
    assert missing.returncode == 1 and "--depth_pretrain_perceptual_weights" in missing.stderr, missing.stderr[-2000:]
    assert "--depth_pretrain_perceptual_net=none" in missing.stderr
    assert "Traceback" not in missing.stderr and not glob.glob(str(tmp_path / "depth_pretrain-*"))


def test_evaluate_depth_reports_the_network_against_the_mean_map(pretrained, tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "evaluate_depth.py"),
                             f"--run_dir={pretrained}", f"--output_dir={tmp_path}"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.load(open(tmp_path / "depth_metrics.json"))
    metrics = report["metrics"]
    assert report["held_out_faces"] == metrics["faces"] > 0
    assert metrics["ratio"] == pytest.approx(metrics["depth_error"] / metrics["depth_error_mean_map"])
    assert (tmp_path / "depth_samples.png").is_file()
    assert "learning check (ratio <= 0.5)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("geometry", ["depth", "normals"])
def test_both_depth_recipes_train_evaluate_and_sample_in_bfloat16(rgbd_lab, tmp_path, geometry):
    """--mixed_precision: the networks' outputs are bfloat16 while the data's maps are float32, so every
    held-out figure and sample grid must cast (a CK+48 pre-training run once stopped at its first
    evaluation: 'expected a float tensor but is a bfloat16 tensor')."""
    precision = "--mixed_precision=mixed_bfloat16"
    pretrain = _train(rgbd_lab, tmp_path, "depth_pretrain", "--train_steps=2", precision,
                      "--depth_pretrain_perceptual_net=none", f"--depth_pretrain_geometry={geometry}")
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    [pretrained] = glob.glob(str(tmp_path / "depth_pretrain-*"))
    metrics = json.load(open(os.path.join(pretrained, "metrics.json")))
    assert {"eval/geometry_l1", "eval/cycle_l1"} <= set(metrics) and all(map(math.isfinite, metrics.values()))
    assert os.listdir(os.path.join(pretrained, "samples")) == ["step_0000002.png"]
    end_to_end = _train(rgbd_lab, tmp_path, "stargan_depth", "--train_steps=2", precision,
                        f"--stargan_depth_pretrained_run={pretrained}", "--stargan_depth_depth_weight=0.3",
                        f"--stargan_depth_geometry={geometry}")
    assert end_to_end.returncode == 0, end_to_end.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "stargan_depth-*"))
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert "eval/depth_network_l1" in metrics and all(map(math.isfinite, metrics.values()))
    assert os.listdir(os.path.join(run, "samples")) == ["step_0000002.png"]
