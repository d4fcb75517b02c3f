"""Run directories written by legan-tf 0.1.0 (tests/fixtures/runs_0_1_0, see its README) still work:
their .keras files load and compute, their flags.txt and labels.json read, their models export, and the
StarGAN run resumes from its 0.1.0 checkpoint through scripts/train.py --resume alone."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from legan_tf.runs import RunDir, load_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "runs_0_1_0")
TASKS = ("classifier", "depth_pretrain", "identity", "legan", "quality", "stargan", "stargan_depth")
AFFECTNET = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sadness", "surprise")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The fixture runs copied next to the face lab they trained on, with their flags.txt pointing at it."""
    from legan_tf.data.synthetic.writer import write_face_lab

    root = tmp_path_factory.mktemp("legacy")
    write_face_lab(root / "lab", image_size=32, num_identities=4, seed=0, num_lightings=2, naturalness_variants=1,
                   rgbd_lightings_per_face=1, progress=False)
    for task in TASKS:
        shutil.copytree(os.path.join(FIXTURES, task), root / "runs" / task)
        flags_txt = root / "runs" / task / "flags.txt"
        flags_txt.write_text(flags_txt.read_text().replace("@LAB@", str(root / "lab"))
                             .replace("@RUNS@", str(root / "runs")))
    return root


def _inputs(model, rng):
    """A batch the saved network takes, from its own saved settings."""
    from legan_tf.models import DepthGenerator, IdentityEmbedder, LEGANGenerator, StarGANGenerator

    size = model.input_size if isinstance(model, IdentityEmbedder) else model.image_size
    images = rng.uniform(-1, 1, (2, size, size, getattr(model, "input_channels", 3))).astype(np.float32)
    if isinstance(model, (StarGANGenerator, LEGANGenerator)) and not isinstance(model, DepthGenerator):
        return (images, np.eye(model.num_labels, dtype=np.float32)[[0, 1]])
    return images


@pytest.mark.parametrize("task", TASKS)
def test_every_saved_network_loads_and_computes_finite_outputs(runs, task):
    run = RunDir.open(str(runs / "runs" / task))
    files = sorted(name for name in os.listdir(run.path) if name.endswith(".keras"))
    assert files, f"the {task} fixture holds no .keras file"
    rng = np.random.default_rng(0)
    for name in files:
        model = load_model(run.file(name), name, "--model")
        inputs = _inputs(model, rng)
        outputs = model(inputs)
        # Compare two calls: a network in inference mode is a function of its input.
        for first, second in zip(_leaves(outputs), _leaves(model(inputs))):
            assert np.all(np.isfinite(first)) and np.array_equal(first, second), name


def _leaves(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[key]) for key in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [leaf for item in outputs for leaf in _leaves(item)]
    return [np.asarray(outputs)]


@pytest.mark.parametrize("task", TASKS)
def test_flags_labels_and_metrics_read_back(runs, task):
    run = RunDir.open(str(runs / "runs" / task))
    settings = run.settings()
    assert settings.task == task
    training = settings.training  # typed, as today's runs
    assert (training.task, training.train_steps, training.batch_size, training.backend) == (task, 2, 4, "tensorflow")
    # 0.1.0 wrote every recipe's flags into every run's flags.txt.
    assert "stargan_lambda_rec" in settings.lines and "legan_lambda_id" in settings.lines
    config = settings.data_config()
    assert os.path.exists(config.data_path)
    assert run.latest_metrics()["step"] == 2
    names = run.label_names()
    if task in ("depth_pretrain", "stargan_depth"):
        assert names == {"expression": AFFECTNET}
    elif task in ("stargan", "legan", "classifier"):
        assert names["lighting"] == ("00", "01") and len(names["expression"]) == 6


def test_a_legacy_generator_exports_for_serving(runs, tmp_path):
    pytest.importorskip("tensorflow")
    from legan_tf.serving import export

    exported = export.export_run(str(runs / "runs" / "stargan"), str(tmp_path / "serving"), kinds=("generator",))
    assert [kind for kind, _ in exported] == ["generator"]
    assert os.path.isfile(os.path.join(exported[0][1], "saved_model.pb"))


@pytest.mark.slow
def test_the_legacy_stargan_run_resumes_from_its_checkpoint_with_resume_alone(runs):
    run = str(runs / "runs" / "stargan")
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "train.py"), f"--resume={run}",
                             "--train_steps=4"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from" in result.stderr and "at step 2" in result.stderr
    assert RunDir(run).latest_metrics()["step"] == 4
    assert os.path.isfile(os.path.join(run, "checkpoints", "ckpt-4.index"))
    # Its flags.txt listed every recipe's flags at their defaults: ignored, with one warning naming them; the
    # flags.txt written now holds the recipe's own (the old one is kept beside it).
    [warning] = [line for line in result.stderr.splitlines() if "of other recipes than --task=stargan" in line]
    assert "--legan_lambda_id" in warning and "--stargan_depth_depth_weight" in warning
    assert "--stargan_lambda_rec" not in warning
    lines = open(os.path.join(run, "flags.txt")).read().splitlines()
    assert "--stargan_lambda_rec=10.0" in lines and not [line for line in lines if line.startswith("--legan_")]
    assert [name for name in os.listdir(run) if name.startswith("flags.before-")]
