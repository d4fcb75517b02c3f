"""scripts/train.py end to end on a tiny face lab: run directory, resume, dry run, clear errors."""

import glob
import json
import os
import subprocess
import sys

import pytest

from legan_tf.data.synthetic.writer import write_face_lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    write_face_lab(root, image_size=32, num_identities=6, seed=0, num_lightings=4, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    return root


def _train(lab, runs_root, *extra):
    command = [
        sys.executable, TRAIN, "--task=classifier", "--run_name=tiny", f"--runs_root={runs_root}",
        "--data_format=multipie", f"--data_path={lab / 'multipie' / 'manifest.csv'}", "--image_size=32",
        "--num_lightings=4", "--holdout_fraction=0.34", "--batch_size=8", "--classifier_base_filters=4",
        "--classifier_downsamples=3", "--log_every=2", "--sample_every=3", "--eval_every=3",
        "--checkpoint_every=3", "--num_samples=4", "--noprogress_bar", *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_run_writes_flags_checkpoints_logs_samples_and_resumes(tiny_lab, tmp_path):
    first = _train(tiny_lab, tmp_path, "--train_steps=3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "step 2/3: " in first.stderr and "images/s" in first.stderr  # progress lines without a terminal
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    flagfile = open(os.path.join(run, "flags.txt")).read()
    assert "--train_steps=3" in flagfile and "--resume" not in flagfile
    assert sorted(os.listdir(os.path.join(run, "samples"))) == ["step_0000003.png"]
    assert glob.glob(os.path.join(run, "logs", "events.out.tfevents.*"))
    assert os.path.exists(os.path.join(run, "attribute_classifier.keras"))
    assert json.load(open(os.path.join(run, "metrics.json")))["step"] == 3

    resumed = _train(tiny_lab, tmp_path, "--train_steps=6", f"--resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from" in resumed.stderr and "at step 3" in resumed.stderr
    checkpoints = sorted(os.path.basename(p) for p in glob.glob(os.path.join(run, "checkpoints", "ckpt-*.index")))
    assert checkpoints == ["ckpt-3.index", "ckpt-6.index"]
    steps = [json.loads(line)["step"] for line in open(os.path.join(run, "metrics.jsonl"))]
    assert steps == [3, 6]
    assert len(glob.glob(str(tmp_path / "tiny-*"))) == 1


def test_stop_after_minutes_ends_the_run_as_finished_and_resume_continues_it(tiny_lab, tmp_path):
    # 0.0001 min is 6 ms: the first step's graph tracing alone takes longer, so the clock stops the run at
    # step 1 whatever the machine, and that step is checkpointed, sampled, evaluated and exported.
    first = _train(tiny_lab, tmp_path, "--train_steps=1000", "--stop_after_minutes=0.0001")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Stopping at step 1 of 1000: --stop_after_minutes=0.0001 reached" in first.stderr
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert os.path.exists(os.path.join(run, "checkpoints", "ckpt-1.index"))
    assert os.listdir(os.path.join(run, "samples")) == ["step_0000001.png"]
    assert os.path.exists(os.path.join(run, "attribute_classifier.keras"))
    assert [json.loads(line)["step"] for line in open(os.path.join(run, "metrics.jsonl"))] == [1]

    resumed = _train(tiny_lab, tmp_path, "--train_steps=4", f"--resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 1" in resumed.stderr and "Stopping" not in resumed.stderr
    assert [json.loads(line)["step"] for line in open(os.path.join(run, "metrics.jsonl"))] == [1, 3, 4]


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

    command = [sys.executable, TRAIN, "--task=classifier", "--run_name=tiny", f"--runs_root={tmp_path}",
               "--data_format=multipie", f"--data_path={tiny_lab / 'multipie' / 'manifest.csv'}", "--image_size=32",
               "--num_lightings=4", "--holdout_fraction=0.34", "--batch_size=8", "--classifier_base_filters=4",
               "--classifier_downsamples=3", "--train_steps=1000000", "--checkpoint_every=5", "--log_every=1000",
               "--sample_every=1000000", "--eval_every=1000000", "--noprogress_bar"]
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


def test_a_full_disk_is_a_clear_stop_and_the_previous_checkpoint_stays_the_latest(tiny_lab, tmp_path):
    """A disk that fills up, simulated without privileges by a file-size limit on the resumed run
    (RLIMIT_FSIZE, SIGXFSZ ignored so a write fails with EFBIG as a full disk fails with ENOSPC): the
    small files still fit, the 125 KB checkpoint does not."""
    import resource
    import signal

    import tensorflow as tf

    first = _train(tiny_lab, tmp_path, "--train_steps=2", "--checkpoint_every=2")
    assert first.returncode == 0, first.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    command = [sys.executable, TRAIN, "--task=classifier", "--run_name=tiny", f"--runs_root={tmp_path}",
               "--data_format=multipie", f"--data_path={tiny_lab / 'multipie' / 'manifest.csv'}", "--image_size=32",
               "--num_lightings=4", "--holdout_fraction=0.34", "--batch_size=8", "--classifier_base_filters=4",
               "--classifier_downsamples=3", "--log_every=2", "--sample_every=100", "--eval_every=100",
               "--checkpoint_every=2", "--noprogress_bar", "--train_steps=4", f"--resume={run}"]
    full = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert full.returncode == 74, full.stderr[-3000:]
    assert "stopped: could not write the checkpoint of step 4" in full.stderr
    assert "the latest checkpoint is still step 2, complete" in full.stderr and "Traceback" not in full.stderr
    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-2")
    assert not glob.glob(os.path.join(run, "checkpoints", "ckpt-4*"))
    # Space freed (no limit): the run resumes from step 2 and finishes.
    again = _train(tiny_lab, tmp_path, "--train_steps=4", f"--resume={run}")
    assert again.returncode == 0 and "at step 2" in again.stderr, again.stderr[-3000:]


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


def test_jit_compile_trains_the_stargan_recipe(tiny_lab, tmp_path):
    # The maths under XLA is compared with the plain step in tests/training/test_backends.py; this is the flag.
    result = _train(tiny_lab, tmp_path, "--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1",
                    "--stargan_d_filters=4", "--stargan_d_downsamples=3", "--stargan_n_critic=2", "--train_steps=2",
                    "--jit_compile")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert "--jit_compile" in open(os.path.join(run, "flags.txt")).read().split()
    assert os.path.exists(os.path.join(run, "generator.keras"))


def test_stop_after_minutes_is_refused_for_a_multi_worker_cluster(tiny_lab, tmp_path):
    result = _train(tiny_lab, tmp_path, "--train_steps=2", "--strategy=multi_worker", "--stop_after_minutes=5")
    assert result.returncode != 0
    assert "--stop_after_minutes cannot stop a multi_worker cluster" in result.stderr
    assert "Traceback" not in result.stderr and not glob.glob(str(tmp_path / "tiny-*"))


def test_export_to_writes_a_serving_version_with_the_runs_label_names(tiny_lab, tmp_path):
    result = _train(tiny_lab, tmp_path, "--train_steps=1", f"--export_to={tmp_path / 'models'}")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert json.load(open(os.path.join(run, "labels.json")))["lighting"] == ["00", "01", "02", "03"]
    assert "--export_to" not in open(os.path.join(run, "flags.txt")).read()  # where to export is not the run
    assert os.path.isfile(tmp_path / "models" / "classifier" / "1" / "saved_model.pb")
    assert f"serving/server.py --model_dir={tmp_path / 'models'}" in result.stdout


def test_the_saved_flagfile_reproduces_the_run(tiny_lab, tmp_path):
    first = _train(tiny_lab, tmp_path / "a", "--train_steps=2", "--seed=3")
    assert first.returncode == 0, first.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "a" / "tiny-*"))
    again = subprocess.run(
        [sys.executable, TRAIN, f"--flagfile={run}/flags.txt", f"--runs_root={tmp_path / 'b'}"],
        capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    [rerun] = glob.glob(str(tmp_path / "b" / "tiny-*"))
    assert json.load(open(os.path.join(run, "metrics.json"))) == json.load(open(os.path.join(rerun, "metrics.json")))


def test_dry_run_prints_configuration_and_counts_per_class_without_a_run_dir(tiny_lab, tmp_path):
    result = _train(tiny_lab, tmp_path, "--dry_run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--batch_size=8" in result.stdout
    assert "expression: neutral 16, smile 16" in result.stdout  # 4 training identities x 4 lights
    assert "lighting: 00 24, 01 24, 02 24, 03 24" in result.stdout
    assert not os.path.exists(tmp_path / "tiny") and not glob.glob(str(tmp_path / "tiny-*"))


def test_resuming_with_another_architecture_names_the_checkpoint(tiny_lab, tmp_path):
    first = _train(tiny_lab, tmp_path, "--train_steps=3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "step 2/3: " in first.stderr and "images/s" in first.stderr  # progress lines without a terminal
    [run] = glob.glob(str(tmp_path / "tiny-*"))
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


def test_stargan_recipe_trains_samples_exports_and_resumes(tiny_lab, tmp_path):
    gan = ("--task=stargan", "--stargan_g_filters=4", "--stargan_g_residual_blocks=1", "--stargan_d_filters=4",
           "--stargan_d_downsamples=5", "--stargan_n_critic=2", "--stargan_ema_decay=0.9")
    first = _train(tiny_lab, tmp_path, "--train_steps=4", *gan)
    assert first.returncode == 0, first.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    assert {"generator.keras", "discriminator.keras", "generator_raw.keras"} <= set(os.listdir(run))
    # With an EMA both generators are exported: the average and the optimizer's weights. After two G
    # updates they differ (the warm-up decay is 2/11 then 3/12, so the average trails by a fixed share
    # of each update, not by roundoff).
    import keras
    import numpy as np

    average, raw = (keras.models.load_model(os.path.join(run, name)).get_weights()
                    for name in ("generator.keras", "generator_raw.keras"))
    assert [w.shape for w in average] == [w.shape for w in raw]
    assert any(not np.array_equal(a, r) for a, r in zip(average, raw))
    assert sorted(os.listdir(os.path.join(run, "samples"))) == ["step_0000003.png", "step_0000004.png"]
    assert set(json.load(open(os.path.join(run, "metrics.json")))) >= {"eval/cycle_l1", "eval/d_accuracy/lighting"}
    # Resuming the finished run trains nothing and exports again from the checkpoint: both generators
    # come back bit for bit (a checkpoint restores stored values exactly). The average is the part no
    # optimizer holds: before the checkpoint saved each network's weights, it came back random.
    again = _train(tiny_lab, tmp_path, "--train_steps=4", f"--resume={run}", *gan)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to train" in again.stderr
    for name, before in (("generator.keras", average), ("generator_raw.keras", raw)):
        after = keras.models.load_model(os.path.join(run, name)).get_weights()
        assert all(np.array_equal(b, a) for b, a in zip(before, after)), name
    resumed = _train(tiny_lab, tmp_path, "--train_steps=6", f"--resume={run}", *gan)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 4" in resumed.stderr


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
    result = _train(tiny_lab, tmp_path, "--train_steps=4", *LEGAN_TINY, f"--legan_quality_model={model_file}",
                    f"--legan_identity_model={identity_file}")
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


def test_legan_bad_settings_exit_1_with_a_message(tiny_lab, tmp_path, model_file):
    missing = _train(tiny_lab, tmp_path, "--train_steps=2", *LEGAN_TINY, f"--legan_quality_model={model_file}",
                     "--legan_identity_weights=/nowhere/lightcnn.npz")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "--legan_identity_weights=/nowhere/lightcnn.npz: no such file" in missing.stderr
    stargan = _train(tiny_lab, tmp_path, "--train_steps=2", "--task=stargan", "--stargan_g_filters=4",
                     "--stargan_g_residual_blocks=1", "--stargan_d_filters=4", "--stargan_d_downsamples=5")
    assert stargan.returncode == 0, stargan.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    foreign = _train(tiny_lab, tmp_path, "--train_steps=4", f"--resume={run}", *LEGAN_TINY, "--legan_lambda_id=0",
                     "--legan_lambda_qual=0")
    assert foreign.returncode == 1 and "Traceback" not in foreign.stderr
    assert "does not fit the 'legan' model" in foreign.stderr


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
