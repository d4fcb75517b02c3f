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


def test_names_list_the_shipped_model_and_its_record_matches_its_file():
    assert NAME in pretrained.names()
    meta = pretrained.info(NAME)
    path = os.path.join(pretrained.folder(NAME), pretrained.GENERATOR_FILE)
    with open(path, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == meta["sha256"]
    assert os.path.getsize(path) == meta["bytes"] and meta["bytes"] < 8 * 2 ** 20  # "a few MB"
    assert pretrained.verify(f"{pretrained.PREFIX}{NAME}") == path
    card = pretrained.card(NAME)
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
    from legan_tf.photos import faces as face_tools

    photo = samples.astronaut()
    found, _ = face_tools.FaceFinder("auto")(photo)
    _, crops = face_tools.align(photo, found, 64)
    grey = crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    x = np.repeat(grey[..., None], 3, axis=-1) / 127.5 - 1.0
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
