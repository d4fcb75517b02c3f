"""legan_tf.evaluation.translation_metrics: the learning-check figures of a translator on the face lab."""

import json

import numpy as np
import pytest

from legan_tf.evaluation import translation_metrics
from legan_tf.evaluation.translation_report import format_kept_breakdown
from legan_tf.models.stargan import StarGANGenerator
from tests.evaluation.conftest import HELD_OUT, NUM_FACES, pixel_key


def _evaluate(lookup, translate_fn, classifier, **kwargs):
    return translation_metrics.evaluate_translation(translate_fn, lookup.lab, classifier, HELD_OUT, num_faces=NUM_FACES,
                                            seed=1, batch_size=10, **kwargs)


def test_oracle_reaches_the_classifiers_ceiling_and_removes_all_l1(lookup):
    metrics = _evaluate(lookup, lookup.oracle, lookup.classifier())
    for mode in ("both", "expression_only", "lighting_only"):
        assert metrics[f"{mode}/l1_reduction"] == 1.0 and metrics[f"{mode}/l1_out"] == 0.0
        assert metrics[f"{mode}/l1_in"] > 0.0
    for mode in ("expression_only", "lighting_only"):
        assert metrics[f"{mode}/region_l1_reduction"] == 1.0
        # Inside the change region the input is further off than on the whole image.
        assert metrics[f"{mode}/region_l1_in"] > metrics[f"{mode}/l1_in"]
    accuracies = [name for name in metrics if "/accuracy/" in name or "/kept/" in name or "classifier_on" in name]
    assert len(accuracies) == 2 + 2 + 2 + 2 + 2  # both x2, one accuracy and one kept per single mode, ceilings
    assert all(metrics[name] == 1.0 for name in accuracies)


def test_oracle_accuracy_equals_an_imperfect_classifiers_accuracy_on_truth(lookup):
    metrics = _evaluate(lookup, lookup.oracle, lookup.classifier(confused_identity=HELD_OUT[1]))
    assert 0.0 < metrics["classifier_on_truth/expression"] < 1.0
    assert metrics["both/accuracy/expression"] == metrics["classifier_on_truth/expression"]
    assert metrics["both/accuracy/lighting"] == metrics["classifier_on_truth/lighting"] == 1.0
    assert metrics["both/l1_reduction"] == 1.0


def test_returning_the_input_edits_nothing(lookup):
    metrics = _evaluate(lookup, lambda images, targets: images, lookup.classifier(confused_identity=HELD_OUT[1]))
    for mode in ("both", "expression_only", "lighting_only"):
        assert metrics[f"{mode}/l1_reduction"] == 0.0
    for mode in ("expression_only", "lighting_only"):
        assert metrics[f"{mode}/region_l1_reduction"] == 0.0
    # The attribute left alone is read as well as on the inputs themselves.
    assert 0.0 < metrics["classifier_on_input/expression"] < 1.0
    assert metrics["lighting_only/kept/expression"] == metrics["classifier_on_input/expression"]
    assert metrics["expression_only/kept/lighting"] == metrics["classifier_on_input/lighting"] == 1.0
    # Every target differs from its source, so a perfect classifier never sees it on an unchanged face.
    metrics = _evaluate(lookup, lambda images, targets: images, lookup.classifier())
    accuracies = [name for name in metrics if "/accuracy/" in name]
    assert len(accuracies) == 4 and all(metrics[name] == 0.0 for name in accuracies)


def test_expression_only_attributes_evaluate_expression_edits_alone(lookup):
    seen = []

    def translate(images, targets):
        seen.append(sorted(targets))
        return lookup.oracle(images, targets)

    metrics = _evaluate(lookup, translate, lookup.classifier(), attributes=("expression",))
    assert seen and all(keys == ["expression"] for keys in seen)
    assert not any("lighting" in name or "_only/" in name for name in metrics)
    assert metrics["both/accuracy/expression"] == 1.0 and metrics["both/l1_reduction"] == 1.0
    # One edited attribute: the change region is the expression's, as in expression-only edits.
    assert metrics["both/region_l1_reduction"] == 1.0 and metrics["both/region_l1_in"] > metrics["both/l1_in"]


def _geometry_oracle(lookup, geometry):
    """A perfect depth network for the lookup lab: the exact geometry of whatever render it is shown."""
    from legan_tf.geometry import geometry_from_depth

    def estimate(images):
        labels = np.array([lookup.labels[pixel_key(image)] for image in images])
        depth = lookup.lab.render(labels[:, 0], labels[:, 1], labels[:, 2])["depth"][..., None]
        return geometry_from_depth(depth, geometry).numpy()

    return estimate


@pytest.mark.parametrize("geometry", ["depth", "normals"])
def test_depth_consistency_of_a_perfect_and_an_idle_translator(lookup, geometry):
    judge = _geometry_oracle(lookup, geometry)
    perfect = _evaluate(lookup, lookup.oracle, lookup.classifier(), attributes=("expression",), geometry_fn=judge,
                        geometry=geometry)
    # The judge is exact, so the oracle's translations have exactly the target's geometry, as do the truths.
    assert perfect["both/geometry_l1_out"] == perfect["both/geometry_l1_truth"] == 0.0
    assert perfect["both/geometry_l1_in"] > 0 and perfect["both/geometry_l1_reduction"] == 1.0
    assert perfect["both/geometry_region_l1_reduction"] == 1.0
    # Inside the change region the unedited input is further off than over the whole image.
    assert perfect["both/geometry_region_l1_in"] > perfect["both/geometry_l1_in"]
    idle = _evaluate(lookup, lambda images, targets: images, lookup.classifier(), attributes=("expression",),
                     geometry_fn=judge, geometry=geometry)
    assert idle["both/geometry_l1_out"] == idle["both/geometry_l1_in"] == perfect["both/geometry_l1_in"]
    assert idle["both/geometry_l1_reduction"] == 0.0
    assert "both/geometry_l1_out" not in _evaluate(lookup, lookup.oracle, lookup.classifier())


def test_kept_breakdown_names_the_lost_classes_and_the_edits_that_lose_them(lookup):
    def loses_expression_under_light_0(images, targets):
        # Under target light 0 the expression slips to the next class; elsewhere the translation is exact.
        expression = np.where(targets["lighting"] == 0, (targets["expression"] + 1) % lookup.lab.num_expressions,
                              targets["expression"])
        return lookup.oracle(images, {"expression": expression, "lighting": targets["lighting"]})

    metrics, kept_counts, samples = translation_metrics.translation_figures(
        loses_expression_under_light_0, lookup.lab, lookup.classifier(), HELD_OUT, num_faces=NUM_FACES, seed=1,
        batch_size=10)
    assert samples is None  # none asked for
    # What the figures must be, from the seeded draws alone: the classifier reads each render's true labels, so
    # an edit misses its expression exactly where its target light is 0, and nowhere else.
    _, source, new = translation_metrics.draw_edits(lookup.lab, HELD_OUT, NUM_FACES, seed=1)
    num_expressions, num_lightings = lookup.lab.num_expressions, lookup.lab.num_lightings
    slips = new["lighting"] == 0  # the target light of the lighting_only and both edits
    assert 0 < slips.sum() < NUM_FACES  # some edits slip and some do not, so the figures below can be wrong
    # Exact: each figure is a count of faces over NUM_FACES, one float64 division either way.
    assert metrics["num_faces"] == NUM_FACES
    assert metrics["lighting_only/kept/expression"] == np.mean(~slips)
    assert metrics["both/accuracy/expression"] == np.mean(~slips)
    assert metrics["expression_only/accuracy/expression"] == np.mean(source["lighting"] != 0) < 1.0
    assert metrics["both/accuracy/lighting"] == metrics["lighting_only/accuracy/lighting"] == 1.0
    assert metrics["expression_only/kept/lighting"] == 1.0
    assert sorted(kept_counts) == ["expression_only/kept/lighting", "lighting_only/kept/expression"]
    counts = kept_counts["lighting_only/kept/expression"]
    confusion = np.zeros((num_expressions, num_expressions), np.int64)
    for expression, slipped in zip(source["expression"], slips):
        confusion[expression, (expression + 1) % num_expressions if slipped else expression] += 1
    np.testing.assert_array_equal(counts["confusion"], confusion)
    by_lighting = np.stack([np.bincount(new["lighting"][~slips], minlength=num_lightings),
                            np.bincount(new["lighting"], minlength=num_lightings)], axis=1)
    np.testing.assert_array_equal(counts["by_lighting"], by_lighting)

    breakdown = translation_metrics.kept_breakdown(kept_counts, translation_metrics.class_names(lookup.lab))
    by_light = breakdown["lighting_only/kept/expression"]["by_target_lighting"]
    assert by_light["l00"]["rate"] == 0.0 and by_light["l00"]["edits"] > 0
    assert all(row["rate"] == 1.0 for name, row in by_light.items() if name != "l00")
    lost = breakdown["lighting_only/kept/expression"]["lost_to"]
    names = list(lookup.lab.expression_names)
    assert sum(row["count"] for row in lost) == by_light["l00"]["edits"]
    assert all(names.index(row["read_as"]) == (names.index(row["source"]) + 1) % len(names) for row in lost)
    assert [row["count"] for row in lost] == sorted((row["count"] for row in lost), reverse=True)
    # Expression edits keep the lighting: nothing is lost there.
    kept_lighting = breakdown["expression_only/kept/lighting"]
    assert kept_lighting["lost_to"] == [] and all(row["rate"] == 1.0 for row in kept_lighting["by_source"].values())
    text = format_kept_breakdown(breakdown)
    assert "worst targets of lighting: l00 0/" in text and "read as" in text
    json.dumps(breakdown)  # the report is written as JSON


def test_samples_are_the_first_rows_of_the_draw_as_translated_and_read_for_the_metrics(lookup):
    calls = []

    def lighter_expression(images, targets):
        # Exact but for the expression, which slips to the next class on odd-numbered calls: a second
        # translation of the same faces (one for the figure) would not reproduce the scored one.
        calls.append(len(images))
        expression = (targets["expression"] + len(calls) % 2) % lookup.lab.num_expressions
        return lookup.oracle(images, {"expression": expression, "lighting": targets["lighting"]})

    # 5 sample rows over batches of 3: the rows span two batches.
    figures = translation_metrics.translation_figures(lighter_expression, lookup.lab, lookup.classifier(), HELD_OUT,
                                                      num_faces=NUM_FACES, seed=2, batch_size=3, sample_rows=5)
    assert sum(calls) == 3 * NUM_FACES  # one translation per face and mode, none for the samples
    identity, source, new = translation_metrics.draw_edits(lookup.lab, HELD_OUT, NUM_FACES, seed=2)
    samples = figures.samples
    rows = slice(0, 5)
    assert samples.attributes == ("expression", "lighting") and len(samples.inputs) == 5
    np.testing.assert_array_equal(
        samples.inputs, translation_metrics.render_model_images(lookup.lab, identity[rows],
                                                                {name: source[name][rows] for name in source}, 32))
    assert list(samples.modes) == ["both", "expression_only", "lighting_only"]
    for mode, shown in samples.modes.items():
        edited = translation_metrics.edit_modes(samples.attributes)[mode]
        assert shown.edited == edited
        targets = translation_metrics.mode_targets({name: source[name][rows] for name in source},
                                                   {name: new[name][rows] for name in new}, edited)
        for name in translation_metrics.ATTRIBUTES:
            np.testing.assert_array_equal(shown.targets[name], targets[name])
        np.testing.assert_array_equal(shown.truth, translation_metrics.render_model_images(
            lookup.lab, identity[rows], targets, 32))
        # The lookup classifier reads exact labels, so its reading says which call each row came from.
        read = np.array([lookup.labels[pixel_key(image)] for image in shown.translated])
        np.testing.assert_array_equal(shown.predicted["expression"], read[:, 1])
        np.testing.assert_array_equal(shown.predicted["lighting"], read[:, 2])
        slipped = shown.predicted["expression"] != targets["expression"]
        assert slipped.any() and not slipped.all()  # both batches' calls are in the rows
    few = translation_metrics.translation_figures(lighter_expression, lookup.lab, lookup.classifier(), HELD_OUT,
                                                  num_faces=2, sample_rows=5)
    assert len(few.samples.inputs) == 2  # no more rows than faces


def test_draws_are_seeded_and_every_target_differs_from_its_source(lookup):
    identity, source, new = translation_metrics.draw_edits(lookup.lab, HELD_OUT, 500, seed=4)
    again = translation_metrics.draw_edits(lookup.lab, HELD_OUT, 500, seed=4)
    assert np.array_equal(identity, again[0]) and np.array_equal(new["lighting"], again[2]["lighting"])
    other_seed = translation_metrics.draw_edits(lookup.lab, HELD_OUT, 500, seed=5)
    assert not np.array_equal(new["lighting"], other_seed[2]["lighting"])
    assert set(identity) == set(HELD_OUT)
    for name, count in (("expression", 6), ("lighting", 4)):
        assert np.all(new[name] != source[name])
        assert set(new[name]) == set(range(count))


def test_change_region_needs_more_than_one_8bit_level():
    source = np.full((1, 2, 3, 3), -1.0, np.float32)
    target = source.copy()
    level = 2.0 / 255.0  # one 8-bit level on the [-1, 1] scale
    target[0, 0, 0, 2] += level          # one level in one channel: rounding noise, outside
    target[0, 0, 1, 1] += 2 * level      # two levels in one channel: inside
    target[0, 1, 2] += 0.5               # a real change in every channel: inside
    region = translation_metrics.change_region(source, target)
    assert region.tolist() == [[[False, True, False], [False, False, True]]]
    assert translation_metrics.change_region(target, source).tolist() == region.tolist()


class CapturingGenerator:
    def __init__(self):
        self.calls = []

    def __call__(self, inputs):
        images, labels = inputs
        self.calls.append((images.shape, labels))
        return images * 0.5


def test_generator_translate_fn_concatenates_one_hots_in_label_order_and_batches():
    generator = CapturingGenerator()
    translate = translation_metrics.generator_translate_fn(generator, {"expression": 3, "lighting": 2}, batch_size=2)
    images = np.ones((3, 4, 4, 3), np.float32)
    out = translate(images, {"lighting": np.array([1, 0, 1]), "expression": np.array([2, 0, 1])})
    assert np.array_equal(out, images * 0.5)
    assert [shape for shape, _ in generator.calls] == [(2, 4, 4, 3), (1, 4, 4, 3)]
    labels = np.concatenate([labels for _, labels in generator.calls])
    assert labels.dtype == np.float32
    assert labels.tolist() == [[0, 0, 1, 0, 1], [1, 0, 0, 1, 0], [0, 1, 0, 0, 1]]
    with pytest.raises(ValueError, match=r"expression target ids must be in \[0, 3\)"):
        translate(images, {"expression": np.array([3, 0, 1]), "lighting": np.array([0, 0, 0])})


def test_generator_translate_fn_drives_a_stargan_generator():
    generator = StarGANGenerator(image_size=32, num_labels=6 + 4, base_filters=4, num_residual_blocks=1)
    translate = translation_metrics.generator_translate_fn(generator, {"expression": 6, "lighting": 4}, batch_size=3)
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    out = translate(images, {"expression": np.arange(5), "lighting": np.arange(5) % 4})
    assert out.shape == images.shape and np.all(np.abs(out) <= 1.0)


def _metrics(expression=0.8, lighting=0.95, reduction=0.4, kept=0.95):
    return {"both/accuracy/expression": expression, "both/accuracy/lighting": lighting,
            "both/l1_reduction": reduction, "expression_only/kept/lighting": kept,
            "lighting_only/kept/expression": kept, "lighting_only/region_l1_reduction": 0.1}


def test_verdict_thresholds():
    rows = translation_metrics.learning_check_verdict(_metrics())
    assert [(name, target) for name, _, target, _ in rows] == [
        ("both/accuracy/expression", 0.75), ("both/accuracy/lighting", 0.90), ("both/l1_reduction", 0.30)]
    assert all(passed for *_, passed in rows)
    at_targets = translation_metrics.learning_check_verdict(_metrics(0.75, 0.90, 0.30))
    assert all(passed for *_, passed in at_targets)
    below = translation_metrics.learning_check_verdict(_metrics(0.7499, 0.8999, 0.2999))
    assert not any(passed for *_, passed in below)
    assert not translation_metrics.learning_check_verdict(_metrics(reduction=float("nan")))[2][3]


def test_legan_verdict_adds_disentanglement():
    rows = translation_metrics.learning_check_verdict(_metrics(kept=0.9), kind="legan")
    kept = [(name, passed) for name, _, _, passed in rows if "/kept/" in name]
    assert kept == [("expression_only/kept/lighting", True), ("lighting_only/kept/expression", True)]
    rows = translation_metrics.learning_check_verdict(_metrics(kept=0.89), kind="legan")
    assert [passed for name, _, _, passed in rows if "/kept/" in name] == [False, False]
    with pytest.raises(ValueError, match="kind must be one of"):
        translation_metrics.learning_check_verdict(_metrics(), kind="cyclegan")


def test_expression_edit_verdict_is_the_accuracy_alone():
    rows = translation_metrics.learning_check_verdict(_metrics(expression=0.75, reduction=-0.8), "expression_edit")
    assert [(name, passed) for name, _, _, passed in rows] == [
        ("both/accuracy/expression", True), ("both/accuracy/lighting", True)]
    rows = translation_metrics.learning_check_verdict({"both/accuracy/expression": 0.74, "both/l1_reduction": 0.5},
                                                      "expression_edit")
    assert [(name, passed) for name, _, _, passed in rows] == [("both/accuracy/expression", False)]


def test_verdict_for_expression_only_metrics():
    rows = translation_metrics.learning_check_verdict({"both/accuracy/expression": 0.8, "both/l1_reduction": 0.5},
                                                      "legan")
    assert [name for name, *_ in rows] == ["both/accuracy/expression", "both/l1_reduction"]


def test_reported_figures_show_the_l1_the_verdict_does_not():
    metrics = {"both/accuracy/expression": 0.9, "both/l1_in": 0.1, "both/l1_out": 0.2, "both/l1_reduction": -1.0,
               "both/region_l1_reduction": 0.15, "num_faces": 300}
    assert [name for name, _ in translation_metrics.reported_figures(metrics)] == [
        "both/l1_in", "both/l1_out", "both/l1_reduction", "both/region_l1_reduction"]
    assert [name for name, _ in translation_metrics.reported_figures(metrics, ["both/l1_reduction"])] == [
        "both/l1_in", "both/l1_out", "both/region_l1_reduction"]


def test_chunks_are_handed_over_with_their_rows_mode_targets_and_truth(lookup):
    """With pass_chunk the callback is told which rows of the draw and which edit mode it translates: every row
    once per mode, in draw order, with the targets of draw_edits and the exact render of each row's target."""
    seen = []

    def oracle_told_its_chunk(images, targets, chunk):
        seen.append(chunk)
        assert set(targets) == {"expression", "lighting"} and len(images) == chunk.rows.stop - chunk.rows.start
        for name, values in targets.items():
            assert np.array_equal(values, chunk.targets[name])
        return lookup.oracle(images, targets)

    # 24 faces in chunks of 10: the last chunk holds the 4 rows left over.
    told = translation_metrics.translation_figures(oracle_told_its_chunk, lookup.lab, lookup.classifier(), HELD_OUT,
                                                   num_faces=NUM_FACES, seed=1, batch_size=10, pass_chunk=True)
    blind = translation_metrics.translation_figures(lookup.oracle, lookup.lab, lookup.classifier(), HELD_OUT,
                                                    num_faces=NUM_FACES, seed=1, batch_size=10)
    assert told.metrics == blind.metrics  # the same translations, the same figures
    modes = translation_metrics.edit_modes(("expression", "lighting"))
    starts = (0, 10, 20)
    assert [(chunk.rows.start, chunk.rows.stop, chunk.mode) for chunk in seen] == [
        (start, min(start + 10, NUM_FACES), mode) for start in starts for mode in modes]
    identity, source, new = translation_metrics.draw_edits(lookup.lab, HELD_OUT, NUM_FACES, seed=1)
    for chunk in seen:
        assert chunk.edited == modes[chunk.mode]
        assert np.array_equal(chunk.identity, identity[chunk.rows])
        expected = translation_metrics.mode_targets({k: v[chunk.rows] for k, v in source.items()},
                                                    {k: v[chunk.rows] for k, v in new.items()}, chunk.edited)
        assert all(np.array_equal(chunk.targets[name], expected[name]) for name in expected)
        truth = translation_metrics.render_model_images(lookup.lab, chunk.identity, chunk.targets, 32)
        assert np.array_equal(chunk.truth, truth)
