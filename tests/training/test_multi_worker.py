"""--strategy=multi_worker for real: recipes train on two worker processes on localhost ports.

What is checked, for each recipe of CLUSTER_RECIPES (stargan and legan; all seven, with identity,
depth_pretrain, stargan_depth, classifier and quality, under LEGAN_TF_ALL_RECIPES=1): the cluster
forms and trains; the chief alone creates the run directory and writes flags,
samples, summaries and exports (a worker's checkpoint copy goes to checkpoints/worker-tmp-<id>, which
tf.distribute needs); both workers hold bitwise-identical weights and optimizer state after 4 steps;
and those weights equal a single-process run with the same global batch (--strategy=mirrored
--cpu_replicas=2, so those recipes are also trained end to end on two local replicas) within the bound
below. For StarGAN also: both workers resume together from the chief's checkpoint, and a SIGTERM to
one worker stops both at the same step (one launch: the resumed cluster is the one signalled).

Every run of the module starts from one fixture, side by side (each TensorFlow process spends about 10 s
of CPU starting and tracing its steps; run one after another they would take several minutes), at most
MAX_PROCESSES at a time, the runs that others need first.

The recipes run as in use: LEGAN with both frozen judges, the identity network and Q exported by this
module's tiny identity and quality runs; stargan_depth starting from the depth network exported by the
tiny depth_pretrain run. Dropout is 0 (the identity recipe's default is 0.5): Keras draws dropout masks
per replica.

Why the faces are all one face: each worker reads its own shard of the data with its own seed, so with
varied faces the cluster and the single process would put different examples at a given place of
the global batch. With every example the same face (and the same labels), every replica of both runs
sees the same examples and the random draws are keyed by the example's place in the global batch,
identical in both, so the two runs are one computation in a different summation order. The identity
recipe needs two training subjects, so its data is two faces; the bound below does not depend on the
data.

The bound. Workers: each applies the same all-reduced gradient to the same weights with the same
element-wise Adam arithmetic, so everything they hold is compared for exact equality. Against the
single process: a kernel may sum in another order, and Adam turns any gradient difference, however
small, into a bounded step difference. With m_hat = sum_k a_k g_(t-k), a_k = (1 - b1) b1^k / (1 - b1^t),
and v_hat = sum_k c_k g_(t-k)^2, c_k = (1 - b2) b2^k / (1 - b2^t), Cauchy-Schwarz gives
|m_hat / sqrt(v_hat)| <= sqrt(sum_k a_k^2 / c_k) for any gradients (an equality for some), and Keras's
epsilon only shrinks the step; every schedule here is constant or decays, so Adam's t-th update moves a
weight by at most lr * sqrt(sum_k a_k^2 / c_k). Two runs from the same initial weights therefore differ
after T updates by at most twice the sum of those steps, whatever the CPU (`adam_bound`; 8.8 lr for
T = 4 and b1 = 0.5, 8.0 lr for b1 = 0.9), plus the float32 rounding of each update w - step (half a unit
in the last place of w per update and run: 6e-8 for |w| < 1, three orders of magnitude below lr here). The
bound applies to the networks' weights (an exponential moving average of them included); Adam's moments
are not steps and are compared between workers only. It holds for any data, so it checks what a cluster
must get right beyond the gradient arithmetic (tests/tasks/test_mirrored_equality.py checks that every
recipe's gradients on two replicas equal one device's): the same initial weights as one process, the
same number of updates, the same learning rate. The control, a StarGAN run with another seed, is
asserted to differ by far more, so the comparison can fail.
"""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from legan_tf.data.synthetic.writer import write_face_lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
LEARNING_RATE = 1e-4
STEPS = 4  # GANs: D updates every step, G every 2nd (n_critic 2)
ADAM_BETA_2 = 0.999  # every recipe's
EXPRESSIONS = "anger,contempt,disgust,fear,happy,neutral,sadness,surprise"  # the lab's rgbd part
# Processes started at once: each TensorFlow process holds about 1 GB; more would only share the same cores.
MAX_PROCESSES = 6
JOB_TIMEOUT = 420  # seconds for one run (a guard: a run takes 10-30 s alone, a few minutes on loaded cores)
TIMEOUT = 1200  # seconds for the whole set of runs (a guard: they take a few minutes)


def _gan(task):
    return [f"--task={task}", f"--{task}_g_filters=4", f"--{task}_g_residual_blocks=1", f"--{task}_d_filters=4",
            f"--{task}_d_downsamples=3", f"--{task}_n_critic=2", f"--{task}_decay_steps=0", f"--{task}_beta_1=0.5"]


# recipe -> (its flags, the data it reads, Adam's beta_1 for the bound, the runs it needs: {flag: recipe})
RECIPES = {
    "stargan": (_gan("stargan"), "multipie", 0.5, {}),
    "legan": (_gan("legan") + ["--legan_lambda_id=1", "--legan_lambda_qual=1"], "multipie", 0.5,
              {"legan_identity_model": "identity", "legan_quality_model": "quality"}),
    "depth_pretrain": (_gan("depth_pretrain") + ["--depth_pretrain_perceptual_net=none"], "rgbd", 0.5, {}),
    "stargan_depth": (_gan("stargan_depth"), "rgbd", 0.5, {"stargan_depth_pretrained_run": "depth_pretrain"}),
    # The single-network recipes: Adam(b1 = 0.9), learning rate decaying to 0 over the run.
    "classifier": (["--task=classifier", "--classifier_base_filters=4", "--classifier_downsamples=3",
                    "--classifier_dropout=0"], "multipie", 0.9, {}),
    "quality": (["--task=quality", "--quality_base_filters=4", "--quality_downsamples=3", "--quality_dense_units=8"],
                "ratings", 0.9, {}),
    "identity": (["--task=identity", "--identity_channels=4,8,8,8,8", "--identity_blocks=1,1,1,1",
                  "--identity_embedding_dim=8", "--identity_dropout=0"], "identities", 0.9, {}),
}
# What a dependency provides: the file or run directory of the dependency's single-process run.
PROVIDES = {"identity": "identity_model.keras", "quality": "quality_model.keras", "depth_pretrain": ""}
# The recipes trained on a cluster without LEGAN_TF_ALL_RECIPES (`pytest` on this file; `make test` leaves the
# file to `make test-multi-worker`, for its 2-core time budget): the two GANs of the papers (LEGAN with both frozen judges,
# whose targets gather labels across replicas; StarGAN's cluster is also resumed and preempted below). Each run
# is a TensorFlow process start (about 10 s of CPU), and the 2-core test budget does not hold all seven; the
# other five (identity, whose two faces the cluster and the single process place differently in the batch,
# classifier, quality, depth_pretrain, stargan_depth) run
# the same loop and strategy code, and their gradients on two replicas are checked on every `make test`
# (tests/tasks/test_mirrored_equality.py). All seven on a cluster: LEGAN_TF_ALL_RECIPES=1, or
# `make test-multi-worker`.
ALL_RECIPES = os.environ.get("LEGAN_TF_ALL_RECIPES", "").strip() not in ("", "0")
CLUSTER_RECIPES = tuple(RECIPES) if ALL_RECIPES else ("stargan", "legan")


def adam_step_bound(t, beta_1, beta_2=ADAM_BETA_2):
    """max |m_hat / sqrt(v_hat)| over all gradient sequences at Adam's t-th update (module docstring)."""
    k = np.arange(t)
    a = (1 - beta_1) * beta_1**k / (1 - beta_1**t)
    c = (1 - beta_2) * beta_2**k / (1 - beta_2**t)
    return float(np.sqrt(np.sum(a**2 / c)))


def adam_bound(beta_1, updates=STEPS, learning_rate=LEARNING_RATE):
    """How far two runs from the same weights can be apart after `updates` Adam updates, per weight."""
    return 2 * learning_rate * sum(adam_step_bound(t, beta_1) for t in range(1, updates + 1))


def test_the_adam_bound_is_the_largest_step_that_adam_takes():
    """The bound's arithmetic: a gradient sequence reaching it exists (g_i proportional to a_i / c_i), no random
    sequence exceeds it, and a first step is exactly lr (m_hat / sqrt(v_hat) = g / |g|)."""
    assert adam_step_bound(1, 0.5) == pytest.approx(1.0) and adam_step_bound(1, 0.9) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    for beta_1 in (0.5, 0.9):
        for t in range(1, STEPS + 1):
            k = np.arange(t)
            a = (1 - beta_1) * beta_1**k / (1 - beta_1**t)
            c = (1 - ADAM_BETA_2) * ADAM_BETA_2**k / (1 - ADAM_BETA_2**t)
            ratio = lambda g: abs(np.sum(a * g)) / np.sqrt(np.sum(c * g**2))  # noqa: E731  (g[k] = g_(t-k))
            assert ratio(a / c) == pytest.approx(adam_step_bound(t, beta_1))
            assert max(ratio(rng.normal(size=t) * rng.uniform(0.01, 100, size=t)) for _ in range(1000)) \
                <= adam_step_bound(t, beta_1) * (1 + 1e-12)
    assert adam_bound(0.5) / LEARNING_RATE == pytest.approx(8.83, abs=0.01)
    assert adam_bound(0.9) / LEARNING_RATE == pytest.approx(8.02, abs=0.01)


def _repeat_first_row(source, target, count=16):
    lines = open(source).read().splitlines()
    with open(target, "w") as handle:
        handle.write("\n".join([lines[0]] + [lines[1]] * count) + "\n")
    return target


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """recipe data name -> the data flags of scripts/train.py: one face repeated (module docstring)."""
    root = tmp_path_factory.mktemp("one_face")
    write_face_lab(root, image_size=32, num_identities=2, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1, progress=False)
    multipie = _repeat_first_row(root / "multipie" / "manifest.csv", root / "multipie" / "one_face.csv")
    rgbd = _repeat_first_row(root / "rgbd" / "manifest.csv", root / "rgbd" / "one_face.csv")
    ratings = _repeat_first_row(root / "quality" / "ratings.csv", root / "quality" / "one_face.csv")
    # Two subjects, one face each, 8 rows apiece.
    lines = open(root / "multipie" / "manifest.csv").read().splitlines()
    first = {}
    for line in lines[1:]:
        first.setdefault(line.split(",")[1], line)
    assert len(first) == 2
    identities = root / "multipie" / "two_faces.csv"
    identities.write_text("\n".join([lines[0]] + list(first.values()) * 8) + "\n")
    return {"multipie": ["--data_format=multipie", f"--data_path={multipie}", "--num_lightings=4"],
            "identities": ["--data_format=multipie", f"--data_path={identities}", "--num_lightings=4"],
            "rgbd": ["--data_format=rgbd", f"--data_path={rgbd}", f"--expression_names={EXPRESSIONS}"],
            "ratings": ["--data_format=ratings", f"--data_path={ratings}"]}


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("localhost", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def _arguments(recipe, data, runs_root, *extra):
    flags, data_name, _, _ = RECIPES[recipe]
    return [sys.executable, TRAIN, *flags, *data[data_name], "--run_name=mw", f"--runs_root={runs_root}",
            "--image_size=32", "--holdout_fraction=0", "--batch_size=8", f"--learning_rate={LEARNING_RATE}",
            "--log_every=1", f"--sample_every={STEPS}", "--checkpoint_every=2", "--num_samples=4", "--noprogress_bar",
            *extra]


def _start(arguments, logs, environment):
    """A process whose output goes to files (a full pipe would stall a process nobody reads yet)."""
    os.makedirs(os.path.dirname(logs), exist_ok=True)
    with open(f"{logs}.out", "w") as stdout, open(f"{logs}.err", "w") as stderr:
        return subprocess.Popen(arguments, stdout=stdout, stderr=stderr, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **environment})


def _start_cluster(arguments, logs):
    """Both workers of a two-worker cluster on localhost ports."""
    ports = _free_ports(2)
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                  "task": {"type": "worker", "index": index}}
        processes.append(_start([*arguments, "--strategy=multi_worker"], f"{logs}-worker{index}",
                                {"TF_CONFIG": json.dumps(config)}))
    return processes


def _start_single(arguments, logs):
    """One process, two replicas: MirroredStrategy over two logical CPUs, the cluster's global batch."""
    return [_start([*arguments, "--strategy=mirrored", "--cpu_replicas=2"], logs, {})]


def _run_dir(runs_root):
    found = glob.glob(os.path.join(str(runs_root), "mw-*"))
    return found[0] if len(found) == 1 else None


class Job:
    """One run (one process, or the two workers of a cluster), started once the jobs it needs are done.

    `start(logs)` starts its processes; `watch(processes)` is called while they run."""

    def __init__(self, name, start, logs, needs=(), size=1, watch=None):
        self.name, self.start, self.logs, self.needs, self.size, self.watch = name, start, logs, needs, size, watch
        self.processes, self.results = None, None

    def done(self):
        """Whether every process exited; then `results` holds (returncode, stdout, stderr) per process.

        A worker left waiting for a failed peer, or a run past JOB_TIMEOUT, is killed."""
        if self.results is None and self.processes:
            # 75: stopped by a signal, which every worker does after the same step (its peers exit by themselves).
            failed = any(p.poll() not in (None, 0, 75) for p in self.processes)
            if failed or time.monotonic() - self.started > JOB_TIMEOUT:
                for process in self.processes:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
        if self.results is None and self.processes and all(p.poll() is not None for p in self.processes):
            names = [f"{self.logs}-worker{i}" for i in range(2)] if self.size == 2 else [self.logs]
            self.results = [(p.returncode, open(f"{name}.out").read(), open(f"{name}.err").read())
                            for p, name in zip(self.processes, names)]
        return self.results is not None


def _run_jobs(jobs, timeout=TIMEOUT):
    """Starts each job in order when the jobs it needs are done and fewer than MAX_PROCESSES run; waits for all."""
    deadline = time.monotonic() + timeout
    try:
        while not all(job.done() for job in jobs.values()):
            assert time.monotonic() < deadline, [name for name, job in jobs.items() if job.results is None]
            running = sum(job.size for job in jobs.values() if job.processes and job.results is None)
            for job in jobs.values():
                if job.processes is not None:
                    if job.watch is not None and job.results is None:
                        job.watch(job.processes)
                    continue
                if job.results is not None or not all(jobs[need].done() for need in job.needs):
                    continue
                failed = [need for need in job.needs if any(result[0] != 0 for result in jobs[need].results)]
                if failed:
                    job.results = [(None, "", f"not started: {', '.join(failed)} failed")] * job.size
                    continue
                if running and running + job.size > MAX_PROCESSES:
                    break  # in order: a cluster is not overtaken by the single runs behind it
                job.processes, job.started = job.start(job.logs), time.monotonic()
                running += job.size
            time.sleep(0.2)
    finally:
        for job in jobs.values():  # a worker left waiting for a dead peer must not outlive the test
            for process in job.processes or []:
                if process.poll() is None:
                    process.kill()
    return {name: job.results for name, job in jobs.items()}


class SigtermOnce:
    """Sends SIGTERM to the second worker once the chief has written checkpoint `step` in a run directory under
    `runs_root` (a preempted machine: its peers get no signal)."""

    def __init__(self, runs_root, step):
        self.pattern, self.sent = os.path.join(str(runs_root), "mw-*", "checkpoints", f"ckpt-{step}.index"), False

    def __call__(self, processes):
        if not self.sent and glob.glob(self.pattern):
            processes[1].send_signal(signal.SIGTERM)
            self.sent = True


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Every run of the module, side by side: each recipe's cluster and single-process run, StarGAN's control,
    and StarGAN's cluster resumed and stopped by a SIGTERM to one worker.

    Returns the folder of the runs (<recipe>/<kind>/mw-*) and {"<kind>/<recipe>": [(returncode, stdout,
    stderr) per process]}.
    """
    root = tmp_path_factory.mktemp("multi_worker")

    def dependency_flags(recipe):
        """Where the runs this recipe needs left what it reads (looked up once they are done)."""
        flags = []
        for flag, needed in RECIPES[recipe][3].items():
            run_dir = _run_dir(root / needed / "single")
            flags.append(f"--{flag}={os.path.join(run_dir, PROVIDES[needed]) if PROVIDES[needed] else run_dir}")
        return flags

    def job(kind, recipe, start, *extra, folder=None, needs=(), watch=None):
        """`extra`: flags, or functions returning a flag once the jobs needed are done."""
        folder = root / recipe / (folder or kind)
        needs = (*needs, *(f"single/{needed}" for needed in RECIPES[recipe][3].values()))

        def arguments():
            flags = [flag() if callable(flag) else flag for flag in extra]
            return _arguments(recipe, data, folder, *dependency_flags(recipe), *flags)

        return Job(f"{kind}/{recipe}", lambda logs: start(arguments(), logs), str(root / "logs" / f"{kind}-{recipe}"),
                   needs, 2 if start is _start_cluster else 1, watch)

    # The runs others need first, the runs that need them last.
    order = ["depth_pretrain", "identity", "quality", "stargan", "classifier", "legan", "stargan_depth"]
    needed = {dependency for recipe in CLUSTER_RECIPES for dependency in RECIPES[recipe][3].values()}
    jobs = [job(kind, recipe, start, f"--train_steps={STEPS}")
            for recipe in order for kind, start in (("single", _start_single), ("cluster", _start_cluster))
            if recipe in CLUSTER_RECIPES or (kind == "single" and recipe in needed)]
    jobs.append(job("control", "stargan", _start_single, f"--train_steps={STEPS}", "--seed=1"))
    # StarGAN's cluster resumed with no end in sight: the first checkpoint it writes (step 6) triggers the SIGTERM.
    # Every checkpoint is kept, so the other tests still find the one of step 4.
    jobs.append(job("resume", "stargan", _start_cluster, "--train_steps=1000000", "--log_every=1000",
                    "--sample_every=1000000", "--keep_checkpoints=1000",
                    lambda: f"--resume={_run_dir(root / 'stargan' / 'cluster')}", folder="cluster",
                    needs=("cluster/stargan",), watch=SigtermOnce(root / "stargan" / "cluster", STEPS + 2)))
    started = time.monotonic()
    results = _run_jobs({job.name: job for job in jobs})
    print(f"every run of the module: {time.monotonic() - started:.0f} s")
    return root, results


def _variables(prefix):
    """Every variable of a checkpoint: the networks' weights (<network>/<index>), optimizer state, the step."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    names = [name for name in reader.get_variable_to_shape_map()
             if name.endswith("/.ATTRIBUTES/VARIABLE_VALUE") and not name.startswith("save_counter/")]
    return {name: reader.get_tensor(name) for name in names}


def _network_weights(variables):
    """The networks' weights (the trainer checkpoints each network as the list of its weights)."""
    return {name: value for name, value in variables.items()
            if re.fullmatch(r"[^/]+/\d+/\.ATTRIBUTES/VARIABLE_VALUE", name) and np.issubdtype(value.dtype, np.floating)}


def _succeeded(results):
    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-3000:]


def _checkpoints(runs, recipe, kind, step=STEPS):
    """The chief's (or single process's) checkpoint of `step`, and the second worker's copy for a cluster."""
    root, _ = runs
    run_dir = _run_dir(root / recipe / kind)
    chief = _variables(os.path.join(run_dir, "checkpoints", f"ckpt-{step}"))
    if kind == "single" or kind == "control":
        return chief
    return chief, _variables(os.path.join(run_dir, "checkpoints", "worker-tmp-1", f"ckpt-{step}"))


@pytest.mark.parametrize("recipe", CLUSTER_RECIPES)
def test_two_workers_train_in_one_run_directory_that_only_the_chief_writes(runs, recipe):
    root, results = runs
    cluster = results[f"cluster/{recipe}"]
    _succeeded(cluster)
    run_dir = _run_dir(root / recipe / "cluster")  # one directory for the whole cluster
    assert run_dir is not None, os.listdir(root / recipe / "cluster")
    chief_out, worker_out = cluster[0][1], cluster[1][1]
    assert "Strategy: multi_worker, 2 replica(s), global batch 8" in chief_out
    assert f"Run directory: {run_dir}" in chief_out and f"Run directory: {run_dir}" in worker_out
    # Progress lines in the chief's log only (a cluster's logs are files).
    assert f"step {STEPS}/{STEPS}: " in cluster[0][2] and f"step {STEPS}/{STEPS}: " not in cluster[1][2]
    assert os.listdir(os.path.join(run_dir, "samples")) == [f"step_{STEPS:07d}.png"]
    assert os.path.isfile(os.path.join(run_dir, "flags.txt")) and glob.glob(os.path.join(run_dir, "*.keras"))
    # One events file per run of the chief (StarGAN's resumed run may have written none before its SIGTERM).
    events = len(glob.glob(os.path.join(run_dir, "logs", "events.out.tfevents.*")))
    assert events == 1 or (recipe == "stargan" and events == 2)
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", f"ckpt-{STEPS}.index"))
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", "worker-tmp-1", f"ckpt-{STEPS}.index"))


@pytest.mark.parametrize("recipe", CLUSTER_RECIPES)
def test_both_workers_hold_the_same_weights_as_one_process_with_the_same_global_batch(runs, recipe):
    _, results = runs
    _succeeded(results[f"cluster/{recipe}"])
    _succeeded(results[f"single/{recipe}"])  # the recipe on two local replicas (--cpu_replicas=2)
    chief, worker = _checkpoints(runs, recipe, "cluster")
    reference = _checkpoints(runs, recipe, "single")
    assert chief.keys() == worker.keys() == reference.keys()
    for name in chief:  # weights, Adam's moments and iterations, the step
        np.testing.assert_array_equal(chief[name], worker[name], err_msg=name)
    assert int(chief["step/.ATTRIBUTES/VARIABLE_VALUE"]) == STEPS
    iterations = [int(value) for name, value in chief.items()
                  if name.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")]
    assert max(iterations) == STEPS, iterations  # D (or the only network) took an update every step
    weights, reference = _network_weights(chief), _network_weights(reference)
    assert len(weights) >= 6, sorted(chief)
    # Every network took at most STEPS Adam updates at a learning rate of at most LEARNING_RATE.
    bound = adam_bound(RECIPES[recipe][2])
    differences = {name: float(np.max(np.abs(weights[name] - reference[name]))) for name in weights}
    print(f"{recipe}: largest difference to the single process {max(differences.values()):.3g} (bound {bound:.3g})")
    for name, difference in differences.items():
        # Plus rounding: half an ulp of the largest weight per update and run, 2 * STEPS halves.
        rounding = STEPS * float(np.spacing(np.float32(np.max(np.abs(reference[name])) + bound)))
        assert difference <= bound + rounding, (name, difference, bound + rounding)


def test_the_comparison_fails_for_a_run_from_other_initial_weights(runs):
    """The control: the same StarGAN run with another seed is far outside the bound."""
    _, results = runs
    _succeeded(results["control/stargan"])
    chief, _ = _checkpoints(runs, "stargan", "cluster")
    weights, other_seed = _network_weights(chief), _network_weights(_checkpoints(runs, "stargan", "control"))
    bound = adam_bound(RECIPES["stargan"][2])
    assert max(float(np.max(np.abs(weights[name] - other_seed[name]))) for name in weights) > 10 * bound


def test_both_workers_resume_together_from_the_chiefs_checkpoint(runs):
    root, results = runs
    resumed = results["resume/stargan"]
    for returncode, _, stderr in resumed:
        assert returncode in (0, 75), stderr[-3000:]
        assert f"at step {STEPS}" in stderr
    assert len(glob.glob(str(root / "stargan" / "cluster" / "mw-*"))) == 1  # resumed in place
    # The first checkpoint after the resumed step, written by both workers with the same weights.
    chief, worker = _checkpoints(runs, "stargan", "cluster", STEPS + 2)
    for name in chief:
        np.testing.assert_array_equal(chief[name], worker[name], err_msg=name)
    assert int(chief["step/.ATTRIBUTES/VARIABLE_VALUE"]) == STEPS + 2


def test_sigterm_to_one_worker_stops_every_worker_at_the_same_step(runs):
    """A preempted machine gets SIGTERM; its peers do not. One vote per step makes all stop after the
    same step, checkpoint it together, and exit 75 (try again later)."""
    root, results = runs
    steps = []
    for returncode, _, stderr in results["resume/stargan"]:
        assert returncode == 75, stderr[-3000:]
        found = re.search(r"stopped after step (\d+), whose checkpoint is written", stderr)
        assert found, stderr[-3000:]
        steps.append(int(found.group(1)))
    assert steps[0] == steps[1] >= STEPS + 2
    chief, worker = _checkpoints(runs, "stargan", "cluster", steps[0])
    for name in chief:
        np.testing.assert_array_equal(chief[name], worker[name], err_msg=name)
