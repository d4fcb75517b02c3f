"""L2 projected gradient ascent (legan_tf.adversarial) and the classifier's adversarial training."""

import numpy as np
import pytest
from keras import ops

from legan_tf import adversarial, tasks
from legan_tf.losses import classification_loss


def _linear_loss(weights):
    w = ops.convert_to_tensor(weights)
    return lambda images: ops.sum(images * w, axis=(1, 2, 3))


@pytest.mark.parametrize("steps", [1, 3])
def test_a_linear_loss_is_raised_by_a_change_of_length_epsilon_along_its_gradient(steps):
    # The gradient of sum(x * w) is w everywhere: every step goes along w, the first already reaches
    # length 2.5 * eps / steps >= eps / 2 and the projection stops the walk at eps, so the answer is
    # exactly eps * w / |w| (float32 rounding of a few operations on O(1) numbers: atol 1e-6).
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    clean = np.zeros((2, 4, 4, 3), np.float32)
    result = ops.convert_to_numpy(adversarial.pgd_l2(_linear_loss(weights), clean, 0.5, steps))
    norms = np.sqrt(np.sum(weights ** 2, axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(result, 0.5 * weights / norms, atol=1e-6)


def test_the_change_stays_inside_the_ball_and_the_image_range():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(3, 8, 8, 3)).astype("float32")
    clean = rng.uniform(0.9, 1.0, (3, 8, 8, 3)).astype("float32")     # near the top of the range: clipping bites
    result = ops.convert_to_numpy(adversarial.pgd_l2(_linear_loss(weights), clean, 2.0, 4))
    assert result.max() <= 1.0 and result.min() >= -1.0
    change = np.sqrt(np.sum((result - clean) ** 2, axis=(1, 2, 3)))
    assert np.all(change <= 2.0 * (1 + 1e-6))
    # Each step adds a positive multiple of w, the projection scales the change by a positive factor
    # and clipping moves towards the clean pixel's range: every pixel moved in the direction of w or not at all.
    assert np.all(result[weights > 0] >= clean[weights > 0]) and np.all(result[weights < 0] <= clean[weights < 0])
    assert np.any(result[weights < 0] < clean[weights < 0] - 0.1)


def test_epsilon_zero_returns_the_images():
    images = np.random.default_rng(2).uniform(-1, 1, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(adversarial.pgd_l2(_linear_loss(images), images, 0.0, 3)),
                                  images)


def test_projection_keeps_short_changes_and_shortens_long_ones():
    change = np.zeros((2, 1, 1, 2), np.float32)
    change[0, 0, 0] = [0.3, 0.4]          # length 0.5: inside a ball of radius 1
    change[1, 0, 0] = [3.0, 4.0]          # length 5: scaled to 1
    projected = ops.convert_to_numpy(adversarial.project(change, 1.0))
    np.testing.assert_allclose(projected[0, 0, 0], [0.3, 0.4], atol=1e-7)
    np.testing.assert_allclose(projected[1, 0, 0], [0.6, 0.8], atol=1e-6)


def _classifier_task(epsilon, steps=2, train_steps=60):
    task = tasks.get_task_class("classifier")(label_names={"expression": ("dark", "bright")}, image_size=16,
                                              global_batch_size=8, train_steps=train_steps, learning_rate=3e-3,
                                              seed=0, base_filters=4, downsamples=2,
                                              adversarial_epsilon=epsilon, adversarial_steps=steps)
    task.build()
    return task


def _brightness_batch(rng):
    """Faces of mean -0.6 (class 0) or +0.6 (class 1) with noise: an easy problem whose margin, 1.2 per
    pixel over 768 values (L2 distance 33 between class means), dwarfs an epsilon of 1."""
    labels = rng.integers(0, 2, 8).astype("int32")
    images = (np.where(labels == 1, 0.6, -0.6)[:, None, None, None]
              + rng.normal(0, 0.2, (8, 16, 16, 3))).clip(-1, 1).astype("float32")
    return {"image": images, "expression": labels}


def test_the_attack_raises_each_examples_loss_on_a_real_classifier():
    # The first step goes eps along the normalised gradient g: the loss rises by about eps * |g| and
    # falls by at most O(eps^2) curvature terms; at eps = 1e-2 on a freshly built network (losses near
    # log 2, |g| of order 0.1 to 1) the rise dominates for every example.
    task = _classifier_task(1e-2)
    batch = _brightness_batch(np.random.default_rng(0))

    def losses(images):
        return ops.convert_to_numpy(classification_loss(task.model(images, training=False)["expression"],
                                                        batch["expression"]))

    attacked = task.adversarial_images(batch)
    assert np.all(losses(attacked) > losses(batch["image"]))


def test_adversarial_training_changes_the_update_and_still_learns_easy_faces():
    rng = np.random.default_rng(3)
    robust, plain = _classifier_task(1.0), _classifier_task(0.0)
    plain.model.set_weights(robust.model.get_weights())
    first = _brightness_batch(rng)
    robust.train_step(first)
    plain.train_step(first)
    changed = [np.max(np.abs(a - b)) for a, b in zip(robust.model.get_weights(), plain.model.get_weights())]
    assert max(changed) > 0          # the step trained on other faces than the clean ones
    for _ in range(59):
        robust.train_step(_brightness_batch(rng))
    evaluation = robust.evaluate([_brightness_batch(rng) for _ in range(4)])
    # Separable by a margin far wider than epsilon: both accuracies end near 1 (0.9 leaves room for
    # a few examples near the boundary after 60 Adam steps).
    assert evaluation["eval/accuracy/expression"] >= 0.9
    assert evaluation["eval/robust_accuracy/expression"] >= 0.9
    assert "eval/robust_accuracy/expression" not in plain.evaluate([_brightness_batch(rng)])
