"""legan_tf.runs: the run directory's layout, writing and reading, in one place."""

import datetime
import json
import os

import numpy as np
import pytest
from absl import flags

from legan_tf.data.config import numbered_names
from legan_tf.errors import ConfigError
from legan_tf.runs import (FLAGS_FILE, LABELS_FILE, RunDir, flagfile_text, labels_beside, load_attribute_classifier,
                           load_generator, load_model, model_file, read_label_names, write_label_names)
from legan_tf.runs.settings import TrainingSettings


def test_a_new_run_has_the_standard_layout_and_never_reuses_a_folder(tmp_path):
    now = datetime.datetime(2026, 11, 22, 8, 30, 0)
    first = RunDir.create(str(tmp_path), "demo", now)
    second = RunDir.create(str(tmp_path), "demo", now)
    assert first.name == "demo-20261122-083000"
    assert first.path != second.path
    for folder in (first.checkpoints_dir, first.logs_dir, first.samples_dir):
        assert os.path.isdir(folder)
    assert first.sample_path(42) == os.path.join(first.path, "samples", "step_0000042.png")
    assert first.model_path("generator") == os.path.join(first.path, "generator.keras")


def test_a_runs_root_that_takes_no_files_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="--runs_root=.*cannot create the run directory"):
        RunDir.create(str(blocker), "demo")


def test_flags_round_trip_through_absl(tmp_path):
    values = {"batch_size": 16, "expression_names": ["neutral", "smile"], "random_flip": True,
              "cache": False, "data_path": "data/x.csv", "tpu_address": None}
    run = RunDir(str(tmp_path))
    path = run.write_flags(values)
    parser = flags.FlagValues()
    flags.DEFINE_integer("batch_size", 1, "", flag_values=parser)
    flags.DEFINE_list("expression_names", [], "", flag_values=parser)
    flags.DEFINE_bool("random_flip", False, "", flag_values=parser)
    flags.DEFINE_bool("cache", True, "", flag_values=parser)
    flags.DEFINE_string("data_path", "", "", flag_values=parser)
    parser(["prog", f"--flagfile={path}"])
    assert (parser.batch_size, parser.expression_names) == (16, ["neutral", "smile"])
    assert parser.random_flip is True and parser.cache is False and parser.data_path == "data/x.csv"
    # The raw lines, booleans included; None is not written at all.
    assert run.flag_lines() == {"batch_size": "16", "expression_names": "neutral,smile", "random_flip": "true",
                                "cache": "false", "data_path": "data/x.csv"}


def test_rewriting_with_changed_flags_keeps_the_old_flagfile(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_flags({"batch_size": 16})
    run.write_flags({"batch_size": 16})  # unchanged: nothing kept
    assert not [name for name in os.listdir(tmp_path) if name.startswith("flags.before-")]
    run.write_flags({"batch_size": 32})
    kept = [name for name in os.listdir(tmp_path) if name.startswith("flags.before-")]
    assert len(kept) == 1
    assert "--batch_size=16" in (tmp_path / kept[0]).read_text()
    assert (tmp_path / FLAGS_FILE).read_text() == "--batch_size=32\n"


def test_a_folder_that_is_not_a_run_says_so_naming_the_flag(tmp_path):
    with pytest.raises(ConfigError, match="--resume=.*: no such run directory"):
        RunDir.for_resume(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="--run_dir=.*: not a run directory .it has no flags.txt"):
        RunDir.open(str(tmp_path))


def test_settings_are_typed_and_the_data_config_is_rebuilt(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_flags({"task": "stargan", "data_format": "multipie", "data_path": "lab/manifest.csv",
                     "image_size": 32, "num_lightings": 4, "holdout_fraction": 0.25, "random_flip": True,
                     "stargan_lambda_rec": 5.0, "a_flag_of_another_version": "x"})
    settings = run.settings()
    assert settings.task == "stargan" and run.task == "stargan"
    assert settings["image_size"] == 32 and settings["holdout_fraction"] == 0.25
    # The training settings, typed, with their defaults where flags.txt has no line.
    assert settings.training == TrainingSettings(task="stargan")
    assert settings["expression_names"] == ["neutral", "smile", "surprise", "squint", "disgust", "scream"]  # default
    assert settings.given()["random_flip"] is True and "split_seed" not in settings.given()
    config = settings.data_config()
    assert (config.data_format, config.image_size, config.lighting_names) == ("multipie", 32, numbered_names(4))
    assert settings.recipe_value("lambda_rec") == "5.0"
    assert settings.lines["a_flag_of_another_version"] == "x"
    # A value its flag refuses names the file.
    run.write_flags({"image_size": "big"})
    with pytest.raises(ConfigError, match="flags.txt"):
        run.settings()
    run.write_flags({"task": "classifier", "train_steps": 7, "profile_steps": ["2", "3"], "progress_bar": False})
    assert run.settings().training == TrainingSettings(train_steps=7, profile_steps=("2", "3"), progress_bar=False)
    run.write_flags({"profile_steps": ["3", "2"]})
    with pytest.raises(ConfigError, match=r"flags.txt: --profile_steps=3,2: give two steps FIRST,LAST"):
        run.settings().training
    run.write_flags({"data_format": "multipie"})
    assert run.settings().task is None  # flags.txt does not say


def test_two_runs_started_in_the_same_second_get_two_folders_even_at_once(tmp_path):
    import concurrent.futures

    now = datetime.datetime(2026, 11, 22, 8, 30, 0)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: RunDir.create(str(tmp_path), "demo", now), range(8)))
    assert len({run.path for run in runs}) == 8
    assert sorted(os.listdir(tmp_path)) == sorted(["demo-20261122-083000"] + [f"demo-20261122-083000-{i}"
                                                                             for i in range(1, 8)])


def test_checkpoints_of_either_backend_are_found_by_step(tmp_path):
    run = RunDir.create(str(tmp_path), "run")
    assert run.checkpoints_backend() is None and run.jax_checkpoints() == []
    for step in (10, 2):
        open(run.jax_checkpoint_path(step), "w").close()
    open(run.jax_checkpoint_path(3) + ".partial", "w").close()  # a write that did not finish is no checkpoint
    assert run.jax_checkpoints() == [(2, run.jax_checkpoint_path(2)), (10, run.jax_checkpoint_path(10))]
    assert os.path.basename(run.jax_checkpoint_path(2)) == "jax-ckpt-00000002.npz"
    assert run.checkpoints_backend() == "jax"
    with open(os.path.join(run.checkpoints_dir, "checkpoint"), "w") as handle:  # TensorFlow's index file
        handle.write('model_checkpoint_path: "ckpt-2"\n')
    assert run.has_tensorflow_checkpoints() and run.checkpoints_backend() == "tensorflow"
    assert run.worker_checkpoints_dir(1) == os.path.join(run.checkpoints_dir, "worker-tmp-1")


def test_scalars_are_appended_as_json_lines_beside_the_event_files(tmp_path):
    run = RunDir.create(str(tmp_path), "run")
    run.append_scalars(2, {"d/total": np.float32(1.5)})
    run.append_scalars(4, {"d/total": 0.5, "throughput/images_per_second": 10})
    assert run.scalars_path == os.path.join(run.logs_dir, "scalars.jsonl")
    assert [json.loads(line) for line in open(run.scalars_path)] == [
        {"step": 2, "d/total": 1.5}, {"step": 4, "d/total": 0.5, "throughput/images_per_second": 10.0}]


def test_metrics_are_appended_per_evaluation_and_the_latest_is_read_back(tmp_path):
    run = RunDir(str(tmp_path))
    assert run.latest_metrics() == {}
    run.append_metrics(10, {"eval/accuracy/expression": np.float32(0.5)})
    run.append_metrics(20, {"eval/accuracy/expression": 0.75})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20]
    assert run.latest_metrics() == {"step": 20, "eval/accuracy/expression": 0.75}


def test_label_names_round_trip_and_bad_files_are_clear_errors(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_label_names({"expression": ("a", "b"), "lighting": ["00", "01", "02"]})
    assert run.label_names() == {"expression": ("a", "b"), "lighting": ("00", "01", "02")}
    assert labels_beside(run.model_path("generator")) == run.labels_path
    assert labels_beside(str(tmp_path / "elsewhere" / "generator.keras")) is None
    for bad in ('{"expression": []}', '{"pose": ["a"]}', "[1, 2]", "{not json"):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(ConfigError, match="--generator_labels=.*bad.json"):
            read_label_names(str(tmp_path / "bad.json"), "--generator_labels")


def test_a_run_without_labels_json_reads_its_data_or_says_what_to_write(tmp_path):
    from legan_tf.data.synthetic.writer import write_face_lab

    write_face_lab(tmp_path / "lab", image_size=32, num_identities=2, seed=0, num_lightings=2,
                   parts=("multipie",), progress=False)
    run = RunDir(str(tmp_path / "run"))
    os.makedirs(run.path)
    run.write_flags({"data_format": "multipie", "data_path": str(tmp_path / "lab" / "multipie" / "manifest.csv"),
                     "num_lightings": 2, "image_size": 32})
    assert run.label_names()["lighting"] == ("00", "01")
    run.write_flags({"data_format": "multipie", "data_path": str(tmp_path / "gone.csv")})
    with pytest.raises(ConfigError, match=f"has no {LABELS_FILE} and its training data cannot be opened"):
        run.label_names()


def test_models_are_saved_by_role_and_loaded_with_clear_errors(tmp_path):
    from legan_tf.models.classifier import AttributeClassifier
    from legan_tf.models.stargan import StarGANGenerator

    run = RunDir(str(tmp_path))
    generator = StarGANGenerator(image_size=16, num_labels=3, base_filters=4, num_downsamples=2,
                                 num_residual_blocks=1)
    inputs = (np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32),
              np.eye(3, dtype=np.float32)[[0, 2]])
    expected = np.asarray(generator(inputs))
    assert run.save_model("generator", generator) == str(tmp_path / model_file("generator"))
    assert run.has_model("generator") and not run.has_model("discriminator")
    loaded = run.load_model("generator")
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), expected)
    assert load_generator(run.model_path("generator")).num_labels == 3
    with pytest.raises(ConfigError, match="no discriminator.keras .is the run finished"):
        run.load_model("discriminator")
    with pytest.raises(ConfigError, match="a StarGANGenerator, not an AttributeClassifier"):
        load_model(run.model_path("generator"), "classifier", "--classifier", AttributeClassifier)
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="broken.keras: cannot load the generator"):
        load_model(str(tmp_path / "broken.keras"), "generator", "--generator")
    assert model_file("pose_estimator") == "pose_estimator.keras"  # a new recipe's own role
    with pytest.raises(ValueError, match="a role is a lower-case name"):
        model_file("generator.keras")


def test_an_attribute_classifier_loads_with_the_names_beside_it_or_says_what_is_wrong(tmp_path):
    from legan_tf.models.classifier import AttributeClassifier

    classifier = AttributeClassifier(16, {"expression": 3, "lighting": 2}, base_filters=4, num_downsamples=2)
    faces = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    expected = np.asarray(classifier(faces)["expression"])
    path = str(tmp_path / "attribute_classifier.keras")
    classifier.save(path)
    with pytest.raises(ConfigError, match="--classifier=.*: no labels.json beside it"):
        load_attribute_classifier(path, "--classifier")
    write_label_names(str(tmp_path), {"expression": ["a", "b", "c"], "lighting": ["left", "right"]})
    model, names = load_attribute_classifier(path, "--classifier")
    assert names == {"expression": ("a", "b", "c"), "lighting": ("left", "right")}
    np.testing.assert_allclose(np.asarray(model(faces)["expression"]), expected, rtol=1e-6, atol=1e-6)
    # A labels.json of a head's own name but another count of classes: the two files are not one run's.
    write_label_names(str(tmp_path), {"expression": ["a", "b"]})
    with pytest.raises(ConfigError, match="its expression head has 3 classes, its .*labels.json names 2"):
        load_attribute_classifier(path, "--classifier")
    with pytest.raises(ConfigError, match="--classifier=.*nowhere.keras: no such attribute classifier file"):
        load_attribute_classifier(str(tmp_path / "nowhere.keras"), "--classifier")


def test_flagfile_text_writes_booleans_lists_and_skips_none():
    assert flagfile_text({"a": True, "b": False, "c": [1, 2], "d": None, "e": 0.5}) == "--a\n--nob\n--c=1,2\n--e=0.5\n"
