"""legan_tf.runs.settings: the training settings declared once, and what derives from them."""

import dataclasses

import pytest
from absl import flags

from legan_tf import hparams
from legan_tf.errors import ConfigError
from legan_tf.runs.settings import TrainingSettings, not_recorded


def _parsed(*argv):
    values = flags.FlagValues()
    hparams.define_flags(TrainingSettings, "", "tests.training_settings", values)
    values(["train", *argv])
    return TrainingSettings(**hparams.read_flags(TrainingSettings, "", values)), values


def test_each_setting_is_a_flag_with_its_default_and_the_flags_give_the_settings():
    settings, values = _parsed()
    assert settings == TrainingSettings()
    for field in dataclasses.fields(TrainingSettings):
        assert values[field.name].help.endswith(field.metadata["help"]), field.name  # an enum's starts <a|b>:
    settings, _ = _parsed("--train_steps=7", "--profile_steps=2,3", "--noprogress_bar", "--on_nan=skip")
    assert (settings.train_steps, settings.profile_window, settings.progress_bar, settings.on_nan) == (
        7, (2, 3), False, "skip")
    with pytest.raises(flags.IllegalFlagValueError):
        _parsed("--batch_size=0")  # lower bound 1
    with pytest.raises(flags.IllegalFlagValueError):
        _parsed("--strategy=cluster")  # not one of the choices


def test_the_backend_flag_defaults_to_keras_backend_when_it_names_one(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert _parsed()[0].backend == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # a backend this project does not train on
    assert _parsed()[0].backend == "tensorflow"


@pytest.mark.parametrize("changes, running, words", [
    ({"strategy": "mirrored"}, "jax", "--strategy=mirrored is a TensorFlow-backend flag; it does nothing under "
                                      "--backend=jax."),
    ({"profile_steps": ("2", "3")}, "jax", "--profile_steps=2,3 is a TensorFlow-backend flag"),
    ({"jit_compile": True}, "jax", "(the JAX trainer always compiles its updates)"),
    ({"devices": 2}, "tensorflow", "--devices=2 is a JAX-backend flag"),
    ({"input_processes": 2}, "tensorflow", "--input_processes=2 is a JAX-backend flag"),
])
def test_a_flag_of_the_other_backend_is_an_error_derived_from_its_field(changes, running, words):
    settings = TrainingSettings(**changes, backend=running)
    with pytest.raises(ConfigError) as error:
        settings.check_backend(running)
    assert words in str(error.value)
    TrainingSettings(**changes, backend={"jax": "tensorflow", "tensorflow": "jax"}[running]).check_backend(
        {"jax": "tensorflow", "tensorflow": "jax"}[running])  # its own backend takes it
    with pytest.raises(ConfigError, match="--backend=jax, but Keras was already imported with the tensorflow"):
        TrainingSettings(backend="jax").check_backend("tensorflow")


@pytest.mark.parametrize("changes, words", [
    ({"stop_after_minutes": 5.0, "strategy": "multi_worker"}, "--stop_after_minutes cannot stop a multi_worker"),
    ({"on_nan": "skip", "mixed_precision": "mixed_float16"}, "--on_nan=skip with --mixed_precision=mixed_float16"),
    ({"profile_steps": ("3", "2")}, "--profile_steps=3,2: give two steps FIRST,LAST"),
    ({"profile_steps": ("5",)}, "--profile_steps=5: give two steps FIRST,LAST"),
    ({"profile_steps": ("a", "b")}, "--profile_steps=a,b: give two steps FIRST,LAST"),
])
def test_settings_that_cannot_work_together_are_refused_when_made(changes, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        TrainingSettings(**changes)


def test_flags_txt_records_what_to_run_not_where_or_whether():
    recorded = TrainingSettings(resume="runs/x", dry_run=True, export_to="models", stop_after_minutes=5.0,
                                train_steps=9).recorded_values()
    assert not_recorded() == {"resume", "dry_run", "export_to", "stop_after_minutes"}
    assert not_recorded().isdisjoint(recorded) and recorded["train_steps"] == 9
    assert set(recorded) | not_recorded() == {field.name for field in dataclasses.fields(TrainingSettings)}
