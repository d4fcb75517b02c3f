"""StarGAN's label vector, the one way every part of the project builds it, and the attributes it holds."""

from typing import Dict, Mapping, Optional, Sequence

from keras import ops

from legan_tf.errors import ConfigError

# The attributes a label vector may hold, in the order it holds them.
ATTRIBUTES = ("expression", "lighting", "attributes")
# Multi-label groups: several binary attributes at once (CelebA's, as StarGAN's reference trains them). A
# batch holds such a group as a (B, K) vector of 0/1, not as class ids; it enters the label vector as it is
# and is classified with a sigmoid cross-entropy per attribute. The other groups are one-hot categories.
MULTI_LABEL = ("attributes",)


def is_multi_label(name: str) -> bool:
    """Whether the label group `name` holds several binary attributes (a 0/1 vector) rather than one class id."""
    return name in MULTI_LABEL


# CelebA's hair colours, of which a face has one: StarGAN's reference sets the asked one and clears the others
# when it edits hair colour, rather than flipping it alone.
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


def names_flag(name: str) -> str:
    """The flag that names a label group's classes: --expression_names, --lighting_names, --attribute_names."""
    return "attribute_names" if is_multi_label(name) else f"{name}_names"


def flip_attribute(vectors, names: Sequence[str], index: int):
    """(B, K) 0/1 numpy vectors with attribute `index` edited as StarGAN's reference edits CelebA at test time:
    a hair colour (`HAIR_COLOURS`) is set and the other hair colours among `names` cleared; any other
    attribute is flipped (1 - value)."""
    import numpy as np

    vectors = np.array(vectors, dtype=np.float32, copy=True)
    if not 0 <= index < len(names):
        raise ValueError(f"attribute index {index} out of range for {len(names)} attributes")
    if names[index] in HAIR_COLOURS:
        for other, name in enumerate(names):
            if name in HAIR_COLOURS:
                vectors[:, other] = 0.0
        vectors[:, index] = 1.0
    else:
        vectors[:, index] = 1.0 - vectors[:, index]
    return vectors


def one_hot_labels(ids: Mapping[str, object], label_sizes: Mapping[str, int]):
    """(B, sum of sizes) float32: each attribute's ids one-hot, concatenated in the order of `label_sizes`.

    `ids` maps attribute names to int ids (tensors or numpy arrays), or for a multi-label group
    (`MULTI_LABEL`) to its (B, size) 0/1 vectors, which enter as they are. Out-of-range ids give all-zero
    groups (one_hot's rule on both backends), so callers that take ids from users check them first.
    """
    parts = []
    for name, size in label_sizes.items():
        if is_multi_label(name):
            vectors = ops.cast(ids[name], "float32")
            if vectors.shape[-1] != size:
                raise ValueError(f"the {name} vectors hold {vectors.shape[-1]} values, the label vector {size}")
            parts.append(vectors)
        else:
            parts.append(ops.one_hot(ops.cast(ids[name], "int32"), size, dtype="float32"))
    return ops.concatenate(parts, axis=-1)


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
                              f"pass --{names_flag(name)} in the generator's order.")
    sizes = {name: len(names) for name, names in generator_labels.items()}
    if sum(sizes.values()) != generator.num_labels:
        parts = " + ".join(f"{name} {size}" for name, size in sizes.items()) or "none"
        raise ConfigError(f"{where}: the generator takes {generator.num_labels} labels, but {described} "
                          f"make {parts} = {sum(sizes.values())}.")
    return sizes
