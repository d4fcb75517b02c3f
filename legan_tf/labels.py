"""StarGAN's label vector, the one way every part of the project builds it, and the attributes it holds."""

from typing import Dict, Mapping, Optional, Sequence

from keras import ops

from legan_tf.errors import ConfigError

# The attributes a label vector may hold, in the order it holds them.
ATTRIBUTES = ("expression", "lighting")


def one_hot_labels(ids: Mapping[str, object], label_sizes: Mapping[str, int]):
    """(B, sum of sizes) float32: each attribute's ids one-hot, concatenated in the order of `label_sizes`.

    `ids` maps attribute names to int ids (tensors or numpy arrays). Out-of-range ids give all-zero
    groups (one_hot's rule on both backends), so callers that take ids from users check them first.
    """
    return ops.concatenate([ops.one_hot(ops.cast(ids[name], "int32"), size, dtype="float32")
                            for name, size in label_sizes.items()], axis=-1)


def generator_label_sizes(generator, data_labels: Mapping[str, Sequence[str]],
                          generator_labels: Optional[Mapping[str, Sequence[str]]], where: str) -> Dict[str, int]:
    """The attributes of the generator's label vector and their sizes, in its order; checks that they are
    the data's classes (same names, same order) and that they add up to the generator's label count."""
    if generator_labels is None:
        generator_labels = {name: data_labels[name] for name in ATTRIBUTES if name in data_labels}
        described = "the data's labels (no labels.json beside the generator; --generator_labels names one)"
    else:
        described = "its labels.json"
    for name, names in generator_labels.items():
        if name not in data_labels:
            raise ConfigError(f"{where}: the generator also takes {name} labels, which the data lacks, so the "
                              f"source faces' {name} could not be kept.")
        if tuple(names) != tuple(data_labels[name]):
            raise ConfigError(f"{where}: the generator's {name} names ({','.join(names)}) differ from the "
                              f"data's ({','.join(data_labels[name])}), so label ids would mean other classes; "
                              f"pass --{name}_names in the generator's order.")
    sizes = {name: len(names) for name, names in generator_labels.items()}
    if sum(sizes.values()) != generator.num_labels:
        parts = " + ".join(f"{name} {size}" for name, size in sizes.items()) or "none"
        raise ConfigError(f"{where}: the generator takes {generator.num_labels} labels, but {described} "
                          f"make {parts} = {sum(sizes.values())}.")
    return sizes
