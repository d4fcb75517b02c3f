"""Real expression datasets as they are published, through the folder reader and prepare_data:
FER2013's split folders, file-name splits (train, validation, test) and augmented copies, CK+'s
subjects in file names; and the shipped flagfiles (configs/fer2013/fer2013_data.flags,
configs/ckplus/ckplus_data.flags) read literally, as a user runs them."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from PIL import Image

from legan_tf.data import DataConfig, DataError, data_config_from_flags, define_data_flags, open_source

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FER_ALL_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FER_CLASSES = ("angry", "disgust", "happy")
FER_SPLITS = (("train", "Training"), ("validation", "PublicTest"), ("test", "PrivateTest"))
FER_COPIES = r"\.jpg\d+\.jpg$"
FER_SPLIT = r"(?P<train>Training_)|(?P<validation>PublicTest_)|(?P<test>PrivateTest_)"
CK_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def _grey_image(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 48), dtype=np.uint8)
    Image.fromarray(pixels).save(path)  # mode L: grey, as FER2013's and CK+48's files are


def _paths(source, part):
    return [os.path.basename(path) for path in np.asarray(source.all_columns["image"])[part.indices]]


def assert_every(items, predicate):
    """Every item satisfies `predicate`, and there is one at least: all() of an empty split is True."""
    items = list(items)
    assert items, "no items to check: the split is empty"
    failing = [item for item in items if not predicate(item)]
    assert not failing, failing[:5]


@pytest.fixture
def fer(tmp_path):
    """FER2013's published layout: <split>/<class>/<Usage>_<n>.jpg, grey JPEGs, and disgust's augmented
    copies named <original>.jpg<k>.jpg beside the originals (so `Training_5.jpg3.jpg`)."""
    root, seed = tmp_path / "fer2013", 0
    for folder, prefix in FER_SPLITS:
        for expression in FER_CLASSES:
            for _ in range(3):
                seed += 1
                _grey_image(str(root / folder / expression / f"{prefix}_{seed}.jpg"), seed)
            if expression == "disgust":
                for copy in (0, 3):
                    _grey_image(str(root / folder / expression / f"{prefix}_{seed}.jpg{copy}.jpg"), 1000 + seed + copy)
    return root


@pytest.fixture
def ck(tmp_path):
    """CK+48's layout: <class>/S<subject>_<sequence>_<frame>.png, grey PNGs, 6 subjects."""
    root = tmp_path / "CK+48"
    for subject in range(1, 7):
        for expression in ("anger", "happy"):
            for frame in range(3):
                name = f"S{subject:03d}_00{frame}_0000001{frame}.png"
                _grey_image(str(root / expression / name), subject * 10 + frame)
    return root


def _fer_config(root, **overrides):
    settings = dict(expression_names=FER_CLASSES, lighting_names=(), convert_color=True, image_size=48,
                    exclude_pattern=FER_COPIES, split_pattern=FER_SPLIT)
    settings.update(overrides)
    return DataConfig("folder", str(root), **settings)


def test_fer2013_keeps_its_own_three_splits_and_leaves_out_the_copies(fer):
    source = open_source(_fer_config(fer))
    assert source.num_examples == 27  # 3 splits x 3 classes x 3 originals: grey JPEGs accepted
    train, test = source.split()
    validation = source.stored_split("validation")
    assert (train.num_examples, validation.num_examples, test.num_examples) == (9, 9, 9)
    assert_every(_paths(source, train), lambda name: name.startswith("Training_"))
    assert_every(_paths(source, test), lambda name: name.startswith("PrivateTest_"))
    assert_every(_paths(source, validation), lambda name: name.startswith("PublicTest_"))
    assert_every(source.all_columns["image"], lambda path: ".jpg0" not in path and ".jpg3" not in path)
    assert train.class_counts()["expression"] == {"angry": 3, "disgust": 3, "happy": 3}
    summary = source.summary()
    assert "left out by --exclude_pattern / --split_pattern: 6 files" in summary  # the 6 copies
    assert "train 9, validation 9, test 9; training reads train and test only" in summary


def test_without_a_validation_group_publictest_is_left_out(fer):
    source = open_source(_fer_config(fer, split_pattern=r"(?P<train>Training_)|(?P<test>PrivateTest_)"))
    assert [part.num_examples for part in source.split()] == [9, 9]
    assert "left out by --exclude_pattern / --split_pattern: 15 files" in source.summary()  # 6 copies + 9
    with pytest.raises(DataError, match="no 'validation' split of its own \\(its splits: train, test\\)"):
        source.stored_split("validation")


def test_publictest_can_be_the_held_out_split_instead(fer):
    source = open_source(_fer_config(fer, split_pattern=r"(?P<train>Training_)|(?P<test>PublicTest_)"))
    train, held_out = source.split()
    assert_every(_paths(source, held_out), lambda name: name.startswith("PublicTest_"))
    assert_every(_paths(source, train), lambda name: name.startswith("Training_"))


def test_without_the_exclusion_the_copies_are_read(fer):
    source = open_source(_fer_config(fer, exclude_pattern=""))
    assert source.split()[0].class_counts()["expression"]["disgust"] == 5


def test_the_shipped_fer_flagfile_prepares_the_three_splits(fer, tmp_path):
    """The documented command, its regular expressions read literally from the flagfile."""
    output = tmp_path / "shards"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "prepare_data.py"),
         f"--flagfile={os.path.join(REPO, 'configs', 'fer2013', 'fer2013_data.flags')}", f"--data_path={fer}",
         f"--output_dir={output}", "--num_shards=2"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validation: 9 records" in result.stdout
    metadata = json.load(open(output / "dataset.json"))
    assert {name: split["num_records"] for name, split in metadata["splits"].items()} == {
        "train": 9, "test": 9, "validation": 9}
    assert metadata["num_records"] == 27
    stored = open_source(DataConfig("tfrecord", str(output), image_size=48, expression_names=FER_ALL_CLASSES,
                                    lighting_names=()))
    # Training's call: the stored train and test (PrivateTest); validation stays out of both.
    train, test = stored.split(0.0, 0)
    assert (train.num_examples, test.num_examples) == (9, 9)
    validation = stored.stored_split("validation")
    assert validation.num_examples == 9 and validation.class_counts()["expression"]["disgust"] == 3
    # Without --group_pattern a folder file's group is its path under the root.
    assert_every(validation.groups, lambda group: group.startswith("validation/") and "/PublicTest_" in group)
    assert_every(test.groups, lambda group: "/PrivateTest_" in group)
    assert "stored splits: train 9, test 9, validation 9" in stored.summary()
    with pytest.raises(DataError, match="reads the opened shards, not their train part"):
        train.stored_split("validation")
    batch = next(iter(test.dataset(4, training=False, repeat=False)))
    assert batch["image"].shape == (4, 48, 48, 3)  # grey repeated to RGB


def _flagfile_config(name, data_path):
    """DataConfig from a shipped prepare_data flagfile (`name`: its path under configs/), parsed as absl parses
    it (no shell)."""
    values = flags.FlagValues()
    define_data_flags(values)
    flags.DEFINE_string("output_dir", None, "", flag_values=values)
    flags.DEFINE_integer("num_shards", 4, "", flag_values=values)
    values(["prog", f"--flagfile={os.path.join(REPO, 'configs', name)}", f"--data_path={data_path}"])
    return data_config_from_flags(values)


def test_ck_plus_subjects_come_from_the_file_names(ck):
    source = open_source(_flagfile_config("ckplus/ckplus_data.flags", ck))
    assert source.group_kind == "subject" and sorted(set(source.groups)) == [f"S{n:03d}" for n in range(1, 7)]
    assert len(source.identities()) == 6
    train, test = source.split()
    assert train.num_examples > 0 and test.num_examples > 0  # disjoint subjects of an empty split prove nothing
    assert not set(train.groups) & set(test.groups)
    expected = {name: (18 if name in ("anger", "happy") else 0) for name in CK_CLASSES}
    assert source.class_counts()["expression"] == expected


def test_data_without_a_split_of_its_own_has_no_stored_split(ck):
    source = open_source(_flagfile_config("ckplus/ckplus_data.flags", ck))
    with pytest.raises(DataError, match="no 'validation' split of its own \\(its splits: none"):
        source.stored_split("validation")


def test_a_file_without_a_subject_is_a_fault(tmp_path):
    root = tmp_path / "faces"
    _grey_image(str(root / "anger" / "S001_1.png"), 1)
    _grey_image(str(root / "anger" / "unnamed.png"), 2)
    config = dict(expression_names=("anger",), lighting_names=(), convert_color=True, group_pattern=r"(S\d+)_")
    with pytest.raises(DataError, match="unnamed.png.*no subject in its path"):
        open_source(DataConfig("folder", str(root), **config))
    skipped = open_source(DataConfig("folder", str(root), on_error="skip", **config))
    assert skipped.num_examples == 1 and len(skipped.faults) == 1


@pytest.mark.parametrize("settings, message", [
    (dict(split_pattern="(?P<train>Training_)"), "needs a named group \\(\\?P<test>"),
    (dict(split_pattern="(?P<test>PrivateTest_)"), "needs a named group \\(\\?P<train>"),
    (dict(split_pattern="Training_|PrivateTest_"), "needs a named group \\(\\?P<test>"),
    (dict(split_pattern="(?P<train>Training_)|(?P<valid>PublicTest_)|(?P<test>PrivateTest_)"),
     "named group 'valid'; the named groups are train, validation, test"),
    (dict(group_pattern="S\\d+_"), "needs a capture group"),
    (dict(exclude_pattern="(unclosed"), "not a regular expression"),
    (dict(split_pattern=FER_SPLIT, holdout_fraction=0.2), "not both"),
])
def test_unusable_patterns_are_refused_at_start_up(fer, settings, message):
    with pytest.raises(DataError, match=message):
        _fer_config(fer, **{"split_pattern": "", **settings})


@pytest.mark.parametrize("settings, message", [
    (dict(exclude_pattern=r"\.png\d+\.png$"),
     re.escape(r"--exclude_pattern='\\.png\\d+\\.png$' matches none of its 33 files")),
    (dict(split_pattern=r"(?P<train>Train_)|(?P<test>Private_)"), "--split_pattern=.* matches none of its 27 files"),
    (dict(split_pattern=r"(?P<train>Training_)|(?P<test>NoSuchPrefix_)"), "puts no file in the test split"),
    (dict(group_pattern=r"(S\d+)_"), "--group_pattern=.* finds a subject in none of its 27 files"),
])
def test_a_pattern_that_matches_nothing_is_one_clear_error(fer, settings, message):
    with pytest.raises(DataError, match=message):
        open_source(_fer_config(fer, **settings))


def test_errors_are_one_line_from_prepare_data(fer, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "prepare_data.py"), "--data_format=folder",
         f"--data_path={fer}", f"--expression_names={','.join(FER_CLASSES)}", "--convert_color",
         "--exclude_pattern=_copy", f"--split_pattern={FER_SPLIT}", f"--output_dir={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: folder fer2013: --exclude_pattern='_copy' "
                                                             "matches none of its 33 files")
    assert "Traceback" not in result.stderr


def test_patterns_are_refused_for_manifests(tmp_path):
    with pytest.raises(DataError, match="data_format=folder"):
        DataConfig("multipie", str(tmp_path / "manifest.csv"), exclude_pattern="x")


def _relit_manifest(root):
    """A multipie-layout manifest of relit faces (scripts/relight_faces.py's output) whose source photos
    come from FER2013's Training and PrivateTest files: 2 + 1 photos x 2 lightings."""
    rows = ["image,subject,session,lighting,expression"]
    for seed, (photo, expression) in enumerate((("Training_1", "angry"), ("Training_2", "happy"),
                                                ("PrivateTest_3", "happy"))):
        for light in ("original", "left_90"):
            name = f"images/{expression}/{photo}_{light}.png"
            _grey_image(str(root / name), 10 * seed + len(light))
            rows.append(f"{name},{photo},1,{light},{expression}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def test_a_manifest_keeps_the_split_its_image_names_give(tmp_path):
    """--split_pattern reads a face manifest's image column as it reads a folder's paths: relit copies of
    FER2013's PrivateTest photos are the held-out split, whatever --holdout_fraction would draw."""
    manifest = _relit_manifest(tmp_path / "relit")
    config = DataConfig("multipie", str(manifest), expression_names=FER_CLASSES, lighting_names=("original", "left_90"),
                        convert_color=True, image_size=48,
                        split_pattern=r"(?P<train>Training_)|(?P<test>PrivateTest_)")
    source = open_source(config)
    train, test = source.split()
    assert (train.num_examples, test.num_examples) == (4, 2)
    assert_every(_paths(source, test), lambda name: name.startswith("PrivateTest_3_"))
    assert_every(_paths(source, train), lambda name: name.startswith("Training_"))
    output = tmp_path / "shards"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "prepare_data.py"), "--data_format=multipie",
         f"--data_path={manifest}", f"--expression_names={','.join(FER_CLASSES)}", "--lighting_names=original,left_90",
         "--convert_color", "--image_size=48", "--split_pattern=(?P<train>Training_)|(?P<test>PrivateTest_)",
         f"--output_dir={output}", "--num_shards=1"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    metadata = json.load(open(output / "dataset.json"))
    assert {name: split["num_records"] for name, split in metadata["splits"].items()} == {"train": 4, "test": 2}
    with pytest.raises(DataError, match="split_pattern selects files of data_format=folder"):
        DataConfig("ratings", str(manifest), split_pattern=r"(?P<train>Training_)|(?P<test>PrivateTest_)")


def test_a_manifest_takes_its_subjects_from_the_image_names(tmp_path):
    """--group_pattern reads a manifest's image column as it reads a folder's paths: relit CK+ photos, whose
    subject column names the photo, are grouped (and identified) by the person in their names instead."""
    root = tmp_path / "ck"
    rows = ["image,subject,session,lighting,expression"]
    for seed, photo in enumerate(("S010_001_00000014", "S010_004_00000017", "S011_001_00000016")):
        for light in ("original", "left_90"):
            name = f"images/happy/{photo}_{light}.png"
            _grey_image(str(root / name), 10 * seed + len(light))
            rows.append(f"{name},{photo},1,{light},happy")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    config = DataConfig("multipie", str(root / "manifest.csv"), expression_names=FER_CLASSES,
                        lighting_names=("original", "left_90"), convert_color=True, image_size=48,
                        group_pattern=r"(S\d+)_")
    source = open_source(config)
    # Two people, not three photos: S010's two photos (4 images) share identity 0, S011's get 1.
    assert list(source.all_groups) == ["S010"] * 4 + ["S011"] * 2
    np.testing.assert_array_equal(source.identities(), [0, 1])
    # Without the pattern the subject column (the photo) is the group: three of them.
    assert len(set(open_source(dataclasses.replace(config, group_pattern="")).all_groups)) == 3
    # A row whose image names no person is a fault naming it; a pattern that finds none is one error.
    (root / "manifest.csv").write_text("\n".join(rows + ["images/happy/S010_001_00000014_original.png,x,1,"
                                                         "original,happy", "images/happy/odd.png,x,1,original,happy"]))
    _grey_image(str(root / "images/happy/odd.png"), 3)
    with pytest.raises(DataError, match="odd.png.*no subject in its path"):
        open_source(config)
    with pytest.raises(DataError, match="finds a subject in none of its 8 files"):
        open_source(dataclasses.replace(config, group_pattern=r"(P\d+)_"))
    with pytest.raises(DataError, match="group_pattern selects files of data_format=folder"):
        DataConfig("ratings", str(root / "manifest.csv"), group_pattern=r"(S\d+)_")
