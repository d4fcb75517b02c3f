"""scripts/score_faces.py and legan_tf.naturalness.scoring: folders, manifests, pass marks and bad files."""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.naturalness import scoring  # importing legan_tf registers QualityModel for load_model
from legan_tf.data import DataConfig, open_source
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "score_faces.py")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    # 48 px images, so scoring really resizes to the model's 32.
    write_face_lab(root, image_size=48, num_identities=4, parts=("quality",), naturalness_variants=3)
    return root / "quality"


def _lab_images(lab):
    return sorted(os.listdir(lab / "images"))


@pytest.fixture
def faces(lab, tmp_path):
    """A folder: the lab's images split over two subfolders (one as .PNG), plus two bad files."""
    folder = tmp_path / "faces"
    for index, name in enumerate(_lab_images(lab)):
        target = folder / ("a" if index % 2 else "b/c") / (name.replace(".png", ".PNG") if index == 0 else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lab / "images" / name, target)
    (folder / "x.png").write_text("not an image")
    good = (lab / "images" / _lab_images(lab)[0]).read_bytes()
    (folder / "a" / "corrupt.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("ignored: not an image extension")
    return folder


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_scores_equal_the_model_on_the_training_pipeline(lab, model_file):
    model = scoring.load_quality_model(model_file)
    source = open_source(DataConfig("ratings", str(lab / "ratings.csv"), image_size=32))
    pipeline = {}
    for batch, start in zip(source.dataset(5, training=False, repeat=False), range(0, 10**6, 5)):
        for offset, image in enumerate(batch["image"].numpy()):
            pipeline[os.path.basename(source.all_columns["image"][start + offset])] = image
    entries, _, origin = scoring.find_images(str(lab / "images"))
    result = scoring.score_images(model, entries, origin, batch_size=4, progress=False)
    assert not result.faults and len(result.scored) == len(pipeline) == 12
    # A file is prepared by the training pipeline's own ops; tf.data's graph may turn / 127.5 - 1 into
    # * (1 / 127.5) - 1 (1 ulp apart here), a few roundings of values <= 2: <= 8 * 6e-8.
    prepared = np.stack([scoring.load_for_model(entry.path, 32) for entry in result.scored])
    np.testing.assert_allclose(prepared, np.stack([pipeline[entry.name] for entry in result.scored]), rtol=0, atol=1e-6)
    # Exact: the model then runs the same ops on the same inputs in the same batches of 4 as here, in this process.
    expected = np.concatenate([model(prepared[start:start + 4]).numpy().reshape(-1) for start in range(0, 12, 4)])
    np.testing.assert_array_equal(result.scores, expected)


def test_a_folder_is_scored_recursively_and_bad_files_are_skipped(faces, model_file, capsys):
    outcome = scoring.score_faces(str(faces), model_path=model_file, progress=False)
    assert (outcome["scored"], outcome["skipped"]) == (12, 2)
    rows = _rows(faces / "quality_scores.csv")
    assert list(rows[0]) == ["image", "score", "passed"]
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert {row["passed"] for row in rows} == {""}
    assert sum(row["image"].startswith(os.path.join("b", "c")) for row in rows) == 6
    assert any(row["image"].endswith(".PNG") for row in rows)

    skipped = _rows(faces / "quality_scores.skipped.csv")
    assert {row["path"]: row["fault"] for row in skipped} == {
        "x.png": "unreadable image (not an image file)",
        os.path.join("a", "corrupt.png"): "truncated image file",
    }
    stderr = capsys.readouterr().err
    assert "x.png): unreadable image" in stderr and "corrupt.png): truncated image file" in stderr
    with Image.open(outcome["contact_sheet"]) as sheet:
        assert sheet.format == "PNG"
    assert outcome["contact_sheet"] == str(faces / "quality_scores_sheet.png")

    # Scoring again finds the same faces: its own outputs in the folder are not taken for faces.
    again = scoring.score_faces(str(faces), model_path=model_file, progress=False)
    assert (again["scored"], again["skipped"]) == (12, 2)


def test_grayscale_and_rgba_images_are_converted_not_skipped(lab, model_file, tmp_path):
    rgb = Image.open(lab / "images" / _lab_images(lab)[0]).convert("RGB")
    rgb.convert("L").save(tmp_path / "grey.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(tmp_path / "rgba.png")
    rgb.save(tmp_path / "rgb.jpg", quality=95)
    outcome = scoring.score_faces(str(tmp_path), model_path=model_file, progress=False)
    assert (outcome["scored"], outcome["skipped"]) == (3, 0)
    # Half-transparent over black is the picture at half brightness. Exact: compositing rounds to whole levels,
    # and c * 128 / 255 is >= 1/510 from any half, far beyond float32 rounding, so both round alike.
    model = scoring.load_quality_model(model_file)
    half = Image.fromarray((np.asarray(rgb, np.float32) * 128 / 255 + 0.5).astype(np.uint8))
    half.save(tmp_path / "half.png")
    np.testing.assert_array_equal(scoring.load_for_model(str(tmp_path / "rgba.png"), 32),
                                  scoring.load_for_model(str(tmp_path / "half.png"), 32))
    # Exact: the scored batch again (the same images in the same order and shape: the same float32 results,
    # in this process), printed as the CSV prints it, with 4 decimals.
    names = ["grey.png", "rgb.jpg", "rgba.png"]  # find_images' sorted order
    batch = model(np.stack([scoring.load_for_model(str(tmp_path / name), 32) for name in names])).numpy().reshape(-1)
    scores = {row["image"]: row["score"] for row in _rows(tmp_path / "quality_scores.csv")}
    assert sorted(scores) == names and scores["rgba.png"] == f"{batch[names.index('rgba.png')]:.4f}"


def test_a_manifest_names_images_relative_to_itself(lab, model_file, tmp_path):
    manifest = tmp_path / "list" / "faces.csv"
    manifest.parent.mkdir()
    shutil.copytree(lab / "images", tmp_path / "images")
    names = _lab_images(lab)[:5]
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "note"])
        writer.writerows([os.path.join("..", "images", name), "relative"] for name in names[:4])
        writer.writerow([str(tmp_path / "images" / names[4]), "absolute"])
        writer.writerow(["missing.png", "not there"])
    outcome = scoring.score_faces(str(manifest), model_path=model_file, progress=False)
    assert (outcome["scored"], outcome["skipped"]) == (5, 1)
    assert outcome["output_csv"] == str(manifest.parent / "quality_scores.csv")
    [skipped] = _rows(manifest.parent / "quality_scores.skipped.csv")
    assert skipped == {"row": "6", "path": "missing.png", "fault": "missing image file"}


def test_min_quality_marks_copies_and_lists_the_passing_images(faces, model_file, tmp_path):
    first = scoring.score_faces(str(faces), model_path=model_file, output_csv=str(tmp_path / "all.csv"),
                                progress=False)
    scores = sorted(float(row["score"]) for row in _rows(first["output_csv"]))
    threshold = (scores[5] + scores[6]) / 2  # 6 fail, 6 pass
    outcome = scoring.score_faces(
        str(faces), model_path=model_file, output_csv=str(tmp_path / "scores.csv"), min_quality=threshold,
        copy_to=str(tmp_path / "passing"), list_passing=str(tmp_path / "passing.txt"), progress=False)
    assert outcome["passed"] == 6
    rows = _rows(tmp_path / "scores.csv")
    passing = sorted(row["image"] for row in rows if row["passed"] == "true")
    assert all((row["passed"] == "true") == (float(row["score"]) >= threshold) for row in rows)
    copied = sorted(os.path.relpath(os.path.join(folder, name), tmp_path / "passing")
                    for folder, _, files in os.walk(tmp_path / "passing") for name in files)
    assert copied == passing and len(passing) == 6
    listed = open(tmp_path / "passing.txt").read().split()
    assert sorted(os.path.relpath(path, faces) for path in listed) == passing


def test_copy_to_needs_min_quality(faces, model_file, tmp_path):
    with pytest.raises(ConfigError, match="need --min_quality"):
        scoring.score_faces(str(faces), model_path=model_file, copy_to=str(tmp_path / "out"))


def _script(*arguments):
    return subprocess.run([sys.executable, SCRIPT, "--noprogress_bar", *arguments], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_script_summarises_scored_and_skipped(faces, model_file):
    result = _script(f"--model={model_file}", f"--input={faces}", "--sheet_count=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"scored 12, skipped 2 (see {faces / 'quality_scores.skipped.csv'})" in result.stdout


def test_script_exits_1_without_a_traceback_when_nothing_can_be_scored(model_file, tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    result = _script(f"--model={model_file}", f"--input={tmp_path}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: folder" in result.stderr and "no image could be scored (2 skipped" in result.stderr
    assert not (tmp_path / "quality_scores.csv").exists()
