"""scripts/prepare_data.py end to end, in a subprocess, as a user runs it."""

import json
import os
import subprocess
import sys

import pytest

from legan_tf.data import DataError, open_source
from legan_tf.data import tfrecord
from tests.data.conftest import truncate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "prepare_data.py")


def prepare(layout, output_dir, *extra):
    command = [sys.executable, SCRIPT, f"--data_format={layout.data_format}",
               f"--data_path={layout.data_path}", f"--output_dir={output_dir}",
               "--lighting_names=00,01,02", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_good_input_writes_split_shards_and_metadata(make_layout, tmp_path):
    layout = make_layout("multipie")
    output = tmp_path / "shards"
    result = prepare(layout, output, "--num_shards=2", "--holdout_fraction=0.3")
    assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(output))
    assert names == ["dataset.json", "test-00000-of-00002.tfrecord", "test-00001-of-00002.tfrecord",
                     "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    metadata = json.loads((output / "dataset.json").read_text())
    assert metadata["num_records"] == 15 and metadata["skipped"] == 0
    assert metadata["splits"]["train"]["num_records"] + metadata["splits"]["test"]["num_records"] == 15
    assert metadata["label_names"]["lighting"] == ["00", "01", "02"]
    assert "wrote 15 records" in result.stdout and "skipped: 0" in result.stdout
    assert "scream 0" in result.stdout


def test_bad_input_under_fail_exits_1_with_one_line_and_no_shards(make_layout, tmp_path):
    layout = make_layout("multipie")
    truncate(layout.file(layout.image_of(4)))
    output = tmp_path / "shards"
    result = prepare(layout, output)
    assert result.returncode == 1
    assert (f"error: manifest.csv row 4 ({layout.image_of(4)}): truncated image file\n"
            in result.stderr)
    assert "Traceback" not in result.stderr
    assert not output.exists() or os.listdir(output) == []


def test_bad_input_under_skip_writes_the_report_beside_the_shards(make_layout, tmp_path):
    layout = make_layout("rgbd")
    os.remove(layout.file(layout.rows[1]["depth"]))
    output = tmp_path / "shards"
    result = prepare(layout, output, "--on_error=skip", "--expression_names=happy,neutral,sadness")
    assert result.returncode == 0, result.stderr
    report = output / "skipped.csv"
    assert report.read_text().splitlines() == ["row,path,fault", "2,depth/1.png,missing depth map file"]
    assert f"skipped: 1 (listed in {report})" in result.stdout
    assert json.loads((output / "dataset.json").read_text())["num_records"] == 7


def test_refuses_a_non_empty_output_dir_unless_overwrite(make_layout, tmp_path):
    layout = make_layout("csv")
    output = tmp_path / "shards"
    output.mkdir()
    (output / "old.tfrecord").write_text("stale")
    extra = ["--label_columns=expression"]
    refused = prepare(layout, output, *extra)
    assert refused.returncode == 1 and "not empty (pass --overwrite" in refused.stderr
    replaced = prepare(layout, output, *extra, "--overwrite", "--num_shards=1")
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(os.listdir(output)) == ["dataset.json", "train-00000-of-00001.tfrecord"]


def test_dry_run_prints_the_summary_and_writes_nothing(make_layout, tmp_path):
    layout = make_layout("ratings")
    output = tmp_path / "shards"
    result = prepare(layout, output, "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "examples: 12 in 6 groups (by source)" in result.stdout
    assert not output.exists()


def test_a_file_lost_while_writing_leaves_no_shards(make_layout, tmp_path):
    layout = make_layout("ratings")
    source = open_source(layout.config())
    os.remove(layout.file(layout.image_of(7)))
    output = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    with pytest.raises(DataError, match="unreadable while writing shards"):
        tfrecord.write_tfrecords(source, output, num_shards=3, holdout_fraction=0.0, seed=0)
    assert os.listdir(output) == []
