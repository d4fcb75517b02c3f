"""--on_nan=skip: an update with a non-finite loss changes nothing and is counted; too many in a row stop the run."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TRAIN = os.path.join(REPO, "scripts", "train.py")


def _plain_adam_two_steps():
    """Where plain Adam (lr 0.1) takes w = (1, 1) in two steps down |w|^2: what the skipping optimizer must
    reach after finite, NaN (skipped), finite."""
    import keras
    import tensorflow as tf

    weight = keras.Variable(np.ones((2,), np.float32))
    optimizer = keras.optimizers.Adam(0.1)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(weight.value))
        optimizer.apply_gradients([(tape.gradient(loss, weight.value), weight)])
    return np.asarray(weight.value)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_nan_update_is_skipped_and_the_next_one_continues_as_if_it_never_happened(backend):
    if backend == "jax":
        pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, os.path.join(HERE, "skip_check.py")], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["skips"] == [0, 1, 0]           # the NaN update counted, the next finite one resets it
    assert outcome["values"][1] == outcome["values"][0]  # the weights did not move
    assert outcome["iterations"] == 2              # nor did Adam's step count (nor, so, its moments' bias correction)
    # Same float32 operations in the same order as two plain steps: equal, not just close.
    np.testing.assert_array_equal(np.asarray(outcome["values"][2], np.float32), _plain_adam_two_steps())


def test_too_many_skips_in_a_row_stop_the_run(tmp_path):
    from legan_tf.data.synthetic.writer import write_face_lab

    write_face_lab(tmp_path / "lab", image_size=32, num_identities=2, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    # Adam at 1e30 makes step 2's loss overflow, and every later one (the weights stay at 1e30): all skipped.
    command = [sys.executable, TRAIN, "--task=classifier", "--run_name=tiny", f"--runs_root={tmp_path}",
               "--data_format=multipie", f"--data_path={tmp_path / 'lab' / 'multipie' / 'manifest.csv'}",
               "--image_size=32", "--num_lightings=4", "--holdout_fraction=0", "--batch_size=8",
               "--classifier_base_filters=4", "--classifier_downsamples=3", "--train_steps=50", "--learning_rate=1e30",
               "--on_nan=skip", "--max_consecutive_skips=3", "--log_every=1", "--checkpoint_every=1",
               "--sample_every=1000", "--noprogress_bar"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Skipped the updates of 1 step(s) with a non-finite loss (2); 1 in the run." in result.stderr
    assert "4 updates of classifier_optimizer in a row had non-finite gradients and were skipped (more than " \
           "--max_consecutive_skips=3)" in result.stderr
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    import tensorflow as tf

    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-4")
