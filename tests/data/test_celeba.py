"""data_format=celeba: CelebA's attribute file and aligned colour images, read into multi-hot `attributes`
vectors by both readers, through prepare_data's shards, split by person, and its bad input, on a tiny CelebA
written with PIL."""

import collections
import csv
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataConfig, DataError, open_source
from legan_tf.data.numpy_input import open_numpy_source, parse_example, prepare, record_spans
from tests.data.conftest import truncate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "prepare_data.py")
HEADER = ("5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Smiling", "Young")
# Kept in another order than the header's: the vectors follow this one.
ATTRIBUTES = ("Young", "Black_Hair", "Male")
PEOPLE = ("10000", "2345", "77", "9")    # sorted as strings: identity 0, 1, 2, 3
PER_PERSON = 3
EXTRA_ROWS = 3                           # rows whose image is not in the folder
WIDTH, HEIGHT = 178, 218                 # CelebA's aligned images
SIZE = 16


@dataclasses.dataclass
class TinyCeleba:
    attribute_file: str
    images: str
    identities: str
    vectors: Dict[str, list]     # image file name -> its 0/1 vector of ATTRIBUTES
    people: Dict[str, str]       # image file name -> person
    rows: Dict[str, int]         # image file name -> its data row in the attribute file

    def config(self, **overrides):
        settings = dict(data_format="celeba", data_path=self.attribute_file, celeba_images=self.images,
                        attribute_names=ATTRIBUTES, image_size=SIZE)
        return DataConfig(**{**settings, **overrides})

    def image_of(self, row):
        return next(name for name, number in self.rows.items() if number == row)

    def rewrite_row(self, row, edit):
        """Replaces the cells of data row `row` (1-based under the header) by edit(cells)."""
        with open(self.attribute_file) as handle:
            lines = handle.read().splitlines()
        index = lines.index(next(line for line in lines if line.split()[0] == self.rows_file(row)))
        lines[index] = " ".join(edit(lines[index].split()))
        with open(self.attribute_file, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def rows_file(self, row):
        return f"{row:06d}.jpg"


def write_celeba(root, count_line=False, official=False, seed=0):
    """PEOPLE x PER_PERSON colour 178x218 JPEGs, named <person>_<file> (or <file> with official=True, whose
    people identity_CelebA.txt names), and an attribute file with EXTRA_ROWS rows more than images."""
    rng = np.random.default_rng(seed)
    images = os.path.join(root, "images")
    os.makedirs(images)
    lines, identity_lines = [], []
    vectors, people, rows = {}, {}, {}
    for index in range(1, len(PEOPLE) * PER_PERSON + EXTRA_ROWS + 1):
        file = f"{index:06d}.jpg"
        values = rng.integers(0, 2, len(HEADER))
        lines.append(file + " " + " ".join(" 1" if value else "-1" for value in values))
        person = PEOPLE[(index - 1) // PER_PERSON] if index <= len(PEOPLE) * PER_PERSON else "555"
        identity_lines.append(f"{file} {person}")
        if index > len(PEOPLE) * PER_PERSON:
            continue
        name = file if official else f"{person}_{file}"
        pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        pixels[..., 0] = np.linspace(0, 255, WIDTH)[None, :]
        pixels[..., 1] = index * 19
        pixels[..., 2] = np.linspace(255, 0, HEIGHT)[:, None]
        Image.fromarray(pixels).save(os.path.join(images, name), quality=95)
        vectors[name] = [int(values[HEADER.index(attribute)]) for attribute in ATTRIBUTES]
        people[name], rows[name] = person, index
    attribute_file = os.path.join(root, "list_attr_celeba.txt")
    with open(attribute_file, "w", newline="") as handle:
        head = [str(len(lines))] if count_line else []
        # CelebA's own file ends its lines with CR LF and its header with a space.
        handle.write("\r\n".join(head + [" ".join(HEADER) + " "] + lines) + "\r\n")
    identities = os.path.join(root, "identity_CelebA.txt")
    with open(identities, "w") as handle:
        handle.write("\n".join(identity_lines) + "\n")
    return TinyCeleba(attribute_file, images, identities, vectors, people, rows)


@pytest.fixture
def celeba(tmp_path):
    return write_celeba(str(tmp_path / "celeba"))


def _names(parsed_source):
    return [os.path.basename(path) for path in parsed_source.all_columns["image"]]


def _batch(source):
    return next(iter(source.dataset(100, training=False, repeat=False))).copy()


# --- reading ---------------------------------------------------------------------------------------------


def test_the_manifest_reader_yields_each_faces_vector_in_attribute_names_order(celeba):
    source = open_source(celeba.config())
    names = _names(source)
    assert sorted(names) == sorted(celeba.vectors)
    assert [celeba.rows[name] for name in names] == sorted(celeba.rows.values())  # row order
    assert source.label_names == {"attributes": ATTRIBUTES}
    assert source.features == ["image", "identity", "attributes"]
    assert source.group_kind == "subject" and set(source.groups) == set(PEOPLE)
    batch = _batch(source)
    assert batch["attributes"].dtype.name == "float32" and batch["attributes"].shape == (12, 3)
    np.testing.assert_array_equal(batch["attributes"].numpy(), [celeba.vectors[name] for name in names])
    np.testing.assert_array_equal(batch["identity"].numpy(),
                                  [sorted(PEOPLE).index(celeba.people[name]) for name in names])
    assert batch["image"].shape == (12, SIZE, SIZE, 3)  # colour kept
    positives = np.sum(list(celeba.vectors.values()), axis=0)
    assert source.class_counts() == {"attributes": dict(zip(ATTRIBUTES, positives.tolist()))}
    summary = source.summary()
    assert "attributes (faces with each): " + ", ".join(f"{a} {n}" for a, n in zip(ATTRIBUTES, positives)) in summary
    assert f"rows of list_attr_celeba.txt without an image (not used): {EXTRA_ROWS}" in summary
    assert "examples: 12 in 4 groups (by subject)" in summary and "faults: 0 skipped" in summary


def test_a_count_line_before_the_header_reads_as_the_header_alone(celeba, tmp_path):
    counted = write_celeba(str(tmp_path / "counted"), count_line=True)
    with open(counted.attribute_file) as handle:
        assert handle.readline().strip() == str(len(PEOPLE) * PER_PERSON + EXTRA_ROWS)
    plain, with_count = open_source(celeba.config()), open_source(counted.config())
    assert plain.all_columns["attributes"] == with_count.all_columns["attributes"]
    assert plain.all_groups == with_count.all_groups and with_count._parsed.rows_without_image == EXTRA_ROWS


def test_the_official_layout_takes_its_people_from_the_identity_file(tmp_path):
    official = write_celeba(str(tmp_path / "official"), official=True)
    source = open_source(official.config(celeba_identities=official.identities))
    names = _names(source)
    assert names[0] == "000001.jpg" and source.all_groups == [official.people[name] for name in names]
    np.testing.assert_array_equal(_batch(source)["attributes"].numpy(), [official.vectors[name] for name in names])


def test_the_official_layout_without_an_identity_file_is_one_line(tmp_path):
    official = write_celeba(str(tmp_path / "official"), official=True)
    with pytest.raises(DataError) as error:
        open_source(official.config())
    assert str(error.value) == (
        f"{official.images}: the image names carry no person (e.g. 000001.jpg; a public sample names them "
        "<identity>_<file>), and a split by person needs one: give --celeba_identities (CelebA's "
        "identity_CelebA.txt)")


def test_an_image_the_identity_file_does_not_name_is_a_fault(tmp_path):
    official = write_celeba(str(tmp_path / "official"), official=True)
    with open(official.identities) as handle:
        kept = [line for line in handle if not line.startswith("000005.jpg")]
    with open(official.identities, "w") as handle:
        handle.writelines(kept)
    with pytest.raises(DataError, match=r"^list_attr_celeba.txt row 5 \(000005.jpg\): no identity for 000005.jpg "
                                        r"in identity_CelebA.txt$"):
        open_source(official.config(celeba_identities=official.identities))
    source = open_source(official.config(celeba_identities=official.identities, on_error="skip"))
    assert source.num_examples == 11 and [fault.row for fault in source.faults] == [5]


def test_centre_crop_then_resize_is_stargans_crop_of_178_then_resize(celeba):
    """StarGAN: CenterCrop(178) of the 178x218 face (rows 20 to 197), then Resize(128), bilinear."""
    name = sorted(celeba.vectors)[0]
    with open(os.path.join(celeba.images, name), "rb") as handle:
        encoded = handle.read()
    ours = prepare({"image": encoded}, 128, apply_mask=False)["image"]
    image = Image.open(io.BytesIO(encoded)).convert("RGB")
    reference = np.asarray(image.crop((0, 20, 178, 198)).resize((128, 128), Image.BILINEAR)) / 127.5 - 1.0
    # The reference rounds to 8 bits after resizing; the reader keeps float32: within one level.
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1.01 / 127.5)
    shifted = np.asarray(image.crop((0, 0, 178, 178)).resize((128, 128), Image.BILINEAR)) / 127.5 - 1.0
    assert np.abs(ours - shifted).max() > 0.1  # the crop's place matters at this tolerance


# --- shards ---------------------------------------------------------------------------------------------


def _prepare(celeba, output, *extra):
    command = [sys.executable, SCRIPT, "--data_format=celeba", f"--data_path={celeba.attribute_file}",
               f"--celeba_images={celeba.images}", f"--attribute_names={','.join(ATTRIBUTES)}",
               f"--image_size={SIZE}", f"--output_dir={output}", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_prepare_data_shards_split_by_person_and_both_readers_give_the_vectors(celeba, tmp_path):
    output = str(tmp_path / "shards")
    result = _prepare(celeba, output, "--holdout_fraction=0.25", "--split_seed=0", "--num_shards=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 12 records" in result.stdout and "  train: 9 records, 3 subjects" in result.stdout
    assert "  test: 3 records, 1 subject\n" in result.stdout
    assert f"rows of list_attr_celeba.txt without an image (not used): {EXTRA_ROWS}" in result.stdout
    with open(os.path.join(output, "dataset.json")) as handle:
        metadata = json.load(handle)
    assert metadata["data_format"] == "celeba" and metadata["label_names"] == {"attributes": list(ATTRIBUTES)}
    assert metadata["features"] == ["image", "identity", "attributes"] and metadata["group_kind"] == "subject"
    assert metadata["image_sizes"] == {"178x218": 12}

    # Every record holds its image's vector, as an int64 list in ATTRIBUTES' order.
    stored = {}
    for shard in sorted(os.listdir(output)):
        if shard.endswith(".tfrecord"):
            path = os.path.join(output, shard)
            with open(path, "rb") as handle:
                data = handle.read()
            for offset, length in record_spans(path):
                record = parse_example(data[offset:offset + length])
                stored[os.path.basename(record["path"][0].decode())] = (shard.split("-")[0], record)
    assert {name: record["attributes"] for name, (_, record) in stored.items()} == celeba.vectors

    # The person split: nobody on both sides, the test side one whole person.
    sides = collections.defaultdict(set)
    for name, (split, _) in stored.items():
        sides[split].add(celeba.people[name])
    assert sides["train"].isdisjoint(sides["test"]) and len(sides["test"]) == 1
    for split in ("train", "test"):
        expected = np.sum([celeba.vectors[name] for name, (side, _) in stored.items() if side == split], axis=0)
        assert metadata["splits"][split]["class_counts"] == {"attributes": dict(zip(ATTRIBUTES, expected.tolist()))}

    config = DataConfig(data_format="tfrecord", data_path=output, attribute_names=ATTRIBUTES, image_size=SIZE)
    tf_source, np_source = open_source(config), open_numpy_source(config)
    for tf_part, np_part in zip(tf_source.split(), np_source.split()):
        assert tf_part.groups == np_part.groups and tf_part.class_counts() == np_part.class_counts()
        tf_batch = {key: value.numpy() for key, value in _batch(tf_part).items()}
        np_batch = next(iter(np_part.batches(100, training=False)))
        for batch in (tf_batch, np_batch):
            assert batch["attributes"].dtype == np.float32 and batch["attributes"].shape == (tf_part.num_examples, 3)
        np.testing.assert_array_equal(tf_batch["attributes"], np_batch["attributes"])
        np.testing.assert_array_equal(tf_batch["identity"], np_batch["identity"])
        # The faces of the split's people, each with its vector, whatever the order.
        names = [name for name, (side, _) in stored.items() if side == tf_part.split_name]
        expected = sorted((sorted(PEOPLE).index(celeba.people[name]), celeba.vectors[name]) for name in names)
        read = sorted((int(identity), vector.astype(int).tolist())
                      for identity, vector in zip(np_batch["identity"], np_batch["attributes"]))
        assert read == expected

    with pytest.raises(DataError) as error:
        open_numpy_source(DataConfig(data_format="tfrecord", data_path=output))
    assert str(error.value) == (f"{os.path.join(output, 'dataset.json')}: the shards' attributes names (Young, "
                                "Black_Hair, Male) differ from the configured ones (Black_Hair, Blond_Hair, "
                                "Brown_Hair, Male, Young); pass --attribute_names")


def test_prepare_data_help_lists_the_celeba_flags():
    result = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert "Traceback" not in result.stderr  # absl prints the usage to stdout and exits with 1
    for flag in ("--attribute_names", "--celeba_images", "--celeba_identities", "celeba = CelebA's attribute file"):
        assert flag in result.stdout, flag


# --- bad input --------------------------------------------------------------------------------------------


def _fault(celeba, on_error, **overrides):
    """Under fail, the DataError's message; under skip, the source (its faults counted)."""
    config = celeba.config(on_error=on_error, **overrides)
    if on_error == "skip":
        return open_source(config)
    with pytest.raises(DataError) as error:
        open_source(config)
    return str(error.value)


def test_an_attribute_the_header_lacks_names_close_ones(celeba):
    with pytest.raises(DataError) as error:
        open_source(celeba.config(attribute_names=("Blond_hair", "Male", "Smile")))
    assert str(error.value) == (
        "list_attr_celeba.txt: no attribute 'Blond_hair' (close: Blond_Hair), 'Smile' (close: Smiling) in its "
        "header of 7 names (5_o_Clock_Shadow, Black_Hair, Blond_Hair, Brown_Hair, Male, ...); --attribute_names "
        "takes the header's names")


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_a_row_whose_width_differs_from_the_headers(celeba, on_error, tmp_path):
    celeba.rewrite_row(4, lambda cells: cells[:-1])
    report = str(tmp_path / "skipped.csv")
    found = _fault(celeba, on_error, skipped_report=report)
    image = celeba.image_of(4)
    if on_error == "fail":
        assert found == f"list_attr_celeba.txt row 4 ({image}): 6 values, and the header names 7 attributes"
        return
    assert found.num_examples == 11 and len(found.faults) == 1 and "faults: 1 skipped" in found.summary()
    with open(report, newline="") as handle:
        assert list(csv.reader(handle)) == [["row", "path", "fault"],
                                            ["4", image, "6 values, and the header names 7 attributes"]]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_a_value_other_than_1_or_minus_1(celeba, on_error):
    celeba.rewrite_row(5, lambda cells: cells[:5] + ["0"] + cells[6:])  # Male, the header's 5th attribute
    found = _fault(celeba, on_error)
    if on_error == "fail":
        assert found == (f"list_attr_celeba.txt row 5 ({celeba.image_of(5)}): column Male (value 5 of 7) is '0'; "
                         "the values are 1 or -1")
    else:
        assert found.num_examples == 11 and [fault.row for fault in found.faults] == [5]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_an_unreadable_image(celeba, on_error):
    image = celeba.image_of(7)
    truncate(os.path.join(celeba.images, image))
    found = _fault(celeba, on_error)
    if on_error == "fail":
        assert found == f"list_attr_celeba.txt row 7 ({image}): truncated image file"
    else:
        assert found.num_examples == 11 and str(found.faults[0]) == f"list_attr_celeba.txt row 7 ({image}): " \
                                                                   "truncated image file"


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_an_image_without_a_row_and_a_file_that_is_no_image(celeba, on_error):
    Image.new("RGB", (WIDTH, HEIGHT)).save(os.path.join(celeba.images, "9_999999.jpg"))
    with open(os.path.join(celeba.images, "notes.txt"), "w") as handle:
        handle.write("not a face")
    found = _fault(celeba, on_error)
    if on_error == "fail":
        # Faults come in the attribute file's row order, so those of files without a row come last.
        assert found == "list_attr_celeba.txt (9_999999.jpg): no row for 999999.jpg"
    else:
        assert found.num_examples == 12 and [str(fault) for fault in found.faults] == [
            "list_attr_celeba.txt (9_999999.jpg): no row for 999999.jpg",
            "list_attr_celeba.txt (notes.txt): not a .png/.jpg/.jpeg file"]
        assert found._parsed.rows_without_image == EXTRA_ROWS


def test_an_image_without_a_person_prefix_beside_prefixed_ones_is_a_fault(celeba):
    name = celeba.image_of(2)
    os.rename(os.path.join(celeba.images, name), os.path.join(celeba.images, "000002.jpg"))
    assert _fault(celeba, "fail") == ("list_attr_celeba.txt row 2 (000002.jpg): no person in its name (expected "
                                      "<identity>_<file>; or give --celeba_identities)")


def test_a_repeated_row_is_a_fault_of_its_image(celeba):
    with open(celeba.attribute_file, "a") as handle:
        handle.write("000003.jpg" + " 1" * len(HEADER) + "\r\n")
    assert _fault(celeba, "fail") == (f"list_attr_celeba.txt row 3 ({celeba.image_of(3)}): 000003.jpg has a second "
                                      f"row, row {len(PEOPLE) * PER_PERSON + EXTRA_ROWS + 1}")


def test_a_count_line_that_disagrees_with_the_rows(tmp_path):
    counted = write_celeba(str(tmp_path / "counted"), count_line=True)
    with open(counted.attribute_file) as handle:
        text = handle.read()
    with open(counted.attribute_file, "w", newline="") as handle:
        handle.write("202599" + text[text.index("\n"):])
    with pytest.raises(DataError) as error:
        open_source(counted.config())
    assert str(error.value) == ("list_attr_celeba.txt: its first line gives 202599 rows, and 15 follow the header (a "
                                "truncated or edited file?); fix the count or remove that line")


def test_a_file_without_a_header(celeba):
    with open(celeba.attribute_file) as handle:
        lines = handle.read().splitlines()
    with open(celeba.attribute_file, "w") as handle:
        handle.write("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataError, match=r"^list_attr_celeba.txt: line 1 is not a header of attribute names \(it "
                                        r"reads 000001.jpg "):
        open_source(celeba.config())


def test_configuration_errors_are_one_line(celeba, tmp_path):
    with pytest.raises(DataError, match=r"^attribute names repeat Male$"):
        celeba.config(attribute_names=("Male", "Young", "Male"))
    with pytest.raises(DataError, match=r"^data_format=celeba needs celeba_images: the folder of CelebA's aligned "
                                        r"images$"):
        celeba.config(celeba_images=None)
    with pytest.raises(DataError, match=r"^celeba_images is read by data_format=celeba only, not multipie$"):
        DataConfig(data_format="multipie", data_path="m.csv", celeba_images=celeba.images)
    with pytest.raises(DataError, match=r"^data_format=celeba needs attribute_names"):
        celeba.config(attribute_names=())
    missing = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match=f"^{re.escape(missing)}: celeba_images does not exist"):
        open_source(celeba.config(celeba_images=missing))
    with pytest.raises(DataError, match=r"celeba_images is not a folder"):
        open_source(celeba.config(celeba_images=celeba.attribute_file))
    with pytest.raises(DataError, match=r"a folder; data_format=celeba reads CelebA's attribute file"):
        open_source(celeba.config(data_path=celeba.images))


def test_expression_names_are_not_needed_for_celeba_only(celeba):
    assert celeba.config(expression_names=()).expression_names == ()
    with pytest.raises(DataError, match="expression_names must name at least one expression"):
        DataConfig(data_format="multipie", data_path="m.csv", expression_names=())
