import numpy as np
import tensorflow as tf

from legan_tf.losses import (
    classification_loss,
    cycle_loss,
    gradient_penalty,
    identity_loss,
    quality_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from legan_tf.models.stargan import StarGANDiscriminator

RNG = np.random.default_rng(0)


def _linear_critic(weights):
    weights = tf.constant(weights, tf.float32)
    return lambda x: tf.reduce_sum(weights * x, axis=[1, 2, 3])


def _unit(shape, norm):
    w = RNG.normal(size=shape).astype(np.float32)
    return (w / np.linalg.norm(w) * norm).astype(np.float32)


def test_gradient_penalty_vanishes_for_a_1_lipschitz_linear_critic():
    real = RNG.normal(size=(4, 5, 5, 3)).astype(np.float32)
    fake = RNG.normal(size=(4, 5, 5, 3)).astype(np.float32)
    penalty = gradient_penalty(_linear_critic(_unit((5, 5, 3), 1.0)), real, fake)
    assert penalty.shape == (4,)
    np.testing.assert_allclose(np.asarray(penalty), 0.0, atol=1e-6)


def test_gradient_penalty_of_a_linear_critic_with_norm_3_is_4():
    real = RNG.normal(size=(3, 4, 4, 2)).astype(np.float32)
    fake = RNG.normal(size=(3, 4, 4, 2)).astype(np.float32)
    penalty = gradient_penalty(_linear_critic(_unit((4, 4, 2), 3.0)), real, fake)
    np.testing.assert_allclose(np.asarray(penalty), (3.0 - 1.0) ** 2, rtol=1e-5)


def test_gradient_penalty_sums_patch_outputs_and_uses_one_alpha_per_example():
    # Patch critic: two linear patches; the gradient of their sum is w1 + w2.
    w1, w2 = _unit((2, 2, 1), 1.0), _unit((2, 2, 1), 1.0)
    critic = lambda x: tf.stack([tf.reduce_sum(w1 * x, [1, 2, 3]), tf.reduce_sum(w2 * x, [1, 2, 3])], axis=1)
    real = np.zeros((2, 2, 2, 1), np.float32)
    penalty = gradient_penalty(critic, real, real)
    np.testing.assert_allclose(np.asarray(penalty), (np.linalg.norm(w1 + w2) - 1.0) ** 2, rtol=1e-5)

    # Quadratic critic: the gradient is x_hat itself, so the norm reveals the interpolation.
    real = np.ones((2, 2, 2, 1), np.float32)
    fake = np.zeros((2, 2, 2, 1), np.float32)
    alpha = np.array([0.25, 1.0], np.float32)
    penalty = gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, [1, 2, 3]), real, fake, alpha=alpha)
    # x_hat = alpha everywhere (4 pixels): norm 2 * alpha.
    np.testing.assert_allclose(np.asarray(penalty), (2.0 * alpha - 1.0) ** 2, atol=1e-6)


def test_gradient_penalty_on_a_discriminator_is_finite_and_trains_its_weights():
    discriminator = StarGANDiscriminator(image_size=16, num_labels=2, base_filters=4, num_downsamples=2)
    real = RNG.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    fake = RNG.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    discriminator(real)
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(lambda x: discriminator(x)[0], real, fake)
        loss = tf.reduce_mean(penalty)
    assert penalty.shape == (3,) and np.all(np.isfinite(np.asarray(penalty)))
    gradients = tape.gradient(loss, discriminator.trainable_variables)
    for variable, gradient in zip(discriminator.trainable_variables, gradients):
        if "cls" in variable.path:  # the class head does not feed the real/fake map
            continue
        assert gradient is not None, variable.path
        assert np.all(np.isfinite(np.asarray(gradient))), variable.path
    assert any(np.abs(np.asarray(g)).max() > 0 for g in gradients if g is not None)


def test_wasserstein_losses_average_the_patch_map_per_example():
    real = np.array([[1.0, 3.0, 2.0, 2.0], [0.0, 0.0, 0.0, 4.0]], np.float32).reshape(2, 2, 2, 1)
    fake = np.array([[-1.0, -1.0, 0.0, 2.0], [5.0, 5.0, 5.0, 5.0]], np.float32).reshape(2, 2, 2, 1)
    np.testing.assert_allclose(np.asarray(wasserstein_critic_loss(real, fake)), [-2.0 + 0.0, -1.0 + 5.0])
    np.testing.assert_allclose(np.asarray(wasserstein_generator_loss(fake)), [0.0, -5.0])
    np.testing.assert_allclose(np.asarray(wasserstein_generator_loss(np.array([1.5, -2.0]))), [-1.5, 2.0])


def test_single_label_classification_loss_is_softmax_cross_entropy():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = [-log_softmax[0, 2], -log_softmax[1, 0]]  # 0.40761, log 3
    np.testing.assert_allclose(expected, [0.4076059644, np.log(3.0)], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(classification_loss(logits, np.array([2, 0]))), expected, rtol=1e-6)
    one_hot = np.array([[0, 0, 1], [1, 0, 0]], np.float32)
    np.testing.assert_allclose(np.asarray(classification_loss(logits, one_hot)), expected, rtol=1e-6)


def test_multi_label_classification_loss_sums_sigmoid_cross_entropy_over_labels():
    logits = np.array([[0.0, 2.0], [-1.0, 3.0]], np.float32)
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    # -log sigmoid(x) = log(1 + e^-x); -log(1 - sigmoid(x)) = log(1 + e^x)
    expected = [np.log(2.0) + np.log1p(np.exp(2.0)), np.log1p(np.exp(-1.0)) + np.log1p(np.exp(-3.0))]
    got = classification_loss(logits, labels, multi_label=True)
    assert got.shape == (2,)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6)


def test_cycle_loss_is_mean_absolute_error_per_example():
    original = np.zeros((2, 2, 2, 1), np.float32)
    reconstructed = np.array([[1, -1, 2, 0], [0.5, 0.5, 0.5, 0.5]], np.float32).reshape(2, 2, 2, 1)
    np.testing.assert_allclose(np.asarray(cycle_loss(original, reconstructed)), [1.0, 0.5])


def test_quality_loss_is_the_relative_shortfall_below_the_target():
    scores = np.array([[12.0], [10.0], [5.0], [-2.0]], np.float32)
    np.testing.assert_allclose(np.asarray(quality_loss(scores)), [0.0, 0.0, 0.5, 1.2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(quality_loss(np.array([3.0, 4.0]), q_target=5.0)), [0.4, 0.2], rtol=1e-6)


def test_identity_loss_is_one_minus_cosine():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [3.0, 4.0]], np.float32)
    b = np.array([[0.0, 1.0], [2.0, 2.0], [-1.0, 0.0], [4.0, 3.0]], np.float32)
    np.testing.assert_allclose(np.asarray(identity_loss(a, b)), [1.0, 0.0, 2.0, 1.0 - 24.0 / 25.0], atol=1e-6)
