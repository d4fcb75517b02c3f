"""Every kind of bad input, per reader, under on_error=fail and on_error=skip.

fail: DataError naming the manifest row (or folder file) and the fault.
skip: the entry is left out, the rest still loads, the fault is kept and written to the report.
"""

import csv
import json
import os

import numpy as np
import pytest
from absl import flags
from PIL import Image

from legan_tf.data import DataConfig, DataError, data_config_from_flags, define_data_flags, open_source
from legan_tf.data import tfrecord
from tests.data.conftest import IMAGE_HEIGHT, IMAGE_WIDTH, save_depth, save_rgb, truncate

ALL_READERS = ["ratings", "multipie", "folder", "csv", "rgbd"]
BAD_ROW = 2


def where(layout, row, path):
    origin = f"{layout.origin} row {row}" if layout.rows is not None else layout.origin
    return f"{origin} ({path}): "


def expect_fault(layout, on_error, tmp_path, path, fault, row=BAD_ROW, remaining=None):
    """Asserts how open_source treats the one bad entry the test planted."""
    row = row if layout.rows is not None else None
    expected_start = where(layout, row, path)
    if on_error == "fail":
        with pytest.raises(DataError) as error:
            open_source(layout.config())
        message = str(error.value)
        assert message.startswith(expected_start), message
        assert fault in message
        return
    report = tmp_path / "report" / "skipped.csv"
    source = open_source(layout.config(on_error="skip", skipped_report=str(report)))
    [skipped] = source.faults
    assert str(skipped).startswith(expected_start) and fault in skipped.message, str(skipped)
    expected_count = layout.count - 1 if remaining is None else remaining
    assert source.num_examples == expected_count
    with open(report, newline="") as report_file:
        assert list(csv.reader(report_file)) == [
            ["row", "path", "fault"], ["" if row is None else str(row), path, skipped.message]]
    loaded = sum(len(batch["image"]) for batch in
                 source.dataset(batch_size=64, training=False, repeat=False).as_numpy_iterator())
    assert loaded == expected_count
    assert "faults: 1 skipped" in source.summary()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def forge_png_size(path, width=30000, height=30000):
    """A valid small PNG whose header (IHDR, CRC fixed) claims width x height pixels."""
    import struct
    import zlib

    Image.new("RGB", (4, 4), (90, 90, 90)).save(path, format="PNG")
    data = bytearray(open(path, "rb").read())
    start = data.index(b"IHDR")
    data[start + 4:start + 12] = struct.pack(">II", width, height)
    data[start + 17:start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start:start + 17])))
    write_bytes(path, bytes(data))


IMAGE_FAULTS = {
    # Pillow raises its own DecompressionBombError for this one when opening the file.
    "huge_header": (forge_png_size, "image too large to decode (its header says 900,000,000 pixels"),
    # Under Pillow's error threshold but over its limit: refused from the header, never decoded.
    "large_header": (lambda path: forge_png_size(path, 10000, 10000),
                     "image too large to decode (its header says 100,000,000 pixels"),
    "truncated": (truncate, "truncated image file"),
    "unreadable": (lambda path: write_bytes(path, b"this is not an image"),
                   "unreadable image (not an image file)"),
    "missing": (os.remove, "missing image file"),
    "grayscale": (lambda path: Image.new("L", (20, 16), 90).save(path, format="PNG"),
                  "grayscale image (mode L)"),
    "rgba": (lambda path: Image.new("RGBA", (20, 16)).save(path, format="PNG"), "RGBA image"),
    "zero_bytes": (lambda path: write_bytes(path, b""), "unreadable image (not an image file)"),
    "cmyk": (lambda path: Image.new("CMYK", (20, 16)).save(path, format="JPEG"), "image mode CMYK not supported"),
    "sixteen_bit": (lambda path: Image.new("I;16", (20, 16), 300).save(path, format="PNG"),
                    "16-bit grayscale image"),
}


# A folder dataset lists the files that exist, so it cannot name a missing one.
IMAGE_FAULT_CASES = [(reader, kind) for reader in ALL_READERS for kind in sorted(IMAGE_FAULTS)
                     if (reader, kind) != ("folder", "missing")]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("reader,kind", IMAGE_FAULT_CASES)
def test_bad_image_file(make_layout, tmp_path, reader, kind, on_error):
    layout = make_layout(reader)
    damage, fault = IMAGE_FAULTS[kind]
    image = layout.image_of(BAD_ROW)
    damage(layout.file(image))
    expect_fault(layout, on_error, tmp_path, image, fault)


RATING_FAULTS = [
    ("mean", "nan", "mean is NaN"),
    ("mean", "abc", "mean 'abc' is not a number"),
    ("mean", "11", "mean 11 out of range [1, 10]"),
    ("mean", "0.5", "mean 0.5 out of range [1, 10]"),
    ("std", "-0.5", "std -0.5 is negative"),
    ("std", "NaN", "std is NaN"),
]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("column,value,fault", RATING_FAULTS)
def test_bad_rating(make_layout, tmp_path, column, value, fault, on_error):
    layout = make_layout("ratings")
    layout.set_cell(BAD_ROW, column, value)
    expect_fault(layout, on_error, tmp_path, layout.image_of(BAD_ROW), fault)


LABEL_FAULTS = [
    ("multipie", "expression", "smirk", "unknown expression 'smirk' (known: neutral, smile"),
    ("multipie", "lighting", "25", "lighting id 25 out of range 0..2"),
    ("multipie", "expression", "-1", "expression id -1 out of range 0..5"),
    ("csv", "expression", "7", "expression id 7 out of range 0..5"),
    ("csv", "expression", "Smile", "unknown expression 'Smile'"),
    ("rgbd", "expression", "anger", "unknown expression 'anger' (known: happy, neutral, sadness)"),
]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("reader,column,value,fault", LABEL_FAULTS)
def test_unknown_label(make_layout, tmp_path, reader, column, value, fault, on_error):
    layout = make_layout(reader)
    layout.set_cell(BAD_ROW, column, value)
    expect_fault(layout, on_error, tmp_path, layout.image_of(BAD_ROW), fault)


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_class_folder_not_in_names(make_layout, tmp_path, on_error):
    layout = make_layout("folder")
    count = layout.count
    save_rgb(os.path.join(layout.data_path, "smirk", "0.png"), seed=1)
    expect_fault(layout, on_error, tmp_path, "smirk/",
                 "class folder 'smirk' (1 files) is not one of the expression names", row=None,
                 remaining=count)


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_non_image_file_in_class_folder(make_layout, tmp_path, on_error):
    layout = make_layout("folder")
    count = layout.count
    write_bytes(os.path.join(layout.data_path, "smile", "notes.txt"), b"x")
    expect_fault(layout, on_error, tmp_path, "smile/notes.txt", "not a .png/.jpg/.jpeg file",
                 row=None, remaining=count)


def small_depth(path):
    save_depth(path, bits=16, width=10, height=8)


def rgb_depth(path):
    save_rgb(path, seed=0)


def flat_depth(value, bits):
    """A depth map of one value everywhere: no face (0), or a failed fit (anything else)."""
    def damage(path):
        dtype = np.uint8 if bits == 8 else np.uint16
        Image.fromarray(np.full((IMAGE_HEIGHT, IMAGE_WIDTH), value, dtype)).save(path)
    return damage


PAIRED_FILE_FAULTS = [
    ("rgbd", "depth", small_depth, "depth map is 10x8 but the image is 20x16"),
    ("rgbd", "depth", flat_depth(0, 8), "depth map is all zero (no face, or a failed fit)"),
    ("rgbd", "depth", flat_depth(0, 16), "depth map is all zero (no face, or a failed fit)"),
    ("rgbd", "depth", flat_depth(153, 8),
     "depth map is constant (153 everywhere, of 255; no face, or a failed fit)"),
    ("rgbd", "depth", flat_depth(40000, 16),
     "depth map is constant (40000 everywhere, of 65535; no face, or a failed fit)"),
    ("rgbd", "depth", rgb_depth, "depth map has mode RGB; expected single-channel"),
    ("rgbd", "depth", os.remove, "missing depth map file"),
    ("rgbd", "depth", truncate, "truncated depth map file"),
    ("rgbd", "normals", lambda p: save_rgb(p, 0, width=4, height=4),
     "normal map is 4x4 but the image is 20x16"),
    ("multipie", "mask", lambda p: Image.new("L", (8, 8)).save(p),
     "mask is 8x8 but the image is 20x16"),
    ("multipie", "mask", os.remove, "missing mask file"),
]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("reader,column,damage,fault", PAIRED_FILE_FAULTS)
def test_bad_paired_file(make_layout, tmp_path, reader, column, damage, fault, on_error):
    layout = make_layout(reader)
    paired = layout.rows[BAD_ROW - 1][column]
    damage(layout.file(paired))
    expect_fault(layout, on_error, tmp_path, paired, fault)


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_empty_depth_cell(make_layout, tmp_path, on_error):
    layout = make_layout("rgbd")
    layout.set_cell(BAD_ROW, "depth", "")
    expect_fault(layout, on_error, tmp_path, layout.image_of(BAD_ROW), "empty 'depth' value")


def rgbd_with_bits(make_layout, declared, odd_bits):
    """The rgbd fixture with every depth map in the declared bit depth except BAD_ROW's."""
    layout = make_layout("rgbd")
    for row in range(1, layout.count + 1):
        save_depth(layout.file(layout.rows[row - 1]["depth"]), odd_bits if row == BAD_ROW else declared)
    layout.config_kwargs["depth_bits"] = str(declared)
    return layout


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("declared,found,mode", [(8, 16, "I;16"), (16, 8, "L")])
def test_depth_of_another_bit_depth_than_declared(make_layout, tmp_path, declared, found, mode, on_error):
    layout = rgbd_with_bits(make_layout, declared, found)
    expect_fault(layout, on_error, tmp_path, layout.rows[BAD_ROW - 1]["depth"],
                 f"depth map is {found}-bit (mode {mode}) but --depth_bits={declared} declares "
                 f"{declared}-bit")


def test_depth_bits_auto_accepts_8_and_16_bit_maps(make_layout):
    layout = make_layout("rgbd")       # the fixture alternates 8- and 16-bit depth maps
    source = open_source(layout.config(depth_bits="auto"))
    assert source.num_examples == layout.count and not source.faults
    assert sorted(set(source.all_columns["depth_bits"])) == [8, 16]


def test_depth_bits_flag_reaches_the_config():
    flag_values = flags.FlagValues()
    define_data_flags(flag_values)
    flag_values(["prog", "--data_format=rgbd", "--data_path=pairs.csv"])
    assert data_config_from_flags(flag_values).depth_bits == "auto"
    flag_values(["prog", "--data_format=rgbd", "--data_path=pairs.csv", "--depth_bits=16"])
    assert data_config_from_flags(flag_values).depth_bits == "16"
    with pytest.raises(flags.IllegalFlagValueError):
        flag_values(["prog", "--depth_bits=12"])
    assert DataConfig(data_format="rgbd", data_path="p.csv", depth_bits=8).depth_bits == "8"
    with pytest.raises(DataError, match="depth_bits must be one of auto, 8, 16, got '12'"):
        DataConfig(data_format="rgbd", data_path="p.csv", depth_bits="12")


def test_tfrecord_shards_get_the_same_depth_checks(make_layout, tmp_path):
    """prepare_data validates through open_source, so the shards leave out what the reader would."""
    layout = rgbd_with_bits(make_layout, 8, 16)                       # row 2: 16-bit, declared 8
    flat_depth(90, 8)(layout.file(layout.rows[4]["depth"]))           # row 5: constant
    flag_values = flags.FlagValues()
    define_data_flags(flag_values)
    flag_values(["prepare_data", "--data_format=rgbd", f"--data_path={layout.data_path}",
                 "--expression_names=happy,neutral,sadness", "--depth_bits=8", "--on_error=fail"])
    with pytest.raises(DataError, match=r"^pairs.csv row 2 \(depth/1.png\): depth map is 16-bit"):
        open_source(data_config_from_flags(flag_values))
    flag_values.on_error = "skip"
    output = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    result = tfrecord.write_tfrecords(open_source(data_config_from_flags(flag_values)), output,
                                      num_shards=2, holdout_fraction=0.0, seed=0)
    assert result.skipped == 2
    with open(os.path.join(output, tfrecord.SKIPPED_REPORT_FILE), newline="") as report:
        rows = list(csv.reader(report))
    assert rows == [["row", "path", "fault"],
                    ["2", "depth/1.png", "depth map is 16-bit (mode I;16) but --depth_bits=8 declares 8-bit"],
                    ["5", "depth/4.png", "depth map is constant (90 everywhere, of 255; no face, or a failed fit)"]]
    with open(os.path.join(output, tfrecord.METADATA_FILE)) as meta:
        metadata = json.load(meta)
    assert (metadata["num_records"], metadata["skipped"]) == (layout.count - 2, 2)
    shards = open_source(DataConfig(data_format="tfrecord", data_path=output, image_size=8,
                                    expression_names=("happy", "neutral", "sadness"), lighting_names=()))
    assert shards.num_examples == layout.count - 2


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_row_with_too_few_fields(make_layout, tmp_path, on_error):
    layout = make_layout("multipie")
    with open(layout.data_path) as f:
        lines = f.read().splitlines()
    lines[BAD_ROW] = ",".join(lines[BAD_ROW].split(",")[:3])
    with open(layout.data_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    expect_fault(layout, on_error, tmp_path, layout.image_of(BAD_ROW),
                 "row has fewer fields than the header's 6")


MISSING_COLUMNS = [("ratings", "std"), ("multipie", "lighting"), ("multipie", "session"),
                   ("csv", "expression"), ("rgbd", "depth"), ("rgbd", "image")]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("reader,column", MISSING_COLUMNS)
def test_missing_column_is_always_fatal(make_layout, reader, column, on_error):
    layout = make_layout(reader)
    layout.header.remove(column)
    for row in layout.rows:
        del row[column]
    layout.write_manifest()
    with pytest.raises(DataError, match=f"^{layout.origin}: missing column {column} "):
        open_source(layout.config(on_error=on_error))


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("reader", ["ratings", "multipie", "csv", "rgbd"])
def test_empty_manifest_is_always_fatal(make_layout, reader, on_error):
    layout = make_layout(reader)
    layout.rows = []
    layout.write_manifest()
    with pytest.raises(DataError, match=f"^{layout.origin}: empty manifest"):
        open_source(layout.config(on_error=on_error))


def test_empty_folder_is_fatal(tmp_path):
    (tmp_path / "faces").mkdir()
    with pytest.raises(DataError, match="no images found"):
        open_source(DataConfig(data_format="folder", data_path=str(tmp_path / "faces")))


def test_missing_data_path_is_fatal(make_layout):
    layout = make_layout("ratings")
    with pytest.raises(DataError, match="does not exist"):
        open_source(layout.config(data_path=layout.data_path + ".missing"))


def test_all_entries_faulty_is_fatal_even_when_skipping(make_layout, tmp_path):
    layout = make_layout("csv")
    for row in range(1, layout.count + 1):
        layout.set_cell(row, "expression", "smirk")
    report = tmp_path / "skipped.csv"
    with pytest.raises(DataError, match="no usable entries"):
        open_source(layout.config(on_error="skip", skipped_report=str(report)))


def test_fail_reports_the_first_fault_in_row_order(make_layout):
    layout = make_layout("multipie")
    os.remove(layout.file(layout.image_of(5)))
    layout.set_cell(3, "expression", "smirk")
    with pytest.raises(DataError, match=r"^manifest.csv row 3 \("):
        open_source(layout.config())


def test_skip_keeps_every_fault(make_layout):
    layout = make_layout("multipie")
    os.remove(layout.file(layout.image_of(5)))
    layout.set_cell(3, "expression", "smirk")
    source = open_source(layout.config(on_error="skip"))
    assert [fault.row for fault in source.faults] == [3, 5]
    assert source.num_examples == layout.count - 2
    assert np.sum([sum(c.values()) for c in source.class_counts().values()]) == 2 * (layout.count - 2)


def test_apply_mask_without_masks_is_fatal(make_layout):
    layout = make_layout("ratings")
    with pytest.raises(DataError, match="apply_mask needs a face mask"):
        open_source(layout.config(apply_mask=True))
