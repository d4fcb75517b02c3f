"""The template warp: Procrustes shapes, the move taken into a face's frame, the field, the resampling, the script."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from studies.template_warp import template_warp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "studies", "template_warp", "run.py")


def _rotation(angle):
    return np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])


def _similar(shape, scale, angle, shift):
    return scale * shape @ _rotation(angle) + shift


def test_procrustes_undoes_a_known_similarity():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 64, (30, 2))
    moved = _similar(reference - reference.mean(0), 0.7, 0.4, np.array([5.0, -3.0]))
    aligned, scale, rotation = template_warp.procrustes(moved, reference)
    # Exact arithmetic gives the reference back; float64 rounding of 30 points is ~1e-13 of 64.
    np.testing.assert_allclose(aligned, reference, atol=1e-9)
    assert scale == pytest.approx(1 / 0.7, rel=1e-12)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(2), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_procrustes_never_reflects():
    rng = np.random.default_rng(1)
    reference = rng.uniform(0, 64, (20, 2))
    mirrored = reference * np.array([-1.0, 1.0])
    _, _, rotation = template_warp.procrustes(mirrored, reference)
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_class_means_recover_a_known_difference_under_random_poses():
    # Two classes: the same base shape, the second with 3 points moved by a fixed offset; every face is then
    # scaled, turned and shifted at random. In the common frame the class means differ by that offset
    # (up to the small share of it the alignment spreads over the other points).
    rng = np.random.default_rng(2)
    base = rng.uniform(-20, 20, (40, 2))
    offset = np.zeros_like(base)
    offset[:3] = [2.0, 1.0]
    faces, labels = [], []
    for index in range(60):
        label = index % 2
        shape = base + label * offset
        faces.append(_similar(shape, rng.uniform(0.8, 1.2), rng.uniform(-0.3, 0.3), rng.uniform(10, 50, 2)))
        labels.append(label)
    reference, means = template_warp.class_mean_shapes(np.array(faces), np.array(labels), 2)
    difference = means[1] - means[0]
    scale = np.sqrt(((reference - reference.mean(0)) ** 2).sum() / ((base - base.mean(0)) ** 2).sum())
    # Moving 3 of 40 points by |offset| shifts the least-squares alignment by at most a 3/40 share of it.
    moved = np.linalg.norm(difference[:3], axis=1) / scale
    still = np.linalg.norm(difference[3:], axis=1) / scale
    assert np.all(np.abs(moved - np.sqrt(5)) < 0.25 * np.sqrt(5)) and np.all(still < 0.25 * np.sqrt(5))
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        template_warp.class_mean_shapes(np.array(faces), np.array(labels), 3)


def test_the_move_is_taken_into_the_faces_own_frame():
    rng = np.random.default_rng(3)
    reference = rng.uniform(-20, 20, (25, 2))
    means = np.stack([reference, reference + rng.normal(0, 1, reference.shape)])
    face = _similar(reference, 2.0, 0.5, np.array([30.0, 30.0]))
    move = template_warp.template_displacement(face, reference, means, 0, 1, gain=1.5)
    # Aligning the face to the reference maps every vector by scale 1/2 and the inverse turn, so the move
    # mapped the same way is the reference-frame move exactly.
    _, scale, rotation = template_warp.procrustes(face, reference)
    np.testing.assert_allclose(scale * move @ rotation, 1.5 * (means[1] - means[0]), atol=1e-9)
    np.testing.assert_allclose(template_warp.template_displacement(face, reference, means, 0, 1, 0.0), 0.0)


def test_the_field_passes_through_the_moved_landmarks_and_holds_the_border():
    rng = np.random.default_rng(4)
    landmarks = rng.uniform(20, 44, (12, 2))
    move = rng.normal(0, 1.5, landmarks.shape)
    field = template_warp.dense_field(landmarks, move, 64, smoothing=0.0)
    assert field.shape == (64, 64, 2)
    # The spline interpolates: at a moved landmark that falls on a pixel centre the field is its move.
    on_centre = np.floor(landmarks + move) + 0.5
    exact = template_warp.dense_field(on_centre - move, move, 64, smoothing=0.0)
    columns, rows = np.floor(on_centre).astype(int).T
    np.testing.assert_allclose(exact[rows, columns], move, atol=1e-6)
    # Next to the held border the field is small against the moves (the corners are anchors themselves).
    assert np.abs(field[0, 0]).max() < 0.1 * np.abs(move).max()
    np.testing.assert_allclose(template_warp.dense_field(landmarks, np.zeros_like(move), 64), 0.0, atol=1e-9)


def test_warp_moves_the_picture_by_the_field():
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 255, (16, 16, 3))
    shift = np.zeros((16, 16, 2))
    shift[..., 0] = 2.0  # every pixel reads the one 2 to its left: the picture moves 2 px right
    moved = template_warp.warp_image(image, shift)
    np.testing.assert_allclose(moved[:, 2:], image[:, :-2], atol=1e-4)  # float32 output of float64 values
    np.testing.assert_allclose(moved[:, :2], np.repeat(image[:, :1], 2, axis=1), atol=1e-4)  # edge clamped
    half = np.zeros((16, 16, 2))
    half[..., 1] = 0.5
    np.testing.assert_allclose(template_warp.warp_image(image, half)[1:], (image[1:] + image[:-1]) / 2, atol=1e-4)
    np.testing.assert_allclose(template_warp.warp_image(image, np.zeros((16, 16, 2))), image, atol=1e-4)
    assert template_warp.move_lengths(shift) == pytest.approx(2.0)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The packaged astronaut's face, cropped to 64 px in small variations, as two expressions' manifests; and a
    judge that reads every face as happy (a Keras model with a .judge.json), so its figures follow from the rows."""
    import keras
    from PIL import Image

    from legan_tf.photos import samples

    root = tmp_path_factory.mktemp("template")
    crop = Image.fromarray(samples.astronaut()[20:240, 120:340])  # the face and some of the hair and suit
    rows = []
    for index in range(6):
        image = crop.crop((2 * index, 0, 220 - 2 * index, 220 - 4 * index)).resize((64, 64))
        if index % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image.save(root / f"face{index}.png")
        rows.append((f"face{index}.png", ("happy", "neutral")[index % 2]))
    with open(root / "train.csv", "w") as handle:
        handle.write("image,expression\n" + "".join(f"{name},{label}\n" for name, label in rows))
    with open(root / "heldout.csv", "w") as handle:
        handle.write("image,expression,lighting\n" + "".join(f"{name},{label},original\n" for name, label in rows[:3])
                     + f"{rows[3][0]},{rows[3][1]},left_90\n")
    inputs = keras.Input((16, 16, 3))
    constant = keras.layers.Dense(2, kernel_initializer="zeros",
                                  bias_initializer=keras.initializers.Constant([1.0, 0.0]))
    scores = constant(keras.layers.GlobalAveragePooling2D()(inputs))
    keras.Model(inputs, scores).save(str(root / "happy.keras"))
    with open(root / "happy.judge.json", "w") as handle:
        json.dump({"expression": ["happy", "neutral"], "input_range": [-1, 1], "name": "always happy"}, handle)
    return root


def _run(*arguments):
    return subprocess.run([sys.executable, SCRIPT, *arguments], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_the_script_moves_the_held_out_faces_and_reports_each_gain(faces, tmp_path):
    out = tmp_path / "out"
    done = _run(f"--train_manifest={faces / 'train.csv'}", f"--heldout_manifest={faces / 'heldout.csv'}",
                f"--judge={faces / 'happy.keras'}", "--gains=0,3", "--grid_faces=2", f"--output_dir={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.load(open(out / "template_warp.json"))
    assert report["expressions"] == ["happy", "neutral"]
    # The lighting column keeps the rows of the original light: 3 of 4 (happy, neutral, happy); the face mesh
    # fits each crop of the packaged photo.
    assert (report["faces"], report["skipped"], report["training_faces"]) == (3, 0, 6)
    zero, three = report["gains"]["0"], report["gains"]["3"]
    assert zero["pairs"] == three["pairs"] == 3  # one other expression per face
    # The judge reads happy on everything: the face moved toward happy (the neutral one) is read as its target
    # at every gain, and that is the baseline too; its accuracy is the share of happy faces.
    assert report["judge_accuracy"] == pytest.approx(2 / 3)
    for entry in (zero, three):
        assert entry["target_rate"] == entry["baseline"] == pytest.approx(1 / 3)
        assert entry["by_target"] == {"happy": 1.0, "neutral": 0.0}
    # A gain of 0 moves nothing; a gain of 3 moves the faces.
    assert zero["mean_move_px"] == pytest.approx(0.0, abs=1e-9) and three["mean_move_px"] > 0.01
    shapes = np.load(out / "shapes.npz")
    assert shapes["means"].shape == (2, 468, 2) and shapes["reference"].shape == (468, 2)
    from PIL import Image

    grid = np.asarray(Image.open(out / "grid_gain3.png"))
    assert grid.shape[:2] == (2 * 64, 2 * 64)
    # The first face is happy: its own column is the photo, exactly.
    np.testing.assert_array_equal(grid[:64, :64], np.asarray(Image.open(faces / "face0.png").convert("RGB")))
    assert "gain 3: read as the target" in done.stdout
    failed = _run(f"--train_manifest={faces / 'train.csv'}", f"--heldout_manifest={faces / 'heldout.csv'}",
                  f"--judge={faces / 'happy.keras'}", "--lighting=above", f"--output_dir={tmp_path / 'bad'}")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == ("template_warp: --heldout_manifest: no row has lighting "
                                                      "'above' (--lighting).")
    assert not (tmp_path / "bad" / "template_warp.json").exists()
    # A missing image is found before any face is fitted: nothing is written.
    broken = tmp_path / "broken.csv"
    broken.write_text(f"image,expression\n{faces / 'face0.png'},happy\n{faces / 'gone.png'},neutral\n")
    missing = _run(f"--train_manifest={broken}", f"--heldout_manifest={faces / 'heldout.csv'}",
                   f"--judge={faces / 'happy.keras'}", f"--output_dir={tmp_path / 'missing'}")
    assert missing.returncode == 1 and "gone.png: no such image (named in the training manifest; 1 missing)" in \
        missing.stderr.strip().splitlines()[-1], missing.stderr[-2000:]
    assert not os.listdir(tmp_path / "missing")


def test_bad_inputs_are_config_errors(faces, tmp_path):
    from legan_tf.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        template_warp.read_manifest(str(tmp_path / "none.csv"), "train_manifest")
    no_column = tmp_path / "no_column.csv"
    no_column.write_text("path,label\nface0.png,happy\n")
    with pytest.raises(ConfigError, match="image and expression columns"):
        template_warp.read_manifest(str(no_column), "train_manifest")
    rows = template_warp.read_manifest(str(faces / "train.csv"), "train_manifest")
    assert rows[0]["path"] == str(faces / "face0.png")
    heldout = template_warp.read_manifest(str(faces / "heldout.csv"), "heldout_manifest")
    names, kept = template_warp.choose_rows(rows, heldout, "original")
    assert names == ["happy", "neutral"] and len(kept) == 3
    with pytest.raises(ConfigError, match="no row has lighting 'above'"):
        template_warp.choose_rows(rows, heldout, "above")
    with pytest.raises(ConfigError, match=r"\['surprise'\]"):
        template_warp.choose_rows(rows, [{"image": "x", "expression": "surprise"}], "original")
    with pytest.raises(ConfigError, match="at least 2"):
        template_warp.choose_rows(rows[::2], heldout, "original")
    assert template_warp.parse_gains(["0", "1.5"]) == [0.0, 1.5]
    for bad in (["a"], ["-1"], [], ["nan"]):
        with pytest.raises(ConfigError, match="--gains"):
            template_warp.parse_gains(bad)
