"""legan_tf.evaluation.run_under_test: a GAN run's settings (asked of its run directory) and its generator."""

import os

import numpy as np
import pytest

from legan_tf.errors import ConfigError
from legan_tf.evaluation import run_under_test
from legan_tf.models.classifier import AttributeClassifier
from tests.evaluation.conftest import save_tiny_generator


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished StarGAN run directory: flags.txt (data, trainer and recipe lines) and a tiny generator.keras."""
    root = tmp_path_factory.mktemp("run_under_test")
    run_dir = root / "stargan-lab-20250101-120000"
    run_dir.mkdir()
    save_tiny_generator(run_dir, (
        "--task=stargan\n--batch_size=8\n--data_format=multipie\n--data_path=lab/multipie/manifest.csv\n"
        "--image_size=32\n--expression_names=smile,scream\n--holdout_fraction=0.25\n--nocache\n"
        "--stargan_lambda_qual=0.0\n--stargan_quality_model=\n"))
    return str(run_dir)


def test_the_runs_settings_are_typed_and_the_callers_override_them(run):
    resolved = run_under_test.resolve_run(run)
    assert resolved.label == "stargan-lab-20250101-120000" and resolved.kind == "stargan"
    assert resolved.generator_path == os.path.join(run, "generator.keras") and resolved.image_size == 32
    # Only the settings an evaluation reads, with their types; absent ones are left out.
    assert resolved.settings == {"task": "stargan", "image_size": 32, "expression_names": ["smile", "scream"],
                                 "data_path": "lab/multipie/manifest.csv"}
    assert resolved.expression_names == ("smile", "scream")
    assert resolved.lighting_names == tuple(f"{index:02d}" for index in range(20))  # Multi-PIE's 20 flashes
    # The raw lines, the recipe's own flags among them, and the data the run trained on.
    assert resolved.recipe_flag("lambda_qual") == ("stargan_lambda_qual", "0.0")
    assert resolved.recipe_flag("identity_model") == ("stargan_identity_model", "")
    config = resolved.data_config()
    assert (config.data_format, config.holdout_fraction, config.cache) == ("multipie", 0.25, False)

    overridden = run_under_test.resolve_run(run, settings={"num_lightings": 4, "image_size": None}, kind="legan",
                                            label="StarGAN")
    assert overridden.lighting_names == ("00", "01", "02", "03") and overridden.settings["image_size"] == 32
    assert (overridden.label, overridden.kind) == ("StarGAN", "legan")


def test_a_generator_given_alone_has_no_run_settings(run):
    alone = run_under_test.resolve_run(generator_path=os.path.join(run, "generator.keras"),
                                       settings={"expression_names": ["a", "b"]})
    assert alone.label == "generator.keras" and alone.run_dir is None and alone.task is None
    assert alone.settings == {"expression_names": ["a", "b"]} and alone.flag_lines == {}
    assert alone.data_config() is None and alone.recipe_flag("lambda_qual") == ("", "")


def test_what_is_wrong_with_a_run_is_one_clear_error(run, tmp_path):
    with pytest.raises(ConfigError, match="give --run_dir=<a GAN run directory> or --generator="):
        run_under_test.resolve_run()
    with pytest.raises(ConfigError, match=r"^--kind=cyclegan: expected one of "):
        run_under_test.resolve_run(run, kind="cyclegan")
    with pytest.raises(ConfigError, match=r"not a run directory \(it has no flags.txt\)"):
        run_under_test.resolve_run(str(tmp_path))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "flags.txt").write_text("--task=stargan\n")
    with pytest.raises(ConfigError, match=r"it has no generator.keras \(is the GAN run finished\?\); or pass"):
        run_under_test.resolve_run(str(unfinished))
    with pytest.raises(ConfigError, match="works on 32 px images but the flags say --image_size=64"):
        run_under_test.resolve_run(run, settings={"image_size": 64})
    classifier = AttributeClassifier(image_size=32, head_classes={"expression": 2}, base_filters=4, num_downsamples=2)
    classifier(np.zeros((1, 32, 32, 3), np.float32))
    classifier.save(str(tmp_path / "classifier.keras"))
    with pytest.raises(ConfigError, match="AttributeClassifier, not a label-conditioned generator"):
        run_under_test.resolve_run(generator_path=str(tmp_path / "classifier.keras"))


def test_attributes_are_inferred_from_the_generators_label_count():
    counts = {"expression": 6, "lighting": 4}
    assert run_under_test.infer_attributes(10, counts) == ("expression", "lighting")
    assert run_under_test.infer_attributes(6, counts) == ("expression",)
    assert run_under_test.infer_attributes(4, counts) == ("lighting",)
    with pytest.raises(ConfigError, match="several of .* fit: pass --attributes"):
        run_under_test.infer_attributes(6, {"expression": 6, "lighting": 6})
    with pytest.raises(ConfigError, match="none of .* fit"):
        run_under_test.infer_attributes(7, counts)
