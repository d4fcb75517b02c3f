"""SavedModel export: the TF-Serving layout, versions, signatures equal to the Keras models, the model card."""

import io
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from legan_tf.models.legan import LEGANGenerator
from legan_tf.serving import export
from legan_tf.errors import ConfigError
from tests.serving.conftest import LABEL_NAMES, SIZE, face, png_bytes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = {"legan": "generator.keras", "quality": "quality_model.keras", "classifier": "attribute_classifier.keras",
         "identity": "identity_model.keras"}
# Graph execution may fuse and re-associate the float32 ops that eager Keras runs one by one: each of the
# tiny networks' ~20 layers sums <= 5*5*16 products of values of order 1, re-ordered by at most that
# many roundings of 6e-8, so outputs of order 1-10 agree to far better than 1e-5 relative.
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def _load(serving_dir, name, version=1):
    return tf.saved_model.load(str(serving_dir / name / str(version)))


def test_every_model_of_the_run_is_a_version_in_the_tf_serving_layout(serving_dir):
    for name in NAMES:
        assert (serving_dir / name / "1" / "saved_model.pb").is_file(), name
        assert (serving_dir / name / "1" / "variables").is_dir(), name
        assert (serving_dir / name / "1" / "assets" / export.MODEL_CARD).is_file(), name
    config = (serving_dir / export.MODELS_CONFIG).read_text()
    for name in NAMES:
        assert f'name: "{name}"\n    base_path: "/models/{name}"' in config
    assert "max_batch_size { value: 32 }" in (serving_dir / export.BATCHING_CONFIG).read_text()
    assert not [entry for entry in os.listdir(serving_dir / "legan") if entry.startswith(".")]  # no staging left
    # Not mkdtemp's private 0700: a version gets what any new folder gets here, so a server's user can read it.
    os.mkdir(serving_dir / "plain-folder")
    plain = os.stat(serving_dir / "plain-folder").st_mode & 0o777
    os.rmdir(serving_dir / "plain-folder")
    assert os.stat(serving_dir / "legan" / "1").st_mode & 0o777 == plain


def test_a_second_export_is_a_new_version_and_leaves_the_first_untouched(tiny_run, tmp_path):
    root = tmp_path / "models"
    export.export_run(str(tiny_run), str(root), kinds=("quality",))
    first = (root / "quality" / "1" / "saved_model.pb").read_bytes()
    exported = export.export_run(str(tiny_run), str(root), kinds=("quality",))
    assert exported == [("quality", str(root / "quality" / "2"))]
    assert export.versions(str(root / "quality")) == [1, 2]
    assert (root / "quality" / "1" / "saved_model.pb").read_bytes() == first
    assert "# quality, version 2" in (root / "quality" / "2" / "assets" / export.MODEL_CARD).read_text()


def test_float_signatures_equal_the_keras_models(tiny_run, serving_dir):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.zeros((3, 7), np.float32)
    labels[np.arange(3), [0, 1, 2]] = 1
    labels[np.arange(3), 3 + np.array([3, 0, 1])] = 1
    keras_models = {name: keras.models.load_model(str(tiny_run / filename)) for name, filename in NAMES.items()}

    got = _load(serving_dir, "legan").signatures["translate"](images=images, labels=labels)["images"]
    np.testing.assert_allclose(got, keras_models["legan"]((images, labels)), **TOLERANCE)
    got = _load(serving_dir, "quality").signatures["score"](images=images)["quality"]
    np.testing.assert_allclose(got, np.reshape(keras_models["quality"](images), [-1]), **TOLERANCE)
    got = _load(serving_dir, "identity").signatures["embed"](images=images)["embedding"]
    np.testing.assert_allclose(got, keras_models["identity"](images), **TOLERANCE)
    got = _load(serving_dir, "classifier").signatures["classify"](images=images)
    logits = keras_models["classifier"](images)
    for attribute, names in LABEL_NAMES.items():
        np.testing.assert_allclose(got[f"{attribute}_probabilities"], tf.nn.softmax(logits[attribute]), **TOLERANCE)
        expected = [names[i].encode() for i in np.argmax(logits[attribute], -1)]
        assert list(got[attribute].numpy()) == expected


def test_bytes_signature_round_trips_a_png_face_and_matches_the_float_signature(serving_dir):
    generator = _load(serving_dir, "legan")
    pixels = face(1)
    out = generator.signatures["serving_default"](images_bytes=tf.constant([png_bytes(pixels)]),
                                                  expression=tf.constant(["smile"]), lighting=tf.constant(["03"]))
    edited = np.asarray(Image.open(io.BytesIO(out["images_bytes"].numpy()[0])))
    assert edited.shape == (SIZE, SIZE, 3)
    labels = np.zeros((1, 7), np.float32)
    labels[0, [1, 3 + 3]] = 1
    # A PNG at the model's size decodes to the same floats (the resize to its own size is exact).
    floats = generator.signatures["translate"](images=(pixels[None] / 127.5 - 1).astype(np.float32),
                                               labels=labels)["images"].numpy()[0]
    expected = np.round(np.clip((floats + 1) * 127.5, 0, 255))
    # Quantised to 8 bits on both sides: at most one level apart where a value sits on a rounding edge.
    assert np.abs(edited.astype(int) - expected.astype(int)).max() <= 1


def test_bytes_signature_takes_any_size_and_returns_each_face_at_its_crop_size(serving_dir):
    generator = _load(serving_dir, "legan")
    wide, small = png_bytes(face(2, 48, 80)), png_bytes(face(3, 20, 20))
    out = generator.signatures["serving_default"](images_bytes=tf.constant([wide, small]),
                                                  expression=tf.constant(["neutral", "surprise"]),
                                                  lighting=tf.constant(["00", "01"]))["images_bytes"].numpy()
    assert [Image.open(io.BytesIO(png)).size for png in out] == [(48, 48), (20, 20)]


def test_label_names_are_inside_the_graph_and_an_unknown_one_is_an_error(serving_dir):
    generator = _load(serving_dir, "legan").signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"unknown expression name\(s\):.*laugh.*neutral, smile, surprise"):
        generator(images_bytes=tf.constant([png_bytes(face())]), expression=tf.constant(["laugh"]),
                  lighting=tf.constant(["00"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one lighting name per image"):
        generator(images_bytes=tf.constant([png_bytes(face())] * 2), expression=tf.constant(["smile", "smile"]),
                  lighting=tf.constant(["00"]))


def test_model_card_names_signatures_inputs_labels_run_and_metrics(tiny_run, serving_dir):
    card = (serving_dir / "legan" / "1" / "assets" / export.MODEL_CARD).read_text()
    for text in ("### `serving_default`", "### `translate`", "`images_bytes`", "`expression`", "`labels`",
                 "`smile`", "`03`", str(tiny_run), "eval/cycle_l1", "--model=legan"):
        assert text in card, text
    classifier_card = (serving_dir / "classifier" / "1" / "assets" / export.MODEL_CARD).read_text()
    assert "`expression_probabilities`" in classifier_card and "`surprise`" in classifier_card


def test_a_run_without_models_or_labels_gets_a_clear_error(tiny_run, tmp_path):
    empty = tmp_path / "run"
    empty.mkdir()
    (empty / "flags.txt").write_text("--task=stargan\n")
    with pytest.raises(ConfigError, match="has not finished"):
        export.export_run(str(empty), str(tmp_path / "models"))
    (empty / "generator.keras").write_bytes((tiny_run / "generator.keras").read_bytes())
    (empty / "flags.txt").write_text("--task=stargan\n--data_format=multipie\n--data_path=/nonexistent/m.csv\n")
    with pytest.raises(ConfigError, match="no labels.json .* cannot be opened"):
        export.export_run(str(empty), str(tmp_path / "models"))


def test_a_generator_whose_label_count_differs_from_the_names_is_refused(tiny_run):
    generator = keras.models.load_model(str(tiny_run / "generator.keras"))
    with pytest.raises(ConfigError, match="takes 7 labels but the run's label names give 3"):
        export.GeneratorModule(generator, {"expression": LABEL_NAMES["expression"]})


LOAD_SCRIPT = """
import sys, numpy as np, keras
import legan_tf  # registers the project's classes; nothing else is imported
assert "legan_tf.serving.export" not in sys.modules and "tests" not in sys.modules
for path in sys.argv[1:]:
    model = keras.saving.load_model(path, safe_mode=True)
    print(type(model).__name__, model.count_params())
"""


def test_every_keras_file_loads_in_a_fresh_process_that_imports_only_legan_tf(tiny_run, tmp_path):
    paths = [str(tiny_run / filename) for filename in NAMES.values()]
    result = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, *paths], capture_output=True, text=True,
                            cwd=str(tmp_path), timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["LEGANGenerator", "QualityModel", "AttributeClassifier", "IdentityEmbedder"]


def test_export_script_writes_versions_and_prints_the_serve_and_edit_commands(tiny_run, tmp_path):
    root = tmp_path / "models"
    command = [sys.executable, os.path.join(REPO, "scripts", "export.py"), f"--run_dir={tiny_run}",
               f"--serving_dir={root}", "--models=generator", "--example_image=face.png"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (root / "legan" / "1" / "saved_model.pb").is_file() and not (root / "quality").exists()
    assert f"serving/server.py --model_dir={root}" in result.stdout
    assert "tensorflow/serving --model_config_file=/models/models.config" in result.stdout
    assert ("serving/client.py --server=localhost:8500 --model=legan --image=face.png --expression=smile "
            "--lighting=02 --output=edited.png") in result.stdout

    bad = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "export.py"), f"--run_dir={tmp_path}/none"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: --run_dir=")


def test_a_stargan_generator_with_expression_labels_only_takes_just_that_name(tmp_path):
    from legan_tf.models.stargan import StarGANGenerator

    generator = StarGANGenerator(SIZE, num_labels=3, base_filters=4, num_residual_blocks=1)
    generator((np.zeros((1, SIZE, SIZE, 3), np.float32), np.zeros((1, 3), np.float32)))
    path = export.export_model(generator, "generator", str(tmp_path), "stargan",
                               {"expression": LABEL_NAMES["expression"]})
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["expression", "images_bytes"]
    pixels = face(11)
    png = signature(images_bytes=tf.constant([png_bytes(pixels)]), expression=tf.constant(["surprise"]))["images_bytes"]
    edited = np.asarray(Image.open(io.BytesIO(png.numpy()[0])), np.int32)
    floats = generator(((pixels[None] / 127.5 - 1).astype(np.float32), np.eye(3, dtype=np.float32)[[2]])).numpy()[0]
    # Same maths in eager Keras and in the graph, then 8-bit quantisation: at most one level apart.
    assert np.abs(edited - np.round(np.clip((floats + 1) * 127.5, 0, 255))).max() <= 1


@pytest.mark.parametrize("options", [{}, {"expression_output": "warp", "warp_grid": 8}], ids=["ratio", "ratio+warp"])
def test_a_legan_with_a_shading_ratio_exports_and_its_translation_matches(tmp_path, options):
    """LEGAN with lighting_output="ratio" (its ratio resizes a coarse grid bilinearly inside the graph), and with
    expression_output="warp" too (a gather of the moved pixels inside the graph): the export's float signature
    gives the Keras model's translation, and the bytes signature takes lighting names."""
    keras.utils.set_random_seed(0)
    generator = LEGANGenerator(SIZE, 3, 4, base_filters=4, num_residual_blocks=1, upsampling="resize",
                               output_mode="attention", grey_colour=True, lighting_output="ratio", shading_grid=8,
                               name="generator", **options)
    images = np.random.default_rng(2).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.zeros((2, 7), np.float32)
    labels[[0, 1], [0, 2]] = 1
    labels[[0, 1], [4, 6]] = 1
    expected = generator((images, labels))
    path = export.export_model(generator, "generator", str(tmp_path), "legan", LABEL_NAMES)
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded.signatures["translate"](images=images, labels=labels)["images"], expected,
                               **TOLERANCE)
    signature = loaded.signatures["serving_default"]
    png = signature(images_bytes=tf.constant([png_bytes(face(3))]), expression=tf.constant(["smile"]),
                    lighting=tf.constant(["02"]))["images_bytes"]
    assert np.asarray(Image.open(io.BytesIO(png.numpy()[0]))).shape == (SIZE, SIZE, 3)


def test_a_multi_label_generator_takes_comma_separated_attributes_and_its_classifier_answers_them(tmp_path):
    """CelebA's attributes: one string per image naming the attributes it should have; the classifier's answer
    names those it reads as present."""
    from legan_tf.models.classifier import AttributeClassifier
    from legan_tf.models.stargan import StarGANGenerator

    names = ("Black_Hair", "Blond_Hair", "Male")
    generator = StarGANGenerator(SIZE, num_labels=3, base_filters=4, num_residual_blocks=1)
    generator((np.zeros((1, SIZE, SIZE, 3), np.float32), np.zeros((1, 3), np.float32)))
    path = export.export_model(generator, "generator", str(tmp_path), "celeba", {"attributes": names})
    signature = tf.saved_model.load(path).signatures["serving_default"]
    pixels = [face(3), face(4), face(5)]
    wanted = ["Blond_Hair, Male", "", "Black_Hair"]
    pngs = signature(images_bytes=tf.constant([png_bytes(p) for p in pixels]),
                     attributes=tf.constant(wanted))["images_bytes"].numpy()
    vectors = np.array([[0, 1, 1], [0, 0, 0], [1, 0, 0]], np.float32)
    floats = generator(((np.stack(pixels) / 127.5 - 1).astype(np.float32), vectors)).numpy()
    for png, expected in zip(pngs, floats):
        edited = np.asarray(Image.open(io.BytesIO(png)), np.int32)
        assert np.abs(edited - np.round(np.clip((expected + 1) * 127.5, 0, 255))).max() <= 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="unknown attributes name"):
        signature(images_bytes=tf.constant([png_bytes(pixels[0])]), attributes=tf.constant(["Blonde_Hair"]))

    classifier = AttributeClassifier(image_size=SIZE, head_classes={"attributes": 3}, base_filters=4,
                                     num_downsamples=2)
    classifier(np.zeros((1, SIZE, SIZE, 3), np.float32))
    path = export.export_model(classifier, "classifier", str(tmp_path), "judge", {"attributes": names})
    classify = tf.saved_model.load(path).signatures["classify"]
    images = (np.stack(pixels) / 127.5 - 1).astype(np.float32)
    answer = classify(images=tf.constant(images))
    logits = classifier(images)["attributes"].numpy()
    np.testing.assert_allclose(answer["attributes_probabilities"].numpy(), 1 / (1 + np.exp(-logits)), **TOLERANCE)
    assert [value.decode() for value in answer["attributes"].numpy()] == [
        ",".join(name for name, on in zip(names, row > 0) if on) for row in logits]
