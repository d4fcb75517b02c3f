"""legan_tf.augmentation.augment and scripts/augment.py: balancing a dataset with a generator, filtered by Q."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.augmentation import augment
from legan_tf.data import DataConfig, DataError, open_source
from legan_tf.data.config import numbered_names
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "augment.py")
EXPRESSIONS = ("neutral", "smile", "surprise", "squint", "disgust", "scream")
LIGHTINGS = numbered_names(4)
# Faces kept of each rare expression (of 16: 4 identities x 4 lights); the others keep all 16.
RARE = {"smile": 2, "disgust": 4}


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A 32 px lab of 4 identities x 6 expressions x 4 lights, and an imbalanced manifest of it."""
    root = tmp_path_factory.mktemp("lab")
    write_face_lab(root, image_size=32, num_identities=4, num_lightings=4, parts=("multipie",), progress=False)
    rows = _rows(root / "multipie" / "manifest.csv")
    kept, seen = [], {}
    for row in rows:
        name = EXPRESSIONS[int(row["expression"])]
        seen[name] = seen.get(name, 0) + 1
        if seen[name] <= RARE.get(name, 16):
            kept.append(row)
    _write_rows(root / "multipie" / "imbalanced.csv", kept)
    return root / "multipie"


def _config(lab, manifest="imbalanced.csv", **overrides):
    return DataConfig("multipie", str(lab / manifest), image_size=32, expression_names=EXPRESSIONS,
                      lighting_names=LIGHTINGS, **overrides)



@pytest.fixture(scope="module")
def generator(generator_file):
    from legan_tf.runs import load_generator

    return load_generator(generator_file)


class StandInQ:
    """Scores an image by its mean pixel value (x 10): scores we can recompute from the written PNGs."""

    image_size = 32

    def __call__(self, images, training=False):
        return 10.0 * np.mean(np.asarray(images), axis=(1, 2, 3))[:, None]


def _score_png(path):
    pixels = np.asarray(Image.open(path), np.float32) / 127.5 - 1.0
    return float(StandInQ()(pixels[None])[0, 0])


def _augment(lab, generator, output_dir, **options):
    options.setdefault("progress", False)
    return augment.augment(open_source(_config(lab)), generator, str(output_dir), **options)


def test_balances_rare_classes_and_the_output_loads_with_the_right_labels(lab, generator, tmp_path):
    out = tmp_path / "out"
    report = _augment(lab, generator, out)
    by_class = {c["class"]: c for c in report["classes"]}
    assert set(by_class) == set(EXPRESSIONS)
    for name in EXPRESSIONS:
        missing = 16 - RARE.get(name, 16)
        assert (by_class[name]["generated"], by_class[name]["kept"], by_class[name]["final"]) == (missing, missing, 16)
    assert report["totals"] == {"generated": 26, "kept": 26, "rejected": 0}
    assert report["class_counts"]["expression"]["augmented"] == {name: 16 for name in EXPRESSIONS}

    # The whole output (originals + synthetic) and the synthetic part alone load through the readers.
    loaded = open_source(DataConfig("multipie", str(out / "manifest.csv"), image_size=32,
                                    expression_names=EXPRESSIONS, lighting_names=LIGHTINGS))
    assert loaded.class_counts()["expression"] == {name: 16 for name in EXPRESSIONS}
    synthetic = open_source(DataConfig("csv", str(out / "synthetic.csv"), image_size=32,
                                       expression_names=EXPRESSIONS, lighting_names=LIGHTINGS))
    assert synthetic.num_examples == 26

    originals = {row["image"]: row for row in _rows(out / "manifest.csv") if row["synthetic"] == "0"}
    assert len(originals) == 70
    for row in _rows(out / "synthetic.csv"):
        assert row["synthetic"] == "1" and row["edited"] == "expression"
        assert row["expression"] in RARE
        source = originals[row["source"]]
        # Translated to the class, every other attribute and the subject kept from the source.
        assert source["expression"] != row["expression"]
        assert (row["lighting"], row["subject"], row["session"]) == (source["lighting"], source["subject"],
                                                                     source["session"])
        assert row["mask"] == source["mask"]
        with Image.open(out / row["image"]) as image:
            assert image.size == (32, 32) and image.mode == "RGB"
    # Each source is used at most once per class.
    pairs = [(row["source"], row["expression"]) for row in _rows(out / "synthetic.csv")]
    assert len(pairs) == len(set(pairs))
    # A split by subject keeps a source face and its variants together.
    train, test = loaded.split(0.25, 0)
    test_subjects = set(test.groups)
    assert test_subjects and not test_subjects & set(train.groups)
    with open(out / "augment_report.json") as handle:
        assert json.load(handle)["totals"]["kept"] == 26


def test_the_q_filter_keeps_exactly_the_outputs_that_pass_and_replaces_the_others(lab, generator, tmp_path):
    _augment(lab, generator, tmp_path / "scored", quality_model=StandInQ())
    rows = _rows(tmp_path / "scored" / "synthetic.csv")
    scores = {(row["expression"], row["image"]): float(row["quality"]) for row in rows}
    # The score is Q's on the 8-bit image written, as a reader will give it.
    for (_, image), score in scores.items():
        assert score == pytest.approx(_score_png(tmp_path / "scored" / image), abs=1e-4)
    # A threshold midway between two neighbouring scores near the median, never on a score: the second
    # run scores the same images again, and its convolutions may round differently (oneDNN picks its
    # kernels by CPU), so a score lying on the threshold could fall either side. Scores here reproduce
    # to 1e-4 (checked above against the PNGs), so a gap over 2e-4 keeps every score on its side.
    ordered = sorted(scores.values())
    middle = len(ordered) // 2
    gaps = sorted(range(1, len(ordered)), key=lambda i: abs(i - middle))
    cut = next(i for i in gaps if ordered[i] - ordered[i - 1] > 2e-4)
    threshold = (ordered[cut - 1] + ordered[cut]) / 2
    expected = {name: sum(score >= threshold for (cls, _), score in scores.items() if cls == name) for name in RARE}
    assert 0 < sum(expected.values()) < 26

    # attempts=1: the same sources in the same order, so exactly the passing ones are kept.
    filtered = _augment(lab, generator, tmp_path / "filtered", quality_model=StandInQ(), min_quality=threshold,
                        attempts=1.0, keep_rejected=True)
    by_class = {c["class"]: c for c in filtered["classes"]}
    for name in RARE:
        assert by_class[name]["kept"] == expected[name]
        assert by_class[name]["rejected"] == by_class[name]["generated"] - expected[name]
        assert by_class[name]["shortfall"] == 16 - RARE[name] - expected[name]
        assert by_class[name]["mean_quality_kept"] >= threshold
    kept_rows = _rows(tmp_path / "filtered" / "synthetic.csv")
    rejected_rows = _rows(tmp_path / "filtered" / "rejected.csv")
    assert all(float(row["quality"]) >= threshold for row in kept_rows)
    assert all(float(row["quality"]) < threshold for row in rejected_rows)
    assert len(kept_rows) + len(rejected_rows) == 26
    assert all((tmp_path / "filtered" / row["image"]).is_file() for row in rejected_rows)  # --keep_rejected
    assert {row["image"] for row in kept_rows} == {image for (_, image), s in scores.items() if s >= threshold}

    # attempts=3: rejected outputs are replaced by translations of further sources.
    refilled = _augment(lab, generator, tmp_path / "refilled", quality_model=StandInQ(), min_quality=threshold,
                        attempts=3.0)
    for c in refilled["classes"]:
        if c["class"] in RARE:
            assert c["kept"] >= by_class[c["class"]]["kept"]
            assert c["generated"] <= 3 * c["missing"]
            assert c["kept"] == c["missing"] or c["generated"] in (3 * c["missing"], c["sources_available"])
    assert refilled["totals"]["kept"] > filtered["totals"]["kept"]
    assert refilled["rounds"] >= 2


def test_the_same_seed_gives_the_same_dataset(lab, generator, tmp_path):
    def files(out):
        rows = _rows(out / "synthetic.csv")
        return rows, [(out / row["image"]).read_bytes() for row in rows]

    _augment(lab, generator, tmp_path / "a", seed=3)
    _augment(lab, generator, tmp_path / "b", seed=3)
    _augment(lab, generator, tmp_path / "c", seed=4)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert [r["source"] for r in files(tmp_path / "a")[0]] != [r["source"] for r in files(tmp_path / "c")[0]]


def test_targets_classes_and_lighting(lab, generator, tmp_path):
    report = _augment(lab, generator, tmp_path / "a", per_class=3)
    assert {c["class"]: c["kept"] for c in report["classes"] if c["kept"]} == {"smile": 1}
    report = _augment(lab, generator, tmp_path / "b", classes=["disgust"])
    assert [(c["class"], c["kept"]) for c in report["classes"]] == [("disgust", 12)]
    # Lighting is balanced on its own counts, the expression kept; "lighting:01" names a light.
    report = _augment(lab, generator, tmp_path / "c", balance=["lighting"], classes=["lighting:01"], per_class=20)
    (light,) = report["classes"]
    assert (light["attribute"], light["class"], light["kept"]) == ("lighting", "01", 20 - light["original"])
    for row in _rows(tmp_path / "c" / "synthetic.csv"):
        assert row["lighting"] == "01" and row["edited"] == "lighting"


def test_held_out_subjects_are_never_sources(lab, generator_file, tmp_path):
    config = _config(lab, holdout_fraction=0.25, split_seed=0)
    report = augment.run(config, generator_file, str(tmp_path / "out"), progress=False)
    held = {row["subject"] for row in _rows(tmp_path / "out" / "heldout.csv")}
    train = {row["subject"] for row in _rows(tmp_path / "out" / "manifest.csv")}
    assert held and not held & train
    assert report["files"]["heldout"] == "heldout.csv"
    assert report["original_examples"] + report["heldout_examples"] == 70


def test_tfrecord_input(lab, generator, tmp_path):
    from legan_tf.data import write_tfrecords

    (tmp_path / "shards").mkdir()
    write_tfrecords(open_source(_config(lab)), str(tmp_path / "shards"), num_shards=2, holdout_fraction=0.0, seed=0)
    source = open_source(DataConfig("tfrecord", str(tmp_path / "shards"), image_size=32,
                                    expression_names=EXPRESSIONS, lighting_names=LIGHTINGS))
    report = augment.augment(source, generator, str(tmp_path / "out"), progress=False, classes=["smile"])
    assert report["classes"][0]["kept"] == 14
    loaded = open_source(DataConfig("multipie", str(tmp_path / "out" / "manifest.csv"), image_size=32,
                                    expression_names=EXPRESSIONS, lighting_names=LIGHTINGS))
    assert loaded.class_counts()["expression"]["smile"] == 16 and loaded.num_examples == 84


def test_bad_input_is_a_clear_error(lab, generator, generator_file, tmp_path):
    from legan_tf.models.quality import QualityModel
    from legan_tf.models.stargan import StarGANGenerator

    source = open_source(_config(lab))
    with pytest.raises(ConfigError, match="unknown class 'grin'"):
        augment.augment(source, generator, str(tmp_path / "a"), classes=["grin"], progress=False)
    with pytest.raises(ConfigError, match="no lighting labels"):
        folder_like = open_source(DataConfig("csv", str(lab / "imbalanced.csv"), image_size=32,
                                             expression_names=EXPRESSIONS, label_columns=("expression",)))
        augment.augment(folder_like, generator, str(tmp_path / "a"), balance=["lighting"], progress=False)
    # A generator whose label vector is not the data's: 6 labels against expression 6 + lighting 4.
    small = StarGANGenerator(image_size=32, num_labels=6, base_filters=4, num_downsamples=2, num_residual_blocks=1)
    small((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 6), np.float32)))
    with pytest.raises(ConfigError, match="takes 6 labels.*expression 6 \\+ lighting 4 = 10"):
        augment.augment(source, small, str(tmp_path / "a"), progress=False)
    with pytest.raises(ConfigError, match="generator's expression names .* differ"):
        augment.augment(source, generator, str(tmp_path / "a"), progress=False,
                        generator_labels={"expression": list(reversed(EXPRESSIONS)), "lighting": list(LIGHTINGS)})
    # A Q of another image size.
    q64 = QualityModel(image_size=64, base_filters=4, num_downsamples=3, dense_units=8)
    q64(np.zeros((1, 64, 64, 3), np.float32))
    q_path = str(tmp_path / "q64.keras")
    q64.save(q_path)
    with pytest.raises(ConfigError, match="Q works on 64 px images, the generator on 32 px"):
        augment.run(_config(lab), generator_file, str(tmp_path / "a"), quality_path=q_path, progress=False)
    with pytest.raises(ConfigError, match="--min_quality needs --quality_model"):
        augment.augment(source, generator, str(tmp_path / "a"), min_quality=5.0, progress=False)
    # An empty dataset.
    (tmp_path / "empty.csv").write_text("image,subject,session,lighting,expression\n")
    with pytest.raises(DataError, match="empty manifest"):
        augment.run(DataConfig("multipie", str(tmp_path / "empty.csv"), image_size=32), generator_file,
                    str(tmp_path / "a"), progress=False)
    # Output folders: never one that holds the data, never another run's without --overwrite.
    with pytest.raises(ConfigError, match="holds the input data"):
        augment.augment(source, generator, str(lab.parent), progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "manifest.csv").write_text("x")
    with pytest.raises(ConfigError, match="not empty; pass --overwrite"):
        augment.augment(source, generator, str(tmp_path / "busy"), classes=["smile"], progress=False)
    augment.augment(source, generator, str(tmp_path / "busy"), classes=["smile"], overwrite=True, progress=False)
    assert len(_rows(tmp_path / "busy" / "synthetic.csv")) == 14


def test_the_script(lab, generator_file, model_file, tmp_path):
    out = tmp_path / "out"
    base = [sys.executable, SCRIPT, "--data_format=multipie", f"--data_path={lab / 'imbalanced.csv'}",
            f"--expression_names={','.join(EXPRESSIONS)}", "--num_lightings=4", f"--generator={generator_file}",
            "--noprogress_bar"]
    done = subprocess.run(base + [f"--quality_model={model_file}", "--min_quality=-1000", f"--output_dir={out}"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "expression smile" in done.stdout and "generated 26, kept 26, rejected 0" in done.stdout
    report = json.loads((out / "augment_report.json").read_text())
    assert report["image_size"] == 32  # from the generator, as --image_size was not given
    assert all(c["mean_quality"] is not None for c in report["classes"] if c["generated"])
    failed = subprocess.run(base + ["--classes=grin", f"--output_dir={tmp_path / 'other'}"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert failed.returncode == 1
    assert "error: --classes: unknown class 'grin'" in failed.stderr and "Traceback" not in failed.stderr
