"""The models that ship with the package (legan_tf.pretrained): found by name, checked before loading,
loaded as the generator their card describes, and taken wherever a run directory or --model is."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from legan_tf import pretrained
from legan_tf.errors import ConfigError

NAME = "stargan-fer2013-64"
LEGAN_NAME = "legan-fer2013-relit-64"


@pytest.mark.parametrize("name", [NAME, LEGAN_NAME])
def test_names_list_the_shipped_model_and_its_record_matches_its_file(name):
    assert name in pretrained.names()
    meta = pretrained.info(name)
    path = os.path.join(pretrained.folder(name), pretrained.GENERATOR_FILE)
    with open(path, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == meta["sha256"]
    # A few MB each: the wheel carries every shipped model (a float32 LEGAN at 32 filters is 3.5 M weights).
    assert os.path.getsize(path) == meta["bytes"] and meta["bytes"] < 16 * 2 ** 20
    assert pretrained.verify(f"{pretrained.PREFIX}{name}") == path
    card = pretrained.card(name)
    for section in ("## Measured", "## Intended use", "## Responsible use", "## Data terms"):
        assert section in card


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as error:
        pretrained.resolve("pretrained:stargan-celeba")
    assert str(error.value) == ("--model=pretrained:stargan-celeba: no such pretrained model; the package ships "
                                + ", ".join(f"pretrained:{name}" for name in pretrained.names()))
    assert pretrained.resolve("runs/some-run") == "runs/some-run"  # any other value is left alone


def test_a_damaged_copy_is_refused_before_loading(tmp_path, monkeypatch):
    copy = tmp_path / NAME
    shutil.copytree(pretrained.folder(NAME), copy)
    monkeypatch.setattr(pretrained, "ROOT", str(tmp_path))
    with open(copy / pretrained.GENERATOR_FILE, "r+b") as handle:  # one byte flipped: same size, other hash
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ConfigError, match="a damaged copy; reinstall legan-tf"):
        pretrained.load(NAME)
    (copy / pretrained.GENERATOR_FILE).write_text("version https://git-lfs.github.com/spec/v1\n")  # an LFS pointer
    with pytest.raises(ConfigError, match="a damaged copy"):
        pretrained.verify(NAME)
    meta = json.loads((copy / pretrained.INFO_FILE).read_text())
    del meta["sha256"]
    (copy / pretrained.INFO_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="lacks sha256"):
        pretrained.info(NAME)


def _grey_crops(photos, size=64):
    """The first face of each photo, aligned to the size, grey in three equal channels, in [-1, 1]."""
    from legan_tf.photos import faces as face_tools

    crops = []
    for photo in photos:
        found, _ = face_tools.FaceFinder("auto")(photo)
        crops.append(face_tools.align(photo, found, size)[1][0])
    grey = np.stack(crops).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(grey[..., None], 3, axis=-1) / 127.5 - 1.0


@pytest.fixture(scope="module")
def generator():
    return pretrained.load(NAME)


def test_the_loaded_generator_is_the_one_the_card_describes(generator):
    meta = pretrained.info(NAME)
    names = pretrained.label_names(NAME)
    assert names == {"expression": ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")}
    assert generator.image_size == meta["image_size"] == 64
    assert generator.num_labels == 7 and generator.output_mode == "attention" and generator.grey_colour


def test_an_edit_changes_a_face_only_where_its_mask_is_on(generator):
    """The attention output is A * C + (1 - A) * x with C in [-1, 1], so |G(x) - x| = A |C - x| <= 2 A at
    every pixel: an exact bound from the arithmetic, whatever the weights (float32 rounding aside)."""
    from legan_tf.photos import samples

    x = _grey_crops([samples.astronaut()])
    labels = np.eye(7, dtype=np.float32)[[3]]  # happy
    edited = np.asarray(generator((x, labels), training=False))
    _, mask = generator.edit_parts((x, labels), training=False)
    mask = np.asarray(mask)
    assert np.all(np.abs(edited - x) <= 2.0 * mask + 1e-5)
    assert np.abs(edited - x).max() > 0.05  # it does edit
    # A grey model: its three output channels are equal.
    np.testing.assert_allclose(edited[..., 0], edited[..., 2], atol=1e-6)


def test_run_directory_readers_take_the_name():
    from legan_tf.photos.edit_photo import load_editor
    from legan_tf.runs import RunDir

    run = RunDir.open(f"pretrained:{NAME}", allow_pretrained=True)
    assert run.task == "stargan" and run.label_names() == pretrained.label_names(NAME)
    with pytest.raises(ConfigError, match=r"^--run_dir=pretrained:nope: no such pretrained model"):
        RunDir.open("pretrained:nope", allow_pretrained=True)
    # The judges write their reports into the run directory: never into the installed package.
    with pytest.raises(ConfigError, match="a shipped model is read by edit, export and serve"):
        RunDir.open(f"pretrained:{NAME}")
    editor = load_editor(f"pretrained:{NAME}")
    assert editor.grey_faces and editor.has_parts and editor.image_size == 64


def test_export_serves_a_shipped_model_and_photos_are_edited_through_the_server(tmp_path):
    """Exported, served, and used as a TF-Serving address (host:port/model): the editor reads the label
    names from the server's refusal of an unknown one, and the photo's face is edited over gRPC."""
    from legan_tf.photos import edit_photo, samples
    from legan_tf.serving import export
    from legan_tf.serving.server import Server

    exported = export.export_run(f"pretrained:{NAME}", str(tmp_path), ["generator"])
    [(kind, path)] = exported
    assert kind == "generator" and os.path.isfile(os.path.join(path, "saved_model.pb"))
    with open(os.path.join(path, "assets", export.MODEL_CARD), encoding="utf-8") as handle:
        assert "angry" in handle.read()
    printed = export.serving_commands(exported, str(tmp_path), f"pretrained:{NAME}", "face.png")
    assert f"--model={NAME} --image=face.png --expression=disgust" in printed

    from PIL import Image

    server = Server(str(tmp_path), grpc_port=0, rest_port=None)
    port = server.start()[0]
    try:
        editor = edit_photo.load_editor(f"127.0.0.1:{port}/{NAME}")
        assert editor.label_names == pretrained.label_names(NAME)
        Image.fromarray(samples.grace_hopper()).save(tmp_path / "hopper.png")
        outcome = edit_photo.edit_photo(f"127.0.0.1:{port}/{NAME}", str(tmp_path / "hopper.png"),
                                        str(tmp_path / "edited.png"), expression="surprise", editor=editor)
        assert len(outcome["faces"]) == 1
        before = samples.grace_hopper().astype(np.int16)
        after = np.asarray(Image.open(tmp_path / "edited.png"), np.int16)
        changed = np.abs(after - before).max(axis=2) > 0
        assert changed.any() and changed.mean() < 0.2   # the face only (185 px wide in the 512 x 600 photo)
        with pytest.raises(ConfigError, match="NOT_FOUND|no model|not found"):
            edit_photo.load_editor(f"127.0.0.1:{port}/nobody")
    finally:
        server.stop()


# -- the shipped LEGAN: expression and lighting ------------------------------------------------------------

def test_the_shipped_legan_relights_toward_the_side_it_is_asked_for():
    """Both packaged faces, neutral, under light from the left (left_90), the front and the right (right_90):
    the half of the crop on the asked side is the brighter. Measured with this file: the left half minus the
    right half is about +0.3 (in [-1, 1] units) under left_90, 0.0 under front, -0.3 under right_90 on both
    faces, so the 0.1 margins below leave room for any float32 rounding (1e-5) while a model whose lighting
    control did nothing (or ran the wrong way) fails."""
    generator = pretrained.load(LEGAN_NAME)
    names = pretrained.label_names(LEGAN_NAME)
    assert list(names) == ["expression", "lighting"] and len(names["expression"]) == 7
    assert {"left_90", "front", "right_90"} <= set(names["lighting"])
    assert generator.image_size == pretrained.info(LEGAN_NAME)["image_size"] == 64 and generator.grey_colour
    from legan_tf.photos import samples

    x = _grey_crops(list(samples.sample_faces().values()))
    sizes = [len(names["expression"]), len(names["lighting"])]

    def side_difference(light):
        labels = np.zeros((len(x), sum(sizes)), np.float32)
        labels[:, names["expression"].index("neutral")] = 1.0
        labels[:, sizes[0] + names["lighting"].index(light)] = 1.0
        edited = np.asarray(generator((x, labels), training=False))[..., 0]
        _, mask = generator.edit_parts((x, labels), training=False)
        assert np.all(np.abs(edited - x[..., 0]) <= 2.0 * np.asarray(mask)[..., 0] + 1e-5)  # attention output
        return edited[:, :, :32].mean(axis=(1, 2)) - edited[:, :, 32:].mean(axis=(1, 2))

    left, front, right = (side_difference(light) for light in ("left_90", "front", "right_90"))
    assert np.all(left > front + 0.1) and np.all(right < front - 0.1), (left, front, right)


def test_the_shipped_legan_is_served_and_answers_a_lighting_request(tmp_path):
    from PIL import Image

    from legan_tf.photos import edit_photo, samples
    from legan_tf.serving import export
    from legan_tf.serving.server import Server

    [(kind, path)] = export.export_run(f"pretrained:{LEGAN_NAME}", str(tmp_path), ["generator"])
    assert kind == "generator" and os.path.isfile(os.path.join(path, "saved_model.pb"))
    server = Server(str(tmp_path), grpc_port=0, rest_port=None)
    port = server.start()[0]
    try:
        address = f"127.0.0.1:{port}/{LEGAN_NAME}"
        editor = edit_photo.load_editor(address)
        assert editor.label_names == pretrained.label_names(LEGAN_NAME)
        Image.fromarray(samples.grace_hopper()).save(tmp_path / "hopper.png")
        before = samples.grace_hopper().astype(np.int16)
        sides = []
        for light in ("left_90", "right_90"):
            edit_photo.edit_photo(address, str(tmp_path / "hopper.png"), str(tmp_path / f"{light}.png"),
                                  expression="happy", lighting=light, editor=editor)
            after = np.asarray(Image.open(tmp_path / f"{light}.png"), np.int16)
            changed = np.abs(after - before).max(axis=2) > 0
            assert changed.any() and changed.mean() < 0.2  # the face only
            sides.append(after.astype(np.float32).mean(axis=2))
        # The two edits differ on the face: the light's side differs.
        assert np.abs(sides[0] - sides[1]).max() > 10
        with pytest.raises(ConfigError, match="sideways"):
            edit_photo.edit_photo(address, str(tmp_path / "hopper.png"), str(tmp_path / "x.png"),
                                  expression="happy", lighting="sideways", editor=editor)
        assert not os.path.exists(tmp_path / "x.png")
    finally:
        server.stop()
