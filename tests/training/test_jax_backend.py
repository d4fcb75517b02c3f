"""scripts/train.py --backend=jax end to end, in a process where TensorFlow cannot be imported: a run,
a kill and a resume, the exported .keras under TensorFlow and through the serving export, and the
clear errors of flags, checkpoints and installs that do not fit the backend."""

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend's tests need jax (pip install 'legan-tf[jax]')")

from legan_tf.data.synthetic.writer import write_face_lab  # noqa: E402

# Every test here starts whole training processes: `make test-slow` runs them all, so the module's
# fixtures (a lab, finished runs) are built once, in that run.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
PREPARE = os.path.join(REPO, "scripts", "prepare_data.py")

# Runs scripts/train.py with imports of the named top-level packages failing, as on a machine
# where they are not installed.
_BLOCKED_RUNNER = textwrap.dedent("""
    import runpy, sys
    blocked = set(sys.argv[1].split(","))
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"No module named {name!r} (blocked by the test)")
    sys.meta_path.insert(0, Blocker())
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")

STARGAN = ["--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1", "--stargan_d_filters=4",
           "--stargan_d_downsamples=3", "--stargan_n_critic=2"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """A tiny lab, prepared into TFRecord shards with a stored held-out split, as a user would."""
    root = tmp_path_factory.mktemp("jax_lab")
    write_face_lab(root, image_size=32, num_identities=6, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    output = root / "shards"
    result = subprocess.run([sys.executable, PREPARE, "--data_format=multipie",
                             f"--data_path={root / 'multipie' / 'manifest.csv'}", "--num_lightings=4",
                             "--holdout_fraction=0.34", f"--output_dir={output}", "--num_shards=2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def _command(shards, runs_root, *extra, backend="jax", blocked=("tensorflow",)):
    arguments = [TRAIN, f"--backend={backend}", "--run_name=tiny", f"--runs_root={runs_root}",
                 "--data_format=tfrecord", f"--data_path={shards}", "--num_lightings=4", "--image_size=32",
                 "--batch_size=4", "--log_every=2", "--sample_every=4", "--eval_every=4", "--checkpoint_every=2",
                 "--num_samples=4", "--noprogress_bar", *extra]
    if blocked:
        return [sys.executable, "-c", _BLOCKED_RUNNER, ",".join(blocked), *arguments]
    return [sys.executable, *arguments]


def _env():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    env.pop("KERAS_BACKEND", None)  # the --backend flag decides
    return env


def _run(command, timeout=300):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_env())


@pytest.fixture(scope="module")
def jax_run(shards, tmp_path_factory):
    """A StarGAN run under JAX without TensorFlow, SIGKILLed after its first checkpoint, then resumed."""
    runs_root = tmp_path_factory.mktemp("jax_runs")
    process = subprocess.Popen(_command(shards, runs_root, *STARGAN, "--train_steps=100000"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    deadline = time.monotonic() + 240
    checkpoints = []
    while time.monotonic() < deadline and process.poll() is None and not checkpoints:
        time.sleep(0.5)
        checkpoints = glob.glob(str(runs_root / "tiny-*" / "checkpoints" / "jax-ckpt-*.npz"))
    process.send_signal(signal.SIGKILL)
    output = process.communicate(timeout=60)[0]
    assert checkpoints, f"no checkpoint before the deadline:\n{output[-3000:]}"
    [run_dir] = glob.glob(str(runs_root / "tiny-*"))
    killed_at = max(int(os.path.basename(path)[len("jax-ckpt-"):-len(".npz")])
                    for path in glob.glob(os.path.join(run_dir, "checkpoints", "jax-ckpt-*.npz")))
    # Resumed with worker processes decoding the batches (forked from a process running JAX).
    resumed = _run(_command(shards, runs_root, *STARGAN, f"--train_steps={killed_at + 4}", f"--resume={run_dir}",
                            "--input_processes=2"))
    return run_dir, killed_at, resumed


def test_a_killed_jax_run_resumes_from_its_last_checkpoint_without_tensorflow(jax_run):
    run_dir, killed_at, resumed = jax_run
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {killed_at}" in resumed.stderr and "Backend: jax" in resumed.stdout
    assert f"step {killed_at + 4}/{killed_at + 4}: " in resumed.stderr  # progress lines without a terminal
    assert not glob.glob(os.path.join(run_dir, "checkpoints", "*.partial"))
    final = os.path.join(run_dir, "checkpoints", f"jax-ckpt-{killed_at + 4:08d}.npz")
    with np.load(final) as stored:
        assert int(stored["__step__"]) == killed_at + 4
    assert json.load(open(os.path.join(run_dir, "metrics.json")))["step"] == killed_at + 4
    assert os.listdir(os.path.join(run_dir, "samples"))
    assert os.path.isfile(os.path.join(run_dir, "labels.json"))
    assert glob.glob(os.path.join(run_dir, "logs", "events.out.tfevents.*"))  # the tensorboard package's writer
    scalars = [json.loads(line) for line in open(os.path.join(run_dir, "logs", "scalars.jsonl"))]
    assert any("d/total" in row for row in scalars) and all(np.isfinite(list(row.values())).all() for row in scalars)
    assert "--backend=jax" in open(os.path.join(run_dir, "flags.txt")).read()


def test_the_jax_trained_generator_loads_under_tensorflow_and_exports_for_serving(jax_run, tmp_path):
    import keras

    import legan_tf  # noqa: F401  (registers the project's layers)
    from legan_tf.serving import export

    run_dir, _, resumed = jax_run
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    generator = keras.models.load_model(os.path.join(run_dir, "generator.keras"))
    images = np.zeros((2, 32, 32, 3), np.float32)
    label_names = json.load(open(os.path.join(run_dir, "labels.json")))
    labels = np.eye(sum(len(names) for names in label_names.values()), dtype=np.float32)[:2]
    assert np.isfinite(keras.ops.convert_to_numpy(generator((images, labels)))).all()
    exported = export.export_run(run_dir, str(tmp_path / "models"))
    assert exported and all(os.path.isfile(os.path.join(path, "saved_model.pb")) for _, path in exported)


def test_stop_after_minutes_ends_a_jax_run_as_finished(shards, tmp_path):
    # 6 ms: compiling the first update takes longer on any machine, so the run stops after step 1.
    result = _run(_command(shards, tmp_path, *STARGAN, "--train_steps=100000", "--stop_after_minutes=0.0001"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Stopping at step 1 of 100000" in result.stderr
    [run_dir] = glob.glob(str(tmp_path / "tiny-*"))
    with np.load(os.path.join(run_dir, "checkpoints", "jax-ckpt-00000001.npz")) as stored:
        assert int(stored["__step__"]) == 1
    assert json.load(open(os.path.join(run_dir, "metrics.json")))["step"] == 1
    assert os.path.isfile(os.path.join(run_dir, "generator.keras"))


def test_a_non_finite_loss_stops_a_jax_run_and_is_never_checkpointed(shards, tmp_path):
    # As the TensorFlow test: Adam's first step at learning rate 1e30 leaves finite weights whose
    # logits overflow at step 2.
    result = _run(_command(shards, tmp_path, "--task=classifier", "--classifier_base_filters=4",
                           "--classifier_downsamples=2", "--train_steps=5", "--learning_rate=1e30",
                           "--checkpoint_every=1", "--log_every=5"))
    assert result.returncode == 3, result.stderr[-3000:]
    assert "stopped: loss/" in result.stderr and "at step 2 (that step's batch: examples 4 to 7" in result.stderr
    assert "the latest checkpoint, step 1, is the last finite state" in result.stderr
    [run_dir] = glob.glob(str(tmp_path / "tiny-*"))
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["jax-ckpt-00000001.npz"]


def test_ctrl_c_finishes_the_step_checkpoints_it_and_exits_75(shards, tmp_path):
    # SIGINT to the whole process group, as Ctrl-C sends it: the decoding workers ignore it and the
    # trainer finishes its step, checkpoints it and ends them.
    import re

    process = subprocess.Popen(_command(shards, tmp_path, *STARGAN, "--train_steps=1000000", "--input_processes=2",
                                        "--sample_every=1000000", "--eval_every=1000000"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                               start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if glob.glob(str(tmp_path / "tiny-*" / "checkpoints" / "jax-ckpt-*.npz")):
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 75, stderr[-3000:]
    # The pool ends its workers with SIGTERM: a worker that logs it kept the trainer's handler (forked
    # from it) and only outlived terminate() by luck of timing.
    assert "SIGTERM received" not in stderr, stderr[-3000:]
    step = int(re.search(r"SIGINT received: stopped after step (\d+), whose checkpoint is written", stderr).group(1))
    [run_dir] = glob.glob(str(tmp_path / "tiny-*"))
    assert os.path.isfile(os.path.join(run_dir, "checkpoints", f"jax-ckpt-{step:08d}.npz"))


def test_the_tensorflow_trainer_refuses_to_resume_a_jax_run(jax_run, shards, tmp_path):
    run_dir = jax_run[0]
    result = _run(_command(shards, tmp_path, *STARGAN, "--train_steps=2", f"--resume={run_dir}",
                           backend="tensorflow", blocked=()))
    assert result.returncode == 1
    assert "was trained under JAX" in result.stderr and "--backend=jax" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_jax_trainer_refuses_to_resume_a_tensorflow_run(shards, tmp_path):
    run_dir = tmp_path / "tf-run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "flags.txt").write_text("--task=stargan\n")
    (run_dir / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n')
    result = _run(_command(shards, tmp_path, *STARGAN, "--train_steps=2", f"--resume={run_dir}"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "was trained under TensorFlow" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flag, backend, words", [
    ("--strategy=mirrored", "jax", "--strategy=mirrored is a TensorFlow-backend flag"),
    ("--export_to=models", "jax", "scripts/export.py"),
    ("--jit_compile", "jax", "the JAX trainer always compiles its updates"),
    ("--devices=2", "tensorflow", "--devices=2 is a JAX-backend flag"),
])
def test_a_flag_of_the_other_backend_is_an_error_before_any_work(shards, tmp_path, flag, backend, words):
    result = _run(_command(shards, tmp_path, *STARGAN, "--train_steps=2", flag, backend=backend,
                           blocked=("tensorflow",) if backend == "jax" else ()))
    assert result.returncode == 1 and words in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and not glob.glob(str(tmp_path / "tiny-*"))


def test_jax_backend_without_jax_installed_says_how_to_install_it(shards, tmp_path):
    result = _run(_command(shards, tmp_path, *STARGAN, blocked=("jax", "jaxlib")))
    assert result.returncode == 2
    assert "pip install 'legan-tf[jax]'" in result.stderr and "Traceback" not in result.stderr


def test_jax_backend_reads_prepared_shards_only(tmp_path):
    lab = tmp_path / "lab"
    write_face_lab(lab, image_size=32, num_identities=2, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    command = [sys.executable, TRAIN, "--backend=jax", *STARGAN, "--data_format=multipie",
               f"--data_path={lab / 'multipie' / 'manifest.csv'}", "--num_lightings=4", "--image_size=32",
               f"--runs_root={tmp_path}", "--train_steps=1"]
    result = _run(command)
    assert result.returncode == 1 and "prepare_data.py" in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_legan_with_diffaugment_and_a_frozen_classifier_trains_under_jax(shards, tmp_path):
    # Both additions are keras.ops only: the JAX trainer runs them (without TensorFlow) as the TF one does.
    import keras
    from legan_tf.models.classifier import AttributeClassifier

    names = json.load(open(shards / "dataset.json"))["label_names"]["expression"]
    classifier = AttributeClassifier(16, {"expression": len(names)}, base_filters=4, num_downsamples=2)
    classifier(np.zeros((1, 16, 16, 3), np.float32))
    folder = tmp_path / "classifier"
    folder.mkdir()
    classifier.save(str(folder / "attribute_classifier.keras"))
    json.dump({"expression": names}, open(folder / "labels.json", "w"))
    legan = ["--task=legan", "--legan_g_filters=4", "--legan_g_residual_blocks=1", "--legan_d_filters=4",
             "--legan_d_downsamples=3", "--legan_n_critic=2", "--legan_lambda_id=0", "--legan_lambda_qual=0",
             "--legan_d_augment=translation,cutout", "--legan_lambda_cls_frozen=1",
             f"--legan_attribute_classifier={folder / 'attribute_classifier.keras'}"]
    result = _run(_command(shards, tmp_path / "runs", *legan, "--train_steps=4"))
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [line for line in result.stderr.splitlines() if "step 4/4:" in line]
    assert logged and "g/frozen_classification" in logged[-1], result.stderr[-3000:]
    value = float(logged[-1].split("g/frozen_classification ")[1].split(",")[0])
    assert np.isfinite(value) and value > 0
    assert keras.backend.backend() == "tensorflow"  # the test process itself is untouched


def test_adversarial_training_of_the_classifier_runs_under_jax(shards, tmp_path):
    # The attack's input gradients (jax.grad inside the compiled step) and the robust accuracy of the
    # evaluation, without TensorFlow in the process.
    result = _run(_command(shards, tmp_path, "--task=classifier", "--classifier_base_filters=4",
                           "--classifier_downsamples=2", "--classifier_adversarial_epsilon=1.0",
                           "--classifier_adversarial_steps=2", "--train_steps=4"))
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = glob.glob(str(tmp_path / "tiny-*"))
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert 0.0 <= metrics["eval/robust_accuracy/expression"] <= 1.0
    assert os.path.isfile(os.path.join(run_dir, "attribute_classifier.keras"))
