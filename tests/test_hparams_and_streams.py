"""legan_tf.hparams (hyperparameters declared once) and legan_tf.random_streams (named draws)."""

import dataclasses
import zlib
from typing import Optional

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from legan_tf import hparams, random_streams
from legan_tf.errors import ConfigError
from legan_tf.gan import LEGAN, StarGAN
from legan_tf.hparams import hparam


@dataclasses.dataclass(frozen=True)
class Example:
    width: int = hparam(8, "Width.", lower_bound=1)
    rate: float = hparam(0.5, "Rate.", lower_bound=0.0, upper_bound=1.0)
    name: str = hparam("", "A path.")
    on: bool = hparam(True, "A switch.")
    mode: str = hparam("a", "A choice.", choices=("a", "b"))
    sizes: tuple[int, ...] = hparam((1, 2), "Integers.")


def _values(*argv):
    values = flags.FlagValues()
    hparams.define_flags(Example, "ex_", "tests.example", values)
    values(["test", *argv])
    return values


def test_each_field_becomes_a_typed_bounded_flag_with_its_default():
    values = _values()
    assert hparams.from_flags(Example, "ex_", values) == dataclasses.asdict(Example())
    values = _values("--ex_width=3", "--ex_rate=0.25", "--ex_name=x.keras", "--noex_on", "--ex_mode=b",
                     "--ex_sizes=4,5,6")
    assert hparams.create(Example, "test", hparams.from_flags(Example, "ex_", values)) == Example(
        3, 0.25, "x.keras", False, "b", (4, 5, 6))
    assert "ex_width" in {flag.name for flag in values.flags_by_module_dict()["tests.example"]}  # --help groups them


def test_flags_refuse_values_outside_the_declared_bounds_and_choices():
    for bad in ("--ex_width=0", "--ex_rate=1.5", "--ex_mode=c", "--ex_sizes=4,x"):
        with pytest.raises(flags.IllegalFlagValueError):
            _values(bad)


def test_a_prefixed_flag_without_a_field_and_an_unknown_argument_are_errors_naming_them():
    values = _values()
    flags.DEFINE_integer("ex_widht", 1, "", flag_values=values)
    values(["test"])
    with pytest.raises(ConfigError, match="--ex_widht: .* no hyperparameter 'widht'"):
        hparams.from_flags(Example, "ex_", values)
    with pytest.raises(ConfigError, match="test: no hyperparameter 'colour'"):
        hparams.create(Example, "test", {"colour": 1})
    with pytest.raises(ConfigError, match="--ex_sizes=1,y: expected comma-separated integers"):
        hparams.create(Example, "test", {"sizes": ["1", "y"]}, flag_prefix="ex_")


@dataclasses.dataclass(frozen=True)
class Settings:
    path: str = hparam(hparams.REQUIRED, "Required: no default.")
    names: tuple[str, ...] = hparam(("a", "b"), "Strings.")
    report: Optional[str] = hparam(None, "Optional.")
    derived: Optional[tuple[str, ...]] = hparam(("x",), "Its flag's default is None.", flag_default=None)
    engine: str = hparam("one", "From the environment.", choices=("one", "two"), env="LEGAN_TF_TEST_ENGINE")
    extra: int = hparam(0, "Other metadata is kept.", owner="tests")


def _settings_flags(*argv):
    values = flags.FlagValues()
    hparams.define_flags(Settings, "", "tests.settings", values)
    values(["test", *argv])
    return values


def test_string_lists_optional_required_and_environment_defaults(monkeypatch):
    monkeypatch.delenv("LEGAN_TF_TEST_ENGINE", raising=False)
    values = _settings_flags()
    assert hparams.read_flags(Settings, "", values) == {"path": None, "names": ("a", "b"), "report": None,
                                                         "derived": None, "engine": "one", "extra": 0}
    assert [field.name for field in dataclasses.fields(Settings) if hparams.is_required(field)] == ["path"]
    with pytest.raises(TypeError):
        Settings()  # a required field has no default
    values = _settings_flags("--path=p", "--names=c,d,e", "--report=r.csv", "--derived=y,z", "--engine=two")
    assert Settings(**hparams.read_flags(Settings, "", values)) == Settings("p", ("c", "d", "e"), "r.csv", ("y", "z"),
                                                                           "two")
    assert values["engine"].help.startswith("<one|two>: ")  # --help shows an enum's choices
    assert dataclasses.fields(Settings)[-1].metadata["owner"] == "tests"
    monkeypatch.setenv("LEGAN_TF_TEST_ENGINE", "two")
    assert _settings_flags().engine == "two"
    monkeypatch.setenv("LEGAN_TF_TEST_ENGINE", "three")  # not a choice: the field's default
    assert _settings_flags().engine == "one"
    with pytest.raises(TypeError, match="immutable"):
        hparam([1], "A list default would be shared by every instance.")


@pytest.mark.parametrize("model_class", [StarGAN, LEGAN])
def test_gan_config_round_trips_through_get_config(model_class):
    model = model_class(32, {"expression": 3, "lighting": 4}, 8, seed=2, g_filters=4, g_residual_blocks=1,
                        d_filters=4, d_downsamples=5, ema_decay=0.5, lambda_rec=7.0, name="m")
    config = model.get_config()
    assert config["lambda_rec"] == 7.0 and config["seed"] == 2 and config["ema_decay"] == 0.5
    assert model_class.from_config(config).get_config() == config


def test_stream_seed_follows_the_documented_rule_and_streams_differ():
    stream = random_streams.Stream("tests/one")
    key = zlib.crc32(b"tests/one") & 0x7FFFFFFF
    assert stream.seed(7, 3).numpy().tolist() == [7, key * 2**32 + 3]
    other = random_streams.Stream("tests/two")
    a = tf.random.stateless_uniform([16], seed=stream.seed(7, 3)).numpy()
    assert not np.array_equal(a, tf.random.stateless_uniform([16], seed=other.seed(7, 3)).numpy())
    assert not np.array_equal(a, tf.random.stateless_uniform([16], seed=stream.seed(7, 4)).numpy())
    assert random_streams.Stream("tests/one").key == stream.key  # the same name may be made again


def test_per_example_draws_are_rows_of_one_global_draw():
    # Replica layouts are covered end to end by tests/tasks/test_mirrored_equality.py; here, outside a
    # strategy (replica 0), the rows are the global draw's first `count`, and a batch larger than the
    # training batch (evaluation) extends the draw instead of failing.
    stream = random_streams.Stream("tests/per_example")
    draws = tf.random.stateless_uniform([8], seed=stream.seed(0, 5)).numpy()
    np.testing.assert_array_equal(random_streams.uniform_per_example(stream, 0, 5, 8, 8).numpy(), draws)
    np.testing.assert_array_equal(random_streams.uniform_per_example(stream, 0, 5, 4, 8).numpy(), draws[:4])
    assert random_streams.uniform_per_example(stream, 0, 5, 12, 8).shape == (12,)


def test_two_names_with_one_key_are_refused(monkeypatch):
    stream = random_streams.Stream("tests/clash")
    monkeypatch.setitem(random_streams._KEYS, stream.key, "tests/another name")  # as if crc32 collided
    with pytest.raises(ValueError, match="same key"):
        random_streams.Stream("tests/clash")
