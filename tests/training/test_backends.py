"""The TensorFlow and the JAX backend run one set of maths: one step of every task from the same
weights and batch gives the same losses and the same updated weights (tests/training/backend_step.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

# A long end-to-end check: `make test-slow` runs it (CI runs both targets), `make test` leaves it out.
pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ALL_TASKS = ("stargan", "legan", "depth_pretrain", "stargan_depth", "classifier", "quality", "identity")
# The tasks `make test` compares: LEGAN and the depth network's two tasks (whose steps amplify rounding, the
# hardest case for the bounds below); the depth-guided StarGAN carries StarGAN's networks and losses inside it,
# so plain StarGAN adds no code path of its own. Each task costs every backend process a compilation (about
# 10 s of CPU for JAX), and the 2-core test budget does not hold all seven on all five processes; the other
# four (stargan, classifier, quality, identity) run the same step code, and their TensorFlow steps are checked
# against two replicas on every `make test` (tests/tasks/test_mirrored_equality.py).
# All seven: LEGAN_TF_ALL_RECIPES=1, or `make test-all-recipes`.
ALL_RECIPES = os.environ.get("LEGAN_TF_ALL_RECIPES", "").strip() not in ("", "0")
TASKS = ALL_TASKS if ALL_RECIPES else ("legan", "depth_pretrain", "stargan_depth")

jax = pytest.importorskip("jax", reason="the JAX backend's tests need jax (pip install 'legan-tf[jax]')")


# The GANs' steps on two devices against one (keras.distribution.DataParallel).
PARALLEL_TASKS = tuple(task for task in ("stargan", "legan") if task in TASKS)
# TensorFlow with --jit_compile (XLA's kernels) against TensorFlow without: the GANs and the classifier.
JIT_TASKS = tuple(task for task in ("stargan", "legan", "stargan_depth", "classifier") if task in TASKS)
# The tasks with the depth network, whose step amplifies rounding (see the bounds below): TensorFlow
# also runs them on oneDNN's kernels, to measure on this machine how far rounding alone moves them.
ILL_CONDITIONED_TASKS = ("depth_pretrain", "stargan_depth")


def _start(backend, folder, tasks=TASKS, devices=1, jit=False, onednn=False):
    # TensorFlow on its Eigen kernels, not oneDNN's, unless asked: see the bounds below.
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
           "TF_ENABLE_ONEDNN_OPTS": str(int(onednn)), "BACKEND_STEP_DEVICES": str(devices),
           "BACKEND_STEP_JIT": str(int(jit)),
           # Two host devices stand in for two GPUs.
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.Popen([sys.executable, os.path.join(HERE, "backend_step.py"), folder, *tasks], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(process):
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("backends"))
    _wait(_start("tensorflow", folder))  # writes the initial weights the JAX runs then load
    # The two JAX runs are independent: side by side, they mostly compile, one core each.
    runs = [_start("jax", folder), _start("jax", folder, PARALLEL_TASKS, devices=2),
            _start("tensorflow", folder, JIT_TASKS, jit=True),
            _start("tensorflow", folder, ILL_CONDITIONED_TASKS, onednn=True)]
    for run in runs:
        _wait(run)
    return folder


@pytest.fixture(scope="module")
def outputs(folder):
    return {task: (np.load(os.path.join(folder, f"{task}-tensorflow.npz")),
                   np.load(os.path.join(folder, f"{task}-jax.npz")),
                   np.load(os.path.join(folder, f"{task}-weights.npz"))) for task in TASKS}


# Bounds. Every loss and gradient here is a float32 sum of at most ~10^5 rounded products (a 4x4
# conv over 4 x 32 x 32 positions, chained through < 30 layers); the two backends order those
# sums differently. Blocked or pairwise summation of n terms errs by about log2(n) u sum|terms|
# with u = 2^-24 = 6e-8: 17 * 6e-8 = 1e-6 per sum. The losses are forward sums: they agree to 1e-4
# relative. Gradients also pass backwards through instance normalisation, which divides by each
# channel's standard deviation and so multiplies rounding differences by up to |x| / sigma; in the
# depth network's G step (4-filter layers at 32 px) that factor reaches ~100. Measured on this
# project: TensorFlow against itself, oneDNN kernels against its Eigen kernels, differs there by
# 0.4% of a tensor's largest update, and JAX against TensorFlow-Eigen by 0.02% on one CPU but 0.38%
# on another (an Intel Xeon with AMX): how far rounding moves these tasks depends on the CPU's
# kernels, so no fixed bound follows from the arithmetic. So the TF side runs on Eigen
# (TF_ENABLE_ONEDNN_OPTS=0) and each weight tensor's SGD update (-lr * gradient) must agree to 1e-3
# of its largest entry, plus 1e-5 of the step's largest update for tensors whose gradient is zero
# up to rounding (a bias followed by a normalisation). For the depth network's tasks the test also
# measures, on the machine it runs on, the spread that rounding alone makes: the same TF step on
# oneDNN's kernels against Eigen's, the same maths summed in another order. JAX's XLA kernels are a
# third order of the same sums, so its difference from Eigen is of that size; it may be up to
# SPREAD_FACTOR times it. A wrong term, weight, sign or target breaks these by orders of magnitude.
LOSS_RTOL = 1e-4
UPDATE_RTOL = 1e-3
SPREAD_FACTOR = 4.0


def _assert_same_step(tf_out, jax_out, initial, rounding_spread=None):
    metrics = [key for key in tf_out.files if key.startswith("metric:")]
    assert metrics and sorted(metrics) == sorted(key for key in jax_out.files if key.startswith("metric:"))
    for key in metrics:
        np.testing.assert_allclose(jax_out[key], tf_out[key], rtol=LOSS_RTOL, atol=1e-6, err_msg=key)
    updates = {key: (tf_out[key] - initial[key], jax_out[key] - initial[key]) for key in initial.files}
    largest = max(float(np.abs(tf_update).max()) for tf_update, _ in updates.values())
    moved = 0
    for key, (tf_update, jax_update) in updates.items():
        scale = float(np.abs(tf_update).max())
        moved += scale > 1e-3 * largest
        bound = UPDATE_RTOL * scale + 1e-5 * largest
        if rounding_spread is not None:
            bound += SPREAD_FACTOR * float(np.abs(rounding_spread[key] - tf_out[key]).max())
        assert float(np.abs(jax_update - tf_update).max()) <= bound, key
    assert moved > len(initial.files) // 2, "most weight tensors should take a step"


@pytest.mark.parametrize("task", TASKS)
def test_one_step_is_the_same_under_both_backends(folder, outputs, task):
    spread = (np.load(os.path.join(folder, f"{task}-tensorflow-onednn.npz")) if task in ILL_CONDITIONED_TASKS
              else None)
    _assert_same_step(*outputs[task], rounding_spread=spread)


@pytest.mark.parametrize("task", PARALLEL_TASKS)
def test_two_devices_take_the_one_device_step(folder, outputs, task):
    """The batch split over two devices: the same sums in another order, so the same bounds."""
    _, one_device, initial = outputs[task]
    two_devices = np.load(os.path.join(folder, f"{task}-jax-2dev.npz"))
    assert int(two_devices["devices"]) == 2 and int(one_device["devices"]) == 1
    _assert_same_step(one_device, two_devices, initial)


@pytest.mark.parametrize("task", JIT_TASKS)
def test_the_xla_compiled_tensorflow_step_takes_the_plain_step(folder, outputs, task):
    """--jit_compile: XLA's CPU kernels (the ones JAX runs) against TensorFlow's Eigen kernels, so the
    bounds of the backend comparison above hold for the same reason."""
    plain, _, initial = outputs[task]
    _assert_same_step(plain, np.load(os.path.join(folder, f"{task}-tensorflow-jit.npz")), initial)
