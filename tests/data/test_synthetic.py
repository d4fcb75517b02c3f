"""Tests of the synthetic face lab: rendering, lighting, naturalness data and the writer."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from legan_tf.data.synthetic import EXPRESSION_SETS, FaceLab, light_directions
from legan_tf.data.synthetic.naturalness import (ARTIFACT_KINDS, apply_artifact, make_naturalness_set,
                                                 simulate_ratings, summarise_ratings)
from legan_tf.data.synthetic.writer import contact_sheet, write_face_lab

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab():
    return FaceLab(image_size=32, expression_set="multipie", num_lightings=20, seed=0)


def _spearman(a, b):
    rank_a = np.argsort(np.argsort(a))
    rank_b = np.argsort(np.argsort(b))
    return np.corrcoef(rank_a, rank_b)[0, 1]


def test_public_api_and_label_names():
    assert EXPRESSION_SETS["multipie"] == ("neutral", "smile", "surprise", "squint", "disgust", "scream")
    assert EXPRESSION_SETS["affectnet"] == ("anger", "contempt", "disgust", "fear", "happy", "neutral",
                                            "sadness", "surprise")
    lab = FaceLab(image_size=32, expression_set="affectnet", num_lightings=7)
    assert lab.expression_names == EXPRESSION_SETS["affectnet"]
    assert lab.num_expressions == 8 and lab.num_lightings == 7
    assert lab.lighting_names == ("00", "01", "02", "03", "04", "05", "06")
    assert lab.light_directions.shape == (7, 3) and lab.light_directions.dtype == np.float32


def test_rendering_is_deterministic_and_independent_of_the_batch(lab):
    identities, expressions, lightings = np.array([3, 0, 7]), np.array([1, 4, 0]), np.array([5, 0, 19])
    first = lab.render(identities, expressions, lightings)
    again = FaceLab(image_size=32, seed=0).render(identities, expressions, lightings)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    for index in range(3):
        one = lab.render_one(int(identities[index]), int(expressions[index]), int(lightings[index]))
        for key in ("rgb", "depth", "normals", "mask"):
            np.testing.assert_array_equal(one[key], first[key][index])
        assert one["identity"] == identities[index]


def test_seed_changes_identities():
    a = FaceLab(image_size=32, seed=0).render_one(0, 0, 1)["rgb"]
    b = FaceLab(image_size=32, seed=1).render_one(0, 0, 1)["rgb"]
    # Another identity moves pixels by ~0.02 on average; renders differ across CPUs by float rounding only (~1e-7).
    assert np.abs(a - b).mean() > 1e-3


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_dtypes_and_ranges(size):
    lab = FaceLab(image_size=size)
    out = lab.render([0, 1, 2, 3], [0, 2, 3, 5], 4)  # an int broadcasts against the arrays
    assert out["rgb"].shape == (4, size, size, 3)
    assert out["depth"].shape == out["mask"].shape == (4, size, size)
    assert out["normals"].shape == (4, size, size, 3)
    for key in ("rgb", "depth", "normals", "mask"):
        assert out[key].dtype == np.float32
    for key in ("identity", "expression", "lighting"):
        assert out[key].dtype == np.int32 and out[key].shape == (4,)
    np.testing.assert_array_equal(out["lighting"], [4, 4, 4, 4])
    assert 0.0 <= out["rgb"].min() and out["rgb"].max() <= 1.0
    assert 0.0 <= out["depth"].min() and out["depth"].max() <= 1.0
    assert set(np.unique(out["mask"])) <= {0.0, 1.0}
    background = out["mask"] == 0
    assert np.all(out["rgb"][background] == 0) and np.all(out["depth"][background] == 0)
    assert np.all(out["normals"][background] == 0)
    assert np.all(out["depth"][~background] > 0)  # readers take the mask as depth > 0
    norms = np.linalg.norm(out["normals"][~background], axis=-1)
    # Unit vectors normalised in float64, rounded to float32 (<= 6e-8 a component), norm taken in float32:
    # a handful of roundings of values <= 1, < 1e-6.
    np.testing.assert_allclose(norms, 1.0, atol=1e-6)
    assert 0.3 < out["mask"].mean() < 0.8


def test_render_grid_is_identity_major(lab):
    grid = lab.render_grid([2, 5], [0, 3], [1, 6, 9])
    assert len(grid["rgb"]) == 12
    expected = [(i, e, l) for i in (2, 5) for e in (0, 3) for l in (1, 6, 9)]
    np.testing.assert_array_equal(np.stack([grid["identity"], grid["expression"], grid["lighting"]], 1),
                                  expected)
    everything = lab.render_grid([0])
    assert len(everything["rgb"]) == lab.num_expressions * lab.num_lightings


@pytest.mark.parametrize("size", [31, 16, 257, 512, 64.5, "64", True])
def test_invalid_image_size_is_rejected(size):
    with pytest.raises(ValueError, match="image_size"):
        FaceLab(image_size=size)


def test_invalid_labels_are_rejected(lab):
    with pytest.raises(ValueError, match="expression"):
        lab.render(0, 6, 0)
    with pytest.raises(ValueError, match="lighting"):
        lab.render(0, 0, 20)
    with pytest.raises(ValueError, match="equal lengths"):
        lab.render([0, 1], [0, 1, 2], 0)
    with pytest.raises(ValueError, match="expression_set"):
        FaceLab(expression_set="rafd")


@pytest.mark.parametrize("expression_set", sorted(EXPRESSION_SETS))
def test_every_expression_changes_the_geometry(expression_set):
    lab = FaceLab(image_size=64, expression_set=expression_set)
    neutral = lab.expression_names.index("neutral")
    for identity in (0, 1):
        out = lab.render_grid([identity], None, [1])
        inside = (out["mask"][neutral] > 0) & (out["mask"] > 0)
        for expression, name in enumerate(lab.expression_names):
            if expression == neutral:
                continue
            difference = np.abs(out["depth"][expression] - out["depth"][neutral])[inside[expression]]
            # Effect sizes of the deterministic renderer (smallest: 2.2e-3 mean, 0.02 max), far above the
            # float rounding (~1e-7) by which CPUs can differ.
            assert difference.mean() > 1.5e-3, (name, difference.mean())
            assert difference.max() > 0.015, (name, difference.max())


def test_lightings_change_the_shading_but_not_the_geometry(lab):
    out = lab.render_grid([0], [0], None)
    for a in range(lab.num_lightings):
        np.testing.assert_array_equal(out["depth"][a], out["depth"][0])
        for b in range(a + 1, lab.num_lightings):
            assert np.abs(out["rgb"][a] - out["rgb"][b]).mean() > 0.005, (a, b)  # smallest pair: 0.021
    # A light from the left brightens the left half of the face more than the right half.
    left_light = lab.render_one(0, 0, 1)["rgb"].mean(-1)
    half = lab.image_size // 2
    assert left_light[:, :half].mean() > 2 * left_light[:, half:].mean()


@pytest.mark.parametrize("count", [2, 3, 7, 20, 33])
def test_light_directions_layout(count):
    directions = light_directions(count)
    assert directions.shape == (count, 3) and directions.dtype == np.float32
    np.testing.assert_array_equal(directions[0], 0.0)  # no flash
    # float64 unit vectors rounded to float32 (<= 6e-8 a component), norm in float32: < 1e-6.
    np.testing.assert_allclose(np.linalg.norm(directions[1:], axis=1), 1.0, atol=1e-6)
    assert np.all(directions[1:, 2] >= -1e-6)  # every flash is on the camera's side (cos 90 deg = 6e-17 > 0)
    assert len(np.unique(directions.round(5), axis=0)) == count
    azimuths = np.degrees(np.arctan2(directions[1:, 0], directions[1:, 2]))
    # float32 arctan2 and degrees round +-90 by a few float32 ulps of 90 (7.6e-6 each).
    assert azimuths.min() >= -90.0 - 1e-4 and azimuths.max() <= 90.0 + 1e-4


def test_default_light_layout_is_mostly_a_horizontal_ring():
    directions = light_directions()
    on_ring = np.abs(directions[1:, 1]) < 1e-6  # ring lights have y = sin(0) = 0 exactly, elevated ones 0.57
    assert on_ring.sum() == 13
    elevations = np.degrees(np.arcsin(directions[1:, 1][~on_ring]))
    # float32: sin 35 deg rounded (6e-8), arcsin and degrees rounded: a few ulps of 35 deg (3.8e-6 each).
    np.testing.assert_allclose(elevations, 35.0, atol=1e-4)
    with pytest.raises(ValueError):
        light_directions(1)


def test_artifacts_keep_shape_and_range_and_grow_with_severity(lab):
    rgb = lab.render([0, 1], [0, 1], [3, 8])["rgb"]
    for kind in ARTIFACT_KINDS:
        previous = -1.0
        for severity in (0.0, 0.3, 0.7, 1.0):
            out = apply_artifact(rgb, kind, severity, np.random.default_rng(0))
            assert out.shape == rgb.shape and out.dtype == np.float32
            assert 0.0 <= out.min() and out.max() <= 1.0
            change = np.abs(out - rgb).mean()
            if kind == "clean" or severity == 0.0:
                # Exact for every kind but blockiness, which rebuilds each pixel as m + (x - m) in float32:
                # two roundings of values <= 1, <= 1.2e-7.
                assert change < 1e-6, (kind, severity, change)
            else:
                assert change > previous, (kind, severity)
            previous = change
    per_image = apply_artifact(rgb, "blur", np.array([0.0, 1.0]), np.random.default_rng(0))
    # Exact: at sigma 0 the off-centre taps exp(-0.5 * (k / 1e-3)**2) underflow to 0 and the centre one is 1.
    np.testing.assert_array_equal(per_image[0], rgb[0])
    with pytest.raises(ValueError):
        apply_artifact(rgb, "jpeg", 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError):
        apply_artifact(rgb, "blur", 1.5, np.random.default_rng(0))


def test_rating_summary_uses_population_std():
    mean, std = summarise_ratings(np.array([[7.0, 7.0, 7.0], [4.0, 5.0, 6.0]]))
    np.testing.assert_allclose(mean, [7.0, 5.0])  # exact: small integers
    np.testing.assert_allclose(std, [0.0, np.std([4.0, 5.0, 6.0])], rtol=1e-6)  # float64, then one float32 rounding
    assert std[0] == 0.0


def test_simulated_ratings_follow_severity():
    rng = np.random.default_rng(0)
    severity = np.repeat(np.linspace(0.0, 1.0, 11), 50)
    ratings = simulate_ratings(np.full(severity.shape, "blur"), severity, rng)
    assert ratings.shape == (len(severity), 3)
    assert ratings.min() >= 1.0 and ratings.max() <= 10.0
    mean, _ = summarise_ratings(ratings)
    averages = mean.reshape(11, 50).mean(axis=1)
    assert np.all(np.diff(averages) < 0)
    assert averages[0] > 9.0 and averages[-1] < 3.0


def test_naturalness_set(lab):
    rated = make_naturalness_set(lab, identities=range(6), variants_per_source=10, rng_seed=3)
    count = 60
    assert rated["rgb"].shape == (count, 32, 32, 3)
    for key in ("mean", "std", "source", "kind", "severity"):
        assert rated[key].shape == (count,)
    assert np.all(rated["std"] >= 0) and np.all((rated["mean"] >= 1) & (rated["mean"] <= 10))
    np.testing.assert_array_equal(rated["source"], np.repeat(np.arange(6), 10))
    assert set(rated["kind"]) <= set(ARTIFACT_KINDS)
    clean = rated["kind"] == "clean"
    assert clean.sum() == 6 and np.all(rated["severity"][clean] == 0)
    assert rated["mean"][clean].min() > 9.0
    assert _spearman(rated["severity"], rated["mean"]) < -0.9
    again = make_naturalness_set(lab, identities=range(6), variants_per_source=10, rng_seed=3)
    np.testing.assert_array_equal(again["rgb"], rated["rgb"])
    np.testing.assert_array_equal(again["mean"], rated["mean"])


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_writer_produces_the_documented_layouts(tmp_path):
    out = tmp_path / "lab"
    summary = write_face_lab(out, image_size=32, num_identities=2, num_lightings=4, lightings_per_face=3,
                             naturalness_variants=3, progress=False)
    assert summary["counts"] == {"multipie": 2 * 6 * 3, "quality": 2 * 3, "rgbd": 2 * 8}

    multipie = _read_csv(out / "multipie" / "manifest.csv")
    assert list(multipie[0]) == ["image", "subject", "session", "lighting", "expression", "mask"]
    assert len(multipie) == 36
    assert {row["session"] for row in multipie} == {"1"}
    assert {int(row["subject"]) for row in multipie} == {0, 1}
    assert {int(row["expression"]) for row in multipie} == set(range(6))
    assert all(0 <= int(row["lighting"]) < 4 for row in multipie)
    image = np.asarray(Image.open(out / "multipie" / multipie[0]["image"]))
    mask = np.asarray(Image.open(out / "multipie" / multipie[0]["mask"]))
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert mask.shape == (32, 32) and set(np.unique(mask)) == {0, 255}

    ratings = _read_csv(out / "quality" / "ratings.csv")
    assert list(ratings[0]) == ["image", "mean", "std", "source", "generator"]
    assert len(ratings) == 6
    for row in ratings:
        assert 1.0 <= float(row["mean"]) <= 10.0 and float(row["std"]) >= 0.0
        assert row["generator"] in ARTIFACT_KINDS
        assert (out / "quality" / row["image"]).is_file()

    rgbd = _read_csv(out / "rgbd" / "manifest.csv")
    assert list(rgbd[0]) == ["image", "depth", "normals", "expression", "subject"]
    assert {row["expression"] for row in rgbd} == set(EXPRESSION_SETS["affectnet"])
    rgb = Image.open(out / "rgbd" / rgbd[0]["image"])
    depth_image = Image.open(out / "rgbd" / rgbd[0]["depth"])
    assert depth_image.mode.startswith("I;16")
    depth = np.asarray(depth_image)
    assert depth.dtype == np.uint16 and depth.shape == rgb.size[::-1]
    assert depth.max() > 0 and depth.min() == 0
    normals = np.asarray(Image.open(out / "rgbd" / rgbd[0]["normals"]))
    assert normals.shape == (32, 32, 3) and normals.dtype == np.uint8
    folders = sorted(path.name for path in (out / "rgbd" / "rgb").iterdir())
    assert folders == sorted(EXPRESSION_SETS["affectnet"])

    settings = json.loads((out / "lab.json").read_text())
    assert settings["image_size"] == 32 and settings["num_identities"] == 2
    assert settings["lighting_names"] == ["00", "01", "02", "03"]
    assert settings["multipie"]["expression_names"] == list(EXPRESSION_SETS["multipie"])
    assert settings["rgbd"]["expression_names"] == list(EXPRESSION_SETS["affectnet"])
    assert settings["counts"] == summary["counts"]

    with pytest.raises(FileExistsError, match="overwrite"):
        write_face_lab(out, image_size=32, num_identities=1, num_lightings=2, progress=False)
    write_face_lab(out, image_size=32, num_identities=1, num_lightings=2, naturalness_variants=1,
                   overwrite=True, progress=False)
    assert len(_read_csv(out / "multipie" / "manifest.csv")) == 6 * 2


def test_contact_sheet(tmp_path, lab):
    path = tmp_path / "sheet.png"
    contact_sheet(lab, identities=[0], expressions=[0, 1], lightings=[0, 5], path=path)
    assert Image.open(path).size[0] > 3 * 32


def test_script_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("not a face lab")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_synthetic.py"), f"--output_dir={tmp_path}",
         "--image_size=32", "--num_identities=1"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1
    assert "not empty" in result.stderr and "--overwrite" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "not a face lab"
    assert not (tmp_path / "multipie").exists()
