"""Loss functions: small pure functions of tensors. They know nothing about networks or data."""

import tensorflow as tf


def margin_loss(predicted, mean, std, squared=False):
    """LEGAN's margin-based regression loss for Q, per example.

    No penalty while the prediction lies inside the raters' band mean +- std; outside it, the
    distance to the band (L1), or its square with `squared=True` (the squared-hinge variant). With
    std = 0 it is plain L1 (or L2) to the mean. Shapes broadcast; (batch, 1) predictions are
    flattened to (batch,).
    """
    predicted = tf.reshape(tf.cast(predicted, tf.float32), [-1])
    mean = tf.reshape(tf.cast(mean, tf.float32), [-1])
    std = tf.reshape(tf.cast(std, tf.float32), [-1])
    outside = tf.nn.relu(tf.abs(predicted - mean) - std)
    return tf.square(outside) if squared else outside
