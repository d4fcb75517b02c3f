"""StarGAN's label vector, the one way every part of the project builds it."""

from typing import Mapping

import tensorflow as tf


def one_hot_labels(ids: Mapping[str, object], label_sizes: Mapping[str, int]) -> tf.Tensor:
    """(B, sum of sizes) float32: each attribute's ids one-hot, concatenated in the order of `label_sizes`.

    `ids` maps attribute names to int ids (tensors or numpy arrays). Out-of-range ids give all-zero
    groups (tf.one_hot's rule), so callers that take ids from users check them first.
    """
    return tf.concat([tf.one_hot(tf.cast(ids[name], tf.int32), size) for name, size in label_sizes.items()], axis=-1)
