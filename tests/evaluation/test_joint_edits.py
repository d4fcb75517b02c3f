"""legan_tf.evaluation.joint_edits and scripts/judge_joint_edits.py: LEGAN's real-face check, one attribute
edited at a time, each read by its own judge.

The figures are checked with stand-ins whose answers follow from arithmetic: faces whose expression is
written in channel 0 and lighting in channel 1, judges that read them back, and generators that write
exactly what is asked, nothing, or the lighting with a change of expression. The script, its files and its
errors are checked on tiny relit-style shards with untrained networks.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.errors import ConfigError
from legan_tf.evaluation import joint_edits, relit_copies
from legan_tf.evaluation.identity_real import same_person_threshold
from legan_tf.evaluation.translation_metrics import generator_translate_fn
from tests.evaluation.conftest import save_tiny_identity_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "judge_joint_edits.py")
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
LIGHTS = ("original", "left_90", "right_90")
E, L = len(EXPRESSIONS), len(LIGHTS)
SIZE = 16


def level(ids, classes):
    """The channel value that writes class `ids` of `classes` into a face: evenly spaced over [-1, 1]."""
    return -1.0 + 2.0 * np.asarray(ids, np.float32) / (classes - 1)


def read_level(images, channel, classes):
    values = np.asarray(images)[..., channel].mean(axis=(1, 2))
    return np.clip(np.round((values + 1.0) * (classes - 1) / 2.0), 0, classes - 1).astype(int)


def faces(expression, lighting, seed=0):
    images = np.random.default_rng(seed).uniform(-1, 1, (len(expression), SIZE, SIZE, 3)).astype(np.float32)
    images[..., 0] = level(expression, E)[:, None, None]
    images[..., 1] = level(lighting, L)[:, None, None]
    return images


class ReadingClassifier:
    """An AttributeClassifier stand-in at 24 px (the faces are 16: read through the resize); nearest-level
    reading of channel 0 (expression) and channel 1 (lighting) survives a bilinear resize of a constant plane."""

    image_size = 24
    head_classes = {"expression": E, "lighting": L}

    def __call__(self, images):
        return {"expression": np.eye(E)[read_level(images, 0, E)], "lighting": np.eye(L)[read_level(images, 1, L)]}


class StubGenerator:
    image_size, num_labels = SIZE, E + L

    def __init__(self, edit):
        self.edit = edit

    def __call__(self, inputs):
        return self.edit(np.asarray(inputs[0]).copy(), np.asarray(inputs[1]))


def perfect(images, labels):
    images[..., 0] = level(labels[:, :E].argmax(1), E)[:, None, None]
    images[..., 1] = level(labels[:, E:].argmax(1), L)[:, None, None]
    return images


def unchanged(images, labels):
    return images


def entangled(images, labels):
    """Writes both targets, but a change of lighting also moves the expression one class on."""
    expression, lighting = labels[:, :E].argmax(1), labels[:, E:].argmax(1)
    moved = lighting != read_level(images, 1, L)
    images[..., 0] = level(np.where(moved, (expression + 1) % E, expression), E)[:, None, None]
    images[..., 1] = level(lighting, L)[:, None, None]
    return images


EXPRESSION_LABELS = np.tile(np.arange(E), 2)
LIGHTING_LABELS = np.arange(2 * E) % L
NAMES = {"expression": EXPRESSIONS, "lighting": LIGHTS}


def summary_of(edit, by_data=None):
    classifier = ReadingClassifier()
    judges = [joint_edits.Judge(name, name, joint_edits.attribute_judge(classifier, name, size, batch_size=4), {})
              for name, size in (("expression", E), ("lighting", L))]
    translate = generator_translate_fn(StubGenerator(edit), {"expression": E, "lighting": L}, batch_size=5)
    labels = {"expression": EXPRESSION_LABELS, "lighting": LIGHTING_LABELS}
    readings = joint_edits.edit_each_attribute(translate, judges, faces(EXPRESSION_LABELS, LIGHTING_LABELS), labels,
                                               {"expression": E, "lighting": L}, batch_size=5)
    return joint_edits.summarise(readings, judges, NAMES, by_data=by_data)


def test_a_perfect_editor_reaches_every_target_and_keeps_the_other_attribute():
    summary = summary_of(perfect)
    expression, lighting = summary["edits"]["expression"], summary["edits"]["lighting"]
    assert expression["pairs"] == 2 * E * (E - 1) and lighting["pairs"] == 2 * E * (L - 1)
    assert expression["judges"]["expression"]["target_rate"] == 1.0
    assert expression["judges"]["expression"]["judge_accuracy"] == 1.0
    assert expression["judges"]["lighting"]["kept"] == 1.0
    assert lighting["judges"]["lighting"]["target_rate"] == 1.0 and lighting["judges"]["expression"]["kept"] == 1.0
    # The identity edit writes each face's own levels into channels it already holds: exactly the input.
    assert expression["identity_l1"] == 0.0 and lighting["identity_l1"] == 0.0
    assert summary["verdict"]["all_met"]
    assert set(expression["judges"]["expression"]["per_target"].values()) == {1.0}


def test_an_editor_that_changes_nothing_scores_the_baseline_and_keeps_everything():
    summary = summary_of(unchanged)
    for name in ("expression", "lighting"):
        figures = summary["edits"][name]["judges"][name]
        # The judge reads every face's own (correct) label, never a target t != s: rate = baseline = 0.
        assert figures["target_rate"] == 0.0 and figures["baseline"] == 0.0
        other = "lighting" if name == "expression" else "expression"
        assert summary["edits"][name]["judges"][other]["kept"] == 1.0
        assert summary["edits"][name]["edit_l1"] == 0.0
    assert not summary["verdict"]["expression_rate_met"] and not summary["verdict"]["all_met"]
    assert summary["verdict"]["lighting_only_keeps_expression_met"]


def test_a_lighting_edit_that_moves_the_expression_fails_disentanglement_only():
    summary = summary_of(entangled)
    verdict = summary["verdict"]
    assert summary["edits"]["lighting"]["judges"]["expression"]["kept"] == 0.0
    assert summary["edits"]["lighting"]["judges"]["lighting"]["target_rate"] == 1.0
    assert summary["edits"]["expression"]["judges"]["expression"]["target_rate"] == 1.0
    assert summary["edits"]["expression"]["judges"]["lighting"]["kept"] == 1.0
    assert verdict["expression_rate_met"] and verdict["lighting_rate_met"]
    assert verdict["expression_only_keeps_lighting_met"] and not verdict["lighting_only_keeps_expression_met"]


def test_a_second_opinion_that_lacks_some_expressions_is_read_over_those_it_knows():
    classifier = ReadingClassifier()
    known = [0, 1, 2, 3, 4]                                   # no class for 5 and 6

    def partial(images):
        """Reads the expression exactly where it has the class, and as class 0 where it has not (as an argmax
        over the classes it knows must read something)."""
        read = read_level(images, 0, E)
        return np.where(np.isin(read, known), read, 0)

    judges = [joint_edits.Judge(name, name, joint_edits.attribute_judge(classifier, name, size, batch_size=4), {})
              for name, size in (("expression", E), ("lighting", L))]
    judges.append(joint_edits.Judge("partial", "expression", partial, {}, known))
    translate = generator_translate_fn(StubGenerator(perfect), {"expression": E, "lighting": L}, batch_size=5)
    labels = {"expression": EXPRESSION_LABELS, "lighting": LIGHTING_LABELS}
    readings = joint_edits.edit_each_attribute(translate, judges, faces(EXPRESSION_LABELS, LIGHTING_LABELS), labels,
                                               {"expression": E, "lighting": L}, batch_size=5)
    summary = joint_edits.summarise(readings, judges, NAMES)
    figures = summary["edits"]["expression"]["judges"]["partial"]
    # Faces of classes 5 and 6, and edits to them, are left out: every remaining reading is exact.
    assert figures["judge_accuracy"] == 1.0 and figures["target_rate"] == 1.0 and figures["baseline"] == 0.0
    assert list(figures["per_target"]) == list(EXPRESSIONS[:5]) and figures["knows"] == list(EXPRESSIONS[:5])
    assert summary["edits"]["lighting"]["judges"]["partial"]["kept"] == 1.0
    assert "partial (expression; knows 5 of its classes)" in joint_edits.tables(summary)
    # Without the restriction the same readings would miss: the 4 faces of classes 5 and 6 read as 0.
    assert (partial(faces(EXPRESSION_LABELS, LIGHTING_LABELS)) != EXPRESSION_LABELS).sum() == 4


def channel_means(images):
    """A stand-in for the FID network: the three channel means of each image."""
    return np.asarray(images, np.float64).mean(axis=(1, 2))


def distances_of(edit, reference=None):
    classifier = ReadingClassifier()
    judges = [joint_edits.Judge(name, name, joint_edits.attribute_judge(classifier, name, size, batch_size=4), {})
              for name, size in (("expression", E), ("lighting", L))]
    translate = generator_translate_fn(StubGenerator(edit), {"expression": E, "lighting": L}, batch_size=5)
    labels = {"expression": EXPRESSION_LABELS, "lighting": LIGHTING_LABELS}
    sizes = {"expression": E, "lighting": L}
    features = joint_edits.EditFeatures(channel_means, labels, sizes, seed=3)
    readings = joint_edits.edit_each_attribute(translate, judges, faces(EXPRESSION_LABELS, LIGHTING_LABELS), labels,
                                               sizes, batch_size=5, features=features)
    return features, joint_edits.summarise(readings, judges, NAMES, reference, "train" if reference is not None
                                           else None)


def test_fid_features_are_of_one_seeded_edit_per_face_and_attribute():
    features, summary = distances_of(perfect)
    # The perfect editor writes the target's level into its channel: each face's chosen edit carries exactly the
    # level of its own seeded target, never the face's own value, in both attributes.
    for name, channel, classes in (("expression", 0, E), ("lighting", 1, L)):
        targets = features.targets[name]
        assert (targets != {"expression": EXPRESSION_LABELS, "lighting": LIGHTING_LABELS}[name]).all()
        chosen = np.concatenate(features.edits[name])
        np.testing.assert_allclose(chosen[:, channel], level(targets, classes), atol=1e-6)
    figures = summary["distances"]["lighting"]
    assert figures["fid_protocol"] == "paired" and figures["fid_faces"] == 2 * E and figures["fid_feature_dim"] == 3


def test_an_editor_that_changes_nothing_scores_the_floor():
    rng = np.random.default_rng(5)
    reference = rng.normal(0.0, 0.5, (40, 3))
    _, summary = distances_of(unchanged, reference)
    for name in ("expression", "lighting"):
        figures = summary["distances"][name]
        # The edits are the unedited faces: the paired FID vanishes (up to float64 rounding of a 3x3 matrix
        # square root), the unpaired FID and KID equal the floor's. (The unbiased KID of a set against itself is
        # not 0: its cross term keeps the diagonal that the within-set terms leave out.)
        assert abs(figures["fid_paired"]) < 1e-9
        assert figures["fid"] == pytest.approx(figures["fid_floor"], rel=1e-12)
        assert figures["kid"] == pytest.approx(figures["kid_floor"], rel=1e-12)
        assert figures["fid_reference"] == "the train split's unedited faces" and figures["fid_reference_faces"] == 40
    # 14 faces, more than the 3 features on both sides: the table prints the FIDs themselves.
    text = joint_edits.tables(summary)
    assert "| naturalness (FID network) | expression-only edits | lighting-only edits |" in text
    assert "floor: the 14 faces unedited" in text


def test_auto_compares_relit_faces_with_the_training_split_when_nothing_else_is_stored():
    assert joint_edits.fid_reference("auto", "test", ["train", "test"]) == "train"
    assert joint_edits.fid_reference("auto", "test", ["train", "validation", "test"]) == "validation"
    assert joint_edits.fid_reference("none", "test", ["train", "test"]) is None
    assert joint_edits.fid_reference("auto", "train", ["train"]) is None
    with pytest.raises(ConfigError, match="is the split being edited"):
        joint_edits.fid_reference("test", "test", ["train", "test"])


def _channel_two(images):
    """An identity-network stand-in: the person is channel 2, each face's own seeded noise."""
    return np.asarray(images)[..., 2].reshape(len(images), -1)


def new_person(images, labels):
    """Writes both targets exactly and replaces the person: channel 2 negated (cos -1 to the face)."""
    images = perfect(images, labels)
    images[..., 2] = -images[..., 2]
    return images


def identity_summary_of(edit, people=None):
    expression, lighting = np.tile(np.arange(E), 3), np.arange(3 * E) % L   # 21 faces: 210 pairs, 2 at FAR 1%
    classifier = ReadingClassifier()
    judges = [joint_edits.Judge(name, name, joint_edits.attribute_judge(classifier, name, size, batch_size=4), {})
              for name, size in (("expression", E), ("lighting", L))]
    translate = generator_translate_fn(StubGenerator(edit), {"expression": E, "lighting": L}, batch_size=5)
    readings = joint_edits.edit_each_attribute(
        translate, judges, faces(expression, lighting), {"expression": expression, "lighting": lighting},
        {"expression": E, "lighting": L}, batch_size=5, embed=_channel_two, people=people)
    return joint_edits.summarise(readings, judges, NAMES)


def test_the_identity_network_reads_a_kept_person_as_the_same_and_a_replaced_one_as_another():
    kept = identity_summary_of(perfect)
    replaced = identity_summary_of(new_person)
    for name in ("expression", "lighting"):
        figures = kept["edits"][name]["identity"]
        # Channel 2 untouched: equal unit vectors, 1 - cos within float64 rounding of a 256-term dot product.
        assert figures["distance"] == pytest.approx(0.0, abs=1e-12) and figures["same_person"] == 1.0
        # Independent uniform noise of 256 values: impostor cosines have sd 1/16, so the FAR-1% distance
        # threshold lies far from both 0 and 2 (|cos| < 0.5 is 8 sd).
        assert 0.5 < figures["threshold"] < 1.5
        other = replaced["edits"][name]["identity"]
        assert other["distance"] == pytest.approx(2.0, abs=1e-12) and other["same_person"] == 0.0
    assert "read as the same person by f" in joint_edits.tables(replaced)
    assert "identity" not in summary_of(perfect)["edits"]["expression"]


def test_the_same_person_threshold_accepts_one_percent_of_the_pairs_of_two_people():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(40, 8))
    threshold = same_person_threshold(embeddings, None)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    distances = (1 - unit @ unit.T)[np.triu_indices(40, k=1)]
    # 780 pairs of different faces: floor(7.8) = 7 accepted (continuous random values: no ties).
    assert np.sum(distances < threshold) == 7
    # Faces of one person are not impostor pairs: 20 people x 2 identical copies. Their 4 face pairs per pair of
    # people tie, so the 760 impostor distances are each of the 190 people-pair distances 4 times; the 8th
    # smallest (index floor(7.6) = 7) is the second smallest people-pair distance, and the 4 copies of the
    # smallest pass. Counted as impostors, the copies' distance 0 would have set the threshold at 0.
    people = np.repeat(np.arange(20), 2)
    threshold = same_person_threshold(np.repeat(embeddings[:20], 2, axis=0), people)
    person_distances = np.sort((1 - unit[:20] @ unit[:20].T)[np.triu_indices(20, k=1)])
    assert threshold == pytest.approx(person_distances[1], abs=1e-12) and threshold > 1e-6
    assert same_person_threshold(embeddings[:10], None) is None   # 45 pairs: 1% is not one pair


def test_a_judge_without_the_attribute_head_is_refused():
    class ExpressionOnly(ReadingClassifier):
        head_classes = {"expression": E}

    with pytest.raises(ConfigError, match="no lighting head"):
        joint_edits.attribute_judge(ExpressionOnly(), "lighting", L)
    with pytest.raises(ConfigError, match="has 3 lighting classes, the generator 4"):
        joint_edits.attribute_judge(ReadingClassifier(), "lighting", 4)


# --- the data's own kept share --------------------------------------------------------------------

def _relit_split(photos, expression_of, reads_of):
    """Every photo under every light (relit-shard style): subject = photo; reads_of(expression, light) is the
    judge's reading of that image."""
    subjects, expression, lighting = (np.repeat(np.arange(photos), L), np.repeat(expression_of, L),
                                      np.tile(np.arange(L), photos))
    reads = np.array([reads_of(e, light) for e, light in zip(expression, lighting)])
    return relit_copies.SplitReadings({"expression": reads}, {"expression": expression, "lighting": lighting}, subjects)


def test_a_judge_that_reads_every_copy_alike_is_kept_by_the_data_every_time():
    split = _relit_split(4, np.array([0, 3, 5, 6]), lambda e, light: e)
    judge = joint_edits.Judge("expression", "expression", None, {})
    figures = relit_copies.copy_agreement(split, np.arange(4 * L), judge, "lighting", L)
    assert figures == {"kept": 1.0, "pairs_with_copy": 4 * L * (L - 1), "pairs": 4 * L * (L - 1),
                       "per_target": [1.0] * L}


def test_the_data_keeps_what_the_judge_keeps_across_the_same_photo_under_another_light():
    # The judge misreads every face under light 2 (right_90) as the next expression. A face under light l and
    # its copy under t != l disagree exactly when one of l, t is 2: of the L (L - 1) = 6 ordered pairs of
    # lights per photo, the 4 that hold light 2 once. Faces chosen under light 0 only: pairs (0,1), (0,2): 1 of 2.
    split = _relit_split(3, np.array([1, 2, 4]), lambda e, light: (e + 1) % E if light == 2 else e)
    judge = joint_edits.Judge("expression", "expression", None, {})
    every = relit_copies.copy_agreement(split, np.arange(3 * L), judge, "lighting", L)
    assert every["kept"] == pytest.approx(2 / 6) and every["pairs_with_copy"] == 3 * 6
    # By target: a copy under light 2 disagrees with every face (under 0 or 1); one under 0 or 1 agrees with
    # the face under the other of them and not with the face under 2.
    assert every["per_target"] == pytest.approx([1 / 2, 1 / 2, 0.0])
    under_original = relit_copies.copy_agreement(split, np.arange(0, 3 * L, L), judge, "lighting", L)
    assert under_original["kept"] == pytest.approx(1 / 2) and under_original["pairs"] == 3 * 2
    # A judge that does not know the faces' own class (photo 1's expression 2) leaves them out.
    partial = joint_edits.Judge("other", "expression", None, {}, known=[0, 1, 3, 4, 5, 6])
    split.reads["other"] = split.reads["expression"]
    left = relit_copies.copy_agreement(split, np.arange(3 * L), partial, "lighting", L)
    assert left["pairs"] == 2 * 6 and left["kept"] == pytest.approx(2 / 6)


class _Array:
    def __init__(self, values):
        self.values = values

    def numpy(self):
        return self.values


class _ListSource:
    """A stored split stand-in: `images` in file order, in batches of 4."""

    def __init__(self, images):
        self.images = images

    def dataset(self, batch_size, training=False, repeat=False):
        return [{"image": _Array(self.images[start:start + 4])} for start in range(0, len(self.images), 4)]


def test_the_copies_grid_frames_each_copy_by_whether_the_judge_keeps_its_reading(monkeypatch):
    # Judge misreads light 2; rows: photo 0 under light 0 and photo 1 under light 2 (split rows 0 and 5).
    split = _relit_split(2, np.array([1, 4]), lambda e, light: (e + 1) % E if light == 2 else e)
    seen = []
    real_framed = relit_copies._framed
    monkeypatch.setattr(relit_copies, "_framed", lambda images, colours: seen.append(list(colours))
                        or real_framed(images, colours))
    images = faces(split.labels["expression"], split.labels["lighting"])
    grid = relit_copies.copies_grid(_ListSource(images), split, [0, 5], "expression", NAMES)
    own, hit, miss = relit_copies.OWN, relit_copies.HIT, relit_copies.MISS
    # Columns are lights 0, 1, 2; a row's own light is grey; light 2 flips the reading of a face under 0 or 1.
    assert seen == [[own, miss], [hit, miss], [miss, own]]
    assert grid.ndim == 3 and grid.shape[0] == 20 + 2 * (96 + 6 + 2)
    # Two images of one person with one expression under light 0 (two frames): the face's own column shows
    # the face itself (row 1), not the first frame; the other columns the first image found.
    frames = relit_copies.SplitReadings({"expression": np.zeros(4, int)},
                                       {"expression": np.zeros(4, int), "lighting": np.array([0, 0, 1, 2])},
                                       np.zeros(4, int))
    shown = []
    monkeypatch.setattr(relit_copies, "_framed", lambda images, colours: shown.append(images[0, 0, 0, 2])
                        or real_framed(images, colours))
    marked = faces(np.zeros(4, int), np.array([0, 0, 1, 2]))
    marked[..., 2] = np.arange(4)[:, None, None] / 4.0
    relit_copies.copies_grid(_ListSource(marked), frames, [1], "expression", NAMES)
    assert shown == pytest.approx([0.25, 0.5, 0.75])


def test_without_copies_there_is_no_data_figure_and_the_summary_gives_the_share_of_it():
    # One image per photo: nothing differs from a face in the lighting only, so no figure.
    lonely = relit_copies.SplitReadings({"expression": np.arange(3), "lighting": np.zeros(3, int)},
                                       {"expression": np.arange(3), "lighting": np.arange(3)}, np.arange(3))
    judges = [joint_edits.Judge(name, name, None, {}) for name in ("expression", "lighting")]
    assert relit_copies.data_agreement(lonely, np.arange(3), judges, {"expression": E, "lighting": L}) == {}
    # The entangled editor keeps the expression on none of its lighting edits; the data kept it on half.
    by_data = {"lighting": {"expression": {"kept": 0.5, "pairs_with_copy": 4, "pairs": 4, "per_target": []}}}
    summary = summary_of(entangled, by_data)
    kept = summary["edits"]["lighting"]["judges"]["expression"]
    assert kept["kept"] == 0.0 and kept["kept_of_data"] == 0.0 and kept["kept_by_data"]["kept"] == 0.5
    assert "kept_by_data" not in summary["edits"]["expression"]["judges"]["lighting"]
    assert "| lighting only | expression (expression) | 0.0% | 50.0% | 0.0% | 4 of 4 |" in joint_edits.tables(summary)


# --- the script on tiny shards --------------------------------------------------------------------
# Each starts a TensorFlow process (or evaluates in this one): `make test-slow` runs them, with the fixture.

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Relit-style shards (Training_ photos for train, PrivateTest_ photos held out), an untrained 16 px LEGAN
    run with the attention output, and a 24 px two-head judge with labels.json."""
    from legan_tf.data import DataConfig, open_source, tfrecord
    from legan_tf.models.classifier import AttributeClassifier
    from legan_tf.models.legan import LEGANGenerator

    root = tmp_path_factory.mktemp("joint_edits")
    rng = np.random.default_rng(0)
    rows = ["image,subject,session,lighting,expression"]
    for prefix, photos in (("Training", 2), ("PrivateTest", 3)):
        for photo in range(photos):
            expression = EXPRESSIONS[(photo * 3) % E]
            for light in LIGHTS:
                name = f"images/{prefix}_{photo}_{light}.png"
                (root / "images").mkdir(exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (SIZE, SIZE), dtype=np.uint8)).save(root / name)
                rows.append(f"{name},{prefix}_{photo},1,{light},{expression}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    source = open_source(DataConfig("multipie", str(root / "manifest.csv"), image_size=SIZE,
                                    expression_names=EXPRESSIONS, lighting_names=LIGHTS, convert_color=True,
                                    split_pattern=r"(?P<train>Training_)|(?P<test>PrivateTest_)"))
    tfrecord.prepare_output_dir(str(root / "shards"), False)
    tfrecord.write_tfrecords(source, str(root / "shards"), 1, 0.0, 0)
    run = root / "run"
    run.mkdir()
    generator = LEGANGenerator(SIZE, E, L, base_filters=4, num_residual_blocks=1, upsampling="resize",
                               output_mode="attention", grey_colour=True)
    generator((np.zeros((1, SIZE, SIZE, 3), np.float32), np.zeros((1, E + L), np.float32)))
    generator.save(str(run / "generator.keras"))
    (run / "flags.txt").write_text(f"--task=legan\n--data_format=tfrecord\n--data_path={root / 'shards'}\n"
                                   f"--image_size={SIZE}\n--expression_names={','.join(EXPRESSIONS)}\n"
                                   f"--lighting_names={','.join(LIGHTS)}\n")
    (run / "labels.json").write_text(json.dumps({"expression": list(EXPRESSIONS), "lighting": list(LIGHTS)}))
    paths = {"run": str(run), "shards": str(root / "shards")}
    warp_run = root / "warp_run"
    warp_run.mkdir()
    warping = LEGANGenerator(SIZE, E, L, base_filters=4, num_residual_blocks=1, upsampling="resize",
                             output_mode="attention", grey_colour=True, expression_output="warp", warp_grid=4)
    warping((np.zeros((1, SIZE, SIZE, 3), np.float32), np.zeros((1, E + L), np.float32)))
    warping.save(str(warp_run / "generator.keras"))
    for name in ("flags.txt", "labels.json"):
        (warp_run / name).write_text((run / name).read_text())
    paths["warp_run"] = str(warp_run)
    paths["identity_model"] = save_tiny_identity_model(root / "identity_model.keras", 16)
    for name, heads in (("judge", {"expression": E, "lighting": L}), ("expression_only", {"expression": E})):
        (root / name).mkdir()
        classifier = AttributeClassifier(image_size=24, head_classes=heads, base_filters=4, num_downsamples=2)
        classifier(np.zeros((1, 24, 24, 3), np.float32))
        classifier.save(str(root / name / "attribute_classifier.keras"))
        names = {"expression": list(EXPRESSIONS), **({"lighting": list(LIGHTS)} if len(heads) > 1 else {})}
        (root / name / "labels.json").write_text(json.dumps(names))
        paths[name] = str(root / name / "attribute_classifier.keras")
    return paths


def _script(*arguments):
    return subprocess.run([sys.executable, SCRIPT, *arguments, "--noprogress_bar"], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.slow
def test_the_script_edits_the_held_out_photos_and_writes_figures_and_grids(tiny, tmp_path):
    output = tmp_path / "out"
    result = _script(f"--run_dir={tiny['run']}", f"--expression_judge={tiny['judge']}",
                     f"--lighting_judge={tiny['judge']}", f"--output_dir={output}", "--grid_faces=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| lighting only | lighting (lighting) |" in result.stdout and "targets (rate >= 80%" in result.stdout
    content = json.load(open(output / "metrics.json"))
    # The held-out split: 3 PrivateTest photos x 3 lights = 9 faces.
    assert content["data"]["num_faces"] == 9
    assert content["edits"]["expression"]["pairs"] == 9 * (E - 1)
    assert content["edits"]["lighting"]["pairs"] == 9 * (L - 1)
    # Two grid faces, both under their photo's own lighting ("original").
    assert len(content["grid_faces"]) == 2
    for name in ("report.md", "expression_grid.png", "lighting_grid.png", "joint_grid.png"):
        assert (output / name).is_file(), name
    # No displacement field to measure in a generator without the warp.
    assert "warp" not in content and not (output / "warp_grid.png").exists()
    # Every held-out face has its photo's copies under the two other lights; no photo has two expressions.
    by_data = content["edits"]["lighting"]["judges"]["expression"]["kept_by_data"]
    assert by_data["pairs_with_copy"] == by_data["pairs"] == 9 * (L - 1) and 0.0 <= by_data["kept"] <= 1.0
    assert "kept_by_data" not in content["edits"]["expression"]["judges"]["lighting"]
    assert "kept by the data" in result.stdout
    with Image.open(output / "lighting_grid.png") as grid:
        # A 20 px title row, then 2 rows of 96 px faces in 3 px frames, 2 px apart.
        assert grid.size[1] == 20 + 2 * (96 + 6 + 2)
    with Image.open(output / "joint_grid.png") as grid:
        assert grid.size[1] == 20 + E * (96 + 6 + 2)


@pytest.mark.slow
def test_the_script_measures_the_field_of_a_generator_that_moves_the_photo(tiny, tmp_path):
    output = tmp_path / "out"
    result = _script(f"--run_dir={tiny['warp_run']}", f"--expression_judge={tiny['judge']}",
                     f"--lighting_judge={tiny['judge']}", f"--output_dir={output}", "--grid_faces=2")
    assert result.returncode == 0, result.stderr[-3000:]
    warp = json.load(open(output / "metrics.json"))["warp"]
    # Each component of the field is a cell mean of a tanh map resized bilinearly, times max_shift x size: at most
    # 0.1 x 16 = 1.6 px, so a length of at most 1.6 x sqrt(2); an untrained hourglass's map is not all zero.
    assert warp["allowed_px"] == pytest.approx(1.6) and warp["faces"] == 9
    assert 0.0 < warp["edit_px"] <= 1.6 * np.sqrt(2) and 0.0 < warp["own_px"] <= 1.6 * np.sqrt(2)
    assert set(warp["by_target"]) == set(EXPRESSIONS)
    assert "Warp field" in result.stdout and "warp_grid.png" in result.stdout
    with Image.open(output / "warp_grid.png") as grid:
        assert grid.size[1] == 20 + 2 * (96 + 2)      # two faces, 96 px cells (32 px lattice pictures upscaled 3x)


@pytest.mark.slow
def test_the_script_measures_identity_with_an_identity_network(tiny, tmp_path):
    result = _script(f"--run_dir={tiny['run']}", f"--expression_judge={tiny['judge']}",
                     f"--lighting_judge={tiny['judge']}", f"--output_dir={tmp_path}", "--grid_faces=0",
                     f"--identity_model={tiny['identity_model']}")
    assert result.returncode == 0, result.stderr[-3000:]
    content = json.load(open(tmp_path / "metrics.json"))
    assert content["identity_model"]["input_size"] == 16 and len(content["identity_model"]["sha256"]) == 64
    for name in ("expression", "lighting"):
        figures = content["edits"][name]["identity"]
        assert 0.0 <= figures["distance"] <= 2.0
        # 9 faces of 3 photos: 27 pairs of two photos, fewer than the 100 that a 1% threshold needs.
        assert figures["threshold"] is None and figures["same_person"] is None
    assert "read as the same person by f" in result.stdout
    missing = _script(f"--run_dir={tiny['run']}", f"--expression_judge={tiny['judge']}",
                      f"--lighting_judge={tiny['judge']}", f"--output_dir={tmp_path / 'never'}",
                      f"--identity_model={tmp_path / 'none.keras'}")
    assert missing.returncode == 1 and "--identity_model=" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "never" / "metrics.json").exists()


@pytest.mark.slow
def test_the_script_fits_the_light_of_each_lighting_edit_over_the_faces_normals(tiny, tmp_path):
    from tests.evaluation.test_lighting_geometry import _normals_folder

    # Normal maps for two of the three held-out photos, as make_depth.py names them (the photo's own name).
    normals = _normals_folder(tmp_path / "depth", ["PrivateTest_0", "PrivateTest_2"], SIZE)
    result = _script(f"--run_dir={tiny['run']}", f"--expression_judge={tiny['judge']}",
                     f"--lighting_judge={tiny['judge']}", f"--output_dir={tmp_path / 'out'}", "--grid_faces=0",
                     f"--normals_dir={normals}")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.load(open(tmp_path / "out" / "metrics.json"))["lighting_fit"]
    assert figures["faces"] == 9 and figures["faces_with_normals"] == 6
    # Lighting-only edits to the two grid lights (left_90, right_90) of the faces not already under them.
    assert figures["pairs"] <= 6 * 2 - 2 and set(figures["per_target"]) == {"left_90", "right_90"}
    assert "lighting fitted over each face's own normals" in result.stdout
    small = _normals_folder(tmp_path / "small", ["PrivateTest_0"], 2 * SIZE)
    result = _script(f"--run_dir={tiny['run']}", f"--expression_judge={tiny['judge']}",
                     f"--lighting_judge={tiny['judge']}", f"--output_dir={tmp_path / 'never'}",
                     f"--normals_dir={small}")
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and len(lines) == 1 and "run make_depth.py with --image_size=16" in lines[0]
    assert not (tmp_path / "never" / "metrics.json").exists()


@pytest.mark.slow
def test_the_check_compares_the_edits_with_the_training_faces(tiny, tmp_path, monkeypatch):
    from legan_tf.evaluation.metrics import features
    from tests.evaluation.test_real_edits import _ChannelMeanFeatures

    monkeypatch.setattr(features, "inception_features", lambda weights: _ChannelMeanFeatures())
    result = joint_edits.evaluate_joint_edits(tiny["judge"], tiny["judge"], run_dir=tiny["run"], grid_faces=0,
                                              progress=False, output_dir=str(tmp_path), inception_weights="stand-in")
    # The tiny shards store train (2 photos x 3 lights) and test (3 x 3): auto takes the 6 training faces.
    for name in ("expression", "lighting"):
        figures = result["distances"][name]
        assert figures["fid_protocol"] == "unpaired" and figures["fid_reference_faces"] == 6
        assert figures["fid_faces"] == 9 and figures["fid_floor"] >= 0 and figures["kid_floor"] is not None
    assert result["feature_network"] == {"network": "channel means (test stand-in)"}
    assert "naturalness (FID network)" in (tmp_path / "report.md").read_text()
    capped = joint_edits.evaluate_joint_edits(tiny["judge"], tiny["judge"], run_dir=tiny["run"], grid_faces=0,
                                              progress=False, output_dir=str(tmp_path / "capped"),
                                              inception_weights="stand-in", fid_reference_faces=4)
    assert capped["distances"]["lighting"]["fid_reference_faces"] == 4
    none = joint_edits.evaluate_joint_edits(tiny["judge"], tiny["judge"], run_dir=tiny["run"], grid_faces=0,
                                            progress=False, output_dir=str(tmp_path / "none"),
                                            inception_weights="stand-in", fid_reference_split="none")
    assert none["distances"]["expression"]["fid_protocol"] == "paired"


@pytest.mark.slow
def test_without_fid_weights_the_script_says_so_before_any_edit(tiny, tmp_path):
    result = _script(f"--run_dir={tiny['run']}", f"--expression_judge={tiny['judge']}",
                     f"--lighting_judge={tiny['judge']}", f"--output_dir={tmp_path / 'never'}",
                     f"--inception_weights={tmp_path / 'missing.npz'}")
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and len(lines) == 1 and "--inception_weights=" in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "never" / "metrics.json").exists()


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_1(tiny, tmp_path):
    cases = [
        ([f"--lighting_judge={tiny['judge']}"], "--expression_judge is required"),
        ([f"--expression_judge={tiny['judge']}", f"--lighting_judge={tiny['expression_only']}"], "no lighting head"),
        ([f"--expression_judge={tiny['judge']}", f"--lighting_judge={tiny['judge']}", "--split=validation"],
         "validation"),
    ]
    for arguments, message in cases:
        result = _script(f"--run_dir={tiny['run']}", f"--output_dir={tmp_path / 'never'}", *arguments)
        assert result.returncode == 1, (arguments, result.stderr[-2000:])
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "never").exists()  # refused before anything is written


@pytest.mark.slow
def test_data_only_judges_the_split_without_a_generator(tiny, tmp_path):
    output = tmp_path / "data"
    result = _script("--data_only", f"--data_path={tiny['shards']}", f"--expression_judge={tiny['judge']}",
                     f"--lighting_judge={tiny['judge']}", f"--output_dir={output}", "--num_faces=5")
    assert result.returncode == 0, result.stderr[-3000:]
    content = json.load(open(output / "metrics.json"))
    assert content["data"]["num_faces"] == 5 and content["data"]["available_faces"] == 9
    assert content["data"]["image_size"] == SIZE  # the shards' stored size
    expression = content["figures"]["expression"]
    assert set(expression["kept_by_data"]) == {"lighting"}
    assert expression["kept_by_data"]["lighting"]["pairs"] == 5 * (L - 1)
    assert content["figures"]["lighting"]["kept_by_data"] == {}  # one expression per photo: no copies
    # The same five faces and pairs as the check of a generator with --num_faces=5, so the same figure.
    checked = joint_edits.evaluate_joint_edits(tiny["judge"], tiny["judge"], run_dir=tiny["run"], num_faces=5,
                                               grid_faces=0, progress=False, output_dir=str(tmp_path / "check"))
    from_check = checked["edits"]["lighting"]["judges"]["expression"]["kept_by_data"]
    assert from_check == expression["kept_by_data"]["lighting"]
    assert "| expression (expression) |" in result.stdout and (output / "report.md").is_file()
    assert "kept by the data per target lighting: " in result.stdout
    # One copies grid per expression judge with a data figure: chosen faces under `original` x 3 lights.
    with Image.open(output / "copies_grid_expression.png") as grid:
        assert (grid.size[1] - 20) % (96 + 6 + 2) == 0 and 1 <= (grid.size[1] - 20) // (96 + 6 + 2) <= 3
    assert not (output / "copies_grid_lighting.png").exists()


@pytest.mark.slow
def test_data_only_refuses_what_it_cannot_use_in_one_line(tiny, tmp_path):
    common = [f"--expression_judge={tiny['judge']}", f"--lighting_judge={tiny['judge']}"]
    cases = [
        (["--data_only", f"--data_path={tiny['shards']}", f"--run_dir={tiny['run']}",
          f"--output_dir={tmp_path / 'never'}"], "drop --run_dir"),
        (["--data_only", f"--data_path={tiny['shards']}"], "needs --output_dir"),
        (["--data_only", f"--output_dir={tmp_path / 'never'}"], "needs --data_path"),
        ([f"--run_dir={tiny['run']}", "--image_size=32", f"--output_dir={tmp_path / 'never'}"], "for --data_only"),
    ]
    for arguments, message in cases:
        result = _script(*common, *arguments)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 1 and len(lines) == 1 and message in lines[0], (arguments, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "never").exists()
