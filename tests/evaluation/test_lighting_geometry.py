"""legan_tf.evaluation.lighting_geometry: the light of an edit fitted over its face's own normals.

Faces here are a hemisphere of normals rendered with the relighting model's own shading (relight's SH
irradiance of one light plus ambient), so the fitted lighting is exact and the one-light search finds the
light to its 0.1 degree refinement; the bounds below leave room for float32 faces, nothing more.
"""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from legan_tf.data.errors import DataError
from legan_tf.errors import ConfigError
from legan_tf.evaluation import lighting_geometry
from legan_tf.photos import relight

SIZE = 32
NAMES = ("original", "left_90", "left_30", "front", "above", "right_60")


def hemisphere(size=SIZE):
    """Unit normals of a sphere facing the camera, inside a disc of radius 0.95, and that disc."""
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    mask = x ** 2 + y ** 2 < 0.95 ** 2
    z = np.sqrt(np.clip(1.0 - x ** 2 - y ** 2, 0.0, 1.0))
    return np.where(mask[..., None], np.stack([x, y, z], -1), 0.0), mask


def render(normals, mask, light):
    """The face under a named grid light as a [-1, 1] float32 grey image: albedo 0.8 times the SH shading of
    that light with ambient 0.25 (between 0.17 and 0.84 in linear terms, never clipped), in sRGB."""
    linear = 0.8 * relight.shading(normals, relight.directional_light_sh(relight.light_direction(light), 0.25))
    grey = relight.linear_to_srgb(np.where(mask, linear, 0.0))
    return (2.0 * np.repeat(grey[..., None], 3, axis=-1) - 1.0).astype(np.float32)


def geometry(count):
    normals, mask = hemisphere()
    inner = relight.interior(mask)
    return lighting_geometry.FaceGeometry(np.repeat(normals[None].astype(np.float32), count, 0),
                                          np.repeat(inner[None], count, 0), np.ones(count, bool), "normals")


def test_the_fitted_light_of_a_rendered_face_is_its_light():
    normals, mask = hemisphere()
    for light in relight.GRID:
        found = lighting_geometry.fitted_direction(render(normals, mask, light), normals.astype(np.float32),
                                                   relight.interior(mask))
        assert np.degrees(np.arccos(np.clip(found @ relight.light_direction(light), -1, 1))) < 1.0, light
    # A black face has no shading to fit: NaNs, not an error.
    assert np.isnan(lighting_geometry.fitted_direction(-np.ones((SIZE, SIZE, 3), np.float32), normals,
                                                       relight.interior(mask))).all()


def _summary(edit):
    """Six faces, each under a grid light (`own`), their lighting edits made by `edit(own name, target name)`."""
    own = np.array([1, 2, 3, 4, 5, 1])
    normals, mask = hemisphere()
    fits = lighting_geometry.LightingFits(geometry(len(own)), len(NAMES))
    fits.observe_input(slice(0, 6), np.stack([render(normals, mask, NAMES[index]) for index in own]))
    for target in range(len(NAMES)):
        fits.observe(slice(0, 6), target, np.stack([render(normals, mask, edit(NAMES[index], NAMES[target]))
                                                    for index in own]))
    return lighting_geometry.summarise(fits, own, NAMES), own


def test_an_exact_relighting_reaches_every_target_and_changing_nothing_reaches_none():
    exact, own = _summary(lambda source, target: source if target == "original" else target)
    # Five grid targets, each for the faces not already under it: 6 x 5 - 6 pairs.
    assert exact["pairs"] == 24 and exact["faces_fitted"] == 6
    assert exact["error"] < 1.0 and exact["nearest_rate"] == 1.0
    assert exact["data"]["nearest_accuracy"] == 1.0 and exact["data"]["error"] < 1.0
    assert exact["relative_to_ceiling"] == 1.0 and exact["baseline"] == 0.0
    unchanged, _ = _summary(lambda source, target: source)
    # Each edit keeps its face's own grid light, which is nearest itself, never the target; its angle to the
    # target is the angle between the two grid lights.
    assert unchanged["nearest_rate"] == 0.0
    angles = [np.degrees(np.arccos(np.clip(relight.light_direction(NAMES[o]) @ relight.light_direction(t), -1, 1)))
              for t in NAMES[1:] for o in own if NAMES[o] != t]
    assert abs(unchanged["error"] - np.median(angles)) < 1.0
    assert unchanged["error"] == pytest.approx(unchanged["unedited_error"], abs=0.2)
    assert unchanged["per_target"]["front"]["pairs"] == 5
    assert "nearest grid light is the target on 0.0%" in lighting_geometry.report_lines(unchanged)[0]


def _normals_folder(root, photos, size=SIZE):
    normals, mask = hemisphere(size)
    encoded = np.where(mask[..., None], np.round((normals + 1.0) * 127.5), 128).astype(np.uint8)
    for folder in ("normals", "rgb"):
        os.makedirs(root / folder, exist_ok=True)
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "depth", "normals", "expression"])
        for photo in photos:
            Image.fromarray(encoded).save(root / "normals" / f"{photo}.png")
            Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(root / "rgb" / f"{photo}.png")
            writer.writerow([f"rgb/{photo}.png", "", f"normals/{photo}.png", "happy"])
    return str(root)


def test_faces_find_their_photos_normals_by_the_shards_subject_ids(tmp_path):
    manifest = tmp_path / "relit.csv"
    manifest.write_text("image,subject,session,lighting,expression\n"
                        + "".join(f"i/{p}_{light}.png,{p},1,{light},happy\n" for p in ("B_2", "A_1", "C_3")
                                  for light in NAMES))
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "dataset.json").write_text(json.dumps({"source_path": str(manifest)}))
    subjects = lighting_geometry.shard_subjects(str(shards))
    assert subjects == ["A_1", "B_2", "C_3"]                 # ids index the sorted subjects
    folder = _normals_folder(tmp_path / "depth", ["A_1", "C_3"])
    found = lighting_geometry.load_geometry(folder, subjects, np.array([2, 1, 0, 2]), SIZE)
    assert found.found.tolist() == [True, False, True, True]  # B_2 was not fitted: counted, not an error
    normals, mask = hemisphere()
    np.testing.assert_allclose(found.normals[0][mask], normals[mask], atol=1.0 / 127.5)
    assert found.masks[0].sum() < mask.sum() and not found.masks[1].any()   # the interior only
    with pytest.raises(ConfigError, match=r"is 16x16, the generator's faces 32x32; run make_depth.py with "
                                          r"--image_size=32"):
        lighting_geometry.load_geometry(_normals_folder(tmp_path / "small", ["A_1"], 16), subjects, np.array([0]), SIZE)
    with pytest.raises(ConfigError, match="--normals_dir=.*none: no such folder"):
        lighting_geometry.load_geometry(str(tmp_path / "none"), subjects, np.array([0]), SIZE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no manifest.csv; expected a scripts/make_depth.py output folder"):
        lighting_geometry.load_geometry(str(tmp_path / "empty"), subjects, np.array([0]), SIZE)
    # Shards whose subjects are people (prepare_data.py --group_pattern) name no photo: refused, not 0 faces.
    with pytest.raises(ConfigError, match=r"none of the faces' 2 subjects \(e.g. S010\) names a photo"):
        lighting_geometry.load_geometry(folder, ["S010", "S026"], np.array([0, 1, 1]), SIZE)
    # A row whose normal map is gone is a face not found, as relight_faces.py skips it.
    os.remove(tmp_path / "depth" / "normals" / "C_3.png")
    assert lighting_geometry.load_geometry(folder, subjects, np.array([2, 0]), SIZE).found.tolist() == [False, True]
    (shards / "dataset.json").write_text(json.dumps({"source_path": str(tmp_path / "gone.csv")}))
    with pytest.raises(ConfigError, match="the manifest the shards were prepared from cannot be read"):
        lighting_geometry.shard_subjects(str(shards))


def test_a_model_without_two_grid_lights_is_refused():
    fits = lighting_geometry.LightingFits(geometry(2), 2)
    with pytest.raises(ConfigError, match="fewer than two of relight_faces.py's grid lights"):
        lighting_geometry.summarise(fits, np.array([0, 1]), ("original", "front"))
