"""Multi-label attributes (CelebA's, as StarGAN's reference trains them): the label vector, the targets, the
sigmoid classification in D and G, the reference's test-time edits, and learning on easy data."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf.gan.stargan import StarGAN
from legan_tf.labels import HAIR_COLOURS, flip_attribute, is_multi_label, names_flag, one_hot_labels

NAMES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
VECTORS = np.array([[1, 0, 0, 1, 1], [0, 1, 0, 0, 1], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0]], np.float32)


def test_only_the_attributes_group_is_multi_label():
    assert is_multi_label("attributes")
    assert not is_multi_label("expression") and not is_multi_label("lighting")
    assert names_flag("attributes") == "attribute_names" and names_flag("lighting") == "lighting_names"


def test_label_vector_puts_the_vectors_beside_one_hot_groups_in_order():
    labels = np.asarray(one_hot_labels({"expression": np.array([2, 0, 1, 0]), "attributes": VECTORS},
                                       {"expression": 3, "attributes": 5}))
    np.testing.assert_array_equal(labels[:, :3], np.eye(3)[[2, 0, 1, 0]])
    np.testing.assert_array_equal(labels[:, 3:], VECTORS)
    with pytest.raises(ValueError, match="hold 5 values, the label vector 4"):
        one_hot_labels({"attributes": VECTORS}, {"attributes": 4})


def test_flip_sets_one_hair_colour_and_flips_the_others():
    blond = flip_attribute(VECTORS, NAMES, 1)
    # Hair colour: Blond set, Black and Brown cleared, Male and Young kept, whatever the face had.
    np.testing.assert_array_equal(blond, [[0, 1, 0, 1, 1], [0, 1, 0, 0, 1], [0, 1, 0, 1, 0], [0, 1, 0, 0, 0]])
    male = flip_attribute(VECTORS, NAMES, 3)
    np.testing.assert_array_equal(male[:, 3], 1 - VECTORS[:, 3])
    np.testing.assert_array_equal(np.delete(male, 3, axis=1), np.delete(VECTORS, 3, axis=1))
    np.testing.assert_array_equal(VECTORS[0], [1, 0, 0, 1, 1])  # the input is not changed in place
    assert set(NAMES[:3]) <= set(HAIR_COLOURS)
    with pytest.raises(ValueError, match="out of range"):
        flip_attribute(VECTORS, NAMES, 5)


def _model(**overrides):
    keras.utils.set_random_seed(0)
    model = StarGAN(image_size=16, label_sizes={"attributes": 5}, global_batch_size=4, g_filters=4,
                    g_residual_blocks=1, d_filters=4, d_downsamples=4, **overrides)
    model.build_all(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    return model


def _batch(vectors=VECTORS, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": tf.constant(rng.uniform(-1, 1, (len(vectors), 16, 16, 3)).astype(np.float32)),
            "attributes": tf.constant(vectors)}


def test_training_targets_are_a_permutation_of_the_batch_vectors_and_change_with_the_step():
    model = _model()
    batch = _batch()
    seen = set()
    for step in range(1, 9):
        targets = np.asarray(model.random_targets(batch, step)["attributes"])
        # Every target is some face's own vector, each face's used once: a permutation of the rows.
        assert sorted(map(tuple, targets)) == sorted(map(tuple, VECTORS))
        seen.add(tuple(map(tuple, targets)))
        np.testing.assert_array_equal(targets, np.asarray(model.random_targets(batch, step)["attributes"]))
    assert len(seen) > 1  # 8 steps of 24 permutations each: all equal has chance 24**-7


def test_classification_terms_are_sigmoid_cross_entropy_summed_over_attributes():
    model = _model()
    logits = {"attributes": tf.constant([[2.0, -1.0, 0.0, 3.0, -2.0]])}
    ids = {"attributes": tf.constant([[1.0, 0.0, 1.0, 0.0, 0.0]])}
    z, y = np.array([2.0, -1.0, 0.0, 3.0, -2.0]), np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    expected = np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    np.testing.assert_allclose(np.asarray(model._classification(logits, ids)), [expected], rtol=1e-5)


def test_both_steps_run_and_d_learns_attributes_it_can_see():
    """Each attribute is visible (a band of rows brighter or darker), so D's sigmoid heads learn them: 200 D steps
    take held-out accuracy from chance (0.5 per attribute) to at least 0.9 (1.0 in a few dozen steps more)."""
    keras.utils.set_random_seed(0)
    model = StarGAN(image_size=16, label_sizes={"attributes": 5}, global_batch_size=4, g_filters=4,
                    g_residual_blocks=1, d_filters=8, d_downsamples=4, lambda_rec=1.0)
    model.build_all(keras.optimizers.Adam(2e-3), keras.optimizers.Adam(2e-3))
    rng = np.random.default_rng(1)

    def easy_batch(count=4):
        vectors = rng.integers(0, 2, (count, 5)).astype(np.float32)
        image = rng.normal(0, 0.1, (count, 16, 16, 3)).astype(np.float32)
        for k in range(5):  # attribute k brightens (1) or darkens (0) rows 3k..3k+2
            image[:, 3 * k:3 * k + 3] += 0.8 * (2 * vectors[:, k, None, None, None] - 1)
        return {"image": tf.constant(np.clip(image, -1, 1)), "attributes": tf.constant(vectors)}

    def accuracy():
        test = easy_batch(64)
        _, logits = model.discriminator(test["image"])
        return np.mean((np.asarray(logits["attributes"]) > 0) == (np.asarray(test["attributes"]) > 0.5))

    before = accuracy()
    d_step, g_step = tf.function(model.discriminator_step), tf.function(model.generator_step)
    for step in range(1, 201):
        d_step(easy_batch(), tf.constant(step))
        if step % 5 == 0:
            metrics = g_step(easy_batch(), tf.constant(step))
            assert np.isfinite(float(metrics["g/classification"])) and np.isfinite(float(metrics["g/total"]))
    # 320 attribute readings: chance gives 0.5 +- 0.03, so 0.75 is beyond noise before and 0.9 is learning after.
    assert before < 0.75 and accuracy() >= 0.9


def _easy_batch(rng, count):
    """Faces whose attribute k brightens (1) or darkens (0) rows 3k..3k+2: each attribute can be seen."""
    vectors = rng.integers(0, 2, (count, 5)).astype(np.float32)
    image = rng.normal(0, 0.1, (count, 16, 16, 3)).astype(np.float32)
    for k in range(5):
        image[:, 3 * k:3 * k + 3] += 0.8 * (2 * vectors[:, k, None, None, None] - 1)
    return {"image": tf.constant(np.clip(image, -1, 1)), "attributes": tf.constant(vectors)}


def test_classifier_recipe_learns_multi_label_attributes_and_reports_each():
    from legan_tf.tasks.classifier import ClassifierTask

    keras.utils.set_random_seed(0)
    task = ClassifierTask({"attributes": NAMES}, 16, 8, 150, learning_rate=3e-3, base_filters=8, downsamples=2)
    task.build()
    rng = np.random.default_rng(3)
    metrics = task.evaluate([_easy_batch(rng, 32), _easy_batch(rng, 32)])
    assert metrics["eval/accuracy/attributes"] < 0.75  # chance: 0.5 +- 0.03 over 320 readings
    step = tf.function(task.train_step)
    for _ in range(150):
        step(_easy_batch(rng, 8))
    test = [_easy_batch(rng, 32), _easy_batch(rng, 32)]
    metrics = task.evaluate(test)
    assert metrics["eval/accuracy/attributes"] >= 0.9
    each = [metrics[f"eval/accuracy/{name}"] for name in NAMES]
    assert all(0.8 <= value <= 1.0 for value in each)
    # The mean over the five attributes is the group's figure.
    np.testing.assert_allclose(np.mean(each), metrics["eval/accuracy/attributes"])
    predicted = task.predict(test[0]["image"])["attributes"]
    assert predicted.shape == (32, 5) and set(np.unique(predicted)) <= {0.0, 1.0}
    assert task.sample_grid(test[0]).ndim == 3
