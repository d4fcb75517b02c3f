"""scripts/make_naturalness.py: a folder of face photos -> the ratings layout (the face lab's artifacts at graded
severities, its simulated raters, a GAN run's translations), read back by the project's ratings reader."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataConfig, open_source
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError
from legan_tf.naturalness import make_naturalness as nat
from legan_tf.photos import samples

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "make_naturalness.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SIZE = 32
VARIANTS = 6
LAB_PHOTOS = 4


def _start(*arguments):
    return subprocess.Popen([sys.executable, *arguments], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process):
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _make(photos, output, *extra):
    return _start(SCRIPT, f"--input={photos}", f"--output_dir={output}", f"--image_size={SIZE}",
                  f"--variants_per_source={VARIANTS}", "--noprogress_bar", *extra)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One run of the script on a folder of 5 good photos (4 face-lab renders, one 512x600 real photo as PNG)
    and 2 bad files, with a StarGAN run trained 2 steps; beside it, the runs that must fail."""
    root = tmp_path_factory.mktemp("naturalness")
    write_face_lab(root / "lab", image_size=32, num_identities=LAB_PHOTOS, seed=0, num_lightings=2,
                   parts=("multipie",), progress=False)
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    renders = sorted((root / "lab" / "multipie" / "images").glob("id*_neutral_l00.png"))[:LAB_PHOTOS]
    for index, render in enumerate(renders):
        (photos / ("sub" if index == 0 else "") / render.name).write_bytes(render.read_bytes())
    Image.fromarray(samples.grace_hopper()).save(photos / "hopper.png")   # 512 wide, 600 high
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg" * 20)
    (photos / "zero.png").write_bytes(b"")
    (photos / "notes.txt").write_text("not a photo")

    failing = root / "failing"
    failing.mkdir()
    (failing / "a_good.png").write_bytes(renders[0].read_bytes())
    (failing / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg" * 20)
    empty = root / "empty"
    empty.mkdir()

    fail = _make(failing, root / "out_fail", "--on_error=fail")
    nothing = _make(empty, root / "out_empty")
    # A GAN run as the script reads one (generator.keras and labels.json): a tiny untrained StarGAN generator
    # for the lab's expressions and two lights, saved here while the two processes above run. Training it
    # (a process of its own) would add nothing the script reads: the test is of the translations, not of
    # what the generator learnt.
    run = root / "runs" / "tiny"
    run.mkdir(parents=True)
    _save_untrained_generator(run, root / "lab" / "multipie" / "manifest.csv")
    main = _finish(_make(photos, root / "out", f"--generator_run={run}"))
    assert main.returncode == 0, main.stderr[-3000:]
    out = root / "out"
    with open(out / "ratings.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {"root": root, "photos": photos, "out": out, "main": main, "rows": rows, "run": run,
            "fail": _finish(fail), "empty": _finish(nothing),
            "summary": json.loads((out / "make_naturalness.json").read_text())}


def _save_untrained_generator(run, manifest):
    from legan_tf.data.config import numbered_names
    from legan_tf.models.stargan import StarGANGenerator
    from legan_tf.runs import RunDir

    with open(manifest, newline="") as handle:
        expressions = sorted({row["expression"] for row in csv.DictReader(handle)})
    labels = {"expression": expressions, "lighting": list(numbered_names(2))}
    generator = StarGANGenerator(image_size=32, num_labels=len(expressions) + 2, base_filters=4, num_downsamples=2,
                                 num_residual_blocks=1)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, len(expressions) + 2), np.float32)))
    generator.save(str(run / "generator.keras"))
    RunDir(str(run)).write_label_names(labels)


def _source(made, **settings):
    return open_source(DataConfig("ratings", str(made["out"] / "ratings.csv"), image_size=SIZE, **settings))


def test_the_ratings_csv_loads_through_the_ratings_reader(made):
    source = _source(made)
    assert source.num_examples == len(made["rows"]) and not source.faults
    assert source.group_kind == "source" and source.stratified
    batch = next(iter(source.dataset(batch_size=4, training=False, repeat=False)))
    assert batch["image"].shape == (4, SIZE, SIZE, 3)
    assert {"mean", "std"} <= set(batch)


def test_counts_per_kind_and_the_summary(made):
    photos = LAB_PHOTOS + 1
    per_photo = 1 + VARIANTS + 1   # clean, the artifact variants, the generator's translation
    assert len(made["rows"]) == photos * per_photo
    kinds = [row["kind"] for row in made["rows"]]
    expected = {"clean": photos, "generator": photos, **{kind: photos for kind in nat.KINDS}}
    assert {kind: kinds.count(kind) for kind in set(kinds)} == expected   # 6 variants cycle through the 6 kinds
    assert made["summary"]["counts"] == expected
    assert made["summary"]["photos_read"] == photos and made["summary"]["other_files_ignored"] == 1
    assert f"read {photos} photos, skipped 2" in made["main"].stdout
    assert f"wrote {photos * per_photo} rated images" in made["main"].stdout
    assert made["summary"]["flags"]["variants_per_source"] == VARIANTS
    assert Image.open(made["out"] / "contact_sheet.png").size[0] > 0
    assert "Traceback" not in made["main"].stderr


def test_every_variant_of_a_photo_shares_one_source(made):
    by_source = {}
    for row in made["rows"]:
        by_source.setdefault(row["source"], []).append(row)
        assert row["image"].startswith(f"images/{row['source']}/")
        assert row["generator"] == row["kind"]
        image = Image.open(made["out"] / row["image"])
        assert image.size == (SIZE, SIZE) and image.mode == "RGB"
    assert len(by_source) == LAB_PHOTOS + 1
    assert sum(source.startswith("sub/") for source in by_source) == 1   # the photo in sub/ keeps its folder
    for rows in by_source.values():
        assert len({row["photo"] for row in rows}) == 1
        assert [row["kind"] for row in rows].count("clean") == 1


def test_clean_photos_rate_higher_than_severe_variants(made):
    for source in {row["source"] for row in made["rows"]}:
        rows = [row for row in made["rows"] if row["source"] == source]
        clean = [float(row["mean"]) for row in rows if row["kind"] == "clean"]
        severe = [float(row["mean"]) for row in rows if row["kind"] not in ("clean", "generator")
                  and float(row["severity"]) >= 0.5]
        assert severe and clean[0] >= 9.0 and max(severe) < clean[0] - 2.0, source
    severities = sorted(float(row["severity"]) for row in made["rows"] if row["kind"] in nat.KINDS)
    assert severities[0] < 1 / VARIANTS and severities[-1] > 1 - 1 / VARIANTS   # graded over [0, 1]


def test_a_held_out_split_keeps_each_source_on_one_side(made):
    source = _source(made)
    for seed in range(3):
        train, test = source.split(holdout_fraction=0.4, seed=seed)
        assert train.num_examples and test.num_examples
        assert not set(train.groups) & set(test.groups)
        for side in (train, test):
            for group in set(side.groups):
                assert side.groups.count(group) == source.groups.count(group)


def test_unreadable_files_are_counted_and_reported_skips(made):
    with open(made["out"] / "skipped.csv", newline="") as handle:
        skipped = {row["path"]: row["fault"] for row in csv.DictReader(handle)}
    assert set(skipped) == {"corrupt.jpg", "zero.png"}
    assert skipped["zero.png"] == "empty file (0 bytes)"
    assert made["summary"]["photos_skipped"] == 2
    assert "skipped folder photos (corrupt.jpg)" in made["main"].stderr
    assert "skipped: " in made["main"].stdout


def test_on_error_fail_stops_at_the_bad_photo_with_one_line_and_writes_nothing(made):
    fail = made["fail"]
    assert fail.returncode == 1
    assert "Traceback" not in fail.stderr
    assert "error: folder failing (b_corrupt.jpg): cannot be read" in fail.stderr
    assert not os.listdir(made["root"] / "out_fail")


def test_an_empty_input_folder_is_a_clear_error(made):
    empty = made["empty"]
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    last = empty.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no photos found" in last


def test_the_generator_run_adds_its_translations_as_a_kind(made):
    rows = [row for row in made["rows"] if row["kind"] == "generator"]
    labels = json.loads((made["run"] / "labels.json").read_text())
    for row in rows:
        target = dict(part.split("=") for part in row["target"].split(";"))
        assert set(target) == set(labels) and all(target[name] in labels[name] for name in labels)
        assert float(row["severity"]) == pytest.approx(nat.DEFAULT_GENERATOR_SEVERITY)
        assert float(row["mean"]) < 6.0
    assert made["summary"]["generator"]["image_size"] == 32


def test_the_clean_crop_is_what_score_faces_scores(made):
    from legan_tf.naturalness import scoring

    [clean] = [row for row in made["rows"] if row["photo"] == "hopper.png" and row["kind"] == "clean"]
    as_scored = scoring.load_for_model(str(made["photos"] / "hopper.png"), SIZE)
    as_trained = scoring.load_for_model(str(made["out"] / clean["image"]), SIZE)
    assert np.abs(as_scored - as_trained).max() <= 1.0 / 127.5 + 1e-6   # one 8-bit level


def test_photos_are_read_upright_and_as_rgb(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6   # rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(tmp_path / "turned.jpg", exif=exif)
    assert nat.read_photo(str(tmp_path / "turned.jpg")).shape == (40, 20, 3)
    Image.fromarray(pixels).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray((np.arange(800).reshape(20, 40) * 80).astype(np.uint16)).save(tmp_path / "grey16.png")
    rgba = np.dstack([pixels, np.full((20, 40), 0, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    for name in ("cmyk.jpg", "grey16.png", "clear.png"):
        rgb = nat.read_photo(str(tmp_path / name))
        assert rgb.shape == (20, 40, 3) and rgb.dtype == np.uint8, name
    assert nat.read_photo(str(tmp_path / "clear.png")).max() == 0   # transparent: composited over black
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(ConfigError, match="empty file"):
        nat.read_photo(str(tmp_path / "zero.png"))


def test_photo_ids_globs_and_folders(tmp_path):
    for name in ("a.jpg", "a.png", "p/b.png", "p/q/c.PNG", ".hidden.png", "readme.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    photos, ignored, _ = nat.find_photos([str(tmp_path)])
    assert [p.photo_id for p in photos] == ["a", "a_png", "p/b", "p/q/c"] and ignored == 1
    assert [p.folder for p in photos] == [tmp_path.name, tmp_path.name, "p", "p/q"]   # --source_by=folder
    photos, _, _ = nat.find_photos([str(tmp_path / "**" / "*.png")])
    assert [p.photo_id for p in photos] == ["a", "p/b"]   # glob is case-sensitive; ids relative to the fixed folder
    with pytest.raises(ConfigError, match="no such folder"):
        nat.find_photos([str(tmp_path / "missing")])


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown sharpen"):
        nat.make_naturalness([str(tmp_path)], str(tmp_path / "out"), kinds=["blur", "sharpen"])
    with pytest.raises(ConfigError, match="variants_per_source"):
        nat.make_naturalness([str(tmp_path)], str(tmp_path / "out"), variants_per_source=0)


def test_the_same_seed_writes_the_same_data(tmp_path):
    Image.fromarray(samples.astronaut()[::8, ::8]).save(tmp_path / "face.png")
    first = nat.make_naturalness([str(tmp_path / "face.png")], str(tmp_path / "one"), image_size=SIZE,
                                 variants_per_source=4, kinds=["blur", "warp"], seed=3, progress=False)
    nat.make_naturalness([str(tmp_path / "face.png")], str(tmp_path / "two"), image_size=SIZE, variants_per_source=4,
                         kinds=["blur", "warp"], seed=3, progress=False)
    assert first["counts"] == {"clean": 1, "blur": 2, "warp": 2}
    assert (tmp_path / "one" / "ratings.csv").read_text() == (tmp_path / "two" / "ratings.csv").read_text()
    for row in csv.DictReader(open(tmp_path / "one" / "ratings.csv")):
        one = np.asarray(Image.open(tmp_path / "one" / row["image"]))
        assert np.array_equal(one, np.asarray(Image.open(tmp_path / "two" / row["image"])))
