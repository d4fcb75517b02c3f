"""Kaggle's fer2013.csv unpacked into the folder layout: pixels round-trip exactly (PNG is lossless),
Usage becomes the split, the shipped flagfile reads the result, and rows that are not faces are
counted skips while a file without the columns stops before anything is written."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataError, open_source
from legan_tf.data.fer2013_csv import CLASSES, unpack
from tests.data.test_real_layouts import _flagfile_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USAGES = ("Training", "PublicTest", "PrivateTest")


def _faces(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8)


def _write_csv(path, rows, header=("emotion", "pixels", "Usage")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def kaggle(tmp_path):
    """14 good rows (each class twice, Usage cycling) and 4 bad ones, in Kaggle's column order."""
    faces = _faces(14)
    rows = [(index % 7, " ".join(str(value) for value in face.ravel()), USAGES[index % 3])
            for index, face in enumerate(faces)]
    rows += [(7, rows[0][1], "Training"),                         # no such class id
             (0, rows[0][1], "Validation"),                       # no such Usage
             (0, " ".join(["12"] * 2303), "Training"),             # one value short
             (0, rows[0][1].replace("0", "300", 1) if "0" in rows[0][1] else "300 " + rows[0][1], "Training")]
    path = tmp_path / "fer2013.csv"
    _write_csv(path, rows)
    return path, faces


def test_unpacked_faces_round_trip_and_land_in_their_split_and_class(kaggle, tmp_path):
    path, faces = kaggle
    out = tmp_path / "fer2013"
    summary = unpack(str(path), str(out), progress=False)
    assert summary["faces"] == 14 and summary["skipped"] == 4
    for index, face in enumerate(faces):
        split = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}[USAGES[index % 3]]
        file = out / split / CLASSES[index % 7] / f"{USAGES[index % 3]}_{index + 1}.png"
        np.testing.assert_array_equal(np.asarray(Image.open(file)), face)  # row by row, 48x48, exactly
    with open(out / "skipped.csv") as handle:
        skipped = list(csv.DictReader(handle))
    assert [row["row"] for row in skipped] == ["15", "16", "17", "18"]
    assert "class id" in skipped[0]["fault"] and "Usage" in skipped[1]["fault"]
    assert "2303 pixel values" in skipped[2]["fault"] and "above 255" in skipped[3]["fault"]
    assert json.loads((out / "unpack_fer2013.json").read_text())["per_split_and_class"]["train"]["angry"] == 1


def test_the_shipped_flagfile_reads_the_unpacked_copy_with_its_three_splits(kaggle, tmp_path):
    path, _ = kaggle
    out = tmp_path / "fer2013"
    unpack(str(path), str(out), progress=False)
    # As documented: the shipped flagfile with --exclude_pattern emptied (no augmented copies in the csv).
    config = _flagfile_config("fer2013/fer2013_data.flags", str(out))
    source = open_source(dataclasses.replace(config, exclude_pattern=""))
    train, test = source.split()
    validation = source.stored_split("validation")
    # Usage cycles Training, PublicTest, PrivateTest over the 14 good rows: 5, 5 and 4 faces.
    assert (train.num_examples, validation.num_examples, test.num_examples) == (5, 5, 4)


def test_bad_files_stop_before_writing_and_the_script_says_so_in_one_line(kaggle, tmp_path):
    path, _ = kaggle
    wrong = tmp_path / "wrong.csv"
    _write_csv(wrong, [(0, "1 2 3")], header=("label", "pixels", "Usage"))
    out = tmp_path / "out"
    with pytest.raises(DataError, match="no column emotion"):
        unpack(str(wrong), str(out), progress=False)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".unpack")] == []
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        unpack(str(path), str(out), progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "unpack_fer2013.py"), f"--csv={wrong}",
                           f"--output_dir={tmp_path / 'fresh'}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {wrong}: no column emotion")
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "unpack_fer2013.py"), f"--csv={path}",
                           f"--output_dir={tmp_path / 'fresh'}", "--noprogress_bar"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "14 faces written" in done.stdout and "(train 5, validation 5, test 4); 4 rows skipped" in done.stdout
