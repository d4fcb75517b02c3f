"""legan_tf.photos.relight and scripts/relight_faces.py: SH lighting fits, ratio-image relighting, the folder tool.

Synthetic spheres give exact answers: normals of a sphere seen from the camera, shaded either by the method's own
model (the order-2 SH of a clamped cosine plus ambient: every figure is exact up to rounding) or by the exact
clamped cosine (what a distant light does: the model's truncation is the only error, bounded below).
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.cli import run_main
from legan_tf.data.config import DataConfig
from legan_tf.data.errors import DataError
from legan_tf.data.manifests import parse
from legan_tf.errors import ConfigError
from legan_tf.photos import relight, relight_faces

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "relight_faces.py")


def sphere(size=96, radius=0.9):
    """(normals (size, size, 3), mask): a sphere filling `radius` of the frame, x right, y up, z to the camera."""
    rows, cols = np.mgrid[0:size, 0:size]
    x = ((cols + 0.5) / size * 2 - 1) / radius
    y = -((rows + 0.5) / size * 2 - 1) / radius
    mask = x * x + y * y < 1
    z = np.sqrt(np.clip(1 - x * x - y * y, 0, 1))
    return np.stack([x, y, z], -1) * mask[..., None], mask


def sh_shading(normals, name, ambient=relight.AMBIENT):
    return relight.shading(normals, relight.directional_light_sh(relight.light_direction(name), ambient))


def exact_shading(normals, name, ambient=relight.AMBIENT):
    return ambient + (1 - ambient) * np.clip(normals @ relight.light_direction(name), 0, None)


def photo(linear, mask, albedo=0.6):
    """A float sRGB image whose linear intensity is albedo * linear on the mask (grey, 3 equal channels)."""
    return relight.linear_to_srgb(np.repeat((albedo * linear * mask)[..., None], 3, -1))


# --- spherical harmonics ------------------------------------------------------------------------------------------

def _sphere_quadrature(count=200_000):
    """Points and weights of a midpoint rule on the whole sphere (uniform in z and azimuth: equal areas)."""
    z = (np.arange(count) + 0.5) / count * 2 - 1
    azimuth = np.arange(count) * np.pi * (3 - np.sqrt(5))   # a Fibonacci spiral: each point its own azimuth
    radial = np.sqrt(1 - z * z)
    points = np.stack([radial * np.cos(azimuth), radial * np.sin(azimuth), z], -1)
    return points, np.full(count, 4 * np.pi / count)


def test_the_sh_basis_is_orthonormal_over_the_sphere_and_has_the_tabulated_values():
    points, weights = _sphere_quadrature()
    basis = relight.sh_basis(points)
    gram = basis.T @ (basis * weights[:, None])
    # The constants are given to 6 digits; the quadrature error at 200,000 points is far smaller.
    np.testing.assert_allclose(gram, np.eye(9), atol=2e-5)
    up = relight.sh_basis(np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(up, [0.282095, 0, 0.488603, 0, 0, 0, 2 * 0.315392, 0, 0], atol=1e-12)
    diagonal = relight.sh_basis(np.array([1.0, 1.0, 0.0]) / np.sqrt(2))
    np.testing.assert_allclose(diagonal[[3, 1, 4, 6, 8]], [0.488603 / np.sqrt(2)] * 2 + [1.092548 / 2, -0.315392, 0],
                               atol=1e-12)


def test_a_directional_light_has_the_clamped_cosines_sh_coefficients():
    """The coefficients are the projections of max(0, n . d) on the basis (A_l Y_lm(d)); its order-2 value is
    1/4 + t/2 + 5 (3 t^2 - 1) / 32 at t = n . d, plus the ambient."""
    points, weights = _sphere_quadrature()
    direction = relight.light_direction("above_left_45")
    projection = relight.sh_basis(points).T @ (np.clip(points @ direction, 0, None) * weights)
    np.testing.assert_allclose(relight.directional_light_sh(direction), projection, atol=1e-4)
    across = np.cross(direction, [0, 1, 0]) / np.linalg.norm(np.cross(direction, [0, 1, 0]))
    for t, expected in ((1.0, 1.0625), (0.0, 3 / 32), (-1.0, 1 / 16)):
        normal = t * direction + np.sqrt(1 - t * t) * across   # at angle acos(t) from the light
        assert relight.shading(normal, relight.directional_light_sh(direction)) == pytest.approx(expected, abs=1e-5)
        assert relight.shading(normal, relight.directional_light_sh(direction, 0.3)) == pytest.approx(
            0.3 + 0.7 * expected, abs=1e-5)


def test_the_grid_names_its_lights_by_where_they_stand_in_the_image():
    assert relight.LIGHT_NAMES[0] == relight.ORIGINAL and len(relight.LIGHT_NAMES) == 11
    np.testing.assert_allclose(relight.light_direction("front"), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(relight.light_direction("left_90"), [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(relight.light_direction("right_30"), [0.5, 0, np.sqrt(3) / 2], atol=1e-12)
    elevation = np.radians(relight.ELEVATION_DEGREES)
    np.testing.assert_allclose(relight.light_direction("above"), [0, np.sin(elevation), np.cos(elevation)], atol=1e-12)
    assert relight.angular_error_degrees([1, 0, 0], [1, 1e-4, 0]) == pytest.approx(np.degrees(1e-4), rel=1e-6)
    assert relight.angular_error_degrees([1, 0, 0], [-1, 0, 0]) == pytest.approx(180.0)
    with pytest.raises(ValueError, match="unknown light 'below'"):
        relight.light_direction("below")


# --- fitting --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["left_60", "above_left_45", "right_90", "front"])
def test_the_fit_recovers_the_light_of_a_sphere_shaded_by_the_model_exactly(name):
    normals, mask = sphere()
    fit = relight.fit_lighting(0.6 * sh_shading(normals, name), normals, mask)
    # The image lies in the basis's span, so least squares returns its coefficients up to rounding (the
    # basis's condition number on the visible hemisphere is ~30): the first-order band is exact, and the
    # one-light search ends on a grid of 0.08 degree steps.
    assert fit.rms < 1e-9 and fit.used == fit.pixels
    assert relight.angular_error_degrees(fit.linear_direction, relight.light_direction(name)) < 1e-6
    assert relight.angular_error_degrees(relight.light_of(fit, normals, mask), relight.light_direction(name)) < 0.1


@pytest.mark.parametrize("name", ["left_60", "above_left_45", "right_90"])
def test_the_fit_finds_a_true_distant_light_within_the_bound_of_the_sh_truncation(name):
    """A sphere shaded by the exact clamped cosine: the order-2 model misses its tail (bands 4, 6, ...), r = exact -
    model at the true light. Linearising the one-light fit around the true direction, the direction's error is
    the least-squares coefficient of r on the two rotation derivatives J of the model's response (after removing
    what the ambient and the strength absorb); by Cauchy-Schwarz |error| <= |r| / sigma_min(J) radians. Here the
    bound is 5-10 degrees, the linearised error itself ~1.5 degrees, and the fitted first-order band alone is off
    by 20-27 degrees (the reason `light_of` reads the direction)."""
    normals, mask = sphere()
    points = normals[mask]
    direction = relight.light_direction(name)
    fit = relight.fit_lighting(exact_shading(normals, name), normals, mask, rounds=0)
    error = relight.angular_error_degrees(relight.light_of(fit, normals, mask), direction)

    def response(d):
        t = points @ (d / np.linalg.norm(d))
        return 0.75 * (0.25 + t / 2 + 5 * (3 * t * t - 1) / 32)

    across = np.cross(direction, [0, 1, 0]) if abs(direction[1]) < 0.9 else np.cross(direction, [1, 0, 0])
    across /= np.linalg.norm(across)
    rotations = (across, np.cross(direction, across))
    step = 1e-5
    derivatives = np.stack([(response(direction + step * a) - response(direction - step * a)) / (2 * step)
                            for a in rotations], 1)
    absorbed, _ = np.linalg.qr(np.stack([np.ones(len(points)), response(direction)], 1))
    derivatives -= absorbed @ (absorbed.T @ derivatives)
    residual = np.clip(points @ direction, 0, None) * 0.75 + 0.25 - (0.25 + response(direction))
    residual -= absorbed @ (absorbed.T @ residual)
    bound = np.degrees(np.linalg.norm(residual) / np.linalg.svd(derivatives, compute_uv=False).min())
    linearised = np.degrees(np.linalg.norm(np.linalg.lstsq(derivatives, residual, rcond=None)[0]))
    assert 0.3 < error < bound
    assert error == pytest.approx(linearised, abs=0.2)
    assert relight.angular_error_degrees(fit.linear_direction, direction) > 10 * error


def test_the_fit_drops_dark_features_that_the_constant_albedo_cannot_explain():
    normals, mask = sphere()
    intensity = 0.6 * sh_shading(normals, "left_30")
    eyes = np.zeros_like(mask)
    eyes[30:36, 30:40] = eyes[30:36, 56:66] = True
    intensity = np.where(eyes, 0.05, intensity)
    fit = relight.fit_lighting(intensity, normals, mask)
    plain = relight.fit_lighting(intensity, normals, mask, rounds=0)
    target = relight.light_direction("left_30")
    assert fit.used <= fit.pixels - eyes.sum()
    assert relight.angular_error_degrees(relight.light_of(fit, normals, mask), target) < 0.2
    assert relight.angular_error_degrees(relight.light_of(plain, normals, mask), target) > 0.5


def test_a_degenerate_face_raises_a_clear_error():
    normals, mask = sphere()
    few = np.zeros_like(mask)
    few[40:45, 40:45] = True
    with pytest.raises(relight.DegenerateFit, match="too few face pixels to fit the lighting: 25 in the mask, need 64"):
        relight.fit_lighting(np.ones(mask.shape), normals, few)
    flat = np.zeros_like(normals)
    flat[mask] = [0, 0, 1]
    with pytest.raises(relight.DegenerateFit, match="do not span the 9 SH terms"):
        relight.relight(photo(np.ones(mask.shape), mask), flat, mask, "left_60")
    with pytest.raises(relight.DegenerateFit, match="the face is black"):
        relight.fit_lighting(np.zeros(mask.shape), normals, mask)


# --- relighting -----------------------------------------------------------------------------------------------------

def test_relighting_a_sphere_lit_from_the_left_to_the_right_gives_the_right_lit_sphere():
    """Shaded by the model, the sphere lit from left_60 relit toward right_60 is its own mirror image: same albedo,
    mirrored light, and the brightness matching keeps the mean (equal for mirrored lights). With no feathering and
    no ratio cap the only changes are the 3 x 3 median of the log-ratio (exact where the field is linear over 3 x 3
    pixels, second order in its curvature otherwise: largest near the rim, where the normals turn fastest) and
    rounding."""
    normals, mask = sphere()
    image = photo(sh_shading(normals, "left_60"), mask)
    relit = relight.relight(image, normals, mask, "right_60", feather=0, spill=0, max_ratio=100)
    difference = np.abs(relight.srgb_to_linear(relit) - relight.srgb_to_linear(image[:, ::-1]))[..., 0]
    near_rim, inside = relight.interior(mask, 2), relight.interior(mask, 8)
    assert difference[near_rim].max() < 0.01 and difference[near_rim].mean() < 1e-4
    assert difference[inside].max() < 1e-4
    # The relit face is not the source: the two sides swapped.
    assert np.abs(relight.srgb_to_linear(image) - relight.srgb_to_linear(image[:, ::-1]))[inside].mean() > 0.05
    # Mean linear intensity over the face kept: the light turned, the exposure did not change.
    assert relight.srgb_to_linear(relit)[mask].mean() == pytest.approx(relight.srgb_to_linear(image)[mask].mean(),
                                                                       rel=1e-3)


def test_relighting_a_truly_lit_sphere_comes_close_to_the_truly_relit_one():
    """Shaded by the exact clamped cosine both ways: the relit sphere differs from the exact render under the target
    light by the model's truncation (pointwise at most 3/32 of the light at grazing angles; 5-7% of the mean on
    average here) while the unrelit one differs by 40-80%."""
    normals, mask = sphere()
    image = photo(exact_shading(normals, "left_60"), mask)
    relit = relight.srgb_to_linear(relight.relight(image, normals, mask, "right_60", feather=0, spill=0))[..., 0][mask]
    truth = exact_shading(normals, "right_60")[mask]

    def error(values):
        gain = (values * truth).sum() / (truth * truth).sum()
        return np.abs(values - gain * truth).mean() / values.mean()

    assert error(relit) < 0.08
    assert error(relight.srgb_to_linear(image)[..., 0][mask]) > 0.5


def test_the_original_light_is_the_identity_and_grey_stays_grey():
    normals, mask = sphere(64)
    rng = np.random.default_rng(0)
    image = photo(exact_shading(normals, "above_left_45") * rng.uniform(0.8, 1.0, mask.shape), mask)
    as_bytes = np.round(image * 255).astype(np.uint8)
    np.testing.assert_array_equal(relight.relight(as_bytes, normals, mask, relight.ORIGINAL), as_bytes)
    np.testing.assert_allclose(relight.relight(image, normals, mask, relight.ORIGINAL), image, atol=1e-12)
    relit = relight.relight(as_bytes, normals, mask, "right_90")
    assert relit.dtype == np.uint8
    np.testing.assert_array_equal(relit[..., 0], relit[..., 1])
    np.testing.assert_array_equal(relit[..., 0], relit[..., 2])
    left, right = mask.copy(), mask.copy()
    left[:, 32:] = right[:, :32] = False
    gain = relit.astype(float) / np.maximum(as_bytes, 1)
    assert gain[right].mean() > 1.5 * gain[left].mean()   # right_90 brightens the right half, darkens the left


def test_the_ratio_is_capped_floored_and_fades_at_the_mask_edge():
    normals, mask = sphere()
    image = photo(sh_shading(normals, "left_90", ambient=0.05), mask)
    fit = relight.fit_lighting(relight.linear_luminance(image), normals, mask)
    ratio = relight.ratio_image(normals, mask, fit, "right_90", feather=4, spill=0)
    assert ratio.max() <= relight.MAX_RATIO + 1e-9 and ratio.min() >= 1 / relight.MAX_RATIO - 1e-9
    assert ratio.max() > 3.9     # the source's dark side would need far more than 4x: the cap is what limits it
    np.testing.assert_array_equal(ratio[~mask], 1.0)
    edge = mask & ~relight.interior(mask, 1)    # mask pixels next to the background: weight 1/4 of the log-ratio
    full = relight.ratio_image(normals, mask, fit, "right_90", feather=0, spill=0)
    np.testing.assert_allclose(np.log(ratio[edge]), np.log(full[edge]) / 4, atol=1e-12)
    spilled = relight.ratio_image(normals, mask, fit, "right_90", feather=4, spill=8)
    outside = ~mask & (np.hypot(*np.mgrid[-47.5:48.5, -47.5:48.5]) < 48)
    assert np.abs(np.log(spilled[outside])).max() > 0.1     # the spill reaches beyond the mask ...
    corners = np.zeros_like(mask)
    corners[:3, :3] = True
    np.testing.assert_array_equal(spilled[corners], 1.0)    # ... and fades to 1 within 8 pixels


def test_the_relit_light_is_recovered_and_the_face_lab_check_holds():
    normals, mask = sphere()
    image = np.round(photo(sh_shading(normals, "left_30"), mask) * 255).astype(np.uint8)
    for name in ("left_90", "above_right_45"):
        relit = relight.relight(image, normals, mask, name)
        found = relight.recovered_direction(relit, normals, mask)
        assert relight.angular_error_degrees(found, relight.light_direction(name)) < 2.0
    outcome = relight.lab_check(4, image_size=64)
    summary = outcome["summary"]
    # Measured on 200 faces at 128 px: fit ~1.1 degrees, relit 6% vs unrelit 42%.
    assert summary["fit"]["median"] < 3.0
    assert summary["relit_error"]["median"] < summary["unrelit_error"]["median"] / 3


# --- the folder tool ------------------------------------------------------------------------------------------------

def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _face(root, stem, light, size=48, normals=None, clipped=False):
    """A make_depth-style face: a shaded sphere with dark 'eyes', its 8-bit normals and 16-bit depth."""
    sphere_normals, mask = sphere(size, 0.8)
    normals = sphere_normals if normals is None else normals
    shading = exact_shading(sphere_normals, light)
    albedo = np.full(mask.shape, 0.7)
    eyes = slice(size // 3, size // 3 + 3)
    albedo[eyes, size // 4:size // 4 + 6] = albedo[eyes, -size // 4 - 6:-size // 4] = 0.2
    _write_png(root / "rgb" / f"{stem}.png", np.round(photo(shading * albedo, mask, 1.0) * 255).astype(np.uint8))
    _write_png(root / "normals" / f"{stem}.png", np.round(np.clip((normals + 1) * 127.5, 0, 255)).astype(np.uint8))
    depth = np.where(mask, 0.05 + 0.5 * sphere_normals[..., 2], 0.0)
    if clipped:
        depth = np.where(mask, 1.0, 0.0)
    _write_png(root / "depth" / f"{stem}.png", np.round(depth * 65535).astype(np.uint16))
    return [f"rgb/{stem}.png", f"depth/{stem}.png", f"normals/{stem}.png", stem.split("/")[0]]


@pytest.fixture
def depth_folder(tmp_path):
    """Two good faces and one of each fault; the manifest as make_depth writes it."""
    root = tmp_path / "faces_d"
    rows = [_face(root, "neutral/anna", "left_30"), _face(root, "happy/ben", "above_right_45")]
    rows.append(_face(root, "neutral/no_normals", "front"))
    os.remove(root / "normals" / "neutral" / "no_normals.png")
    rows.append(_face(root, "neutral/small_normals", "front"))
    _write_png(root / "normals" / "neutral" / "small_normals.png", np.full((32, 32, 3), 128, np.uint8))
    flat = np.zeros((48, 48, 3))
    flat[..., 2] = sphere(48, 0.8)[1]
    rows.append(_face(root, "happy/flat", "front", normals=flat))
    rows.append(_face(root, "happy/clipped", "front", clipped=True))
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "depth", "normals", "expression"])
        writer.writerows(rows)
    return root


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_tool_writes_the_multipie_layout_and_counts_what_it_skipped(depth_folder, tmp_path):
    output = tmp_path / "relit"
    outcome = relight_faces.relight_faces(str(depth_folder), str(output), progress=False)
    rows = _rows(output / "manifest.csv")
    assert len(rows) == 2 * 11 and outcome["relit"] == 2 and outcome["images"] == 22
    assert rows[0] == {"image": "images/neutral/anna_original.png", "subject": "anna", "session": "1",
                       "lighting": "original", "expression": "neutral", "mask": "masks/neutral/anna.png"}
    assert [row["lighting"] for row in rows[:11]] == list(relight.LIGHT_NAMES)
    assert {row["subject"] for row in rows[11:]} == {"ben"} and {row["expression"] for row in rows[11:]} == {"happy"}
    skipped = {row["path"]: row["fault"] for row in _rows(output / "skipped.csv")}
    assert skipped == {
        "rgb/neutral/no_normals.png": "normal map normals/neutral/no_normals.png is missing",
        "rgb/neutral/small_normals.png": "normal map is 32x32, image is 48x48",
        "rgb/happy/flat.png": skipped["rgb/happy/flat.png"],
        "rgb/happy/clipped.png": skipped["rgb/happy/clipped.png"],
    }
    assert "do not span the 9 SH terms" in skipped["rgb/happy/flat.png"]
    assert skipped["rgb/happy/clipped.png"].startswith("depth clipped at 1 on 100% of the face")
    summary = json.loads((output / "relight_faces.json").read_text())
    assert summary["faces"] == 6 and summary["skipped"] == 4 and summary["lighting_names"] == list(relight.LIGHT_NAMES)
    assert all(figures["median"] < 5.0 for figures in summary["angular_error_degrees"].values())
    assert summary["expressions"] == {"happy": 1, "neutral": 1}
    assert "--lighting_names=original,left_90," in summary["prepare_data"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".relight_faces-")]
    # The images: left_90 lights the left half of the face, right_90 the right half.
    mask = np.asarray(Image.open(output / "masks" / "neutral" / "anna.png")) > 0
    left, right = mask.copy(), mask.copy()
    left[:, 24:] = right[:, :24] = False
    for name, brighter, darker in (("left_90", left, right), ("right_90", right, left)):
        image = relight.linear_luminance(np.asarray(Image.open(output / "images" / "neutral" / f"anna_{name}.png")))
        assert image[brighter].mean() > 1.5 * image[darker].mean()
    # The multipie reader (what prepare_data.py --data_format=multipie runs) reads it whole.
    parsed = parse(DataConfig(data_format="multipie", data_path=str(output / "manifest.csv"),
                              expression_names=("happy", "neutral"), lighting_names=relight.LIGHT_NAMES))
    assert len(parsed.columns["image"]) == 22 and not parsed.faults
    assert parsed.columns["lighting"][:11] == list(range(11))
    assert sorted(set(parsed.groups)) == ["anna", "ben"]


def test_the_tool_refuses_bad_input_with_one_line(depth_folder, tmp_path, capsys):
    output = tmp_path / "relit"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as stopped:
        run_main(relight_faces.relight_faces, str(depth_folder), str(output), progress=False)
    assert stopped.value.code == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "is not empty; pass --overwrite" in message
    with pytest.raises(DataError, match="no manifest.csv; expected a scripts/make_depth.py output folder"):
        relight_faces.relight_faces(str(tmp_path), str(tmp_path / "elsewhere"), progress=False)
    with pytest.raises(ConfigError, match="--lights: unknown below"):
        relight_faces.relight_faces(str(depth_folder), str(tmp_path / "elsewhere"), lights=["below"], progress=False)
    # --overwrite replaces only the tool's outputs.
    relight_faces.relight_faces(str(depth_folder), str(output), lights=["left_90"], overwrite=True, progress=False)
    assert (output / "notes.txt").read_text() == "mine" and len(_rows(output / "manifest.csv")) == 4


def test_an_interrupted_run_leaves_nothing_in_the_output(depth_folder, tmp_path, monkeypatch):
    calls, save = [], relight_faces._save

    def failing_save(path, array):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt   # as a user's Ctrl-C halfway through the second face
        save(path, array)

    monkeypatch.setattr(relight_faces, "_save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        relight_faces.relight_faces(str(depth_folder), str(tmp_path / "relit"), progress=False)
    assert not os.path.exists(tmp_path / "relit") or os.listdir(tmp_path / "relit") == []
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".relight_faces-")]
    # An interrupted --overwrite keeps the earlier run's outputs whole.
    monkeypatch.setattr(relight_faces, "_save", save)
    relight_faces.relight_faces(str(depth_folder), str(tmp_path / "relit"), lights=["left_90"], progress=False)
    monkeypatch.setattr(relight_faces, "_save", failing_save)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        relight_faces.relight_faces(str(depth_folder), str(tmp_path / "relit"), overwrite=True, progress=False)
    assert len(_rows(tmp_path / "relit" / "manifest.csv")) == 4
    assert len(os.listdir(tmp_path / "relit" / "images" / "neutral")) == 2


def test_a_folder_with_no_usable_face_is_an_error_with_its_report(depth_folder, tmp_path):
    with open(depth_folder / "manifest.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    with open(depth_folder / "manifest.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([rows[0]] + rows[3:])    # only the faulty faces
    output = tmp_path / "relit"
    with pytest.raises(DataError, match=r"no face could be relit \(4 skipped"):
        relight_faces.relight_faces(str(depth_folder), str(output), progress=False)
    assert sorted(os.listdir(output)) == ["relight_faces.json", "skipped.csv"]


def test_the_script_runs_end_to_end(depth_folder, tmp_path):
    """The one test that starts Python with TensorFlow (the package imports it): a few seconds."""
    output = tmp_path / "relit"
    sheet = tmp_path / "sheet.png"
    result = subprocess.run([sys.executable, SCRIPT, f"--input_dir={depth_folder}", f"--output_dir={output}",
                             "--lights=left_90,right_90", "--noprogress_bar", f"--contact_sheet={sheet}"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "relit 2 of 6 faces under 3 lightings (6 images), skipped 4" in result.stdout
    assert (f"python scripts/prepare_data.py --data_format=multipie --data_path={output / 'manifest.csv'} "
            "--expression_names=happy,neutral --lighting_names=original,left_90,right_90") in result.stdout
    assert "skipped manifest.csv row 3 (rgb/neutral/no_normals.png): normal map" in result.stderr
    assert Image.open(sheet).size[1] > 2 * 48
