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
from legan_tf.gan.base import critic_on_real_and_fake
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
    # The gradient is w, whose float32 squared norm is 1 within eps ~ 150 * 6e-8 = 9e-6 (numpy's normalising and
    # tf's 75-term sum); (sqrt(1 + eps) - 1)**2 ~ eps**2 / 4 < 1e-10.
    np.testing.assert_allclose(np.asarray(penalty), 0.0, atol=1e-6)


def test_gradient_penalty_of_a_linear_critic_with_norm_3_is_4():
    real = RNG.normal(size=(3, 4, 4, 2)).astype(np.float32)
    fake = RNG.normal(size=(3, 4, 4, 2)).astype(np.float32)
    penalty = gradient_penalty(_linear_critic(_unit((4, 4, 2), 3.0)), real, fake)
    # |w|**2 = 9 within eps <= ~70 * 6e-8 (numpy's 32-term norm and scaling, tf's 32-term sum of squares);
    # (3 sqrt(1 + eps) - 1)**2 moves by 1.5 eps relative, plus a few roundings: < 7e-6.
    np.testing.assert_allclose(np.asarray(penalty), (3.0 - 1.0) ** 2, rtol=1e-5)


def test_gradient_penalty_sums_patch_outputs_and_uses_one_alpha_per_example():
    # Patch critic: two linear patches; the gradient of their sum is w1 + w2.
    w1, w2 = _unit((2, 2, 1), 1.0), _unit((2, 2, 1), 1.0)
    critic = lambda x: tf.stack([tf.reduce_sum(w1 * x, [1, 2, 3]), tf.reduce_sum(w2 * x, [1, 2, 3])], axis=1)
    real = np.zeros((2, 2, 2, 1), np.float32)
    penalty = gradient_penalty(critic, real, real)
    # The gradient is float32 w1 + w2 (one rounding, as here); against its float64 norm N <= 2, tf's 4-term sum,
    # sqrt and square move (N - 1)**2 <= 1 by <= 2 |N - 1| * 6 * 6e-8 + 6e-8 < 1e-6. Absolute, as N may be near 1.
    expected = (np.linalg.norm((w1 + w2).astype(np.float64)) - 1.0) ** 2
    np.testing.assert_allclose(np.asarray(penalty), expected, rtol=0, atol=1e-6)

    # Quadratic critic: the gradient is x_hat itself, so the norm reveals the interpolation.
    real = np.ones((2, 2, 2, 1), np.float32)
    fake = np.zeros((2, 2, 2, 1), np.float32)
    alpha = np.array([0.25, 1.0], np.float32)
    penalty = gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, [1, 2, 3]), real, fake, alpha=alpha)
    # x_hat = alpha everywhere (4 pixels): norm 2 * alpha.
    # Exact: alpha in {0.25, 1}, so every value is a power of two or a sum of them; the 1e-12 is below half an ulp.
    np.testing.assert_array_equal(np.asarray(penalty), (2.0 * alpha - 1.0) ** 2)


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


def test_one_critic_call_on_real_and_fake_equals_two_calls_in_outputs_and_weight_gradients():
    discriminator = StarGANDiscriminator(image_size=32, num_labels=5, base_filters=8, num_downsamples=3,
                                         head_classes={"expression": 3, "lighting": 2})
    real = RNG.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    fake = RNG.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    discriminator(real)

    def loss(real_scores, fake_scores, real_logits):
        return (tf.reduce_mean(wasserstein_critic_loss(real_scores, fake_scores))
                + tf.reduce_mean(classification_loss(real_logits["expression"], [0, 1, 2]))
                + tf.reduce_mean(classification_loss(real_logits["lighting"], [1, 0, 1])))

    with tf.GradientTape(persistent=True) as tape:
        merged = critic_on_real_and_fake(discriminator, real, fake)
        real_scores, real_logits = discriminator(real, training=True)
        fake_scores, _ = discriminator(fake, training=True)
        merged_loss, separate_loss = loss(*merged), loss(real_scores, fake_scores, real_logits)
    # Each output is the same sums of products; oneDNN may block a batch of 6 differently from one of 3, so
    # the summation order, not the terms, can differ. A dot product of K float32 terms moves by at most
    # K * 6e-8 of the sum of |terms| under reordering; here K <= 4 * 4 * 32 = 512 (3e-5) per layer over 4
    # layers, each scaled by weights of fan-in variance: 1e-4 of the outputs' scale bounds it.
    for merged_value, separate_value in [(merged[0], real_scores), (merged[1], fake_scores),
                                         (merged[2]["expression"], real_logits["expression"]),
                                         (merged[2]["lighting"], real_logits["lighting"])]:
        assert merged_value.shape == separate_value.shape
        scale = 1.0 + np.abs(np.asarray(separate_value)).max()
        np.testing.assert_allclose(np.asarray(merged_value), np.asarray(separate_value), rtol=0, atol=1e-4 * scale)
    for merged_gradient, separate_gradient in zip(tape.gradient(merged_loss, discriminator.trainable_variables),
                                                  tape.gradient(separate_loss, discriminator.trainable_variables)):
        scale = 1.0 + np.abs(np.asarray(separate_gradient)).max()
        np.testing.assert_allclose(np.asarray(merged_gradient), np.asarray(separate_gradient), rtol=0,
                                   atol=1e-4 * scale)


def test_wasserstein_losses_average_the_patch_map_per_example():
    # Exact: means of small integers over 4 cells.
    real = np.array([[1.0, 3.0, 2.0, 2.0], [0.0, 0.0, 0.0, 4.0]], np.float32).reshape(2, 2, 2, 1)
    fake = np.array([[-1.0, -1.0, 0.0, 2.0], [5.0, 5.0, 5.0, 5.0]], np.float32).reshape(2, 2, 2, 1)
    np.testing.assert_allclose(np.asarray(wasserstein_critic_loss(real, fake)), [-2.0 + 0.0, -1.0 + 5.0])
    np.testing.assert_allclose(np.asarray(wasserstein_generator_loss(fake)), [0.0, -5.0])
    np.testing.assert_allclose(np.asarray(wasserstein_generator_loss(np.array([1.5, -2.0]))), [-1.5, 2.0])


def test_single_label_classification_loss_is_softmax_cross_entropy():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    # The reference in float64: numpy's float32 exp and log differ by CPU (SIMD kernels of up to ~4 ulps).
    log_softmax = logits - np.log(np.exp(logits.astype(np.float64)).sum(axis=1, keepdims=True))
    expected = [-log_softmax[0, 2], -log_softmax[1, 0]]  # 0.40761, log 3
    np.testing.assert_allclose(expected, [0.4076059644, np.log(3.0)], rtol=1e-9)  # the constant has 10 digits
    # float32: exp of logits - max (<= 0), a 3-term sum and log, each within ~2 ulps: ~3.5 * 6e-8 absolute on 0.41
    # (the subtraction of the target's logit is exact), ~5e-7 relative.
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
    # float32: per label exact max(x, 0) - x z plus log1p(exp(-|x|)) (~2 ulps each), then a 2-term sum; all terms
    # positive, so <= ~8 * 6e-8 relative.
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6)


def test_cycle_loss_is_mean_absolute_error_per_example():
    original = np.zeros((2, 2, 2, 1), np.float32)
    reconstructed = np.array([[1, -1, 2, 0], [0.5, 0.5, 0.5, 0.5]], np.float32).reshape(2, 2, 2, 1)
    np.testing.assert_allclose(np.asarray(cycle_loss(original, reconstructed)), [1.0, 0.5])  # exact: halves / 4


def test_quality_loss_is_the_relative_shortfall_below_the_target():
    scores = np.array([[12.0], [10.0], [5.0], [-2.0]], np.float32)
    # float32: exact integer differences, then one rounding in / q_target (6e-8 relative).
    np.testing.assert_allclose(np.asarray(quality_loss(scores)), [0.0, 0.0, 0.5, 1.2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(quality_loss(np.array([3.0, 4.0]), q_target=5.0)), [0.4, 0.2], rtol=1e-6)


def test_identity_loss_is_one_minus_cosine():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [3.0, 4.0]], np.float32)
    b = np.array([[0.0, 1.0], [2.0, 2.0], [-1.0, 0.0], [4.0, 3.0]], np.float32)
    # float32: 2-term sums, rsqrt (<= 2 ulps) and products on values <= 1 put cos within ~6 * 6e-8 = 3.6e-7;
    # 1 - cos is exact where cos is near 1.
    np.testing.assert_allclose(np.asarray(identity_loss(a, b)), [1.0, 0.0, 2.0, 1.0 - 24.0 / 25.0], atol=1e-6)
