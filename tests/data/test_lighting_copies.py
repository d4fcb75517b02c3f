"""A training face's copies under other lights (legan_tf.data.lighting_copies), from both readers.

The faces here are flat grey squares whose grey level names the subject, the light and the expression
(10 + 30 * subject + 6 * light + 2 * expression), so every copy a reader hands out can be checked by its pixels.
"""

import csv

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataConfig, DataError, lighting_copies, open_source, tfrecord
from legan_tf.data.numpy_input import open_numpy_source

EXPRESSIONS, LIGHTS = ("a", "b", "c"), ("l0", "l1", "l2", "l3")
# Subject 5 has one light only: no copy. Subject 6 has two photos under light 0 with different expressions:
# neither is the other's copy.
FACES = [(s, s % 3, light) for s in range(5) for light in range(4)] + [(5, 2, 0), (6, 0, 0), (6, 1, 0), (6, 1, 2)]


def grey(subject, light, expression):
    return 10 + 30 * subject + 6 * light + 2 * expression


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("relit")
    rows = []
    for number, (subject, expression, light) in enumerate(FACES):
        path = root / f"face{number}.png"
        Image.fromarray(np.full((16, 16), grey(subject, light, expression), np.uint8)).save(path)
        rows.append({"image": str(path), "subject": f"p{subject}", "session": "1", "lighting": light,
                     "expression": expression})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(root / "manifest.csv")


def _config(path, **overrides):
    settings = dict(data_format="multipie", data_path=path, image_size=16, random_flip=False, convert_color=True,
                    expression_names=EXPRESSIONS, lighting_names=LIGHTS)
    return DataConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def shards(manifest, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("shards"))
    tfrecord.write_tfrecords(open_source(_config(manifest)), output, num_shards=2, holdout_fraction=0.0, seed=1)
    return output


def _levels(images):
    return np.round((np.asarray(images)[:, 0, 0, 0] + 1.0) * 127.5).astype(int)


def _check_batch(batch):
    """Every example's copy is the same subject and expression under the copy's light, never its own light;
    a face with no copy has label -1. Returns the faces that had a copy."""
    faces = {grey(s, light, e): (s, e, light) for s, e, light in FACES}
    paired = 0
    for level, copy, label in zip(_levels(batch["image"]), _levels(batch[lighting_copies.COPY]),
                                  np.asarray(batch[lighting_copies.COPY_LABEL])):
        subject, expression, light = faces[level]
        lights = {other for s, e, other in FACES if (s, e) == (subject, expression) and other != light}
        if not lights:
            assert label == -1
            continue
        assert label in lights and copy == grey(subject, label, expression)
        paired += 1
    return paired


def test_the_table_names_each_face_under_each_light_and_the_choice_skips_its_own_light():
    keys = lighting_copies.face_keys([0, 0, 0, 1, 1], [2, 2, 2, 0, 1], 3)
    np.testing.assert_array_equal(keys, [2, 2, 2, 3, 4])
    table = lighting_copies.copy_index(keys, [0, 2, 2, 1, 1], 3)
    np.testing.assert_array_equal(table[2], [0, -1, 1])  # the first record of a repeated (face, light) is kept
    np.testing.assert_array_equal(table[3], [-1, 3, -1])
    assert lighting_copies.count_pairable(table) == 1
    # Face 2 under light 0: its only other light is 2, whatever the draw.
    assert {lighting_copies.choose(table, 2, 0, draw) for draw in range(5)} == {(1, 2)}
    # Under light 1 (none stored): lights 0 and 2 in turn, by the draw mod 2, negative draws too.
    assert [lighting_copies.choose(table, 2, 1, draw) for draw in (0, 1, 2, -1)] == [(0, 0), (1, 2), (0, 0), (1, 2)]
    assert lighting_copies.choose(table, 3, 1, 7) == (-1, -1)
    assert lighting_copies.choose(table, 99, 1, 7) == (-1, -1)  # a key past the table: no copy


def test_the_tf_reader_gives_each_face_its_own_copies(manifest):
    source = open_source(_config(manifest)).with_lighting_copies()
    assert source.pairable_faces == 5 + 1  # subjects 0-4, and subject 6's expression b under lights 0 and 2
    paired = sum(_check_batch(batch) for batch in source.dataset(4, training=True, seed=3).take(30)
                 .as_numpy_iterator())
    assert paired > 100  # of 120 faces read, 3 in 24 have no copy
    # Held-out batches are read as they are.
    assert lighting_copies.COPY not in next(iter(source.dataset(4, training=False, repeat=False)))


def test_a_resumed_reader_draws_the_copies_an_uninterrupted_one_drew(shards):
    source = open_source(_config(shards, data_format="tfrecord")).with_lighting_copies()
    whole = list(source.dataset(4, training=True, seed=5).take(6).as_numpy_iterator())
    resumed = list(source.dataset(4, training=True, seed=5, start_step=4).take(2).as_numpy_iterator())
    for name in ("image", lighting_copies.COPY, lighting_copies.COPY_LABEL):
        np.testing.assert_array_equal(np.concatenate([b[name] for b in whole[4:]]),
                                      np.concatenate([b[name] for b in resumed]))
    assert sum(_check_batch(batch) for batch in whole) > 0


def test_the_numpy_reader_gives_each_face_its_own_copies_and_resumes(shards):
    source = open_numpy_source(_config(shards, data_format="tfrecord")).with_lighting_copies()
    assert source.pairable_faces == 6
    batches = source.batches(4, training=True, seed=3, num_workers=1)
    whole = [next(batches) for _ in range(30)]
    assert sum(_check_batch(batch) for batch in whole) > 100
    resumed = source.batches(4, training=True, seed=3, start_step=28, num_workers=1)
    for batch in whole[28:]:
        again = next(resumed)
        for name in ("image", lighting_copies.COPY, lighting_copies.COPY_LABEL):
            np.testing.assert_array_equal(batch[name], again[name])
    unpaired = next(open_numpy_source(_config(shards, data_format="tfrecord")).batches(4, training=True, seed=3))
    assert lighting_copies.COPY not in unpaired
    np.testing.assert_array_equal(unpaired["image"], whole[0]["image"])  # pairing changes neither order nor flips


def test_data_that_cannot_name_copies_is_a_one_line_error(manifest, tmp_path):
    folder = tmp_path / "folder" / "a"
    folder.mkdir(parents=True)
    for number in range(2):
        Image.fromarray(np.full((8, 8), number, np.uint8)).save(folder / f"{number}.png")
    folder_source = open_source(DataConfig(data_format="folder", data_path=str(tmp_path / "folder"), image_size=8,
                                           expression_names=("a",), convert_color=True))
    for source, words in ((folder_source, "needs a subject per face"),
                          (open_source(_config(manifest, random_flip=True)), "needs --norandom_flip")):
        with pytest.raises(DataError, match=words) as raised:
            source.with_lighting_copies()
        assert "\n" not in str(raised.value)
