"""scripts/train.py end to end on a tiny face lab: run directory, resume, dry run, clear errors; the same run
under both Keras backends leaves the same run directory."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from legan_tf.data.synthetic.writer import write_face_lab

# Every test here starts whole training processes: `make test-slow` runs them all, so the module's
# fixtures (a lab, finished runs) are built once, in that run.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
CLASSIFIER = ("--task=classifier", "--classifier_base_filters=4", "--classifier_downsamples=3")
STARGAN = ("--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1", "--stargan_d_filters=4",
           "--stargan_d_downsamples=5", "--stargan_n_critic=2", "--stargan_ema_decay=0.9")


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    write_face_lab(root, image_size=32, num_identities=6, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    return root


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _train(lab, runs_root, *extra, recipe=CLASSIFIER, env=None):
    command = [
        sys.executable, TRAIN, *recipe, "--run_name=tiny", f"--runs_root={runs_root}",
        "--data_format=multipie", f"--data_path={lab / 'multipie' / 'manifest.csv'}", "--image_size=32",
        "--num_lightings=4", "--holdout_fraction=0.34", "--batch_size=8", "--log_every=2", "--sample_every=3",
        "--eval_every=3", "--checkpoint_every=3", "--num_samples=4", "--noprogress_bar", *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env or _env())


def _copy(run, folder):
    """A copy of a finished run directory in `folder` (tests that resume one leave the shared run as it is)."""
    return shutil.copytree(run, os.path.join(folder, os.path.basename(run)))


@pytest.fixture(scope="module")
def classifier_run(tiny_lab, tmp_path_factory):
    """A 3-step classifier run (a checkpoint, a sample and an evaluation at step 3): (run directory, result)."""
    root = tmp_path_factory.mktemp("classifier")
    result = _train(tiny_lab, root, "--train_steps=3")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(root / "tiny-*"))
    return run, result


def test_run_writes_flags_checkpoints_logs_samples_and_resumes(tiny_lab, classifier_run, tmp_path):
    original, first = classifier_run
    assert "step 2/3: " in first.stderr and "images/s" in first.stderr  # progress lines without a terminal
    flagfile = open(os.path.join(original, "flags.txt")).read()
    assert "--train_steps=3" in flagfile and "--resume" not in flagfile
    # Only the recipe's own flags, beside the data's and the training's.
    assert "--classifier_base_filters=4" in flagfile and "--stargan_" not in flagfile and "--quality_" not in flagfile
    assert sorted(os.listdir(os.path.join(original, "samples"))) == ["step_0000003.png"]
    assert glob.glob(os.path.join(original, "logs", "events.out.tfevents.*"))
    assert [json.loads(line)["step"] for line in open(os.path.join(original, "logs", "scalars.jsonl"))] == [2, 3, 3]
    assert os.path.exists(os.path.join(original, "attribute_classifier.keras"))
    assert json.load(open(os.path.join(original, "metrics.json")))["step"] == 3

    run = _copy(original, tmp_path)
    resumed = _train(tiny_lab, tmp_path, "--train_steps=6", f"--resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from" in resumed.stderr and "at step 3" in resumed.stderr
    checkpoints = sorted(os.path.basename(p) for p in glob.glob(os.path.join(run, "checkpoints", "ckpt-*.index")))
    assert checkpoints == ["ckpt-3.index", "ckpt-6.index"]
    steps = [json.loads(line)["step"] for line in open(os.path.join(run, "metrics.jsonl"))]
    assert steps == [3, 6]
    assert len(glob.glob(str(tmp_path / "tiny-*"))) == 1


def test_stop_after_minutes_ends_the_run_as_finished_and_resume_continues_it(tiny_lab, classifier_run, tmp_path):
    # 0.0001 min is 6 ms: the first step of a process traces the step's graph, which alone takes longer, so the
    # clock stops the run at its first step whatever the machine (step 4, resumed from 3), and that step is
    # checkpointed, sampled, evaluated and exported.
    run = _copy(classifier_run[0], tmp_path)
    first = _train(tiny_lab, tmp_path, "--train_steps=1000", "--stop_after_minutes=0.0001", f"--resume={run}")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Stopping at step 4 of 1000: --stop_after_minutes=0.0001 reached" in first.stderr
    assert os.path.exists(os.path.join(run, "checkpoints", "ckpt-4.index"))
    assert sorted(os.listdir(os.path.join(run, "samples"))) == ["step_0000003.png", "step_0000004.png"]
    assert os.path.exists(os.path.join(run, "attribute_classifier.keras"))
    assert [json.loads(line)["step"] for line in open(os.path.join(run, "metrics.jsonl"))] == [3, 4]
    assert "--stop_after_minutes" not in open(os.path.join(run, "flags.txt")).read()  # a job's limit, not the run's

    resumed = _train(tiny_lab, tmp_path, "--train_steps=6", f"--resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 4" in resumed.stderr and "Stopping" not in resumed.stderr
    assert [json.loads(line)["step"] for line in open(os.path.join(run, "metrics.jsonl"))] == [3, 4, 6]


def _start_and_signal(command, run_glob, number, pattern="ckpt-*.index"):
    """Starts a run, sends `number` once its first checkpoint exists, and returns (returncode, stderr)."""
    import signal  # noqa: F401
    import time

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if glob.glob(os.path.join(run_glob, "checkpoints", pattern)):
            break
        time.sleep(0.2)
    process.send_signal(number)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, stderr


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_finishes_the_step_checkpoints_it_and_exits_75(tiny_lab, tmp_path, signal_name):
    import re
    import signal

    command = [sys.executable, TRAIN, *CLASSIFIER, "--run_name=tiny", f"--runs_root={tmp_path}",
               "--data_format=multipie", f"--data_path={tiny_lab / 'multipie' / 'manifest.csv'}", "--image_size=32",
               "--num_lightings=4", "--holdout_fraction=0.34", "--batch_size=8", "--train_steps=1000000",
               "--checkpoint_every=5", "--log_every=1000", "--sample_every=1000000", "--eval_every=1000000",
               "--noprogress_bar"]
    returncode, stderr = _start_and_signal(command, str(tmp_path / "tiny-*"), getattr(signal, signal_name))
    assert returncode == 75, stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    stopped = re.search(rf"stopped: {signal_name} received: stopped after step (\d+), whose checkpoint is written; "
                        rf"--resume={re.escape(run)} continues the run", stderr)
    assert stopped, stderr[-3000:]
    step = int(stopped.group(1))
    import tensorflow as tf

    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith(f"ckpt-{step}")
    resumed = _train(tiny_lab, tmp_path, f"--train_steps={step + 2}", f"--resume={run}")
    assert resumed.returncode == 0 and f"at step {step}" in resumed.stderr, resumed.stderr[-3000:]


def test_a_full_disk_is_a_clear_stop_and_the_previous_checkpoint_stays_the_latest(tiny_lab, classifier_run, tmp_path):
    """A disk that fills up, simulated without privileges by a file-size limit on the resumed run
    (RLIMIT_FSIZE, SIGXFSZ ignored so a write fails with EFBIG as a full disk fails with ENOSPC): the
    small files still fit, the 125 KB checkpoint does not."""
    import resource
    import signal

    import tensorflow as tf

    run = _copy(classifier_run[0], tmp_path)  # its latest checkpoint is step 3's

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    command = [sys.executable, TRAIN, *CLASSIFIER, "--run_name=tiny", f"--runs_root={tmp_path}",
               "--data_format=multipie", f"--data_path={tiny_lab / 'multipie' / 'manifest.csv'}", "--image_size=32",
               "--num_lightings=4", "--holdout_fraction=0.34", "--batch_size=8", "--log_every=2", "--sample_every=100",
               "--eval_every=100", "--checkpoint_every=3", "--noprogress_bar", "--train_steps=6", f"--resume={run}"]
    full = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size, env=_env())
    assert full.returncode == 74, full.stderr[-3000:]
    assert "stopped: could not write the checkpoint of step 6" in full.stderr
    assert "the latest checkpoint is still step 3, complete" in full.stderr and "Traceback" not in full.stderr
    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-3")
    assert not glob.glob(os.path.join(run, "checkpoints", "ckpt-6*"))
    # Space freed (no limit): the run resumes from step 3 and finishes.
    again = _train(tiny_lab, tmp_path, "--train_steps=6", f"--resume={run}")
    assert again.returncode == 0 and "at step 3" in again.stderr, again.stderr[-3000:]


def test_a_runs_root_that_cannot_be_written_is_a_one_line_error(tiny_lab, tmp_path):
    # /proc takes no new folders, not even from root (tests may run as root, which ignores permissions).
    result = _train(tiny_lab, tmp_path, "--train_steps=2", "--runs_root=/proc/legan-tf-runs")
    assert result.returncode == 1 and "error: --runs_root=/proc/legan-tf-runs: cannot create the run directory" \
        in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_a_non_finite_loss_stops_the_run_and_is_never_checkpointed(tiny_lab, tmp_path):
    # Adam's first step moves every weight by about the learning rate: at 1e30 the weights stay finite
    # (float32 reaches 3e38) but step 2's logits overflow, so its loss is the first non-finite value.
    result = _train(tiny_lab, tmp_path, "--train_steps=5", "--learning_rate=1e30", "--checkpoint_every=1",
                    "--log_every=5")
    assert result.returncode == 3, result.stderr[-3000:]
    assert "stopped: loss/" in result.stderr and "at step 2 (that step's batch: examples 8 to 15" in result.stderr
    assert "Nothing non-finite was saved; the latest checkpoint, step 1, is the last finite state" in result.stderr
    assert "Traceback" not in result.stderr
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    import tensorflow as tf

    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-1")
    assert not glob.glob(os.path.join(run, "checkpoints", "ckpt-2*"))


def test_jit_compile_reaches_the_update_and_trains_the_stargan_recipe(tiny_lab, tmp_path):
    # The maths under XLA is compared with the plain step in tests/training/test_backends.py; this is the flag.
    # XLA writes every module it compiles into --xla_dump_to: without --jit_compile a TensorFlow run on a CPU
    # compiles none, with it the loss-and-gradient function of each update is one module (D's and G's: two).
    import re

    dump = tmp_path / "xla"
    recipe = ("--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1", "--stargan_d_filters=4",
              "--stargan_d_downsamples=3", "--stargan_n_critic=2")
    result = _train(tiny_lab, tmp_path, "--train_steps=2", "--jit_compile", recipe=recipe,
                    env=_env(XLA_FLAGS=f"--xla_dump_to={dump}"))
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert "--jit_compile" in open(os.path.join(run, "flags.txt")).read().split()
    assert os.path.exists(os.path.join(run, "generator.keras"))
    compiled = {match.group(0) for name in (os.listdir(dump) if dump.is_dir() else [])
                for match in [re.search(r"inference_loss_and_gradients_\d+", name)] if match}
    assert len(compiled) == 2, sorted(os.listdir(dump))[:10] if dump.is_dir() else "no XLA module compiled"


@pytest.fixture(scope="module")
def exported_run(tiny_lab, tmp_path_factory):
    """A 2-step classifier run (seed 3) that exports its models for TF-Serving: (run directory, result)."""
    root = tmp_path_factory.mktemp("exported")
    result = _train(tiny_lab, root / "runs", "--train_steps=2", "--seed=3", f"--export_to={root / 'models'}")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(root / "runs" / "tiny-*"))
    return run, result


def test_export_to_writes_a_serving_version_with_the_runs_label_names(exported_run):
    run, result = exported_run
    models = os.path.join(os.path.dirname(os.path.dirname(run)), "models")
    assert json.load(open(os.path.join(run, "labels.json")))["lighting"] == ["00", "01", "02", "03"]
    assert "--export_to" not in open(os.path.join(run, "flags.txt")).read()  # where to export is not the run
    assert os.path.isfile(os.path.join(models, "classifier", "1", "saved_model.pb"))
    assert f"serving/server.py --model_dir={models}" in result.stdout


def test_the_saved_flagfile_reproduces_the_run(exported_run, tmp_path):
    run, _ = exported_run
    again = subprocess.run(
        [sys.executable, TRAIN, f"--flagfile={run}/flags.txt", f"--runs_root={tmp_path / 'b'}"],
        capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    [rerun] = glob.glob(str(tmp_path / "b" / "tiny-*"))
    assert json.load(open(os.path.join(run, "metrics.json"))) == json.load(open(os.path.join(rerun, "metrics.json")))
    assert not os.path.exists(tmp_path / "b" / "models")  # --export_to is not in flags.txt


def test_dry_run_prints_configuration_and_counts_per_class_without_a_run_dir(tiny_lab, tmp_path):
    # Other recipes' flags at their defaults (as every flags.txt of legan-tf 0.1.0 lists them) are ignored,
    # with one warning naming them.
    result = _train(tiny_lab, tmp_path, "--dry_run", "--stargan_lambda_rec=10", "--legan_lambda_id=1.0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--batch_size=8" in result.stdout and "--classifier_base_filters=4" in result.stdout
    assert "--stargan_" not in result.stdout and "--legan_" not in result.stdout
    assert ("Ignored 2 flag(s) of other recipes than --task=classifier, all at their defaults: --legan_lambda_id "
            "--stargan_lambda_rec") in result.stderr
    assert "expression: neutral 16, smile 16" in result.stdout  # 4 training identities x 4 lights
    assert "lighting: 00 24, 01 24, 02 24, 03 24" in result.stdout
    assert not os.path.exists(tmp_path / "tiny") and not glob.glob(str(tmp_path / "tiny-*"))


def test_another_recipes_flag_with_a_value_of_its_own_is_an_error_naming_it_and_its_recipe(tmp_path):
    # The demo trains LEGAN; a StarGAN flag would otherwise train with LEGAN's default without a word.
    result = subprocess.run([sys.executable, TRAIN, "--flagfile=configs/lab/demo.flags", "--stargan_lambda_rec=5",
                             "--dry_run", f"--runs_root={tmp_path}"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env=_env())
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --stargan_lambda_rec=5.0 is a flag of the 'stargan' recipe, which --task=legan does not "
                      "use (its flags start with --legan_): the run would ignore it."]
    assert "Traceback" not in result.stderr and not os.listdir(tmp_path)


def test_resuming_with_another_architecture_names_the_checkpoint(tiny_lab, classifier_run, tmp_path):
    run = _copy(classifier_run[0], tmp_path)
    wider = _train(tiny_lab, tmp_path, "--train_steps=6", f"--resume={run}", "--classifier_base_filters=8")
    assert wider.returncode == 1
    assert "does not fit the 'classifier' model" in wider.stderr and "ckpt-3" in wider.stderr
    assert "Traceback" not in wider.stderr


def test_bad_data_stops_at_start_up_with_the_row_and_no_traceback(tiny_lab, tmp_path):
    manifest = tmp_path / "manifest.csv"
    lines = open(tiny_lab / "multipie" / "manifest.csv").read().splitlines()
    image_dir = tiny_lab / "multipie"
    header, first_row = lines[0], lines[1].split(",")
    first_row[0] = str(image_dir / first_row[0])
    first_row[header.split(",").index("expression")] = "yawn"
    first_row[header.split(",").index("mask")] = str(image_dir / first_row[header.split(",").index("mask")])
    manifest.write_text(header + "\n" + ",".join(first_row) + "\n")
    result = _train(tiny_lab, tmp_path, "--train_steps=1", f"--data_path={manifest}")
    assert result.returncode == 1
    assert "row 1" in result.stderr and "yawn" in result.stderr
    assert "Traceback" not in result.stderr


def test_mirrored_strategy_over_two_logical_cpus_trains_and_reports_replicas(tiny_lab, tmp_path):
    result = _train(tiny_lab, tmp_path, "--train_steps=3", "--strategy=mirrored", "--cpu_replicas=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy: mirrored, 2 replica(s), global batch 8" in result.stdout
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert json.load(open(os.path.join(run, "metrics.json")))["step"] == 3


def test_a_batch_that_does_not_split_over_replicas_is_refused(tiny_lab, tmp_path):
    result = _train(tiny_lab, tmp_path, "--train_steps=3", "--strategy=mirrored", "--cpu_replicas=3")
    assert result.returncode == 1
    assert "--batch_size=8 does not split evenly over 3 replicas" in result.stderr


@pytest.fixture(scope="module")
def shards(tiny_lab, tmp_path_factory):
    """The tiny lab prepared into TFRecord shards with a stored held-out split: data both backends read."""
    from legan_tf.data import DataConfig, open_source, tfrecord
    from legan_tf.data.config import numbered_names

    config = DataConfig("multipie", str(tiny_lab / "multipie" / "manifest.csv"), image_size=32,
                        lighting_names=numbered_names(4))
    output = str(tmp_path_factory.mktemp("shards") / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    tfrecord.write_tfrecords(open_source(config), output, num_shards=2, holdout_fraction=0.34, seed=0)
    return output


def _backend_env(backend):
    env = _env(JAX_PLATFORMS="cpu")
    env.pop("KERAS_BACKEND", None)  # --backend (or the resumed run's flags.txt) decides
    return env


def _run_side_by_side(commands):
    """{backend: CompletedProcess} of one command per backend, run at the same time."""
    processes = {backend: subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           env=_backend_env(backend)) for backend, command in commands.items()}
    results = {}
    for backend, process in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        results[backend] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


def _generators(run):
    """The weights of the run's generator.keras and generator_raw.keras."""
    import keras

    import legan_tf  # noqa: F401  (registers the project's networks)

    return {name: keras.models.load_model(os.path.join(run, name)).get_weights()
            for name in ("generator.keras", "generator_raw.keras")}


@pytest.fixture(scope="module")
def stargan_runs(shards, tmp_path_factory):
    """The same tiny StarGAN run (4 steps, n_critic 2, an EMA) under each backend installed here, side by side
    in one runs root, then each resumed once finished with --resume alone. {backend: {"run", "first",
    "generators" (before the resume), "resumed"}}."""
    backends = ["tensorflow"]
    try:
        import jax  # noqa: F401

        backends.append("jax")
    except ImportError:
        pass
    root = tmp_path_factory.mktemp("stargan_runs")
    first = _run_side_by_side({backend: [
        sys.executable, TRAIN, f"--backend={backend}", *STARGAN, "--run_name=tiny", f"--runs_root={root}",
        "--data_format=tfrecord", f"--data_path={shards}", "--num_lightings=4", "--image_size=32", "--batch_size=8",
        "--train_steps=4", "--log_every=2", "--sample_every=3", "--eval_every=3", "--checkpoint_every=3",
        "--num_samples=4", "--noprogress_bar"] for backend in backends})
    runs = {}
    for backend, result in first.items():
        assert result.returncode == 0, f"{backend}: {result.stderr[-3000:]}"
        [path] = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("Run directory: ")]
        runs[backend] = {"run": path, "first": result, "generators": _generators(path)}
    resumed = _run_side_by_side({backend: [sys.executable, TRAIN, f"--resume={runs[backend]['run']}"]
                                 for backend in backends})
    for backend, result in resumed.items():
        runs[backend]["resumed"] = result
    return runs


def test_stargan_recipe_trains_samples_exports_and_resumes(stargan_runs, tmp_path):
    trained = stargan_runs["tensorflow"]
    run = trained["run"]
    assert {"generator.keras", "discriminator.keras", "generator_raw.keras"} <= set(os.listdir(run))
    # With an EMA both generators are exported: the average and the optimizer's weights. After two G
    # updates they differ (the warm-up decay is 2/11 then 3/12, so the average trails by a fixed share
    # of each update, not by roundoff).
    import numpy as np

    average, raw = trained["generators"]["generator.keras"], trained["generators"]["generator_raw.keras"]
    assert [w.shape for w in average] == [w.shape for w in raw]
    assert any(not np.array_equal(a, r) for a, r in zip(average, raw))
    assert sorted(os.listdir(os.path.join(run, "samples"))) == ["step_0000003.png", "step_0000004.png"]
    assert set(json.load(open(os.path.join(run, "metrics.json")))) >= {"eval/cycle_l1", "eval/d_accuracy/lighting"}
    # Resuming the finished run trains nothing and exports again from the checkpoint: both generators
    # come back bit for bit (a checkpoint restores stored values exactly). The average is the part no
    # optimizer holds: before the checkpoint saved each network's weights, it came back random.
    again = trained["resumed"]
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to train" in again.stderr and "Exported" in again.stderr
    for name, after in _generators(run).items():
        assert all(np.array_equal(b, a) for b, a in zip(trained["generators"][name], after)), name
    copy = _copy(run, tmp_path)  # the shared run stays as it is for the comparison of the backends
    resumed = subprocess.run([sys.executable, TRAIN, "--train_steps=6", f"--resume={copy}"], capture_output=True,
                             text=True, timeout=300, env=_backend_env("tensorflow"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 4" in resumed.stderr


def test_init_generator_starts_a_new_run_from_a_finished_one_and_a_mismatch_writes_nothing(stargan_runs, shards,
                                                                                            tmp_path):
    import numpy as np

    source = stargan_runs["tensorflow"]["run"]
    command = [sys.executable, TRAIN, *STARGAN, "--run_name=tuned", "--data_format=tfrecord", f"--data_path={shards}",
               "--num_lightings=4", "--image_size=32", "--batch_size=8", "--train_steps=1", "--log_every=1",
               "--sample_every=10", "--eval_every=10", "--checkpoint_every=1", "--num_samples=4", "--noprogress_bar",
               f"--stargan_init_generator={source}"]
    other = subprocess.run([*command, f"--runs_root={tmp_path / 'other'}", "--stargan_g_filters=8"],
                           capture_output=True, text=True, timeout=300, env=_backend_env("tensorflow"))
    assert other.returncode == 1 and "Traceback" not in other.stderr, other.stderr[-3000:]
    assert f"--stargan_init_generator={source}: another architecture than this recipe's generator" in other.stderr
    assert not os.path.exists(tmp_path / "other")  # refused before any run directory exists
    tuned = subprocess.run([*command, f"--runs_root={tmp_path / 'tuned'}"], capture_output=True, text=True,
                           timeout=300, env=_backend_env("tensorflow"))
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    assert f"G starts from --stargan_init_generator={source}" in tuned.stderr
    # One step of n_critic 2 is a D step only: G and its average still hold the source's exported average.
    [run] = glob.glob(str(tmp_path / "tuned" / "tuned-*"))
    start = stargan_runs["tensorflow"]["generators"]["generator.keras"]
    for name, weights in _generators(run).items():
        assert all(np.array_equal(a, b) for a, b in zip(weights, start)), name
    assert "--stargan_init_generator=" + source in open(os.path.join(run, "flags.txt")).read()


def _listing(run):
    """The run directory's files, checkpoints aside (each backend has its own format) and TensorBoard's event
    files counted (their names hold a time and a process id)."""
    files, events = set(), 0
    for folder, _, names in os.walk(run):
        relative = os.path.relpath(folder, run)
        if relative.split(os.sep)[0] == "checkpoints":
            continue
        for name in names:
            if name.startswith("events.out.tfevents."):
                events += 1
            else:
                files.add(os.path.normpath(os.path.join(relative, name)))
    return files, events


def _events(run):
    """{tag: plugin} of every summary in the run's event files, and (width, height) of each image summary."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    tags, sizes = {}, set()
    for path in glob.glob(os.path.join(run, "logs", "events.out.tfevents.*")):
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                tags[value.tag] = value.metadata.plugin_data.plugin_name
                if tags[value.tag] == "images":
                    width, height = tensor_util.make_ndarray(value.tensor)[:2]
                    sizes.add((int(width), int(height)))
    return tags, sizes


def _checkpoint_steps(run):
    import re

    return sorted({int(match.group(1)) for name in os.listdir(os.path.join(run, "checkpoints"))
                   for match in [re.match(r"(?:jax-)?ckpt-0*(\d+)[._]", name)] if match})


def test_both_backends_leave_the_same_run_directory_and_re_export_a_finished_run(stargan_runs):
    """One loop for both backends: the same recipe and flags under TensorFlow and JAX give the same files,
    flags.txt (but --backend), metrics, scalars, samples, summaries (scalars and sample grids) and exported
    networks; resumed once finished, both train nothing, evaluate and export again."""
    pytest.importorskip("jax", reason="the JAX backend's tests need jax (pip install 'legan-tf[jax]')")
    import keras
    import numpy as np
    from PIL import Image

    tf_run, jax_run = stargan_runs["tensorflow"]["run"], stargan_runs["jax"]["run"]
    for backend, trained in stargan_runs.items():
        again = trained["resumed"]
        assert again.returncode == 0, f"{backend}: {again.stderr[-3000:]}"
        assert "nothing to train" in again.stderr and "Exported" in again.stderr, backend
        for name, after in _generators(trained["run"]).items():  # exported again from the checkpoint, bit for bit
            assert all(np.array_equal(b, a) for b, a in zip(trained["generators"][name], after)), (backend, name)
    files, events = _listing(tf_run)
    assert (files, events) == _listing(jax_run) and events == 2  # the first run's and the resumed run's
    assert {"flags.txt", "labels.json", "metrics.json", "metrics.jsonl", "logs/scalars.jsonl",
            "samples/step_0000003.png", "samples/step_0000004.png", "generator.keras", "generator_raw.keras",
            "discriminator.keras"} == files
    assert _checkpoint_steps(tf_run) == _checkpoint_steps(jax_run) == [3, 4]
    flags = {run: open(os.path.join(run, "flags.txt")).read().splitlines() for run in (tf_run, jax_run)}
    assert [line for line in flags[tf_run] if line != "--backend=tensorflow"] == \
        [line for line in flags[jax_run] if line != "--backend=jax"]
    assert len(flags[tf_run]) == len(flags[jax_run]) and "--backend=jax" in flags[jax_run]

    def records(run, name):
        return [json.loads(line) for line in open(os.path.join(run, name))]

    for name in ("metrics.jsonl", "logs/scalars.jsonl"):
        tf_records, jax_records = records(tf_run, name), records(jax_run, name)
        assert [sorted(r) for r in tf_records] == [sorted(r) for r in jax_records], name
        assert [r["step"] for r in tf_records] == [r["step"] for r in jax_records], name
    assert [r["step"] for r in records(tf_run, "metrics.jsonl")] == [3, 4, 4]  # the resumed run evaluated again
    assert set(json.load(open(os.path.join(tf_run, "metrics.json")))) == \
        set(json.load(open(os.path.join(jax_run, "metrics.json"))))
    for name in ("generator.keras", "generator_raw.keras", "discriminator.keras"):
        tf_model, jax_model = (keras.models.load_model(os.path.join(run, name)) for run in (tf_run, jax_run))
        assert type(tf_model) is type(jax_model), name
        assert [w.shape for w in tf_model.get_weights()] == [w.shape for w in jax_model.get_weights()], name
    grid = Image.open(os.path.join(tf_run, "samples", "step_0000004.png")).size
    assert Image.open(os.path.join(jax_run, "samples", "step_0000004.png")).size == grid
    tf_tags, tf_sizes = _events(tf_run)
    assert (tf_tags, tf_sizes) == _events(jax_run)
    assert tf_tags["samples"] == "images" and tf_sizes == {grid}
    assert {tf_tags[tag] for tag in ("d/total", "g/reconstruction", "eval/cycle_l1",
                                     "throughput/images_per_second")} == {"scalars"}


@pytest.fixture(scope="module")
def identity_file(tmp_path_factory):
    """A tiny, untrained identity embedder saved as .keras."""
    import numpy as np

    from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2

    embedder = IdentityEmbedder(LightCNN29v2(input_size=16, channels=(4, 4, 4, 4, 4), embedding_dim=8,
                                             num_blocks=(1, 1, 1, 1)))
    embedder(np.zeros((1, 32, 32, 3), np.float32))
    path = str(tmp_path_factory.mktemp("identity") / "identity_model.keras")
    embedder.save(path)
    return path


LEGAN_TINY = ("--task=legan", "--legan_g_filters=4", "--legan_g_residual_blocks=1", "--legan_d_filters=4",
              "--legan_d_downsamples=5", "--legan_n_critic=2")


def test_legan_recipe_with_identity_and_quality_losses_trains_samples_and_exports(
        tiny_lab, tmp_path, model_file, identity_file):
    result = _train(tiny_lab, tmp_path, "--train_steps=4", f"--legan_quality_model={model_file}",
                    f"--legan_identity_model={identity_file}", recipe=LEGAN_TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert {"generator.keras", "discriminator.keras"} <= set(os.listdir(run))
    assert "generator_raw.keras" not in os.listdir(run)  # no EMA: generator.keras is the trained one
    assert "step_0000004.png" in os.listdir(os.path.join(run, "samples"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(run, "logs")).Reload()
    assert {"g/identity", "g/quality", "d/gradient_penalty"} <= set(events.Tags()["tensors"])
    check = subprocess.run(
        [sys.executable, "-c", "import sys, keras, legan_tf; g = keras.models.load_model(sys.argv[1]); "
                               "print(type(g).__name__, g.num_expressions, g.num_lightings)",
         os.path.join(run, "generator.keras")], capture_output=True, text=True, timeout=120)
    assert check.stdout.split() == ["LEGANGenerator", "6", "4"], check.stderr[-2000:]


def test_legan_bad_settings_exit_1_with_a_message(tiny_lab, tmp_path, model_file, stargan_runs):
    missing = _train(tiny_lab, tmp_path, "--train_steps=2", f"--legan_quality_model={model_file}",
                     "--legan_identity_weights=/nowhere/lightcnn.npz", recipe=LEGAN_TINY)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "--legan_identity_weights=/nowhere/lightcnn.npz: no such file" in missing.stderr
    run = _copy(stargan_runs["tensorflow"]["run"], tmp_path)
    foreign = _train(tiny_lab, tmp_path, "--train_steps=4", f"--resume={run}", "--legan_lambda_id=0",
                     "--legan_lambda_qual=0", recipe=LEGAN_TINY)
    assert foreign.returncode == 1 and "Traceback" not in foreign.stderr
    assert f"--resume={run}: the run trains --task=stargan, not --task=legan" in foreign.stderr


def test_a_recipe_flag_that_names_no_hyperparameter_is_an_error():
    from absl import flags

    from legan_tf.errors import ConfigError
    from legan_tf.tasks.quality import QualityTask
    from legan_tf.training import train_lib

    values = flags.FlagValues()
    flags.DEFINE_integer("quality_base_filters", 8, "", flag_values=values)
    flags.DEFINE_integer("seed", 3, "", flag_values=values)
    values(["test"])
    assert train_lib._task_kwargs(QualityTask, values) == {"base_filters": 8, "seed": 3}
    flags.DEFINE_integer("quality_base_filtres", 16, "", flag_values=values)  # a misspelt hyperparameter
    values(["test"])
    with pytest.raises(ConfigError, match=r"--quality_base_filtres: named like a flag of this recipe \(prefix "
                                          r"'quality_'\), but it has no hyperparameter 'base_filtres'"):
        train_lib._task_kwargs(QualityTask, values)
