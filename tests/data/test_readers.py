"""Readers on good input: shapes, ranges, labels, counts, depth normalisation, flips, TFRecords,
splits and per-replica input."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image

from legan_tf.data import (
    MULTIPIE_EXPRESSIONS, DataConfig, DataError, data_config_from_flags, define_data_flags,
    open_source)
from legan_tf.data import preprocess, tfrecord
from legan_tf.data.config import MULTIPIE_NUM_LIGHTINGS, numbered_names
from tests.data.conftest import DEPTH_LEVEL, IMAGE_SIZE, LIGHTINGS, RGBD_EXPRESSIONS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_all(source, **kwargs):
    """Every example of a source in reading order, as a dict of numpy arrays."""
    batches = list(source.dataset(batch_size=64, training=False, repeat=False, **kwargs)
                   .as_numpy_iterator())
    return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}


def check_image_batch(images, count):
    assert images.shape == (count, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_ratings_reader(make_layout):
    layout = make_layout("ratings")
    source = open_source(layout.config())
    examples = read_all(source)
    check_image_batch(examples["image"], 12)
    # The reader stores the CSV's numbers as float32: one rounding, <= 2**-24 = 6e-8 relative.
    np.testing.assert_allclose(examples["mean"], [float(r["mean"]) for r in layout.rows], rtol=1e-6)
    np.testing.assert_allclose(examples["std"], [float(r["std"]) for r in layout.rows], rtol=1e-6)
    assert set(examples) == {"image", "mean", "std"}
    assert source.groups == [r["source"] for r in layout.rows]
    assert source.class_counts() == {}


def test_multipie_reader_labels_counts_and_masks(make_layout):
    layout = make_layout("multipie")
    source = open_source(layout.config())
    examples = read_all(source)
    check_image_batch(examples["image"], 15)
    expected_expressions = [r["expression"] if r["expression"].isdigit()
                            else MULTIPIE_EXPRESSIONS.index(r["expression"]) for r in layout.rows]
    np.testing.assert_array_equal(examples["expression"], np.asarray(expected_expressions, int))
    assert examples["expression"].dtype == np.int32 and examples["lighting"].dtype == np.int32
    np.testing.assert_array_equal(examples["lighting"], [i % 5 % 3 for i in range(15)])
    counts = source.class_counts()
    assert counts["expression"] == {**{name: 3 for name in MULTIPIE_EXPRESSIONS[:5]}, "scream": 0}
    assert counts["lighting"] == {"00": 6, "01": 6, "02": 3}
    assert source.label_names == {"expression": MULTIPIE_EXPRESSIONS, "lighting": LIGHTINGS}
    # Masks cover the right three quarters of the 16x16 centre crop: left 1/8 of the output is 0.
    assert examples["mask"].shape == (15, IMAGE_SIZE, IMAGE_SIZE, 1)
    assert set(np.unique(examples["mask"])) == {0.0, 1.0}
    assert (examples["mask"][:, :, 0] == 0).all() and (examples["mask"][:, :, -1] == 1).all()


def test_apply_mask_blackens_the_background(make_layout):
    layout = make_layout("multipie")
    masked = read_all(open_source(layout.config(apply_mask=True)))
    plain = read_all(open_source(layout.config()))
    background = masked["mask"][..., 0] == 0
    assert (masked["image"][background] == -1.0).all()
    np.testing.assert_array_equal(masked["image"][~background], plain["image"][~background])


def test_folder_reader_counts_missing_classes_as_zero(make_layout):
    layout = make_layout("folder")
    source = open_source(layout.config())
    examples = read_all(source)
    check_image_batch(examples["image"], 12)
    np.testing.assert_array_equal(examples["expression"], np.repeat([0, 1, 3, 2], 3))  # folders in name order
    assert source.class_counts()["expression"] == {
        "neutral": 3, "smile": 3, "surprise": 3, "squint": 3, "disgust": 0, "scream": 0}
    assert "lighting" not in examples and source.label_names == {"expression": MULTIPIE_EXPRESSIONS}


def test_csv_reader_with_named_labels(make_layout):
    layout = make_layout("csv")
    source = open_source(layout.config())
    examples = read_all(source)
    check_image_batch(examples["image"], 8)
    np.testing.assert_array_equal(examples["expression"], [i % 3 for i in range(8)])
    assert set(examples) == {"image", "expression", "identity"}
    assert source.groups == [r["subject"] for r in layout.rows]
    # The identity label: the subject's index among the sorted subjects; never an attribute.
    subjects = sorted({r["subject"] for r in layout.rows})
    np.testing.assert_array_equal(examples["identity"], [subjects.index(r["subject"]) for r in layout.rows])
    assert list(source.label_names) == ["expression"] and source.num_identities == len(subjects)


def test_rgbd_reader_normalises_8_and_16_bit_depth_alike(make_layout):
    layout = make_layout("rgbd")
    source = open_source(layout.config())
    examples = read_all(source)
    check_image_batch(examples["image"], 8)
    depth = examples["depth"]
    assert depth.shape == (8, IMAGE_SIZE, IMAGE_SIZE, 1) and depth.dtype == np.float32
    face_value = DEPTH_LEVEL * 2 - 1
    for index in range(8):   # even rows hold 8-bit maps, odd rows 16-bit ones
        values = np.unique(depth[index])
        # 153/255 and 39321/65535 are both 0.6; float32 scaling and * 2 - 1 round a few times by <= 6e-8.
        np.testing.assert_allclose(values, [-1.0, face_value], atol=1e-6)
    np.testing.assert_array_equal(examples["mask"], (depth > -1).astype(np.float32))
    normals = examples["normals"]
    assert normals.shape == (8, IMAGE_SIZE, IMAGE_SIZE, 3)
    np.testing.assert_allclose(normals[..., 0], 1.0)  # exact: 255 / 127.5 (and 255 * fl(1 / 127.5)) is 2.0 in float32
    np.testing.assert_allclose(normals[..., 1:], 128 / 127.5 - 1, atol=1e-6)  # float32 division: <= 1.2e-7
    np.testing.assert_array_equal(examples["expression"], [i % 3 for i in range(8)])
    assert source.label_names == {"expression": RGBD_EXPRESSIONS}


def test_random_flip_flips_image_depth_mask_and_normals_together(make_layout):
    layout = make_layout("rgbd")
    source = open_source(layout.config(random_flip=True))
    batch = next(source.dataset(batch_size=32, training=True, seed=3).as_numpy_iterator())
    # Fixture maps: red rises with x, background on the left, all normals along +x.
    image_flipped = batch["image"][:, :, 0, 0].mean(1) > batch["image"][:, :, -1, 0].mean(1)
    depth_flipped = batch["depth"][:, :, -1, 0].mean(1) == -1.0
    mask_flipped = batch["mask"][:, :, -1, 0].mean(1) == 0.0
    normals_flipped = batch["normals"][:, 0, 0, 0] < 0
    np.testing.assert_array_equal(image_flipped, depth_flipped)
    np.testing.assert_array_equal(image_flipped, mask_flipped)
    np.testing.assert_array_equal(image_flipped, normals_flipped)
    assert 0 < image_flipped.sum() < 32


def test_flip_is_reproducible_and_off_outside_training(make_layout):
    layout = make_layout("rgbd")
    source = open_source(layout.config(random_flip=True))
    first, second = (next(source.dataset(8, training=True, seed=5).as_numpy_iterator())
                     for _ in range(2))
    np.testing.assert_array_equal(first["image"], second["image"])
    evaluation = read_all(source)
    assert (evaluation["normals"][..., 0] > 0).all()


def test_centre_crop_then_resize():
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, 2:6] = 255                       # the centred 4x4 square is white, the sides black
    cropped = preprocess.center_crop_square(tf.constant(image))
    np.testing.assert_array_equal(cropped.numpy(), np.full((4, 4, 3), 255, np.uint8))
    resized = preprocess.resize_rgb(cropped, 2).numpy()
    # The antialiased weights sum to 1 only within a few float32 roundings (255 comes back as 255.00003 here and
    # is clipped to 1); a few 6e-8 below 255 relative, / 127.5 - 1 doubles that: < 1e-6.
    np.testing.assert_allclose(resized, 1.0, rtol=0, atol=1e-6)


def test_convert_color_turns_grayscale_and_rgba_into_rgb(make_layout):
    layout = make_layout("csv")
    Image.new("L", (20, 16), 200).save(layout.file(layout.rows[0]["image"]), format="JPEG")
    Image.new("RGBA", (20, 16), (200, 100, 50, 0)).save(layout.file("pics/rgba.png"))
    layout.set_cell(2, "image", "pics/rgba.png")
    examples = read_all(open_source(layout.config(convert_color=True)))
    # JPEG keeps a flat grey's DC term only, quantised to within a grey level (1/127.5 = 0.008) at PIL's
    # default quality; the resize adds float32 rounding (~1e-6).
    np.testing.assert_allclose(examples["image"][0], 200 / 127.5 - 1, atol=0.02)
    np.testing.assert_allclose(examples["image"][1], -1.0)   # alpha 0 over black; exact: weights times 0 are 0


def assert_same_examples(direct, stored):
    """Same multiset of examples, matched by image content (shard order differs)."""
    assert set(direct) == set(stored)
    key = lambda examples, i: examples["image"][i].tobytes()  # noqa: E731
    direct_index = {key(direct, i): i for i in range(len(direct["image"]))}
    assert len(direct_index) == len(direct["image"]) == len(stored["image"])
    for i in range(len(stored["image"])):
        j = direct_index[key(stored, i)]
        for name in direct:
            np.testing.assert_array_equal(stored[name][i], direct[name][j], err_msg=name)


@pytest.mark.parametrize("name", ["ratings", "multipie", "folder", "rgbd"])
def test_tfrecord_round_trip_equals_direct_reading(make_layout, tmp_path, name):
    layout = make_layout(name)
    source = open_source(layout.config())
    output = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    tfrecord.write_tfrecords(source, output, num_shards=3, holdout_fraction=0.0, seed=0)
    stored = open_source(layout.config(data_format="tfrecord", data_path=output))
    assert stored.num_examples == source.num_examples
    assert stored.class_counts() == source.class_counts()
    assert_same_examples(read_all(source), read_all(stored))


def test_tfrecord_keeps_the_held_out_split(make_layout, tmp_path):
    layout = make_layout("multipie")
    source = open_source(layout.config())
    output = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    tfrecord.write_tfrecords(source, output, num_shards=2, holdout_fraction=0.3, seed=1)
    stored = open_source(layout.config(data_format="tfrecord", data_path=output))
    train, test = stored.split()
    direct_train, direct_test = source.split(0.3, 1)
    assert (train.num_examples, test.num_examples) == (direct_train.num_examples,
                                                       direct_test.num_examples)
    assert sorted(test.groups) == sorted(direct_test.groups)
    assert_same_examples(read_all(direct_test), read_all(test))
    with pytest.raises(DataError, match="holdout_fraction=0.3"):
        stored.split(0.5)


def test_tfrecord_without_stored_split_splits_by_group(make_layout, tmp_path):
    layout = make_layout("ratings")
    output = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    tfrecord.write_tfrecords(open_source(layout.config()), output, 2, 0.0, 0)
    stored = open_source(layout.config(data_format="tfrecord", data_path=output))
    train, test = stored.split(0.34, seed=0)
    assert not set(train.groups) & set(test.groups)
    assert train.num_examples + test.num_examples == 12
    assert len(read_all(test)["image"]) == test.num_examples


def test_tfrecord_rejects_other_label_names(make_layout, tmp_path):
    layout = make_layout("multipie")
    output = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    tfrecord.write_tfrecords(open_source(layout.config()), output, 1, 0.0, 0)
    with pytest.raises(DataError, match="lighting names"):
        open_source(layout.config(data_format="tfrecord", data_path=output,
                                  lighting_names=("a", "b", "c")))


@pytest.mark.parametrize("name", ["ratings", "multipie", "rgbd"])
def test_split_by_group_is_disjoint_and_deterministic(make_layout, name):
    source = open_source(make_layout(name).config())
    train, test = source.split(0.34, seed=7)
    assert not set(train.groups) & set(test.groups)
    assert train.num_examples + test.num_examples == source.num_examples
    assert test.num_examples > 0
    again_train, again_test = source.split(0.34, seed=7)
    assert again_test.groups == test.groups and again_train.groups == train.groups


def test_a_zero_holdout_fraction_trains_on_everything(make_layout):
    # --holdout_fraction's default: scripts/train.py then runs without held-out metrics, as it says.
    source = open_source(make_layout("multipie").config())
    train, test = source.split(0.0, seed=0)
    assert train.num_examples == source.num_examples and test.num_examples == 0
    with pytest.raises(DataError, match=r"must be in \[0, 1\)"):
        source.split(1.0, seed=0)


def test_ratings_split_is_stratified_by_generator(make_layout):
    source = open_source(make_layout("ratings").config())
    _, test = source.split(0.34, seed=0)
    generators = {source._parsed.strata[i] for i in test.indices}
    assert generators == {"stylegan", "progan"}


def test_split_seeds_differ(make_layout):
    source = open_source(make_layout("ratings").config())
    tests = {tuple(source.split(0.34, seed=seed)[1].groups) for seed in range(6)}
    assert len(tests) > 1


def test_summary_names_counts(make_layout):
    summary = open_source(make_layout("multipie").config()).summary()
    assert "examples: 15 in 3 groups (by subject)" in summary
    assert "scream 0" in summary and "faults: 0 skipped" in summary


def test_flags_build_a_config_and_may_be_defined_twice():
    flag_values = flags.FlagValues()
    define_data_flags(flag_values)
    define_data_flags(flag_values)
    flag_values(["prog", "--data_format=multipie", "--data_path=x.csv", "--num_lightings=3",
                 "--expression_names=a,b"])
    config = data_config_from_flags(flag_values)
    assert config.lighting_names == ("00", "01", "02")
    assert config.expression_names == ("a", "b")
    flag_values["lighting_names"].parse("x,y")
    assert data_config_from_flags(flag_values).lighting_names == ("x", "y")


def test_every_config_field_is_a_data_flag_with_the_fields_default():
    import dataclasses

    flag_values = flags.FlagValues()
    define_data_flags(flag_values)
    flag_values(["prog"])
    for field in dataclasses.fields(DataConfig):
        value = flag_values[field.name].value
        expected = {"data_format": None, "data_path": None, "lighting_names": None}.get(field.name, field.default)
        assert (tuple(value) if isinstance(value, list) else value) == expected, field.name
    with pytest.raises(DataError, match="^--data_format is required$"):
        data_config_from_flags(flag_values)
    flag_values["data_format"].parse("csv")
    with pytest.raises(DataError, match="^--data_path is required$"):
        data_config_from_flags(flag_values)
    flag_values["data_path"].parse("x.csv")
    # Every flag reaches its field: here with a value other than its default.
    arguments = {"image_size": "64", "label_columns": "expression", "on_error": "skip", "convert_color": "true",
                 "depth_bits": "16", "random_flip": "true", "apply_mask": "true", "cache": "true",
                 "shuffle_buffer": "7", "skipped_report": "s.csv", "holdout_fraction": "0.5", "split_seed": "3"}
    for name, value in arguments.items():
        flag_values[name].parse(value)
    config = data_config_from_flags(flag_values)
    assert (config.image_size, config.label_columns, config.on_error, config.convert_color, config.depth_bits,
            config.random_flip, config.apply_mask, config.cache, config.shuffle_buffer, config.skipped_report,
            config.holdout_fraction, config.split_seed) == (64, ("expression",), "skip", True, "16", True, True, True,
                                                            7, "s.csv", 0.5, 3)
    assert config.lighting_names == numbered_names(MULTIPIE_NUM_LIGHTINGS)  # --num_lightings' default


def test_config_rejects_bad_values():
    with pytest.raises(DataError, match="data_format"):
        DataConfig(data_format="png", data_path="x")
    with pytest.raises(DataError, match="repeat"):
        DataConfig(data_format="folder", data_path="x", expression_names=("a", "a"))
    with pytest.raises(DataError, match="lighting"):
        DataConfig(data_format="multipie", data_path="x", lighting_names=())


DISTRIBUTED_CHECK = textwrap.dedent("""
    import sys, tensorflow as tf
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from legan_tf.data import DataConfig, open_source, distribute
    source = open_source(DataConfig(**{config!r}))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    batch = next(iter(distribute(strategy, source, global_batch_size=6, training=True)))
    shapes = [tuple(t.shape) for t in strategy.experimental_local_results(batch["image"])]
    labels = [tuple(t.shape) for t in strategy.experimental_local_results(batch["expression"])]
    print("SHAPES", shapes, labels)
""")


def test_distributed_input_gives_each_replica_half_the_global_batch(make_layout):
    layout = make_layout("multipie")
    config = dict(data_format="multipie", data_path=layout.data_path, image_size=IMAGE_SIZE,
                  lighting_names=LIGHTINGS)
    script = DISTRIBUTED_CHECK.format(repo=REPO, tests=os.path.join(REPO, "tests", "data"),
                                      config=config)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    shape = (3, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert f"SHAPES [{shape}, {shape}] [(3,), (3,)]" in result.stdout


def test_cache_gives_the_same_examples(make_layout):
    layout = make_layout("rgbd")
    cached = open_source(layout.config(cache=True))
    plain = read_all(open_source(layout.config()))
    for _ in range(2):   # the second pass comes from the cache
        for key, values in read_all(cached).items():
            np.testing.assert_array_equal(values, plain[key], err_msg=key)


def _stream(source, start_step, steps, batch_size=4, seed=7):
    dataset = source.dataset(batch_size, training=True, seed=seed, start_step=start_step)
    return [batch for _, batch in zip(range(steps), dataset.as_numpy_iterator())]


@pytest.mark.parametrize("kind", ["uncached", "cached", "tfrecord"])
def test_a_resumed_stream_reads_what_the_uninterrupted_one_reads_next(make_layout, tmp_path, kind):
    # 15 examples in batches of 4: step 9 is in the third epoch and mid-epoch, flips on.
    layout = make_layout("multipie")
    config = layout.config(random_flip=True, cache=kind == "cached")
    source = open_source(config)
    if kind == "tfrecord":
        tfrecord.prepare_output_dir(str(tmp_path / "shards"), overwrite=False)
        tfrecord.write_tfrecords(source, str(tmp_path / "shards"), num_shards=3, holdout_fraction=0.0, seed=0)
        source = open_source(layout.config(random_flip=True, data_format="tfrecord",
                                           data_path=str(tmp_path / "shards")))
    uninterrupted = _stream(source, 0, 12)
    resumed = _stream(source, 9, 3)
    for expected, got in zip(uninterrupted[9:], resumed):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # Not trivially equal: another start reads other batches.
    assert not np.array_equal(_stream(source, 8, 1)[0]["image"], resumed[0]["image"])


def test_cached_training_batches_mix_subjects_even_with_a_small_shuffle_buffer(tmp_path):
    # The lab's manifest lists each identity's 24 images together; a buffer of 8 alone would give
    # batches of one or two identities.
    from legan_tf.data.synthetic.writer import write_face_lab

    write_face_lab(tmp_path, image_size=32, num_identities=6, seed=0, num_lightings=4, parts=("multipie",),
                   progress=False)
    source = open_source(DataConfig(data_format="multipie", data_path=str(tmp_path / "multipie" / "manifest.csv"),
                                    image_size=32, lighting_names=("00", "01", "02", "03"), cache=True,
                                    shuffle_buffer=8))
    batch = next(source.dataset(16, training=True, seed=0).as_numpy_iterator())
    assert len(set(batch["identity"].tolist())) >= 4
