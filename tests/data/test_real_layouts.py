"""Real expression datasets as they are published, through the folder reader and prepare_data:
FER2013's split folders, file-name splits and augmented copies, CK+'s subjects in file names."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataConfig, DataError, open_source

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FER_CLASSES = ("angry", "disgust", "happy")
FER_SPLITS = (("train", "Training"), ("validation", "PublicTest"), ("test", "PrivateTest"))
FER_COPIES = r"\.jpg\d+\.jpg$"
FER_SPLIT = r"(?P<train>Training_)|(?P<test>PrivateTest_)"


def _grey_jpeg(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 48), dtype=np.uint8)
    Image.fromarray(pixels).save(path)  # mode L: grey, as FER2013's files are


@pytest.fixture
def fer(tmp_path):
    """FER2013's published layout: <split>/<class>/<Prefix>_<n>.jpg, and disgust's augmented copies
    named <original>.jpg<k>.jpg beside the originals."""
    root, seed = tmp_path / "fer2013", 0
    for folder, prefix in FER_SPLITS:
        for expression in FER_CLASSES:
            for index in range(3):
                seed += 1
                _grey_jpeg(str(root / folder / expression / f"{prefix}_{seed}.jpg"), seed)
            if expression == "disgust":
                for copy in range(2):
                    _grey_jpeg(str(root / folder / expression / f"{prefix}_{seed}.jpg{copy}.jpg"), 1000 + seed + copy)
    return root


def _fer_config(root, **overrides):
    settings = dict(expression_names=FER_CLASSES, lighting_names=(), convert_color=True, image_size=48,
                    exclude_pattern=FER_COPIES, split_pattern=FER_SPLIT)
    settings.update(overrides)
    return DataConfig("folder", str(root), **settings)


def test_fer2013_keeps_its_own_split_and_leaves_out_the_copies(fer):
    source = open_source(_fer_config(fer))
    train, test = source.split()
    assert (train.num_examples, test.num_examples) == (9, 9)  # 3 classes x 3 originals; validation left out
    assert all("/Training_" in path for path in np.asarray(source.all_columns["image"])[train.indices])
    assert all("/PrivateTest_" in path for path in np.asarray(source.all_columns["image"])[test.indices])
    assert not any(".jpg0" in path or ".jpg1" in path for path in source.all_columns["image"])
    assert train.class_counts()["expression"] == {"angry": 3, "disgust": 3, "happy": 3}
    summary = source.summary()
    assert "left out by --exclude_pattern / --split_pattern: 15 files" in summary  # 6 copies + 9 PublicTest
    assert "train 9, test 9" in summary


def test_without_the_exclusion_the_copies_are_read(fer):
    source = open_source(_fer_config(fer, exclude_pattern=""))
    assert source.split()[0].class_counts()["expression"]["disgust"] == 5


def test_prepare_data_stores_the_datasets_split(fer, tmp_path):
    output = tmp_path / "shards"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "prepare_data.py"), "--data_format=folder",
         f"--data_path={fer}", f"--expression_names={','.join(FER_CLASSES)}", "--convert_color",
         f"--exclude_pattern={FER_COPIES}", f"--split_pattern={FER_SPLIT}", f"--output_dir={output}",
         "--num_shards=2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metadata = json.load(open(output / "dataset.json"))
    assert {name: split["num_records"] for name, split in metadata["splits"].items()} == {"train": 9, "test": 9}
    stored = open_source(DataConfig("tfrecord", str(output), image_size=48, expression_names=FER_CLASSES,
                                    lighting_names=()))
    assert [part.num_examples for part in stored.split()] == [9, 9]


def test_ck_plus_subjects_come_from_the_file_names(tmp_path):
    root = tmp_path / "CK+48"
    for subject in range(1, 7):
        for expression in ("anger", "happy"):
            for frame in range(3):
                path = root / expression / f"S{subject:03d}_00{frame}_0000001{frame}.png"
                _grey_jpeg(str(path), subject * 10 + frame)
    config = DataConfig("folder", str(root), expression_names=("anger", "happy"), lighting_names=(),
                        convert_color=True, image_size=48, group_pattern=r"(S\d+)_", holdout_fraction=0.34)
    source = open_source(config)
    assert source.group_kind == "subject" and len(set(source.groups)) == 6
    assert len(source.identities()) == 6
    train, test = source.split()
    assert not set(train.groups) & set(test.groups) and test.num_examples > 0


def test_a_file_without_a_subject_is_a_fault(tmp_path):
    root = tmp_path / "faces"
    _grey_jpeg(str(root / "anger" / "S001_1.png"), 1)
    _grey_jpeg(str(root / "anger" / "unnamed.png"), 2)
    config = dict(expression_names=("anger",), lighting_names=(), convert_color=True, group_pattern=r"(S\d+)_")
    with pytest.raises(DataError, match="unnamed.png.*no subject in its path"):
        open_source(DataConfig("folder", str(root), **config))
    skipped = open_source(DataConfig("folder", str(root), on_error="skip", **config))
    assert skipped.num_examples == 1 and len(skipped.faults) == 1


@pytest.mark.parametrize("settings, message", [
    (dict(split_pattern="(?P<train>Training_)"), "named group \\(\\?P<test>"),
    (dict(group_pattern="S\\d+_"), "needs a capture group"),
    (dict(exclude_pattern="(unclosed"), "not a regular expression"),
    (dict(split_pattern=FER_SPLIT, holdout_fraction=0.2), "not both"),
])
def test_unusable_patterns_are_refused_at_start_up(fer, settings, message):
    with pytest.raises(DataError, match=message):
        _fer_config(fer, **{"split_pattern": "", **settings})


def test_a_split_pattern_that_holds_nothing_out_is_an_error(fer):
    with pytest.raises(DataError, match="puts no file in the test split"):
        open_source(_fer_config(fer, split_pattern=r"(?P<train>Training_)|(?P<test>NoSuchPrefix_)"))


def test_patterns_are_refused_for_manifests(tmp_path):
    with pytest.raises(DataError, match="data_format=folder"):
        DataConfig("multipie", str(tmp_path / "manifest.csv"), exclude_pattern="x")
