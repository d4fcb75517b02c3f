"""--strategy=multi_worker for real: two worker processes on localhost ports train StarGAN together.

What is checked (issue 18): the cluster forms and trains; the chief alone creates the run directory
and writes flags, samples, summaries, metrics and exports (a worker's checkpoint copy goes to
checkpoints/worker-tmp-<id>, which tf.distribute needs); both workers hold identical weights after N
steps; those weights equal a single-process run with the same global batch (MirroredStrategy over
two logical CPUs) within the bound below; and both workers resume together from the chief's checkpoint.

Why the faces are all one face: each worker reads its own shard of the data with its own seed, so
with varied faces the two runs would see different examples and nothing could be compared. With
every example the same face, every replica of both runs sees the same 4 examples, and the random
targets are keyed by the example's place in the global batch, identical in both.

The bound. Workers: each applies the same all-reduced gradient to the same weights with the same
element-wise Adam arithmetic, so their weights are compared for exact equality. Against the single
process: the forward and backward passes run on the same per-replica batch (same shapes, so the same
kernels) and the all-reduce adds two halves (a + b == b + a exactly), but a kernel may still sum in
another order. Adam turns any gradient difference into a bounded step difference: with
m = (1 - b1) sum b1^(t-i) g_i and v = (1 - b2) sum b2^(t-i) g_i^2, Cauchy-Schwarz gives
|m_hat / sqrt(v_hat)| <= (1 - b1) sqrt(1 / (1 - b1^2 / b2)) sqrt(1 - b2^t) / (sqrt(1 - b2) (1 - b1^t)),
which is <= 1.16 for b1 = 0.5, b2 = 0.999 and t <= 8. So one step of each run moves a weight by at most
1.16 lr, and after T Adam steps two runs differ by at most 2 * 1.16 * T * lr per weight, whatever the
CPU. The control (a run with another seed) is asserted to differ by far more, so the comparison can fail.
"""

import glob
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from legan_tf.data.synthetic.writer import write_face_lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
LEARNING_RATE = 1e-4
STEPS, MORE_STEPS = 4, 6  # D updates every step, G every 2nd (n_critic 2)
ADAM_STEP_BOUND = 1.16  # |m_hat / sqrt(v_hat)| for b1 = 0.5, b2 = 0.999, t <= 8 (module docstring)
STARGAN = ["--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1", "--stargan_d_filters=4",
           "--stargan_d_downsamples=3", "--stargan_n_critic=2", "--stargan_decay_steps=0"]


@pytest.fixture(scope="module")
def one_face(tmp_path_factory):
    """A manifest whose every row is the same lab face with the same labels."""
    root = tmp_path_factory.mktemp("one_face")
    write_face_lab(root, image_size=32, num_identities=2, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    lines = open(root / "multipie" / "manifest.csv").read().splitlines()
    with open(root / "multipie" / "one_face.csv", "w") as handle:
        handle.write("\n".join([lines[0]] + [lines[1]] * 16) + "\n")
    return root / "multipie" / "one_face.csv"


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("localhost", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def _arguments(manifest, runs_root, *extra):
    return [sys.executable, TRAIN, *STARGAN, "--run_name=mw", f"--runs_root={runs_root}", "--data_format=multipie",
            f"--data_path={manifest}", "--image_size=32", "--num_lightings=4", "--holdout_fraction=0",
            "--batch_size=8", f"--learning_rate={LEARNING_RATE}", "--log_every=1", "--sample_every=2",
            "--checkpoint_every=2", "--num_samples=4", "--noprogress_bar", *extra]


def _environment(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _cluster(manifest, runs_root, *extra, timeout=240):
    """Both workers of a two-worker cluster; returns their CompletedProcess-like (returncode, stderr)."""
    ports = _free_ports(2)
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            _arguments(manifest, runs_root, "--strategy=multi_worker", *extra), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=_environment(TF_CONFIG=json.dumps(config))))
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            results.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:  # a worker left waiting for a dead peer must not outlive the test
            if process.poll() is None:
                process.kill()
    return results


def _weights(prefix):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    names = [name for name in reader.get_variable_to_shape_map()
             if "/.ATTRIBUTES/VARIABLE_VALUE" in name and "OPTIMIZER_SLOT" not in name and "save_counter" not in name]
    return {name: reader.get_tensor(name) for name in names}


@pytest.fixture(scope="module")
def runs(one_face, tmp_path_factory):
    root = tmp_path_factory.mktemp("multi_worker")
    cluster = _cluster(one_face, root / "cluster", f"--train_steps={STEPS}")
    single = subprocess.run(_arguments(one_face, root / "single", "--strategy=mirrored", "--cpu_replicas=2",
                                       f"--train_steps={STEPS}"),
                            capture_output=True, text=True, timeout=240, env=_environment())
    control = subprocess.run(_arguments(one_face, root / "control", "--strategy=mirrored", "--cpu_replicas=2",
                                        f"--train_steps={STEPS}", "--seed=1"),
                             capture_output=True, text=True, timeout=240, env=_environment())
    return root, cluster, single, control


def test_two_workers_train_in_one_run_directory_that_only_the_chief_writes(runs):
    root, cluster, _, _ = runs
    for returncode, _, stderr in cluster:
        assert returncode == 0, stderr[-3000:]
    [run_dir] = glob.glob(str(root / "cluster" / "mw-*"))  # one directory for the whole cluster
    chief_out, worker_out = cluster[0][1], cluster[1][1]
    assert "Strategy: multi_worker, 2 replica(s), global batch 8" in chief_out
    assert f"Run directory: {run_dir}" in chief_out and f"Run directory: {run_dir}" in worker_out
    # Progress lines in the chief's log only (a cluster's logs are files).
    assert f"step {STEPS}/{STEPS}: " in cluster[0][2] and f"step {STEPS}/{STEPS}: " not in cluster[1][2]
    assert sorted(os.listdir(os.path.join(run_dir, "samples"))) == ["step_0000002.png", "step_0000004.png"]
    assert os.path.isfile(os.path.join(run_dir, "flags.txt")) and os.path.isfile(os.path.join(run_dir, "generator.keras"))
    assert len(glob.glob(os.path.join(run_dir, "logs", "events.out.tfevents.*"))) == 1
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", f"ckpt-{STEPS}.index"))
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", "worker-tmp-1", f"ckpt-{STEPS}.index"))


def test_both_workers_hold_the_same_weights_as_one_process_with_the_same_global_batch(runs):
    root, cluster, single, control = runs
    assert single.returncode == 0, single.stderr[-3000:]
    assert control.returncode == 0, control.stderr[-3000:]
    [run_dir] = glob.glob(str(root / "cluster" / "mw-*"))
    chief = _weights(os.path.join(run_dir, "checkpoints", f"ckpt-{STEPS}"))
    worker = _weights(os.path.join(run_dir, "checkpoints", "worker-tmp-1", f"ckpt-{STEPS}"))
    [single_dir] = glob.glob(str(root / "single" / "mw-*"))
    reference = _weights(os.path.join(single_dir, "checkpoints", f"ckpt-{STEPS}"))
    [control_dir] = glob.glob(str(root / "control" / "mw-*"))
    other_seed = _weights(os.path.join(control_dir, "checkpoints", f"ckpt-{STEPS}"))
    assert chief.keys() == worker.keys() == reference.keys() and len(chief) > 10
    for name in chief:
        np.testing.assert_array_equal(chief[name], worker[name], err_msg=name)
    # T Adam steps of D (every step) bound every weight; G had fewer (module docstring).
    bound = 2 * ADAM_STEP_BOUND * STEPS * LEARNING_RATE
    differences = {name: float(np.max(np.abs(chief[name] - reference[name]))) for name in chief}
    print(f"largest difference to the single process: {max(differences.values()):.3g} (bound {bound:.3g})")
    assert max(differences.values()) <= bound, sorted(differences.items(), key=lambda item: -item[1])[:3]
    control_difference = max(float(np.max(np.abs(chief[name] - other_seed[name]))) for name in chief)
    assert control_difference > 10 * bound


def test_both_workers_resume_together_from_the_chiefs_checkpoint(runs, one_face):
    root, cluster, _, _ = runs
    [run_dir] = glob.glob(str(root / "cluster" / "mw-*"))
    resumed = _cluster(one_face, root / "cluster", f"--train_steps={MORE_STEPS}", f"--resume={run_dir}")
    for returncode, _, stderr in resumed:
        assert returncode == 0, stderr[-3000:]
        assert f"at step {STEPS}" in stderr
    assert glob.glob(str(root / "cluster" / "mw-*")) == [run_dir]
    chief = _weights(os.path.join(run_dir, "checkpoints", f"ckpt-{MORE_STEPS}"))
    worker = _weights(os.path.join(run_dir, "checkpoints", "worker-tmp-1", f"ckpt-{MORE_STEPS}"))
    for name in chief:
        np.testing.assert_array_equal(chief[name], worker[name], err_msg=name)
    assert "step_0000006.png" in os.listdir(os.path.join(run_dir, "samples"))


def test_sigterm_to_one_worker_stops_every_worker_at_the_same_step(one_face, tmp_path):
    """A preempted machine gets SIGTERM; its peers do not. One vote per step makes all stop after the
    same step, checkpoint it together, and exit 75 (try again later)."""
    import re
    import signal
    import time

    ports = _free_ports(2)
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            _arguments(one_face, tmp_path, "--strategy=multi_worker", "--train_steps=1000000", "--log_every=1000",
                       "--sample_every=1000000"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(TF_CONFIG=json.dumps(config))))
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not glob.glob(str(tmp_path / "mw-*" / "checkpoints" / "ckpt-*.index")):
            assert all(process.poll() is None for process in processes)
            time.sleep(0.2)
        processes[1].send_signal(signal.SIGTERM)
        results = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    steps = []
    for process, (_, stderr) in zip(processes, results):
        assert process.returncode == 75, stderr[-3000:]
        found = re.search(r"stopped after step (\d+), whose checkpoint is written", stderr)
        assert found, stderr[-3000:]
        steps.append(int(found.group(1)))
    assert steps[0] == steps[1]
    [run_dir] = glob.glob(str(tmp_path / "mw-*"))
    chief = _weights(os.path.join(run_dir, "checkpoints", f"ckpt-{steps[0]}"))
    worker = _weights(os.path.join(run_dir, "checkpoints", "worker-tmp-1", f"ckpt-{steps[0]}"))
    for name in chief:
        np.testing.assert_array_equal(chief[name], worker[name], err_msg=name)
