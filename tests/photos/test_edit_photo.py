"""scripts/edit_photo.py, scripts/align_faces.py and legan_tf.photos.faces on the face photos that ship in
packages, with a tiny untrained generator (conftest's generator_file: 6 expressions x 4 lights, 32 px)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import skimage.data
from PIL import Image

from legan_tf.data.errors import DataError
from legan_tf.errors import ConfigError
from legan_tf.models.stargan import StarGANGenerator
from legan_tf.photos import align_faces, edit_photo, faces, samples

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPRESSIONS = ["neutral", "smile", "surprise", "squint", "disgust", "scream"]


def _script(name, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", name), *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def finder():
    return faces.FaceFinder()


@pytest.fixture(scope="module")
def run_dir(generator_file):
    return os.path.dirname(generator_file)


@pytest.fixture(scope="module")
def editor(run_dir):
    return edit_photo.load_editor(run_dir)


@pytest.fixture(scope="module")
def astronaut():
    return samples.astronaut()


@pytest.fixture(scope="module")
def two_faces(astronaut):
    """Two astronauts side by side (the second mirrored): 1024x512, faces about 90 px wide."""
    return np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)


def _edit(editor, tmp_path, image, name="photo.png", output="edited.png", **kwargs):
    path = tmp_path / name
    Image.fromarray(image).save(path)
    kwargs.setdefault("expression", "smile")
    kwargs.setdefault("lighting", "01")
    outcome = edit_photo.edit_photo("", str(path), str(tmp_path / output), editor=editor, **kwargs)
    return outcome, tmp_path / output


def _face_region(shape, outcome_faces, finder, image, size):
    """Where the feathered masks of the faces found in `image` are non-zero, in the photo's pixels."""
    found, _ = finder(image)
    region = np.zeros(shape[:2] + (3,), np.uint8)
    for face in found:
        alignment = faces.Alignment.of(face, size)
        region = faces.paste(region, alignment, np.full((size, size, 3), 255.0), faces.feather_mask(size))
    return region[..., 0] > 0


# --- finding and aligning ---------------------------------------------------------------------------

def test_the_astronaut_has_one_face_and_its_crop_lands_on_the_template(finder, astronaut):
    found, skipped = finder(astronaut)
    assert len(found) == 1 and skipped == []
    assert 80 < found[0].width < 120
    for size in (48, 128):
        alignment = faces.Alignment.of(found[0], size)
        landmarks = alignment.to_crop(found[0].landmarks)
        template = faces.TEMPLATE_POINTS * size
        # A least-squares fit of five points: the eyes sit within 3% of the side, all within 6% (3 px at 48).
        assert np.abs(landmarks[:2] - template[:2]).max() < 0.03 * size
        assert np.abs(landmarks - template).max() < 0.06 * size
    # The crop's pixels agree with its geometry: the face found again in the 128 px crop has its landmarks
    # where the transform put them.
    crop = faces.Alignment.of(found[0], 128).crop(astronaut)
    again, _ = finder(crop)
    assert len(again) == 1
    assert np.abs(again[0].landmarks - faces.Alignment.of(found[0], 128).to_crop(found[0].landmarks)).max() < 3


def test_two_faces_side_by_side_are_both_found(finder, two_faces):
    found, skipped = finder(two_faces)
    assert len(found) == 2 and skipped == []
    assert found[0].centre[0] < 512 < found[1].centre[0]


def _paste_by_definition(photo, alignment, crop, mask, replace):
    """faces.paste written as it reads: every pixel of the footprint taken to the crop by to_crop, each
    channel's spline taken back on its own, the whole footprint blended and rounded."""
    from scipy import ndimage

    result = photo.copy()
    x0, y0, x1, y1 = alignment.footprint(photo.shape)
    columns, rows = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    crop_xy = alignment.to_crop(np.stack([columns.ravel(), rows.ravel()], axis=1))
    where = [crop_xy[:, 1] - 0.5, crop_xy[:, 0] - 0.5]
    weight = ndimage.map_coordinates(mask.astype(np.float64), where, order=1, mode="constant", cval=0.0)
    weight = weight.reshape(y1 - y0, x1 - x0)
    inside = weight > 0
    region = result[y0:y1, x0:x1].astype(np.float64)
    for channel in range(photo.shape[2]):
        values = ndimage.map_coordinates(crop[..., channel].astype(np.float64), where, order=3, mode="nearest")
        values = values.reshape(y1 - y0, x1 - x0)
        if replace:
            values = values - region[..., channel]
        region[..., channel] += np.where(inside, weight * values, 0.0)
    result[y0:y1, x0:x1][inside] = np.clip(np.round(region), 0, 255).astype(np.uint8)[inside]
    return result


def test_paste_gives_the_pixels_of_its_definition(finder, astronaut):
    """paste's coordinates by rows and columns, and its one spline for a grey edit's equal channels, give the
    pixels of the plain computation, to a level where float rounding lands on the other side of a half."""
    [face], _ = finder(astronaut)
    rng = np.random.default_rng(0)
    alignment = faces.Alignment.of(face, 32)
    mask = faces.feather_mask(32) * rng.uniform(0.5, 1.0, (32, 32)).astype(np.float32)
    colour = rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)
    grey = np.repeat(colour[..., :1], 3, axis=-1)
    change = rng.uniform(-40, 40, (32, 32, 3)).astype(np.float32)
    for crop, replace in ((colour, True), (grey, True), (change, False), (np.repeat(change[..., :1], 3, -1), False)):
        pasted = faces.paste(astronaut, alignment, crop, mask, replace=replace).astype(int)
        difference = np.abs(pasted - _paste_by_definition(astronaut, alignment, crop, mask, replace))
        assert difference.max() <= 1 and (difference > 0).sum() <= 3, (replace, difference.max(),
                                                                       (difference > 0).sum())
        assert (pasted != astronaut).any(axis=-1).sum() > 1000


def test_faces_are_found_on_a_downscaled_copy_but_placed_in_the_full_photo(finder, astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((1536, 1536), Image.Resampling.BICUBIC))
    found, _ = faces.FaceFinder(detect_max_side=256)(big)
    reference, _ = finder(astronaut)
    assert len(found) == 1
    assert np.abs(found[0].landmarks - 3 * reference[0].landmarks).max() < 12   # 4 px of the original


def test_a_face_under_min_face_size_is_a_counted_skip_not_an_edit(editor, tmp_path, astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.Resampling.LANCZOS))  # a 48 px face
    with pytest.raises(edit_photo.NoFaceError, match=r"no face to edit .* under --min_face_size=64 px"):
        _edit(editor, tmp_path, small, min_face_size=64)
    assert not (tmp_path / "edited.png").exists()


# --- editing ----------------------------------------------------------------------------------------

def test_two_faces_get_two_edits_and_nothing_else_changes(editor, finder, tmp_path, two_faces):
    outcome, output = _edit(editor, tmp_path, two_faces)
    assert len(outcome["faces"]) == 2
    edited = np.asarray(Image.open(output))
    assert edited.shape == two_faces.shape
    changed = (edited != two_faces).any(axis=-1)
    region = _face_region(two_faces.shape, outcome["faces"], finder, two_faces, editor.image_size)
    assert not changed[~region].any()               # outside the feathered masks: the input, byte for byte
    assert changed[:, :512].sum() > 1000 and changed[:, 512:].sum() > 1000   # each face edited
    # The masks are faces, not the photo: together well under a tenth of it.
    assert region.mean() < 0.1


def test_replace_mode_and_the_grey_model_also_stay_inside_the_faces(editor, finder, tmp_path, astronaut):
    region = _face_region(astronaut.shape, None, finder, astronaut, editor.image_size)
    for options in ({"paste": "replace"}, {"grey_model": True}):
        _, output = _edit(editor, tmp_path, astronaut, **options)
        changed = (np.asarray(Image.open(output)) != astronaut).any(axis=-1)
        assert changed.any() and not changed[~region].any(), options


def test_exif_orientation_is_honoured(editor, tmp_path, astronaut):
    # Stored on its side with orientation 6 ("rotate 90 degrees clockwise to view"), as a phone writes it.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.png", exif=exif)
    photo = faces.load_photo(str(tmp_path / "sideways.png"))
    np.testing.assert_array_equal(photo.rgb, astronaut)
    outcome = edit_photo.edit_photo("", str(tmp_path / "sideways.png"), str(tmp_path / "upright.png"),
                                    expression="smile", lighting="01", editor=editor)
    assert len(outcome["faces"]) == 1
    with Image.open(tmp_path / "upright.png") as written:
        assert written.size == (512, 512) and written.getexif().get(0x0112) is None


def test_cmyk_jpeg_and_16_bit_png_are_converted(editor, finder, tmp_path, astronaut):
    Image.fromarray(astronaut).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    photo = faces.load_photo(str(tmp_path / "cmyk.jpg"))
    assert photo.mode == "CMYK" and photo.rgb.dtype == np.uint8
    assert np.abs(photo.rgb.astype(int) - astronaut).mean() < 6
    outcome = edit_photo.edit_photo("", str(tmp_path / "cmyk.jpg"), str(tmp_path / "cmyk_out.jpg"),
                                    expression="surprise", lighting="02", jpeg_quality=80, editor=editor)
    assert len(outcome["faces"]) == 1
    with Image.open(tmp_path / "cmyk_out.jpg") as written:
        assert written.format == "JPEG" and written.mode == "RGB" and written.size == (512, 512)

    grey = np.asarray(Image.fromarray(astronaut).convert("L"))
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    photo = faces.load_photo(str(tmp_path / "grey16.png"))
    assert photo.mode.startswith("I")
    np.testing.assert_array_equal(photo.rgb, np.repeat(grey[..., None], 3, axis=-1))
    assert len(finder(photo.rgb)[0]) == 1


def test_bad_photos_are_clear_errors(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(faces.PhotoError, match="notes.jpg: not an image"):
        faces.load_photo(str(tmp_path / "notes.jpg"))
    Image.fromarray(np.zeros((512, 512, 3), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(faces.PhotoError, match=r"big.png: 512x512 is 0.262 megapixels, over the 0.2 this tool reads"):
        faces.load_photo(str(tmp_path / "big.png"), max_pixels=200_000)
    # Past twice the cap Pillow's own bomb check fires on opening; the message is the same kind.
    with pytest.raises(faces.PhotoError, match="big.png: over 0.01 megapixels, the most this tool reads"):
        faces.load_photo(str(tmp_path / "big.png"), max_pixels=10_000)
    with pytest.raises(ConfigError, match="--output=edited.xyz: give it an image extension"):
        faces.output_format("edited.xyz")


def test_names_are_checked_against_the_model(editor):
    with pytest.raises(ConfigError, match="--expression=grin: unknown expression; the model knows "
                       + ", ".join(EXPRESSIONS)):
        edit_photo.resolve_targets(editor.label_names, "grin", "01")
    with pytest.raises(ConfigError, match=r"edits lighting as well: pass --lighting=<name>, one of 00, 01, 02, 03"):
        edit_photo.resolve_targets(editor.label_names, "smile", None)
    targets = edit_photo.resolve_targets(editor.label_names, None, "03", all_expressions=True)
    assert [t["expression"] for t in targets] == EXPRESSIONS and {t["lighting"] for t in targets} == {"03"}


def test_all_expressions_writes_a_strip(editor, tmp_path, two_faces):
    outcome, output = _edit(editor, tmp_path, two_faces, output="strip.png", expression=None, all_expressions=True)
    with Image.open(output) as strip:
        width, height = strip.size
    cell = edit_photo.STRIP_CELL
    assert len(outcome["targets"]) == 6
    assert 7 * cell <= width < 7 * cell + 100 and 2 * cell <= height < 2 * cell + 60   # 2 faces x (photo + 6)


def test_every_lighting_and_the_lighting_by_expression_grid(editor):
    lights = list(editor.label_names["lighting"])
    targets = edit_photo.resolve_targets(editor.label_names, "smile", None, all_lightings=True)
    assert targets == [{"lighting": light, "expression": "smile"} for light in lights]
    grid = edit_photo.resolve_targets(editor.label_names, None, None, all_expressions=True, all_lightings=True)
    # Lighting by lighting, the expressions in the model's order within each: the grid's rows.
    assert grid == [{"lighting": light, "expression": name} for light in lights for name in EXPRESSIONS]
    with pytest.raises(ConfigError, match="--all_lightings edits to every lighting; leave out --lighting"):
        edit_photo.resolve_targets(editor.label_names, "smile", "01", all_lightings=True)
    with pytest.raises(ConfigError, match="--all_lightings: the model does not edit the lighting"):
        edit_photo.resolve_targets({"expression": EXPRESSIONS}, "smile", None, all_lightings=True)


def test_the_grid_holds_the_strip_of_each_lighting(editor, tmp_path, two_faces):
    """Each lighting's rows of the lights x expressions grid are, cell for cell, the --all_expressions
    strip at that lighting: the grid only rearranges the same edits (the generator is deterministic)."""
    outcome, output = _edit(editor, tmp_path, two_faces, output="grid.png", expression=None, lighting=None,
                            all_expressions=True, all_lightings=True)
    lights = list(editor.label_names["lighting"])
    assert len(outcome["targets"]) == len(lights) * len(EXPRESSIONS)
    grid = np.asarray(Image.open(output).convert("RGB"))
    cell, gap = edit_photo.STRIP_CELL, 2
    for light_index in (0, len(lights) - 1):
        _, strip_path = _edit(editor, tmp_path, two_faces, output=f"strip{light_index}.png", expression=None,
                              lighting=lights[light_index], all_expressions=True)
        strip = np.asarray(Image.open(strip_path).convert("RGB"))
        # The same columns (photo, then each expression) at the same pitch, after a panel of row labels; the
        # same title row above; 2 faces x 4 lights rows in the grid, 2 faces in the strip.
        panel, title = grid.shape[1] - strip.shape[1], strip.shape[0] - 2 * (cell + gap)
        assert 0 < panel < cell and grid.shape[0] == title + 2 * len(lights) * (cell + gap)
        for face in range(2):
            grid_top = title + (face * len(lights) + light_index) * (cell + gap)
            strip_top = title + face * (cell + gap)
            np.testing.assert_array_equal(grid[grid_top:grid_top + cell, panel:],
                                          strip[strip_top:strip_top + cell])
            # The row's label, in the panel: dark text on white.
            label = grid[grid_top:grid_top + cell, :panel]
            assert (label == 255).mean() > 0.8 and label.min() < 128


def test_a_serving_export_edits_like_the_run(editor, run_dir, tmp_path, astronaut):
    from legan_tf.serving import export

    serving = tmp_path / "serving"
    export.export_model(editor.generator, "generator", str(serving), "stargan", editor.label_names)
    served = edit_photo.load_editor(str(serving))       # the root: its one generator, highest version
    assert isinstance(served, edit_photo.ServingEditor)
    assert served.label_names == editor.label_names and served.image_size == editor.image_size
    found, _ = faces.FaceFinder()(astronaut)
    _, crops = faces.align(astronaut, found, editor.image_size)
    targets = [{"expression": "scream", "lighting": "03"}]
    # The serving signature answers in PNG: within rounding of the Keras model's floats.
    assert np.abs(served.edit(crops, targets) - editor.edit(crops, targets)).max() <= 1.0


# --- the scripts ------------------------------------------------------------------------------------

def test_the_script_edits_and_exits_3_without_a_face(run_dir, tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "astronaut.jpg", quality=92)
    Image.fromarray(skimage.data.coins()).save(tmp_path / "coins.png")
    result = _script("edit_photo.py", f"--model={run_dir}", f"--input={tmp_path / 'coins.png'}",
                     "--expression=smile", "--lighting=00", f"--output={tmp_path / 'out.png'}")
    assert result.returncode == edit_photo.NO_FACE_EXIT == 3
    assert f"error: {tmp_path / 'coins.png'}: no face to edit in the 384x303 photo" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.png").exists()
    result = _script("edit_photo.py", f"--model={run_dir}", f"--input={tmp_path / 'astronaut.jpg'}",
                     "--expression=grin", "--lighting=00", f"--output={tmp_path / 'out.png'}")
    assert result.returncode == 1
    assert "error: --expression=grin: unknown expression; the model knows neutral, smile" in result.stderr


def test_align_faces_keeps_class_folders_and_reports_skips(tmp_path, astronaut, two_faces):
    photos = tmp_path / "photos"
    (photos / "happy").mkdir(parents=True)
    (photos / "neutral").mkdir()
    Image.fromarray(astronaut).save(photos / "happy" / "astronaut.jpg", quality=92)
    Image.fromarray(samples.grace_hopper()).save(photos / "neutral" / "hopper.png")
    Image.fromarray(two_faces).save(photos / "happy" / "pair.png")
    Image.fromarray(skimage.data.coins()).save(photos / "neutral" / "coins.png")
    (photos / "neutral" / "readme.txt").write_text("not a photo")
    output = tmp_path / "aligned"
    result = _script("align_faces.py", f"--input_dir={photos}", f"--output_dir={output}", "--size=48", "--grey",
                     "--noprogress_bar")
    assert result.returncode == 0, result.stderr
    assert "aligned 2 of 4 photos" in result.stdout and "skipped 3 files" in result.stdout
    with Image.open(output / "happy" / "astronaut.png") as crop:
        assert crop.size == (48, 48) and crop.mode == "L"
    assert (output / "neutral" / "hopper.png").is_file()
    report = json.loads((output / "align_faces.json").read_text())
    faults = {item["path"]: item["fault"] for item in report["skipped_files"]}
    assert faults[os.path.join("happy", "pair.png")].startswith("2 faces found")
    assert faults[os.path.join("neutral", "coins.png")] == "no face found"
    assert faults[os.path.join("neutral", "readme.txt")].startswith("not an image file")
    # Nothing usable at all is an error, as for make_depth.
    (tmp_path / "empty" / "x").mkdir(parents=True)
    Image.fromarray(skimage.data.coins()).save(tmp_path / "empty" / "x" / "coins.png")
    with pytest.raises(DataError, match="no photo could be used"):
        align_faces.align_folder(str(tmp_path / "empty"), str(tmp_path / "out2"), progress=False)


@pytest.mark.slow
def test_prepare_data_align_makes_shards_of_the_aligned_faces(tmp_path, astronaut):
    """The documented --align path: photos with a face anywhere -> aligned crops -> shards, the exclude
    pattern applied to the photos' own names, faceless photos skipped and reported, not fatal."""
    photos = tmp_path / "photos"
    (photos / "happy").mkdir(parents=True)
    (photos / "neutral").mkdir()
    Image.fromarray(astronaut).save(photos / "happy" / "astronaut.jpg", quality=92)
    Image.fromarray(astronaut).save(photos / "happy" / "astronaut.jpg0.jpg", quality=92)  # a copy to leave out
    Image.fromarray(samples.grace_hopper()).save(photos / "neutral" / "hopper.png")
    Image.fromarray(skimage.data.coins()).save(photos / "neutral" / "coins.png")
    output = tmp_path / "shards"
    common = ["--data_format=folder", f"--data_path={photos}", "--expression_names=happy,neutral",
              "--exclude_pattern=\\.jpg\\d+\\.jpg$", "--align", "--align_size=64", f"--output_dir={output}",
              "--num_shards=1"]
    dry = _script("prepare_data.py", *common, "--dry_run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "aligned 2 of 3 photos" in dry.stdout and "left out 1 by --exclude_pattern" in dry.stdout
    assert not output.exists()  # a dry run aligns into a scratch folder and writes nothing

    result = _script("prepare_data.py", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "aligned 2 of 3 photos" in result.stdout and "wrote 2 records" in result.stdout
    with Image.open(output / "aligned" / "happy" / "astronaut.png") as crop:
        assert crop.size == (64, 64)
    assert "coins.png" in (output / "aligned" / "skipped.csv").read_text()
    metadata = json.loads((output / "dataset.json").read_text())
    assert metadata["splits"]["train"]["class_counts"]["expression"] == {"happy": 1, "neutral": 1}

    again = _script("prepare_data.py", *common)  # an existing output needs --overwrite, for both parts
    assert again.returncode == 1 and "output folder is not empty" in again.stderr
    assert _script("prepare_data.py", *common, "--overwrite").returncode == 0

    wrong = _script("prepare_data.py", "--data_format=multipie", f"--data_path={photos}/m.csv", "--align",
                    f"--output_dir={tmp_path / 'other'}")
    assert wrong.returncode == 1 and "error: --align aligns a folder of photos" in wrong.stderr
    assert "Traceback" not in wrong.stderr


# --- an attention generator's edits, at the photo's resolution ---------------------------------------

class _SquareMaskEditor(edit_photo.Editor):
    """A stand-in attention generator: colour mid-grey (128), mask 1 on the crop's central square, 0 elsewhere."""

    image_size = 32
    label_names = {"expression": ("neutral", "smile"), "lighting": ("01",)}
    source = "square-mask editor"

    @property
    def has_parts(self):
        return True

    def edit_parts(self, crops, targets):
        mask = np.zeros(crops.shape[:3], np.float32)
        mask[:, 12:20, 12:20] = 1.0
        return np.full(crops.shape, 128.0, np.float32), mask

    def edit(self, crops, targets):
        color, mask = self.edit_parts(crops, targets)
        return mask[..., None] * color + (1.0 - mask[..., None]) * crops.astype(np.float32)


def _laplacian_energy(image, where):
    from scipy import ndimage

    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.abs(ndimage.laplace(grey, mode="mirror"))[where].mean()


def test_attention_edits_keep_the_photos_own_pixels_where_the_mask_is_off(finder, tmp_path, astronaut):
    editor = _SquareMaskEditor()
    outcome, output = _edit(editor, tmp_path, astronaut)
    assert outcome["paste"] == "attention"
    edited = np.asarray(Image.open(output))
    changed = (edited != astronaut).any(axis=-1)
    # The central 8x8 of a 32 px crop is about a sixteenth of the crop: a small patch of the face changes ...
    region = _face_region(astronaut.shape, None, finder, astronaut, editor.image_size)
    assert changed.sum() > 100 and changed.sum() < 0.2 * region.sum()
    # ... to the colour map (128) where the mask is whole, and nowhere else does a pixel move, so the
    # face outside the mask keeps its own sharpness exactly.
    assert np.abs(edited[changed].astype(int) - 128).min() == 0
    from scipy import ndimage

    untouched = region & ~ndimage.binary_dilation(changed)   # the Laplacian reads the 4 neighbours too
    assert _laplacian_energy(edited, untouched) == _laplacian_energy(astronaut, untouched)
    # The change mode of the same edit (A * C + (1 - A) * crop, minus the crop, upsampled) also moves
    # pixels only under the mask; auto picks attention, and an explicit --paste=change still works.
    _, change_output = _edit(editor.__class__(), tmp_path, astronaut, output="change.png", paste="change")
    assert (np.asarray(Image.open(change_output)) != astronaut).any()


class _ShiftEditor(_SquareMaskEditor):
    """A stand-in whose colour map is the crop brightened by 20 under the same central square mask."""

    def __init__(self, residual):
        self.residual_colour = residual

    def edit_parts(self, crops, targets):
        _, mask = super().edit_parts(crops, targets)
        return crops.astype(np.float32) + 20.0, mask


def test_a_residual_colour_map_is_pasted_as_a_change_so_the_photo_keeps_its_detail(tmp_path, astronaut):
    """A residual colour map (the crop plus a change) is pasted as its change, photo + A * (C - crop): where
    the mask is whole the photo's own pixels move by exactly +20 and keep their detail (the Laplacian of a
    constant shift is unchanged), where pasting the same map as a picture replaces them by the 32 px crop
    scaled up, which has lost the photo's finer detail."""
    from scipy import ndimage

    _, output = _edit(_ShiftEditor(residual=True), tmp_path, astronaut, output="residual.png")
    _, painted_output = _edit(_ShiftEditor(residual=False), tmp_path, astronaut, output="painted.png")
    residual, painted = (np.asarray(Image.open(path)).astype(int) for path in (output, painted_output))
    change = residual - astronaut.astype(int)
    # The spline of a constant change is that constant and the whole mask weighs it by 1: exactly +20 after
    # rounding, wherever the photo was not already above 235.
    whole = (change == 20).all(axis=-1)
    assert whole.sum() > 50 and change.min() >= 0 and change.max() == 20
    inside = ndimage.binary_erosion(whole, iterations=2)
    assert inside.sum() > 20
    original = _laplacian_energy(astronaut, inside)
    # The grey levels gain the same constant everywhere there, which the Laplacian cancels up to float64
    # rounding of numbers below 300 (a relative 1e-13 or so; 1e-9 leaves room and fails any real change).
    assert _laplacian_energy(residual.astype(np.uint8), inside) == pytest.approx(original, rel=1e-9)
    assert _laplacian_energy(painted.astype(np.uint8), inside) < 0.8 * original


def test_attention_edits_of_a_grey_model_change_brightness_only(tmp_path, astronaut):
    outcome, output = _edit(_SquareMaskEditor(), tmp_path, astronaut, grey_model=True)
    assert outcome["paste"] == "attention"
    change = np.asarray(Image.open(output)).astype(int) - astronaut.astype(int)
    moved = (change != 0).any(axis=-1)
    assert moved.any()
    # The same change of grey level added to each channel (unless a channel clipped at 0 or 255).
    unclipped = moved & (np.asarray(Image.open(output)) > 0).all(-1) & (np.asarray(Image.open(output)) < 255).all(-1)
    assert (change[unclipped, 0] == change[unclipped, 1]).all() and (change[unclipped, 1] == change[unclipped, 2]).all()


def _tiny_legan_run(run, **options):
    """A run directory holding a tiny 32 px LEGAN with the attention output and a grey colour map (2 expressions,
    lightings original, left_90, right_90); `options` go to LEGANGenerator. Returns (generator, run)."""
    import keras

    from legan_tf.models.legan import LEGANGenerator
    from legan_tf.runs import RunDir

    keras.utils.set_random_seed(0)
    generator = LEGANGenerator(32, 2, 3, base_filters=4, num_residual_blocks=1, upsampling="resize",
                               output_mode="attention", grey_colour=True, **options)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 5), np.float32)))
    run.mkdir()
    generator.save(str(run / "generator.keras"))
    (run / "flags.txt").write_text("--task=legan\n--image_size=32\n")
    RunDir(str(run)).write_label_names({"expression": ("neutral", "happy"), "lighting": ("original", "left_90",
                                                                                      "right_90")})
    return generator, run


class _ShadingEditor(_SquareMaskEditor):
    """A stand-in LEGAN with a shading ratio: the ratio is `factor` everywhere and the composite's mask is shut."""

    def __init__(self, factor):
        self.factor = factor

    def edit_parts_and_shading(self, crops, targets):
        return (np.full(crops.shape, 128.0, np.float32), np.zeros(crops.shape[:3], np.float32),
                np.full(crops.shape[:3], self.factor, np.float32))


def test_a_shading_ratio_multiplies_the_face_and_nothing_else(finder, tmp_path, astronaut):
    """A generator's shading ratio is taken to the photo and faded out by the feathered ellipse: with a constant
    ratio r and the composite's mask shut, a pixel where the ellipse weighs w becomes photo * (1 + w (r - 1)),
    rounded and clipped; where w = 1 exactly photo * r; outside the ellipse the photo byte for byte."""
    found, _ = finder(astronaut)
    alignment = faces.Alignment.of(found[0], 32)
    weight = faces.mask_in_photo(astronaut.shape, alignment, faces.feather_mask(32))
    outcome, output = _edit(_ShadingEditor(0.5), tmp_path, astronaut)
    assert outcome["paste"] == "attention"
    edited = np.asarray(Image.open(output)).astype(np.float64)
    expected = np.clip(np.round(astronaut * (1.0 + weight[..., None] * (0.5 - 1.0))), 0, 255)
    # The same float64 arithmetic on the same bilinear weight: equal after rounding, but for a product that
    # lands within float64 rounding of a half (at most one level, on a handful of pixels).
    assert np.abs(edited - expected).max() <= 1 and (edited != expected).mean() < 1e-3
    whole = weight == 1.0
    assert whole.sum() > 500
    np.testing.assert_array_equal(edited[whole], np.round(astronaut[whole] * 0.5))
    np.testing.assert_array_equal(edited[weight == 0], astronaut[weight == 0])
    # A ratio of 1 is no change at all.
    _, same = _edit(_ShadingEditor(1.0), tmp_path, astronaut, output="same.png")
    np.testing.assert_array_equal(np.asarray(Image.open(same)), astronaut)


def test_a_legan_with_a_shading_ratio_edits_through_its_ratio(tmp_path, astronaut):
    """A LEGAN built with lighting_output="ratio" (configs/relit/legan_ckplus_relit_shading_cpu.flags) hands
    edit_photo its ratio: the crop-sized ratio of the generator itself, and an edit of the photo."""
    generator, run = _tiny_legan_run(tmp_path / "legan-shading", lighting_output="ratio", shading_grid=8)
    editor = edit_photo.load_editor(str(run))
    crops = np.full((1, 32, 32, 3), 100, np.uint8)
    target = [{"expression": "happy", "lighting": "left_90"}]
    colour, mask, ratio = editor.edit_parts_and_shading(crops, target)
    labels = np.array([[0, 1, 0, 1, 0]], np.float32)
    expected = np.asarray(generator.shading_ratio((crops.astype(np.float32) / 127.5 - 1.0, labels)))[..., 0]
    np.testing.assert_array_equal(ratio, expected)
    # The one pass gives the parts that edit_parts gives.
    for one_pass, alone in zip((colour, mask), editor.edit_parts(crops, target)):
        np.testing.assert_array_equal(one_pass, alone)
    assert ratio.shape == (1, 32, 32) and np.all((ratio >= 0.25) & (ratio <= 4.0))
    outcome, output = _edit(editor, tmp_path, astronaut, expression="happy", lighting="left_90")
    assert outcome["paste"] == "attention" and (np.asarray(Image.open(output)) != astronaut).any()
    # A generator without a ratio gives none.
    assert _SquareMaskEditor().edit_parts_and_shading(crops, target)[2] is None


def test_a_legan_with_a_warped_expression_pastes_its_whole_edited_crop(tmp_path, astronaut):
    """A LEGAN built with expression_output="warp" (configs/relit/legan_fer2013_relit_warp_cpu.flags) composites over
    the crop moved along its displacement, which the attention paste (colour map and mask at the photo's
    resolution) would drop: edit_photo pastes the generator's whole edited crop, which does carry the move."""
    generator, run = _tiny_legan_run(tmp_path / "legan-warp", lighting_output="ratio", shading_grid=8,
                                     expression_output="warp", warp_grid=8)
    editor = edit_photo.load_editor(str(run))
    assert not editor.has_parts
    crops = np.random.default_rng(3).integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)
    target = [{"expression": "happy", "lighting": "left_90"}]
    labels = np.array([[0, 1, 0, 1, 0]], np.float32)
    expected = np.asarray(generator((crops.astype(np.float32) / 127.5 - 1.0, labels)))
    # The editor's crop is the generator's translation in [0, 255] (the same float32 operations, then a scaling).
    np.testing.assert_allclose(editor.edit(crops, target), (np.clip(expected, -1, 1) + 1) * 127.5, atol=1e-3)
    outcome, output = _edit(editor, tmp_path, astronaut, expression="happy", lighting="left_90")
    assert outcome["paste"] != "attention" and (np.asarray(Image.open(output)) != astronaut).any()


def test_a_legan_with_the_attention_output_edits_lighting_at_the_photos_resolution(tmp_path, astronaut):
    """LEGAN's tri-hourglass with output_mode="attention" (configs/relit/legan_fer2013_relit.flags) goes through the
    same attention paste as StarGAN's: its colour map and mask come from LEGANGenerator.edit_parts."""
    generator, run = _tiny_legan_run(tmp_path / "legan-attention")
    editor = edit_photo.load_editor(str(run))
    assert editor.has_parts
    outcome, output = _edit(editor, tmp_path, astronaut, expression="happy", lighting="left_90")
    assert outcome["paste"] == "attention"
    edited = np.asarray(Image.open(output))
    assert edited.shape == astronaut.shape and (edited != astronaut).any()
    with pytest.raises(ConfigError, match="left_45"):
        _edit(editor, tmp_path, astronaut, output="never.png", expression="happy", lighting="left_45")
    assert not (tmp_path / "never.png").exists()

    # Its serving export says in the model card that it paints grey levels, so the export is edited as the
    # run is (grey crop in, change of brightness out): the same photo as the run's Keras model pasting its
    # change, within rounding: the served face is rounded to 8 bits (0.5 of a level) and the photo after the
    # paste again (0.5), so at most one level apart, two with the grey conversion's own rounding.
    from legan_tf.serving import export

    version = export.export_model(generator, "generator", str(tmp_path / "serving"), "legan", editor.label_names)
    assert "- grey faces:" in (tmp_path / "serving" / "legan" / "1" / "assets" / "model_card.md").read_text()
    served = edit_photo.load_editor(version)
    assert served.grey_faces
    _, by_run = _edit(editor, tmp_path, astronaut, output="run.png", expression="happy", lighting="left_90",
                      paste="change")
    _, by_export = _edit(served, tmp_path, astronaut, output="export.png", expression="happy", lighting="left_90")
    difference = np.abs(np.asarray(Image.open(by_run), np.int16) - np.asarray(Image.open(by_export), np.int16))
    assert difference.max() <= 2


JAX_COMPILED_CHECK = """
import numpy as np, keras
from legan_tf.models.stargan import StarGANGenerator
from legan_tf.photos import edit_photo

assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(0)
generator = StarGANGenerator(image_size=16, num_labels=10, base_filters=4, num_downsamples=1, num_residual_blocks=0,
                             output_mode="attention")
images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
labels = np.eye(10, dtype=np.float32)[:2]
generator((images, labels))   # built, as a loaded generator is (eager JAX compiles op by op: a few seconds)
for method in ("call", "edit_parts"):
    compiled = edit_photo.compiled_method(generator, method, 10)(images, labels)
    plain = edit_photo._method(generator, method)((images, labels), training=False)
    for got, want in zip(keras.tree.flatten(compiled), keras.tree.flatten(plain)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
print("same")
"""


@pytest.mark.slow
def test_the_compiled_generator_matches_its_plain_call_under_jax():
    done = subprocess.run([sys.executable, "-c", JAX_COMPILED_CHECK], capture_output=True, text=True, cwd=REPO,
                          timeout=300, env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": REPO})
    assert done.returncode == 0 and done.stdout.strip() == "same", done.stderr[-3000:]


def test_a_multi_label_model_takes_the_attributes_a_face_should_have():
    """CelebA's attributes: --attributes names those the face should have, the others off."""
    names = {"attributes": ("Black_Hair", "Blond_Hair", "Male", "Young")}
    [target] = edit_photo.resolve_targets(names, None, None, attributes="Young, Blond_Hair")
    assert target == {"attributes": "Blond_Hair,Young"}  # in the model's order
    np.testing.assert_array_equal(edit_photo._one_hot(names, target), [0, 1, 0, 1])
    [none] = edit_photo.resolve_targets(names, None, None, attributes="")
    np.testing.assert_array_equal(edit_photo._one_hot(names, none), [0, 0, 0, 0])
    with pytest.raises(ConfigError, match="unknown Blonde_Hair; the model knows Black_Hair, Blond_Hair"):
        edit_photo.resolve_targets(names, None, None, attributes="Blonde_Hair")
    with pytest.raises(ConfigError, match="pass --attributes="):
        edit_photo.resolve_targets(names, None, None)
    with pytest.raises(ConfigError, match="does not edit expression"):
        edit_photo.resolve_targets(names, "happy", None, attributes="Male")
    with pytest.raises(ConfigError, match="does not edit attributes"):
        edit_photo.resolve_targets({"expression": ("happy", "sad")}, "happy", None, attributes="Male")


# --- CelebA's framing -------------------------------------------------------------------------------

def test_celebas_framing_puts_the_face_where_celebas_crop_has_it_with_the_head_around_it(finder, astronaut):
    [face], _ = finder(astronaut)
    tight, loose = faces.Alignment.of(face, 128), faces.Alignment.of(face, 128, "celeba")
    template = faces.FRAMINGS["celeba"].points * 128
    landmarks = loose.to_crop(face.landmarks)
    assert np.abs(landmarks[:2] - template[:2]).max() < 0.03 * 128   # the eyes, as the FER2013 test above
    assert np.abs(landmarks - template).max() < 0.06 * 128
    # The eyes are 0.22 of CelebA's side apart and 0.40 of FER2013's: the same face in a crop 0.40 / 0.22 times
    # wider in the photo (to the similarity fit's rounding).
    assert loose.scale == pytest.approx(tight.scale * 0.22 / 0.40, rel=0.05)
    crop = loose.crop(astronaut)
    again, _ = finder(crop)   # the face is found in the CelebA-framed crop, where the transform put it
    assert len(again) == 1 and np.abs(again[0].landmarks - landmarks).max() < 3
    # The edited ellipse covers nearly all of either crop, fading out before its border.
    for framing in faces.FRAMINGS:
        mask = faces.feather_mask(64, framing)
        assert mask[32, 32] == 1.0 and mask[0].max() == 0.0 and mask[:, 0].max() == 0.0 and mask[-1].max() == 0.0
    with pytest.raises(ConfigError, match="--framing=square: unknown; one of fer2013, celeba"):
        faces.Alignment.of(face, 128, "square")


def test_a_celeba_model_edits_faces_in_celebas_framing_and_the_flag_overrides_it(tmp_path, astronaut):
    keras.utils.set_random_seed(0)
    generator = StarGANGenerator(image_size=32, num_labels=2, base_filters=4, num_residual_blocks=1)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 2), np.float32)))
    generator.save(tmp_path / "generator.keras")
    (tmp_path / "labels.json").write_text(json.dumps({"attributes": ["Smiling", "Mouth_Slightly_Open"]}))
    editor = edit_photo.load_editor(str(tmp_path / "generator.keras"))
    assert editor.framing == "celeba" and faces.framing_for({"expression": ("happy",)}) == "fer2013"
    regions = {}
    for framing in ("auto", "fer2013"):
        outcome, path = _edit(editor, tmp_path, astronaut, output=f"{framing}.png", expression=None, lighting=None,
                              attributes="Smiling", paste="replace", framing=framing)
        assert outcome["framing"] == ("celeba" if framing == "auto" else "fer2013")
        changed = np.abs(np.asarray(Image.open(path), np.int16) - astronaut.astype(np.int16)).max(axis=2) > 0
        rows, columns = np.nonzero(changed)
        regions[framing] = (columns.max() - columns.min()) * (rows.max() - rows.min())
    # CelebA's crop spans 0.40 / 0.22 = 1.8 times FER2013's side around the same face: about 3.3 times the area.
    assert 2.5 < regions["auto"] / regions["fer2013"] < 4.0, regions
    with pytest.raises(ConfigError, match="--framing=square: unknown"):
        _edit(editor, tmp_path, astronaut, expression=None, lighting=None, attributes="Smiling", framing="square")
