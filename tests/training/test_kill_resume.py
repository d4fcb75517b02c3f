"""SIGKILL at random points of a run, checkpoint writes included: --resume always continues from a
complete checkpoint, and with --deterministic the resumed run's weights equal an uninterrupted
run's at the same step, bit for bit (issue 19).

Why bit for bit can be asked: every random draw of the recipe is keyed by (seed, stream, step)
(legan_tf/random_streams.py), the input reads the batches an uninterrupted run would read from any
start step, the checkpoint holds every weight, optimizer slot and the step, and op determinism makes
each kernel sum in a fixed order. Nothing else carries state from one step to the next.
"""

import glob
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from legan_tf.data.synthetic.writer import write_face_lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
STEPS = 40
TRIALS = 5


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill_lab")
    write_face_lab(root, image_size=32, num_identities=4, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    return root / "multipie" / "manifest.csv"


def _command(manifest, runs_root, *extra):
    return [sys.executable, TRAIN, "--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1",
            "--stargan_d_filters=4", "--stargan_d_downsamples=3", "--stargan_n_critic=2", "--run_name=kill",
            f"--runs_root={runs_root}", "--data_format=multipie", f"--data_path={manifest}", "--image_size=32",
            "--num_lightings=4", "--holdout_fraction=0", "--batch_size=4", f"--train_steps={STEPS}",
            "--checkpoint_every=1", "--keep_checkpoints=2", "--log_every=10", "--sample_every=1000",
            "--noprogress_bar", "--deterministic", *extra]


def _environment():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _final_weights(run_dir):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints", f"ckpt-{STEPS}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.endswith("VARIABLE_VALUE") and "save_counter" not in name}


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(lab, tmp_path):
    straight = subprocess.run(_command(lab, tmp_path / "straight"), capture_output=True, text=True, timeout=300,
                              env=_environment())
    assert straight.returncode == 0, straight.stderr[-3000:]
    [straight_dir] = glob.glob(str(tmp_path / "straight" / "kill-*"))

    rng = random.Random(0)  # the kill points vary between trials, the same in every test run
    killed_at, run_dir = [], None
    for trial in range(TRIALS):
        extra = [f"--resume={run_dir}"] if run_dir else []
        process = subprocess.Popen(_command(lab, tmp_path / "killed", *extra), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, env=_environment())
        # Wait for training to be under way (a checkpoint newer than the start), then kill at a random moment:
        # with a checkpoint every step, most moments fall inside or next to a checkpoint write.
        deadline = time.monotonic() + 240
        before = {os.path.basename(p) for p in glob.glob(str(tmp_path / "killed" / "kill-*" / "checkpoints" / "*"))}
        while time.monotonic() < deadline and process.poll() is None:
            now = {os.path.basename(p) for p in glob.glob(str(tmp_path / "killed" / "kill-*" / "checkpoints" / "*"))}
            if now - before:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode in (-signal.SIGKILL, 0), stderr[-3000:]
        run_dir = run_dir or glob.glob(str(tmp_path / "killed" / "kill-*"))[0]
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
        assert latest is not None
        tf.train.load_checkpoint(latest)  # the registered checkpoint is complete and readable
        killed_at.append(int(latest.rsplit("-", 1)[1]))
    print("latest checkpoint after each kill:", killed_at)
    assert len(set(killed_at)) > 1, killed_at  # the trials stopped at different steps

    finished = subprocess.run(_command(lab, tmp_path / "killed", f"--resume={run_dir}"), capture_output=True,
                              text=True, timeout=300, env=_environment())
    assert finished.returncode == 0, finished.stderr[-3000:]
    straight_weights, resumed_weights = _final_weights(straight_dir), _final_weights(run_dir)
    assert straight_weights.keys() == resumed_weights.keys() and len(straight_weights) > 10
    for name, value in straight_weights.items():
        np.testing.assert_array_equal(resumed_weights[name], value, err_msg=name)
