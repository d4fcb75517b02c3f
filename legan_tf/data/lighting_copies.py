"""A training face's own copies under other lights: what a lighting-only edit of it should look like.

In the relit layout (`scripts/relight_faces.py` -> `prepare_data.py --data_format=multipie`) every
photo is a subject written under several lights, so each record's `identity` (the subject's index)
and `lighting` name its copies exactly. A copy is a record of the same subject with the same
expression under another light (in Multi-PIE-style data a subject is a person, photographed with
several expressions). A reader that pairs (`Source.with_lighting_copies()`, and
the JAX path's numpy reader) gives each training example one of its copies under another light,
drawn at random, beside it:

  lighting_copy        the copy, prepared as the image is (size, range)
  lighting_copy_label  its lighting id, or -1 when the face has no copy under another light

This module holds the part both readers share, without TensorFlow: the table of which record holds
which subject under which light, and the seeded choice of a copy.
"""

from __future__ import annotations

import numpy as np

from legan_tf.data.errors import DataError

COPY = "lighting_copy"
COPY_LABEL = "lighting_copy_label"
# Offset of the copy draws' seed from the data seed: the flips draw from the data seed itself.
SEED_OFFSET = 7919


def check_pairable(features, label_names, config) -> None:
    """A DataError unless the data can name a face's relit copies: a subject (`identity`) and a lighting
    label per record, read unflipped and unmasked (a mirrored face is lit from the other side; a copy
    has its own mask)."""
    where = config.data_path
    if "identity" not in features:
        raise DataError(f"{where}: paired lighting needs a subject per face (the relit layout's subject column, "
                        "the `identity` of prepare_data's shards); this data has none")
    if "lighting" not in label_names:
        raise DataError(f"{where}: paired lighting needs lighting labels (--lighting_names); this data has none")
    if config.random_flip:
        raise DataError(f"{where}: paired lighting needs --norandom_flip (a mirrored face is lit from the other "
                        "side, so its copies would be the wrong ones)")
    if config.apply_mask:
        raise DataError(f"{where}: paired lighting does not combine with --apply_mask (each copy has a mask of "
                        "its own)")


def face_keys(identities, expressions, num_expressions: int) -> np.ndarray:
    """One key per (subject, expression): the row of `copy_index`'s table (the tf reader computes the same)."""
    return np.asarray(identities, np.int64) * num_expressions + np.asarray(expressions, np.int64)


def copy_index(keys, lightings, num_lightings: int) -> np.ndarray:
    """(max key + 1, num_lightings) int64: the position among the records of the record holding that face
    (`face_keys`) under that light, or -1. A face written twice under one light keeps its first record."""
    keys = np.asarray(keys, np.int64)
    lightings = np.asarray(lightings, np.int64)
    if keys.shape != lightings.shape:
        raise ValueError(f"copy_index: {keys.shape[0]} keys, {lightings.shape[0]} lightings")
    if keys.size and (keys.min() < 0 or lightings.min() < 0 or lightings.max() >= num_lightings):
        raise ValueError("copy_index: keys must be >= 0 and lightings in [0, num_lightings)")
    table = np.full((int(keys.max()) + 1 if keys.size else 0, num_lightings), -1, np.int64)
    # Reversed, so the first record of a (face, light) pair is the one left in the table.
    for position in range(keys.size - 1, -1, -1):
        table[keys[position], lightings[position]] = position
    return table


def count_pairable(table: np.ndarray) -> int:
    """Faces (subject and expression) under at least two lights: those the paired term can teach."""
    return int(np.sum(np.sum(table >= 0, axis=1) >= 2)) if table.size else 0


def choose(table: np.ndarray, key: int, lighting: int, draw: int) -> tuple[int, int]:
    """(record position, lighting id) of the copy that `draw` (an integer) picks among the face's (`key`)
    copies under lights other than `lighting`: the (draw mod count)-th in lighting order; (-1, -1) when it
    has none. The tf reader (`legan_tf.data.pipeline`) makes the same choice from the same draw."""
    row = table[key] if 0 <= key < len(table) else np.full(table.shape[1], -1)
    lights = [light for light in range(len(row)) if row[light] >= 0 and light != lighting]
    if not lights:
        return -1, -1
    light = lights[int(draw) % len(lights)]
    return int(row[light]), light
