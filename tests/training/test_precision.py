"""--mixed_precision: the networks compute in float16 / bfloat16 and train to the float32 path's result
within rounding; losses, weights and the saved models stay float32; float16's loss scaling is undone.

One step of each task from the same float32 weights and batch (tests/training/backend_step.py, on
TensorFlow's Eigen kernels as in test_backends), float32 against each mixed policy.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TASKS = ("stargan", "legan", "stargan_depth", "classifier")
POLICIES = ("mixed_bfloat16", "mixed_float16")

# Unit roundoff (half the spacing of numbers in [1, 2)): bfloat16 keeps 8 significant bits, float16 11.
UNIT_ROUNDOFF = {"mixed_bfloat16": 2.0**-8, "mixed_float16": 2.0**-11}
# The first update's losses are forward sums. Each layer rounds its inputs and weights to the compute
# dtype (relative error u each; products and sums stay float32 inside the kernels) and its output
# once more, so a chain of L layers errs by at most about 3 L u relative to the magnitudes involved,
# to first order. The tiny networks here have L <= 12 layers on any path to a loss, so 36 u bounds
# it (bfloat16: 0.14, float16: 0.018); the losses are O(1) quantities of +-1 images, hence the same
# figure as an absolute bound for losses near 0 (a critic's mean score). Measured: 1e-3 (bfloat16)
# and 3e-5 (float16) at most. A loss computed in the wrong dtype end to end or a missing cast fails
# as an error or a non-finite value, which no tolerance lets through.
LOSS_LAYERS = 12
# The classifier's update (no normalisation layer: its gradients are not amplified, unlike the
# GANs' instance norms, which multiply rounding by |x| / sigma). Backward passes round again, so
# twice the forward figure: 72 u (bfloat16 0.28, float16 0.035); measured 0.04 and 0.004. The
# faults this catches are orders of magnitude away: float16's loss scale left in the gradients (a
# factor 2^15), or the update skipped (relative difference 1).
UPDATE_LAYERS = 24


# Every test but the in-process one below starts TensorFlow processes (training steps, whole runs):
# `make test-slow` runs them.
SLOW = pytest.mark.slow


def _run_step(folder, policy, tasks):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
           "BACKEND_STEP_PRECISION": policy}
    return subprocess.Popen([sys.executable, os.path.join(HERE, "backend_step.py"), folder, *tasks], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("precision"))
    first = _run_step(folder, "float32", TASKS)  # writes the initial weights the mixed runs load
    assert first.wait(timeout=600) == 0, first.stderr.read()[-3000:]
    runs = [_run_step(folder, policy, TASKS) for policy in POLICIES]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr[-3000:]
    return folder


def _load(folder, task, policy=None):
    return np.load(os.path.join(folder, f"{task}-tensorflow{'-' + policy if policy else ''}.npz"))


def _first_update_metrics(task, names):
    """The metrics of the step's first update (D's, or the classifier's): computed from the shared initial
    weights only. Later updates start from weights the first one moved, and under float16 that first
    update may legitimately be skipped (the initial loss scale 2^15 overflowing)."""
    prefix = "metric:d/" if task != "classifier" else "metric:"
    return [name for name in names if name.startswith(prefix)]


@SLOW
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("task", TASKS)
def test_losses_match_float32(folder, task, policy):
    reference, mixed = _load(folder, task), _load(folder, task, policy)
    names = _first_update_metrics(task, reference.files)
    assert names
    bound = 3 * LOSS_LAYERS * UNIT_ROUNDOFF[policy]
    for name in names:
        assert np.isfinite(mixed[name]), name
        np.testing.assert_allclose(mixed[name], reference[name], rtol=bound, atol=bound, err_msg=name)


@SLOW
@pytest.mark.parametrize("policy", POLICIES)
def test_classifier_update_matches_float32(folder, policy):
    initial = np.load(os.path.join(folder, "classifier-weights.npz"))
    reference, mixed = _load(folder, "classifier"), _load(folder, "classifier", policy)
    update = np.concatenate([(reference[key] - initial[key]).ravel() for key in initial.files])
    mixed_update = np.concatenate([(mixed[key] - initial[key]).ravel() for key in initial.files])
    assert np.linalg.norm(update) > 0
    relative = np.linalg.norm(mixed_update - update) / np.linalg.norm(update)
    assert relative <= 3 * UPDATE_LAYERS * UNIT_ROUNDOFF[policy], relative


# What each policy's networks compute in: the dtype of every convolution's and dense layer's output during the
# step (backend_step.py records them as the layers return them, after Keras's casts).
COMPUTE_DTYPE = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
RECORDS = ("devices", "compute_dtypes", "weight_dtypes")


@SLOW
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("task", TASKS)
def test_networks_compute_in_the_policys_dtype_while_weights_stay_float32_and_finite(folder, task, policy):
    """A policy that changed nothing would leave every layer computing in float32 (as the float32 step
    does, checked here too) and fail; one that changed the variables' dtype would fail on the weights."""
    reference, mixed = _load(folder, task), _load(folder, task, policy)
    assert list(reference["compute_dtypes"]) == ["float32"]
    assert list(mixed["compute_dtypes"]) == [COMPUTE_DTYPE[policy]]
    assert list(mixed["weight_dtypes"]) == ["float32"]
    for key in reference.files:
        if not key.startswith("metric:") and key not in RECORDS:
            assert mixed[key].dtype == np.float32, key
            assert np.all(np.isfinite(mixed[key])), key


def test_float32_copy_computes_what_a_float32_network_does():
    from legan_tf import precision
    from legan_tf.models.stargan import StarGANGenerator

    def generator():
        network = StarGANGenerator(image_size=32, num_labels=3, base_filters=4, num_residual_blocks=1)
        network.build()
        return network

    try:
        precision.set_policy("mixed_bfloat16")
        mixed = generator()
    finally:
        precision.set_policy("float32")
    plain = generator()
    plain.set_weights(mixed.get_weights())
    copy = precision.float32_copy(mixed)
    inputs = (np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32"),
              np.eye(3, dtype="float32")[[0, 2]])
    assert "mixed_bfloat16" in _policies(mixed)
    assert _policies(copy) == {"float32"}
    # The same float32 kernels on the same weights and inputs in one process.
    np.testing.assert_allclose(copy(inputs), plain(inputs), rtol=1e-6, atol=1e-6)


def _policies(network):
    return {layer.dtype_policy.name for layer in network._flatten_layers(include_self=True, recursive=True)}


def _train(tmp_path, *arguments):
    command = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), f"--runs_root={tmp_path}",
               "--progress_bar=false", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@SLOW
def test_mixed_float16_run_exports_float32_models(tmp_path, tiny_lab):
    import keras

    result = _train(tmp_path, "--task=stargan", *tiny_lab, "--image_size=32", "--batch_size=4",
                    "--train_steps=4", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1",
                    "--stargan_d_filters=4", "--stargan_d_downsamples=3", "--stargan_n_critic=2",
                    "--mixed_precision=mixed_float16", "--checkpoint_every=2", "--eval_every=4")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = next(path for path in tmp_path.iterdir() if path.is_dir())
    generator = keras.saving.load_model(run_dir / "generator.keras")
    assert _policies(generator) == {"float32"}
    with open(run_dir / "flags.txt") as handle:
        assert "--mixed_precision=mixed_float16" in handle.read()


@SLOW
def test_skip_with_float16_loss_scaling_is_refused(tmp_path, tiny_lab):
    result = _train(tmp_path, "--task=stargan", *tiny_lab, "--image_size=32", "--train_steps=1",
                    "--mixed_precision=mixed_float16", "--on_nan=skip")
    assert result.returncode != 0
    assert "--on_nan=skip with --mixed_precision=mixed_float16" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())


# Tiny networks of each recipe that reads the face lab (the depth recipes: test_depth_train_script.py).
RECIPES = {
    "classifier": ("--classifier_base_filters=4", "--classifier_downsamples=2"),
    "identity": ("--identity_channels=4,4,4,4,4", "--identity_blocks=1,1,1,1", "--identity_embedding_dim=8"),
    "quality": ("--quality_base_filters=4", "--quality_downsamples=3", "--quality_dense_units=8"),
    "stargan": ("--stargan_g_filters=4", "--stargan_g_residual_blocks=1", "--stargan_d_filters=4",
                "--stargan_d_downsamples=3", "--stargan_n_critic=2", "--stargan_ema_decay=0.9"),
    "legan": ("--legan_g_filters=4", "--legan_g_residual_blocks=1", "--legan_d_filters=4", "--legan_d_downsamples=3",
              "--legan_n_critic=2", "--legan_lambda_qual=0", "--legan_lambda_id=0", "--legan_ema_decay=0.9"),
}


def _lab_ratings(lab_flags):
    """The face lab's crowd ratings (Q's data), beside the manifest that `lab_flags` reads."""
    manifest = next(value.split("=", 1)[1] for value in lab_flags if value.startswith("--data_path="))
    return os.path.join(os.path.dirname(os.path.dirname(manifest)), "quality", "ratings.csv")


@SLOW
@pytest.mark.parametrize("task", sorted(RECIPES))
def test_every_recipe_trains_evaluates_and_samples_in_bfloat16(tmp_path, tiny_lab, task):
    """The first-update tests above run the training step only. A run also evaluates on held-out faces and
    draws sample grids, where the networks' bfloat16 outputs meet float32 data and numpy: Q's run once
    stopped at its first step there ('Sub ... float32 does not match type bfloat16')."""
    import json
    import math

    data = [*tiny_lab, "--holdout_fraction=0.5"]  # held-out faces to evaluate on
    if task == "quality":
        data = ["--data_format=ratings", f"--data_path={_lab_ratings(tiny_lab)}", "--holdout_fraction=0.5"]
    result = _train(tmp_path, f"--task={task}", *data, *RECIPES[task], "--image_size=32", "--batch_size=4",
                    "--train_steps=2", "--mixed_precision=mixed_bfloat16", "--log_every=2", "--eval_every=2",
                    "--sample_every=2", "--checkpoint_every=2", "--num_samples=4")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = next(path for path in tmp_path.iterdir() if path.is_dir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert any(name.startswith("eval/") for name in metrics), metrics
    assert all(math.isfinite(value) for value in metrics.values()), metrics
    assert sorted(os.listdir(run_dir / "samples")) == ["step_0000002.png"]


@SLOW
def test_a_held_out_split_too_small_for_q_is_a_clear_error(tmp_path, tiny_lab):
    result = _train(tmp_path, "--task=quality", "--data_format=ratings", f"--data_path={_lab_ratings(tiny_lab)}",
                    "--holdout_fraction=0.3", *RECIPES["quality"], "--image_size=32", "--batch_size=4",
                    "--train_steps=2", "--eval_every=2")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "fewer than two rated images" in result.stderr and "Traceback" not in result.stderr
