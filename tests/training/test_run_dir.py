import datetime
import os

import pytest
from absl import flags

from legan_tf.errors import ConfigError
from legan_tf.training import run_dir


def test_new_run_dir_has_the_standard_layout_and_never_reuses_a_folder(tmp_path):
    now = datetime.datetime(2026, 11, 22, 8, 30, 0)
    first = run_dir.new_run_dir(str(tmp_path), "demo", now)
    second = run_dir.new_run_dir(str(tmp_path), "demo", now)
    assert os.path.basename(first) == "demo-20261122-083000"
    assert first != second
    for sub in ("checkpoints", "logs", "samples"):
        assert os.path.isdir(os.path.join(first, sub))


def test_flagfile_round_trips_through_absl(tmp_path):
    values = {"batch_size": 16, "expression_names": ["neutral", "smile"], "random_flip": True,
              "cache": False, "data_path": "data/x.csv", "tpu_address": None}
    path = run_dir.write_flagfile(str(tmp_path), values)
    parser = flags.FlagValues()
    flags.DEFINE_integer("batch_size", 1, "", flag_values=parser)
    flags.DEFINE_list("expression_names", [], "", flag_values=parser)
    flags.DEFINE_bool("random_flip", False, "", flag_values=parser)
    flags.DEFINE_bool("cache", True, "", flag_values=parser)
    flags.DEFINE_string("data_path", "", "", flag_values=parser)
    parser(["prog", f"--flagfile={path}"])
    assert parser.batch_size == 16
    assert parser.expression_names == ["neutral", "smile"]
    assert parser.random_flip is True and parser.cache is False
    assert parser.data_path == "data/x.csv"


def test_resuming_with_changed_flags_keeps_the_old_flagfile(tmp_path):
    run_dir.write_flagfile(str(tmp_path), {"batch_size": 16})
    run_dir.write_flagfile(str(tmp_path), {"batch_size": 32})
    kept = [name for name in os.listdir(tmp_path) if name.startswith("flags.before-")]
    assert len(kept) == 1
    assert "--batch_size=16" in (tmp_path / kept[0]).read_text()
    assert "--batch_size=32" in (tmp_path / "flags.txt").read_text()


def test_resume_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    with pytest.raises(ConfigError, match="no such run directory"):
        run_dir.existing_run_dir(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="not a run directory"):
        run_dir.existing_run_dir(str(tmp_path))


def test_metrics_are_appended_per_evaluation(tmp_path):
    run_dir.append_metrics(str(tmp_path), 10, {"eval/accuracy/expression": 0.5})
    run_dir.append_metrics(str(tmp_path), 20, {"eval/accuracy/expression": 0.75})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"step": 20' in lines[1]
    assert '"eval/accuracy/expression": 0.75' in (tmp_path / "metrics.json").read_text()
