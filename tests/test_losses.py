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
