import numpy as np
import pytest
import tensorflow as tf

from legan_tf.losses import margin_loss

# Every value here is exact in float32 (sums of halves and quarters; 5.2 - 5.0 rounds to 0.19999981, still under
# 0.3), so the default tolerances of assert_allclose and approx are never used up.


def test_margin_loss_is_zero_inside_the_band_and_l1_outside():
    predicted = [5.0, 7.5, 2.0, 6.0]
    mean = [5.5, 6.0, 4.0, 6.0]
    std = [1.0, 0.5, 0.5, 0.0]
    # |5-5.5|=0.5 <= 1 -> 0; |7.5-6|=1.5 -> 1.0; |2-4|=2 -> 1.5; exactly on the mean with s=0 -> 0
    np.testing.assert_allclose(margin_loss(predicted, mean, std), [0.0, 1.0, 1.5, 0.0])


def test_with_zero_std_it_is_plain_absolute_error():
    predicted = np.array([1.0, 9.0, 4.25])
    mean = np.array([3.0, 8.0, 4.0])
    np.testing.assert_allclose(margin_loss(predicted, mean, np.zeros(3)), [2.0, 1.0, 0.25])
    np.testing.assert_allclose(margin_loss(predicted, mean, np.zeros(3), squared=True), [4.0, 1.0, 0.0625])


def test_squared_hinge_squares_the_distance_to_the_band():
    np.testing.assert_allclose(margin_loss([7.5, 2.0, 5.2], [6.0, 4.0, 5.0], [0.5, 0.5, 0.3], squared=True),
                               [1.0, 2.25, 0.0])


def test_accepts_model_shaped_predictions_and_has_band_edge_gradients():
    predicted = tf.Variable([[7.0], [5.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(margin_loss(predicted, [6.0, 5.0], [0.5, 0.5]))
    gradient = tape.gradient(loss, predicted).numpy().reshape(-1)
    assert float(loss) == pytest.approx(0.5)
    np.testing.assert_allclose(gradient, [1.0, 0.0])  # pushed down outside the band, left alone inside


# The depth network's losses (Bodur et al. eq. 9-11).


def test_entropy_of_a_uniform_distribution_is_log_c_and_of_a_one_hot_zero():
    from legan_tf.losses import entropy

    # Equal logits give softmax 1/C exactly, and -sum(1/C log 1/C) = log C; float32 log and a sum of C equal
    # terms stay within a few u of it (u = 6e-8), far inside 1e-6.
    for classes in (2, 8):
        assert float(entropy(tf.zeros((1, classes)))[0]) == pytest.approx(np.log(classes), abs=1e-6)
    # A logit 100 above the rest: the others get probability e^-100, which float32 flushes to 0, so H is 0
    # (the 0 * log 0 terms are 0 * -100 here, since log_softmax stays finite).
    one_hot = tf.constant([[100.0, 0.0, 0.0, 0.0]])
    assert float(entropy(one_hot)[0]) == 0.0


def test_confidence_penalty_is_minus_beta_times_the_entropy_and_rewards_spread():
    from legan_tf.losses import confidence_penalty, entropy

    logits = tf.constant([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(confidence_penalty(logits, 0.5).numpy(), -0.5 * entropy(logits).numpy())
    # Its gradient moves logits toward uniform: the largest logit is pushed down.
    with tf.GradientTape() as tape:
        tape.watch(logits)
        penalty = tf.reduce_sum(confidence_penalty(logits, 1.0))
    gradient = tape.gradient(penalty, logits).numpy()
    assert gradient[0, 0] > 0 and gradient[0, 2] < 0  # descent lowers the top logit and raises the bottom one
    np.testing.assert_allclose(gradient[1], 0.0, atol=1e-7)  # uniform is the maximum of H


def test_pixel_l1_of_known_maps():
    from legan_tf.losses import l1_loss

    target = np.zeros((2, 4, 4, 1), np.float32)
    predicted = np.zeros((2, 4, 4, 1), np.float32)
    predicted[0, :2] = 0.5   # half the pixels off by 0.5 -> mean 0.25
    predicted[1] = -1.0      # every pixel off by 1
    np.testing.assert_array_equal(l1_loss(target, predicted).numpy(), [0.25, 1.0])


def test_perceptual_loss_averages_each_layers_l1():
    from legan_tf.losses import perceptual_loss

    first = [np.zeros((1, 4, 4, 2), np.float32), np.zeros((1, 2, 2, 8), np.float32)]
    second = [np.full((1, 4, 4, 2), 0.5, np.float32), np.ones((1, 2, 2, 8), np.float32)]
    # Layer means 0.5 and 1.0, whatever each layer's size: (0.5 + 1.0) / 2.
    np.testing.assert_array_equal(perceptual_loss(first, second).numpy(), [0.75])
    assert float(perceptual_loss(first, first)[0]) == 0.0
    with pytest.raises(ValueError, match="equally many"):
        perceptual_loss(first, second[:1])
