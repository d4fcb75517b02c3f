"""StarGAN's label vector, the one way every part of the project builds it."""

from typing import Mapping

from keras import ops


def one_hot_labels(ids: Mapping[str, object], label_sizes: Mapping[str, int]):
    """(B, sum of sizes) float32: each attribute's ids one-hot, concatenated in the order of `label_sizes`.

    `ids` maps attribute names to int ids (tensors or numpy arrays). Out-of-range ids give all-zero
    groups (one_hot's rule on both backends), so callers that take ids from users check them first.
    """
    return ops.concatenate([ops.one_hot(ops.cast(ids[name], "int32"), size, dtype="float32")
                            for name, size in label_sizes.items()], axis=-1)
