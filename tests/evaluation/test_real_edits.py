"""legan_tf.evaluation.real_edits and scripts/judge_real_edits.py: the real-face check on real held-out faces.

The figures are checked with stand-ins whose answers follow from arithmetic: faces whose expression is
written in their first channel, a judge that reads it back (at another image size, so through the
resize), and generators that return their input, a fixed face or exactly the asked-for expression.
The files, the script and its errors are checked on tiny prepared shards with untrained networks.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataConfig, DataError, open_source
from legan_tf.data import tfrecord
from legan_tf.errors import ConfigError
from legan_tf.evaluation import real_edit_distances as distances, real_edits
from legan_tf.evaluation.translation_metrics import generator_translate_fn
from tests.evaluation.conftest import save_tiny_identity_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "judge_real_edits.py")
NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
C = len(NAMES)
SIZE = 16


# --- stand-ins whose answers follow from arithmetic ------------------------------------------------

def level(classes):
    """The first-channel value that writes expression `classes` into a face."""
    return -1.0 + 2.0 * np.asarray(classes, np.float32) / (C - 1)


def faces(written, lighting=None, seed=0):
    """Faces showing expression `written` (channel 0), with per-face noise in channel 2 (someone's face)
    and the lighting id, if any, in channel 1."""
    count = len(written)
    images = np.random.default_rng(seed).uniform(-1, 1, (count, SIZE, SIZE, 3)).astype(np.float32)
    images[..., 0] = level(written)[:, None, None]
    images[..., 1] = 0.0 if lighting is None else (np.asarray(lighting, np.float32) - 1.0)[:, None, None]
    return images


class ReadingJudge:
    """Reads the expression written in channel 0, at 24 px (the faces are 16: the judge sees them resized)."""

    image_size = 24

    def __init__(self):
        self.sizes = set()

    def __call__(self, images):
        images = np.asarray(images)
        self.sizes.add(images.shape[1])
        ids = np.clip(np.round((images[..., 0].mean(axis=(1, 2)) + 1.0) * (C - 1) / 2.0), 0, C - 1).astype(int)
        return {"expression": np.eye(C)[ids]}


class StubGenerator:
    """generator((images, labels)) -> images, as StarGAN's; `edit(images, labels)` says what it does."""

    image_size, num_labels = SIZE, C

    def __init__(self, edit):
        self.edit = edit
        self.calls = []

    def __call__(self, inputs):
        images, labels = np.asarray(inputs[0]), np.asarray(inputs[1])
        self.calls.append(labels)
        return self.edit(images, labels)


def perfect(images, labels):
    """Writes the asked-for expression, keeps everything else."""
    out = images.copy()
    out[..., 0] = level(labels[:, :C].argmax(axis=1))[:, None, None]
    return out


def run_edits(edit, written, labels, label_sizes=None, batch_size=5):
    judge = ReadingJudge()
    generator = StubGenerator(edit)
    translate = generator_translate_fn(generator, label_sizes or {"expression": C}, batch_size)
    images = faces(written, labels.get("lighting"))
    readings = real_edits.edit_faces(translate, real_edits.expression_judge(judge, C, batch_size=4), images,
                                     labels, C, batch_size=batch_size)
    return real_edits.summarise(readings, NAMES), images, judge, generator


# 3 faces per class, labelled as written, except two mislabelled faces the judge cannot read right.
LABELS = np.repeat(np.arange(C), 3)
WRITTEN = LABELS.copy()
WRITTEN[[0, 4]] = [3, 2]  # an angry face written as happy, a disgust face written as fear
N = len(LABELS)
ACCURACY = (N - 2) / N


def test_an_identity_generator_scores_exactly_the_baseline_with_zero_l1():
    summary, _, judge, _ = run_edits(lambda images, labels: images, WRITTEN, {"expression": LABELS})
    overall = summary["overall"]
    assert judge.sizes == {24}  # faces and outputs reach the judge resized to its own size
    assert overall["num_pairs"] == N * (C - 1)
    assert overall["judge_accuracy"] == pytest.approx(ACCURACY)
    # A misread face is read as one of its 6 targets: 2 hits in N * 6 pairs, edited or not.
    assert overall["baseline"] == pytest.approx(2 / (N * (C - 1)))
    assert overall["target_rate"] == overall["baseline"] == pytest.approx((1 - ACCURACY) / (C - 1))
    assert overall["relative_to_ceiling"] == pytest.approx(overall["target_rate"] / ACCURACY)
    assert overall["meets_target"] is False
    assert real_edits.verdict_line(overall).endswith("does NOT meet the real-face check's target (no valid "
                                                     "verdict: see the cautions)")
    assert summary["cautions"] == ["the target rate (1.6%) is not above the baseline (1.6%): the judge finds the "
                                   "targets on the edits no more often than on the unedited faces"]
    assert overall["cycle_l1"] == overall["identity_l1"] == overall["edit_l1"] == 0.0
    for name in NAMES:
        row = summary["per_class"][name]
        assert row["target_rate"] == row["baseline"]
        assert row["pairs_as_target"] == N - 3
    assert summary["per_class"]["happy"]["target_rate"] == pytest.approx(1 / (N - 3))  # the angry face read as happy
    assert summary["per_class"]["angry"]["judge_accuracy"] == pytest.approx(2 / 3)
    assert summary["per_class"]["angry"]["rate_as_source"] == pytest.approx(1 / (3 * (C - 1)))
    assert summary["per_class"]["surprise"]["judge_accuracy"] == 1.0
    assert summary["per_class"]["surprise"]["target_rate"] == 0.0


def _person(images):
    """An identity-network stand-in: the person is channel 2, each face's own noise."""
    return np.asarray(images)[..., 2].reshape(len(images), -1)


def new_person(images, labels):
    out = perfect(images, labels)
    out[..., 2] = -out[..., 2]
    return out


@pytest.mark.parametrize("edit, distance, same", [(perfect, 0.0, 1.0), (new_person, 2.0, 0.0)])
def test_an_identity_network_reads_a_kept_person_as_the_same_and_a_replaced_one_as_another(edit, distance, same):
    from legan_tf.evaluation.identity_real import EditIdentity

    translate = generator_translate_fn(StubGenerator(edit), {"expression": C}, 5)
    observer = EditIdentity(_person, N, C)
    real_edits.edit_faces(translate, real_edits.expression_judge(ReadingJudge(), C, batch_size=4), faces(WRITTEN),
                          {"expression": LABELS}, C, batch_size=5, observers=[observer.observe])
    figures = observer.figures(LABELS)
    # Channel 2 kept (cos 1) or negated (cos -1): 1 - cos of 256-term unit dot products, float64 rounding only.
    assert figures["distance"] == pytest.approx(distance, abs=1e-12)
    assert figures["same_person"] == same
    # 21 faces: 210 pairs of two faces, 2 accepted at 1%; uniform noise of 256 values has impostor cosines of
    # sd 1/16, so the threshold lies far from 0 and from 2.
    assert 0.5 < figures["threshold"] < 1.5
    # The identity edit G(x, s) keeps channel 2 for the perfect editor and negates it for the other.
    assert figures["identity_edit_distance"] == pytest.approx(distance, abs=1e-12)


def test_quality_figures_on_known_scores():
    # Unedited 5, 6, 7, 8; edits 1, 6, 9. Pairs with the unedited face above: edit 1 all 4, edit 6 two
    # (7, 8) and one tie (6, counts half), edit 9 none: 6.5 of 12. The unedited faces' 10th percentile
    # (numpy's linear rule) is 5 + 0.3 x 1 = 5.3: one edit of three lies below it.
    figures = real_edits.quality_figures(np.array([5.0, 6.0, 7.0, 8.0]), np.array([1.0, 6.0, 9.0]))
    assert figures["quality_auc"] == pytest.approx(6.5 / 12)
    assert figures["quality_below_real_p10"] == pytest.approx(1 / 3)
    assert figures["quality_unedited"] == pytest.approx(6.5) and figures["quality_edits"] == pytest.approx(16 / 3)


def test_texture_energy_on_known_images():
    # A constant image has no texture. A +-1 checkerboard, 4x4: inside, each neighbour differs by 2 from
    # the centre, |Laplacian| 4 x 2 = 8; at an edge the mirrored neighbour is the pixel itself, so 3 x 2
    # = 6 (8 edge pixels) and 2 x 2 = 4 at a corner (4): (4 x 8 + 8 x 6 + 4 x 4) / 16 = 6.
    board = np.indices((4, 4)).sum(axis=0) % 2 * 2.0 - 1.0
    images = np.stack([np.full((4, 4, 3), 0.3), np.repeat(board[..., None], 3, axis=-1)])
    np.testing.assert_allclose(real_edits.texture_energy(images), [0.0, 6.0], atol=1e-12)


def test_texture_figures_compare_the_edits_with_the_unedited_faces():
    same, *_ = run_edits(lambda images, labels: images, WRITTEN, {"expression": LABELS})
    assert same["overall"]["texture_ratio"] == pytest.approx(1.0)
    # The test faces' texture is all in channel 2's noise (channels 0 and 1 are constant per face). Edits
    # that write the expression and zero channels 1 and 2 are constant images: texture exactly 0.
    flat, *_ = run_edits(lambda images, labels: np.concatenate([perfect(images, labels)[..., :1],
                                                                np.zeros_like(images[..., 1:])], -1),
                         WRITTEN, {"expression": LABELS})
    assert flat["overall"]["texture_edits"] == 0.0 and flat["overall"]["texture_ratio"] == 0.0
    assert "texture: mean |Laplacian|" in real_edits.overall_table(flat["overall"])


def channel_2_score(images):
    """A stand-in Q: 5 + 4 x the mean of channel 2 (the test faces carry uniform noise there, mean ~0)."""
    return 5.0 + 4.0 * np.asarray(images)[..., 2].mean(axis=(1, 2))


@pytest.mark.parametrize("edit,auc,below", [
    # Edits equal to their faces: the edits are the unedited faces, each repeated C - 1 times, so every
    # ordering has its mirror image (ties count half): exactly 0.5.
    (lambda images, labels: images, 0.5, None),
    # Edits with channel 2 at -1 score 1, below every unedited face (whose scores are near 5).
    (lambda images, labels: np.concatenate([perfect(images, labels)[..., :2], -np.ones_like(images[..., :1])], -1),
     1.0, 1.0),
])
def test_a_quality_model_scores_the_unedited_faces_and_every_edit(edit, auc, below):
    translate = generator_translate_fn(StubGenerator(edit), {"expression": C}, 5)
    images = faces(WRITTEN)
    readings = real_edits.edit_faces(translate, real_edits.expression_judge(ReadingJudge(), C, batch_size=4), images,
                                     {"expression": LABELS}, C, batch_size=5, score=channel_2_score)
    overall = real_edits.summarise(readings, NAMES)["overall"]
    assert overall["quality_unedited"] == pytest.approx(channel_2_score(images).mean())
    assert overall["quality_auc"] == pytest.approx(auc)
    if below is not None:
        assert overall["quality_below_real_p10"] == below and overall["quality_edits"] == pytest.approx(1.0)
    assert "Q: mean score" in real_edits.overall_table(overall)


def test_without_a_quality_model_there_are_no_quality_figures():
    summary, *_ = run_edits(lambda images, labels: images, WRITTEN, {"expression": LABELS})
    assert not any(name.startswith("quality") for name in summary["overall"])
    assert "Q: " not in real_edits.overall_table(summary["overall"])


def channel_means(images):
    """A stand-in feature network: the three channel means and the channel-2 spread of each image (4 features)."""
    images = np.asarray(images, np.float64)
    return np.concatenate([images.mean(axis=(1, 2)), images[..., 2].std(axis=(1, 2))[:, None]], axis=1)


def _distance_readings(edit, seed=0):
    translate = generator_translate_fn(StubGenerator(edit), {"expression": C}, 5)
    targets = distances.fid_targets_for(LABELS, C, seed)
    readings = real_edits.edit_faces(translate, real_edits.expression_judge(ReadingJudge(), C, batch_size=4),
                                     faces(WRITTEN), {"expression": LABELS}, C, batch_size=5,
                                     features=channel_means, fid_targets=targets)
    return readings, targets


def test_fid_targets_are_seeded_and_never_the_faces_own_class():
    targets = distances.fid_targets_for(LABELS, C, 0)
    assert (targets != LABELS).all() and targets.min() >= 0 and targets.max() < C
    assert (targets == distances.fid_targets_for(LABELS, C, 0)).all()
    assert not (targets == distances.fid_targets_for(LABELS, C, 1)).all()


def test_fid_and_kid_compare_one_edit_per_face_with_the_unedited_faces():
    # Edits equal to their faces: the two feature sets are the same rows, so FID is 0 up to the
    # square root's round-off (float64 on 4 x 4 covariances: far below 1e-6), and KID's unbiased
    # estimate is exactly the difference of two equal sums' normalisations, about 0.
    readings, _ = _distance_readings(lambda images, labels: images)
    np.testing.assert_allclose(readings.edit_features, readings.input_features)
    same = real_edits.summarise(readings, NAMES)["overall"]
    assert abs(same["fid"]) < 1e-6 and same["fid_faces"] == N and same["fid_feature_dim"] == 4
    # Edits that add 0.5 to channel 1 (whatever the target): the edits' features are the faces' shifted
    # by (0, 0.5, 0, 0) with the same covariance, so FID = |shift|^2 = 0.25 (the trace terms cancel up
    # to sqrtm's round-off on a 4 x 4 matrix, ~1e-12; features are float32 means, ~1e-7 relative).
    def shift(images, labels):
        out = images.copy()
        out[..., 1] += 0.5
        return out

    readings, _ = _distance_readings(shift)
    np.testing.assert_allclose(readings.edit_features - readings.input_features, [[0, 0.5, 0, 0]] * N, atol=1e-6)
    summary = real_edits.summarise(readings, NAMES)
    assert summary["overall"]["fid"] == pytest.approx(0.25, abs=1e-5)
    assert summary["overall"]["kid"] > 0
    # 21 faces against 4 features: no rank caution; the table shows both figures.
    assert not any("rank-deficient" in note for note in summary["cautions"])
    assert "FID paired: one edit per face" in real_edits.overall_table(summary["overall"])


def test_fid_over_fewer_faces_than_features_says_so():
    overall = {"num_classes": C, "judge_accuracy": 0.5, "target_rate": 0.4, "baseline": 0.1, "fid": 12.0,
               "fid_faces": 100, "fid_feature_dim": 2048, "fid_notes": [], "fid_protocol": "unpaired",
               "fid_reference_faces": 3000}
    notes = real_edits.cautions(overall)
    assert len(notes) == 1 and "not more than its 2048 features" in notes[0] and "rank-deficient" in notes[0]
    # A caution on FID says nothing about the judge: the verdict on the rate stands.
    assert not real_edits.verdict_cautions(overall) and "no valid verdict" not in real_edits.verdict_line(
        {**overall, "relative_to_ceiling": 0.8, "meets_target": True})
    # The table gives no number then (12.00 would read as a measurement); at 2,049 faces it does.
    text = distances.fid_text(overall)
    assert "12.00" not in text and text.startswith("not given: 100 faces, not more than its 2048 features")
    overall["fid_faces"] = 2049
    assert distances.fid_text(overall) == "12.00" and not real_edits.cautions(overall)
    # The reference side counts too: 2,049 edits against 2,000 reference faces is rank-deficient.
    overall["fid_reference_faces"] = 2000
    assert distances.fid_text(overall).startswith("not given: 2000 faces")


def test_unpaired_fid_compares_the_edits_with_another_split_beside_the_floor():
    # Feature rows chosen so every FID is a known squared mean shift: edits = faces + (0, 0.5, 0, 0),
    # reference = faces + (0.3, 0, 0, 0), all with the faces' covariance, so FID(reference, edits) =
    # 0.3^2 + 0.5^2 = 0.34, the floor FID(reference, faces) = 0.09 and the paired FID(faces, edits) = 0.25
    # (the trace terms cancel up to sqrtm's round-off on 4 x 4 float64 matrices, far below 1e-6).
    faces_rows = np.random.default_rng(3).normal(size=(40, 4))
    edits_rows, reference_rows = faces_rows + [0, 0.5, 0, 0], faces_rows + [0.3, 0, 0, 0]
    figures = distances.distance_figures(faces_rows, edits_rows, reference_rows, "validation")
    assert figures["fid"] == pytest.approx(0.34, abs=1e-6)
    assert figures["fid_floor"] == pytest.approx(0.09, abs=1e-6)
    assert figures["fid_paired"] == pytest.approx(0.25, abs=1e-6)
    assert figures["fid_protocol"] == "unpaired" and figures["fid_reference_faces"] == 40
    assert figures["kid"] > figures["kid_floor"]
    # A generator that returns its input scores the floor unpaired, and 0 paired.
    copied = distances.distance_figures(faces_rows, faces_rows, reference_rows, "validation")
    assert copied["fid"] == pytest.approx(copied["fid_floor"], abs=1e-9) and abs(copied["fid_paired"]) < 1e-6
    overall = {"num_classes": C, "judge_accuracy": 0.5, "target_rate": 0.4, "baseline": 0.1, **figures}
    assert not real_edits.cautions(overall)
    table = real_edits.overall_table({**_overall_stub(), **figures})
    assert "against the validation split's unedited faces (40)" in table and "floor: the 40 faces unedited" in table
    # Without a reference: the paired figures are the headline, with a caution that says what they favour.
    paired = distances.distance_figures(faces_rows, edits_rows)
    assert paired["fid"] == paired["fid_paired"] and paired["fid_protocol"] == "paired" and "fid_floor" not in paired
    notes = real_edits.cautions({**overall, **paired})
    assert any("copying the input scores 0" in note for note in notes)


def _overall_stub():
    readings, _ = _distance_readings(lambda images, labels: images)
    return real_edits.summarise(readings, NAMES)["overall"]


@pytest.mark.parametrize("requested, edited, stored, expected", [
    ("auto", "test", ["train", "test", "validation"], "validation"),   # FER2013: PrivateTest against PublicTest
    ("auto", "validation", ["train", "test", "validation"], "test"),
    ("auto", "test", ["train", "test"], None),                          # only the training split: paired only
    ("auto", "test", ["test", "heldout_b"], "heldout_b"),
    ("none", "test", ["train", "test", "validation"], None),
    ("train", "test", ["train", "test"], "train"),                      # named: taken as asked
])
def test_the_reference_split(requested, edited, stored, expected):
    assert distances.reference_split(requested, edited, stored) == expected


@pytest.mark.parametrize("requested, message", [
    ("test", "is the split being edited"),
    ("validation", "no such stored split \\(stored: train, test\\)"),
])
def test_a_reference_split_that_cannot_be_used_is_refused(requested, message):
    with pytest.raises(ConfigError, match=message):
        distances.reference_split(requested, "test", ["train", "test"])


def test_a_generator_of_one_fixed_face_hits_its_class_only():
    happy = faces([3])[0]
    summary, images, _, _ = run_edits(lambda x, labels: np.repeat(happy[None], len(x), axis=0), WRITTEN,
                                      {"expression": LABELS})
    per_class = summary["per_class"]
    assert per_class["happy"]["target_rate"] == 1.0
    assert all(per_class[name]["target_rate"] == 0.0 for name in NAMES if name != "happy")
    assert summary["overall"]["target_rate"] == pytest.approx((N - 3) / (N * (C - 1)))
    assert per_class["happy"]["rate_as_source"] == 0.0  # its edits go elsewhere, and come out happy
    assert per_class["sad"]["rate_as_source"] == pytest.approx(1 / (C - 1))
    assert per_class["happy"]["identity_kept"] == 1.0 and per_class["sad"]["identity_kept"] == 0.0
    # G(G(x, t), s) is the fixed face whatever t: its distance to x, averaged over the faces.
    expected = np.abs(happy[None] - images).mean(axis=(1, 2, 3)).mean()
    assert summary["overall"]["cycle_l1"] == pytest.approx(expected, rel=1e-5)
    edits = np.asarray(summary["confusion"]["edits_target_by_reading"])
    assert edits.sum() == N * (C - 1) and edits[:, 3].sum() == N * (C - 1)  # every edit read as happy


def test_a_perfect_translator_meets_the_target_and_keeps_the_other_labels():
    lighting = np.arange(N) % 3
    sizes = {"expression": C, "lighting": 3}
    summary, _, _, generator = run_edits(perfect, WRITTEN, {"expression": LABELS, "lighting": lighting}, sizes)
    overall = summary["overall"]
    assert overall["target_rate"] == 1.0 and overall["identity_kept"] == 1.0
    assert overall["relative_to_ceiling"] == pytest.approx(1 / ACCURACY) and overall["meets_target"] is True
    assert summary["cautions"] == []
    assert real_edits.verdict_line(overall).endswith("= 110.5% of the judge's accuracy 90.5% on the unedited faces "
                                                     "(target >= 80%): MEETS the real-face check's target")
    # x back at its own label: exact, except the two faces whose pixels show another expression than their label.
    assert overall["cycle_l1"] == pytest.approx(2 / N * np.mean(np.abs(level(WRITTEN[[0, 4]]) - level(LABELS[[0, 4]])))
                                                / 3)
    # The lighting group of every call (edits and the way back) is each face's own.
    for labels in generator.calls:
        assert labels.shape[1] == C + 3 and np.all(labels[:, C:].sum(axis=1) == 1)
    first = generator.calls[0]
    assert np.array_equal(first[:, C:].argmax(axis=1), lighting[:5])


def test_grid_faces_are_a_seeded_spread_over_the_classes():
    source = np.array([0, 0, 0, 0, 1, 2, 2])
    chosen = real_edits.choose_grid_faces(source, 5, seed=1)
    assert list(source[chosen]) == [0, 1, 2, 0, 2]
    assert len(set(chosen)) == 5
    assert np.array_equal(chosen, real_edits.choose_grid_faces(source, 5, seed=1))
    assert len(real_edits.choose_grid_faces(source, 20)) == len(source)


# --- files, the script and its errors, on tiny shards ----------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """FER-like shards (train and test, 2 test faces per class), an untrained 16 px StarGAN run directory and
    a 32 px judge with labels.json; a second judge whose labels.json names other expressions."""
    from legan_tf.models.classifier import AttributeClassifier
    from legan_tf.models.stargan import StarGANGenerator

    root = tmp_path_factory.mktemp("real_edits")
    rng = np.random.default_rng(0)
    for prefix, count in (("Training", 1), ("PrivateTest", 2)):
        for name in NAMES:
            folder = root / "raw" / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{prefix}_{name}{index}.png")
    source = open_source(DataConfig("folder", str(root / "raw"), image_size=SIZE, expression_names=NAMES,
                                    lighting_names=(), split_pattern=r"(?P<train>Training_)|(?P<test>PrivateTest_)"))
    tfrecord.prepare_output_dir(str(root / "shards"), False)
    tfrecord.write_tfrecords(source, str(root / "shards"), 1, 0.0, 0)
    run = root / "run"
    run.mkdir()
    generator = StarGANGenerator(image_size=SIZE, num_labels=C, base_filters=4, num_downsamples=2,
                                 num_residual_blocks=1)
    generator((np.zeros((1, SIZE, SIZE, 3), np.float32), np.zeros((1, C), np.float32)))
    generator.save(str(run / "generator.keras"))
    (run / "flags.txt").write_text(f"--task=stargan\n--data_format=tfrecord\n--data_path={root / 'shards'}\n"
                                   f"--image_size={SIZE}\n--expression_names={','.join(NAMES)}\n")
    (run / "labels.json").write_text(json.dumps({"expression": list(NAMES)}))
    paths = {"root": root, "run": str(run), "shards": str(root / "shards")}
    paths["identity_model"] = save_tiny_identity_model(root / "identity_model.keras", 16)
    from legan_tf.models.quality import QualityModel

    quality = QualityModel(image_size=32, base_filters=4, num_downsamples=3, dense_units=8)
    quality(np.zeros((1, 32, 32, 3), np.float32))
    quality.save(str(root / "quality_model.keras"))
    paths["quality"] = str(root / "quality_model.keras")
    for name, labels in (("judge", NAMES), ("other_judge", ("happy", *NAMES[1:3], "angry", *NAMES[4:]))):
        (root / name).mkdir()
        classifier = AttributeClassifier(image_size=32, head_classes={"expression": C}, base_filters=4,
                                         num_downsamples=2)
        classifier(np.zeros((1, 32, 32, 3), np.float32))
        classifier.save(str(root / name / "attribute_classifier.keras"))
        (root / name / "labels.json").write_text(json.dumps({"expression": list(labels)}))
        paths[name] = str(root / name / "attribute_classifier.keras")
    return paths


def _script(*arguments):
    return subprocess.run([sys.executable, SCRIPT, *arguments, "--noprogress_bar"], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_the_script_writes_metrics_report_grid_and_charts(tiny, tmp_path):
    output = tmp_path / "out"
    result = _script(f"--run_dir={tiny['run']}", f"--classifier={tiny['judge']}", f"--output_dir={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "target-expression rate" in result.stdout and "the real-face check's target" in result.stdout
    for name in ("metrics.json", "report.md", "edits_grid.png", "rate_per_class.png", "confusion.png"):
        assert (output / name).is_file(), name
    content = json.load(open(output / "metrics.json"))
    overall = content["overall"]
    assert content["data"]["split"] == "test" and content["data"]["num_faces"] == 2 * C  # the run's data_path
    assert overall["num_pairs"] == 2 * C * (C - 1)
    assert sum(map(sum, content["confusion"]["edits_target_by_reading"])) == overall["num_pairs"]
    assert "16 -> 32 px" in content["protocol"]["judge_input"]
    assert list(content["per_class"]) == list(NAMES)
    assert content["classifier"]["labels_from"].endswith("labels.json")
    text = (output / "report.md").read_text()
    assert "](edits_grid.png)" in text and "| disgust | 2 |" in text
    # 8 faces (a spread over the 7 classes, then one more) x (input + 7 expressions), 16 px faces shown at 96 px.
    assert len(content["grid_faces"]) == 8
    assert [face["label"] for face in content["grid_faces"]] == [*NAMES, NAMES[0]]
    with Image.open(output / "edits_grid.png") as grid:
        width, height = grid.size
    # A 20 px title row, then 8 rows of 96 px faces in 3 px frames, 2 px apart.
    assert height == 20 + 8 * (96 + 6 + 2)
    assert width >= (C + 1) * (96 + 6 + 2)


def test_the_script_scores_the_edits_with_a_quality_model(tiny, tmp_path):
    output = tmp_path / "out"
    result = _script(f"--run_dir={tiny['run']}", f"--classifier={tiny['judge']}", f"--quality_model={tiny['quality']}",
                     f"--output_dir={output}", "--grid_faces=0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "naturalness judge: " in result.stdout and "Q: P(unedited face scored above an edit)" in result.stdout
    content = json.load(open(output / "metrics.json"))
    assert 0.0 <= content["overall"]["quality_auc"] <= 1.0
    assert content["quality_model"]["path"] == tiny["quality"]
    assert "16 -> 32 px" in content["quality_model"]["input"]
    assert "naturalness judge Q" in (output / "report.md").read_text()


def test_the_script_reads_the_edits_with_an_identity_network(tiny, tmp_path):
    output = tmp_path / "out"
    result = _script(f"--run_dir={tiny['run']}", f"--classifier={tiny['judge']}", f"--output_dir={output}",
                     f"--identity_model={tiny['identity_model']}", "--grid_faces=0")
    assert result.returncode == 0, result.stderr[-3000:]
    entry = json.load(open(output / "metrics.json"))["identity_model"]
    assert entry["input_size"] == 16 and len(entry["sha256"]) == 64
    assert 0.0 <= entry["figures"]["distance"] <= 2.0
    # 14 faces: 91 pairs of two faces, fewer than the 100 a 1% threshold needs: no same-person share.
    assert entry["figures"]["threshold"] is None and entry["figures"]["same_person"] is None
    assert "read as the same person by f" in result.stdout
    assert "## Identity: an identity network's reading of the edits" in (output / "report.md").read_text()
    missing = _script(f"--run_dir={tiny['run']}", f"--classifier={tiny['judge']}", f"--output_dir={tmp_path / 'no'}",
                      f"--identity_model={tmp_path / 'none.keras'}")
    assert missing.returncode == 1 and "--identity_model=" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "no" / "metrics.json").exists()


def test_bad_input_is_one_line_and_exit_1(tiny, tmp_path):
    result = _script(f"--run_dir={tiny['run']}", f"--classifier={tiny['other_judge']}",
                     f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 1  # legan_tf.cli.run_main's code for a fault in the user's input
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: --classifier=") and "the judge would read other classes" in lines[-1]
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_a_generator_file_a_choice_of_faces_and_a_judge_without_label_names(tiny, tmp_path):
    """--generator (labels.json beside it) instead of --run_dir: --data_path is needed, the output goes beside
    the generator; a judge without labels.json is checked by its head's width only, and the report says so."""
    import shutil

    for folder, names in (("gen", ("generator.keras", "labels.json")), ("judge", ())):
        (tmp_path / folder).mkdir()
        for name in names:
            shutil.copy(os.path.join(tiny["run"], name), tmp_path / folder / name)
    shutil.copy(tiny["judge"], tmp_path / "judge" / "judge.keras")
    generator = str(tmp_path / "gen" / "generator.keras")
    with pytest.raises(ConfigError, match="no data: pass --data_path"):
        real_edits.evaluate_real_edits(str(tmp_path / "judge" / "judge.keras"), generator_path=generator)
    result = real_edits.evaluate_real_edits(str(tmp_path / "judge" / "judge.keras"), generator_path=generator,
                                            data_path=tiny["shards"], num_faces=5, grid_faces=0, seed=1,
                                            batch_size=2, progress=False)
    assert result["output_dir"] == str(tmp_path / "gen" / "real_edits")
    assert result["data"]["num_faces"] == 5 and result["overall"]["num_pairs"] == 5 * (C - 1)
    assert result["data"]["selection"] == "a seeded uniform choice (seed 1)"
    assert result["classifier"]["labels_from"].startswith("not checked by name")
    assert sorted(os.listdir(result["output_dir"])) == ["confusion.png", "metrics.json", "rate_per_class.png",
                                                        "report.md"]  # no grid asked for


@pytest.mark.parametrize("change, error, message", [
    (dict(classifier_path="nowhere.keras"), ConfigError, "--classifier=nowhere.keras: no such classifier file"),
    (dict(classifier_path=None), ConfigError, "--classifier is required"),
    (dict(split="validation"), DataError, "no stored 'validation' split among the shards \\(stored: train, test\\)"),
    (dict(data_path="no/such/shards"), ConfigError, "--data_path=no/such/shards: no such folder"),
    (dict(run_dir=None, generator_path="missing.keras"), ConfigError, "--generator=missing.keras: no such generator"),
])
def test_bad_inputs_say_what_is_wrong(tiny, tmp_path, change, error, message):
    arguments = dict(classifier_path=tiny["judge"], run_dir=tiny["run"], output_dir=str(tmp_path), progress=False)
    arguments.update(change)
    with pytest.raises(error, match=message):
        real_edits.evaluate_real_edits(**arguments)


def test_data_without_shards_and_a_generator_of_other_labels_are_refused(tiny, tmp_path):
    with pytest.raises(ConfigError, match="not prepared TFRecord shards"):
        real_edits.evaluate_real_edits(tiny["judge"], run_dir=tiny["run"], data_path=str(tiny["root"] / "raw"),
                                       progress=False)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("generator.keras", "flags.txt"):
        (run / name).write_bytes(open(os.path.join(tiny["run"], name), "rb").read())
    (run / "labels.json").write_text(json.dumps({"expression": list(reversed(NAMES))}))
    # Against the judge's labels.json first (before the data are opened), then against the data's names.
    with pytest.raises(ConfigError, match="names the expressions angry,.*, the generator's labels surprise,"):
        real_edits.evaluate_real_edits(tiny["judge"], run_dir=str(run), progress=False)
    unnamed_judge = tmp_path / "judge.keras"
    unnamed_judge.write_bytes(open(tiny["judge"], "rb").read())
    with pytest.raises(ConfigError, match="the generator's expression names .* differ from the data's"):
        real_edits.evaluate_real_edits(str(unnamed_judge), run_dir=str(run), progress=False)


class _ChannelMeanFeatures:
    """A stand-in for the FID network in evaluate_real_edits (channel_means, with the protocol record)."""

    def __call__(self, images):
        return channel_means(images)

    def protocol(self):
        return {"network": "channel means (test stand-in)"}


def test_the_judge_compares_the_edits_with_another_stored_split(tiny, tmp_path, monkeypatch):
    from legan_tf.evaluation.metrics import features

    monkeypatch.setattr(features, "inception_features", lambda weights: _ChannelMeanFeatures())
    arguments = dict(classifier_path=tiny["judge"], run_dir=tiny["run"], grid_faces=0, progress=False,
                     inception_weights="stand-in")
    # The tiny shards store train and test only: auto finds no reference other than train, so the figures
    # are paired and a caution says what that favours.
    paired = real_edits.evaluate_real_edits(output_dir=str(tmp_path / "auto"), **arguments)
    assert paired["overall"]["fid_protocol"] == "paired" and "fid_floor" not in paired["overall"]
    assert any("copying the input scores 0" in note for note in paired["cautions"])
    # Named: the 7 training faces (one per class) are the reference; the 14 test faces are edited.
    unpaired = real_edits.evaluate_real_edits(output_dir=str(tmp_path / "train"), fid_reference_split="train",
                                              **arguments)
    overall = unpaired["overall"]
    assert overall["fid_protocol"] == "unpaired" and overall["fid_reference_faces"] == C
    assert overall["fid_faces"] == 2 * C and overall["fid_reference"] == "the train split's unedited faces"
    # The paired figure does not depend on the reference; the floor is the unedited faces against it.
    assert overall["fid_paired"] == pytest.approx(paired["overall"]["fid_paired"], rel=1e-6)
    assert overall["fid_floor"] >= 0 and overall["fid"] >= 0
    assert "floor: the 14 faces unedited" in (tmp_path / "train" / "report.md").read_text()
    with pytest.raises(ConfigError, match="--fid_reference_split=test is the split being edited"):
        real_edits.evaluate_real_edits(output_dir=str(tmp_path / "bad"), fid_reference_split="test", **arguments)


def test_other_judges_read_the_same_edits(tiny, tmp_path):
    """The run's own judge given again as a second opinion agrees with itself on every pair; a judge whose
    labels.json orders the classes otherwise is tied to the generator's classes by name."""
    result = real_edits.evaluate_real_edits(tiny["judge"], run_dir=tiny["run"], grid_faces=0, progress=False,
                                            output_dir=str(tmp_path / "out"),
                                            other_judges=[tiny["judge"], tiny["other_judge"]])
    itself, reordered = result["other_judges"]
    overall = itself["figures"]["overall"]
    assert overall["pairs"] == result["overall"]["num_pairs"] and overall["faces"] == 2 * C
    assert overall["target_rate"] == pytest.approx(result["overall"]["target_rate"])
    assert overall["judge_accuracy"] == pytest.approx(result["overall"]["judge_accuracy"])
    assert overall["own_judge_target_rate"] == overall["target_rate"] and overall["own_only"] == 0
    assert overall["other_only"] == 0 and overall["both"] == pytest.approx(overall["target_rate"])
    assert itself["judge"]["shared"] == list(NAMES) and itself["judge"]["kind"] == "AttributeClassifier"
    # other_judge's labels.json swaps angry and happy: its class 0 is the generator's happy (3).
    assert reordered["judge"]["expression"][0] == "happy" and reordered["judge"]["shared"] == list(NAMES)
    text = (tmp_path / "out" / "report.md").read_text()
    assert text.count("## Second opinion") == 2 and "| target rate of the edits |" in text
    with pytest.raises(ConfigError, match="not a known judge"):
        real_edits.evaluate_real_edits(tiny["judge"], run_dir=tiny["run"], progress=False,
                                       output_dir=str(tmp_path / "bad"), other_judges=["nobody"])
    assert not (tmp_path / "bad").exists()
