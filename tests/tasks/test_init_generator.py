"""--<recipe>_init_generator: a GAN recipe's G (and its average) starts from a trained generator of the same
architecture and labels; anything else is a one-line error before any network trains."""

import os

import keras
import numpy as np
import pytest

from legan_tf import pretrained
from legan_tf.errors import ConfigError
from legan_tf.labels import one_hot_labels
from legan_tf.runs import write_label_names
from legan_tf.tasks.legan import LEGANTask
from legan_tf.tasks.stargan import StarGANTask

NAMES = {"expression": ("a", "b", "c")}
TINY = dict(g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=5, ema_decay=0.9)


def _task(init_generator="", names=NAMES, image_size=32, **overrides):
    return StarGANTask(names, image_size, 4, 10, init_generator=init_generator, **{**TINY, **overrides})


def _trained(folder, names=NAMES, image_size=32, seed=5, **overrides):
    """A finished-looking generator: a built task's G with weights moved off their initial values, saved with
    its labels.json as a run directory's generator.keras is. Returns (path, weights)."""
    keras.utils.set_random_seed(seed)
    task = _task(names=names, image_size=image_size, **overrides)
    task.build()
    generator = task.model.generator
    rng = np.random.default_rng(seed)
    generator.set_weights([weight + rng.normal(0, 0.05, weight.shape).astype(weight.dtype)
                           for weight in generator.get_weights()])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "generator.keras")
    generator.save(path)
    write_label_names(folder, names)
    return path, generator.get_weights()


def test_g_and_its_average_start_from_the_given_generator_and_d_starts_afresh(tmp_path):
    path, weights = _trained(str(tmp_path / "run"))
    keras.utils.set_random_seed(0)
    fresh = _task()
    fresh.build()
    keras.utils.set_random_seed(0)
    task = _task(init_generator=path)
    task.prepare()
    task.build()
    for generator in (task.model.generator, task.model.generator_ema):
        assert all(np.array_equal(a, b) for a, b in zip(generator.get_weights(), weights))
    # Without the flag the same seed gives other weights: the start is the file's, not the seed's.
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.model.generator.get_weights(), weights))
    # D is built as usual (its weights are not the generator's business) and the optimizers hold no steps yet.
    assert [w.shape for w in task.model.discriminator.get_weights()] == \
        [w.shape for w in fresh.model.discriminator.get_weights()]
    assert int(task.model.g_optimizer.iterations) == 0 and int(task.model.d_optimizer.iterations) == 0
    # The same edit as the saved generator's, on a known batch.
    images = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    labels = one_hot_labels({"expression": np.array([0, 2])}, {"expression": 3})
    saved = keras.models.load_model(path)
    np.testing.assert_allclose(task.model.generator((images, labels)).numpy(), saved((images, labels)).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_a_directory_holding_generator_keras_works_as_the_file_does(tmp_path):
    folder = str(tmp_path / "run")
    _, weights = _trained(folder)
    with open(os.path.join(folder, "flags.txt"), "w") as handle:  # what makes a folder a run directory
        handle.write("--task=stargan\n")
    task = _task(init_generator=folder)
    task.build()  # build() reads the flag too when nobody called prepare()
    assert all(np.array_equal(a, b) for a, b in zip(task.model.generator.get_weights(), weights))


@pytest.mark.parametrize("saved, words", [
    (dict(names={"expression": ("a", "c", "b")}),
     r"its labels \(expression: a, c, b\) are not the data's \(expression: a, b, c\)"),
    (dict(names={"expression": ("a", "b", "c", "d")}), "are not the data's"),
    (dict(image_size=64), "it edits 64 px faces, but --image_size=32"),
    (dict(g_filters=8), r"another architecture than this recipe's generator \(weight 0 is"),
    (dict(g_residual_blocks=2), "another architecture than this recipe's generator"),
])
def test_a_generator_that_does_not_fit_is_a_one_line_error_naming_the_flag(tmp_path, saved, words):
    path, _ = _trained(str(tmp_path / "run"), **saved)
    with pytest.raises(ConfigError, match=words) as raised:
        _task(init_generator=path).prepare()
    assert "\n" not in str(raised.value) and str(raised.value).startswith(f"--stargan_init_generator={path}: ")


@pytest.mark.parametrize("spec, words", [
    ("/nowhere/generator.keras", "no such model"),
    ("pretrained:nothing", "pretrained:nothing"),
])
def test_a_missing_generator_is_a_one_line_error(spec, words):
    with pytest.raises(ConfigError, match=words) as raised:
        _task(init_generator=spec).prepare()
    assert "\n" not in str(raised.value)


def test_the_shipped_legan_starts_a_legan_of_its_own_settings_and_edits_as_it_does():
    """Fine-tuning the shipped LEGAN: a recipe with its generator flags starts from its weights exactly."""
    name = "legan-fer2013-relit-64"
    run = pretrained.folder(f"{pretrained.PREFIX}{name}")
    import json

    names = json.load(open(os.path.join(run, "labels.json")))
    names = {group: tuple(names[group]) for group in ("expression", "lighting")}
    task = LEGANTask(names, 64, 4, 10, data_features=("image", "expression", "lighting"), g_filters=32,
                     g_residual_blocks=3, g_output="attention", g_upsampling="resize", g_colour="grey", d_filters=4,
                     d_downsamples=5, lambda_qual=0.0, lambda_id=0.0, ema_decay=0.999,
                     init_generator=f"{pretrained.PREFIX}{name}")
    task.prepare()
    task.build()
    shipped = keras.models.load_model(os.path.join(run, "generator.keras"))
    images = np.random.default_rng(2).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    labels = one_hot_labels({"expression": np.array([3, 6]), "lighting": np.array([1, 10])},
                            {"expression": 7, "lighting": 11})
    np.testing.assert_allclose(task.model.sampling_generator((images, labels)).numpy(),
                               shipped((images, labels)).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="another architecture") as raised:
        LEGANTask(names, 64, 4, 10, data_features=("image", "expression", "lighting"), g_filters=16,
                  g_residual_blocks=3, g_output="attention", g_upsampling="resize", g_colour="grey", d_filters=4,
                  d_downsamples=5, lambda_qual=0.0, lambda_id=0.0,
                  init_generator=f"{pretrained.PREFIX}{name}").prepare()
    assert str(raised.value).startswith(f"--legan_init_generator={pretrained.PREFIX}{name}: ")
