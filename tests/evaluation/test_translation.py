"""legan_tf.evaluation.translation and scripts/evaluate_translation.py: the GAN learning check on the face lab."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataConfig, open_source
from legan_tf.data.synthetic.render import FaceLab
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError
from legan_tf.evaluation import translation
from legan_tf.models.classifier import AttributeClassifier
from legan_tf.models.stargan import StarGANGenerator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "evaluate_translation.py")
HELD_OUT = (100000, 100001)
NUM_FACES = 24


def _key(image):
    return np.round((np.asarray(image) + 1.0) * 127.5).astype(np.uint8).tobytes()


class LookupLab:
    """Every render of the held-out identities, keyed by its pixels: who and what each image shows."""

    def __init__(self, lab):
        self.lab = lab
        grid = lab.render_grid(list(HELD_OUT))
        images = translation.to_model_images(grid["rgb"], lab.image_size)
        self.labels = {_key(image): (int(i), int(e), int(l))
                       for image, i, e, l in zip(images, grid["identity"], grid["expression"], grid["lighting"])}

    def classifier(self, confused_identity=None):
        """A classifier reading labels off the table; on `confused_identity` it names the next expression."""
        def classify(images):
            logits = {"expression": np.zeros((len(images), self.lab.num_expressions)),
                      "lighting": np.zeros((len(images), self.lab.num_lightings))}
            for row, image in enumerate(images):
                identity, expression, lighting = self.labels[_key(image)]
                if identity == confused_identity:
                    expression = (expression + 1) % self.lab.num_expressions
                logits["expression"][row, expression] = 1.0
                logits["lighting"][row, lighting] = 1.0
            return logits
        return classify

    def oracle(self, images, targets):
        """The perfect translator: the exact render of each input's identity with the target attributes."""
        identity = [self.labels[_key(image)][0] for image in images]
        sources = [self.labels[_key(image)] for image in images]
        expression = targets.get("expression", [source[1] for source in sources])
        lighting = targets.get("lighting", [source[2] for source in sources])
        rgb = self.lab.render(np.array(identity), np.asarray(expression), np.asarray(lighting))["rgb"]
        return translation.to_model_images(rgb, self.lab.image_size)


@pytest.fixture(scope="module")
def lookup():
    return LookupLab(FaceLab(image_size=32, num_lightings=4))


def _evaluate(lookup, translate_fn, classifier, **kwargs):
    return translation.evaluate_translation(translate_fn, lookup.lab, classifier, HELD_OUT, num_faces=NUM_FACES,
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


def test_kept_breakdown_names_the_lost_classes_and_the_edits_that_lose_them(lookup):
    def loses_expression_under_light_0(images, targets):
        # Under target light 0 the expression slips to the next class; elsewhere the translation is exact.
        expression = np.where(targets["lighting"] == 0, (targets["expression"] + 1) % lookup.lab.num_expressions,
                              targets["expression"])
        return lookup.oracle(images, {"expression": expression, "lighting": targets["lighting"]})

    metrics, kept_counts = translation.translation_figures(
        loses_expression_under_light_0, lookup.lab, lookup.classifier(), HELD_OUT, num_faces=NUM_FACES, seed=1,
        batch_size=10)
    # What the figures must be, from the seeded draws alone: the classifier reads each render's true labels, so
    # an edit misses its expression exactly where its target light is 0, and nowhere else.
    _, source, new = translation.draw_edits(lookup.lab, HELD_OUT, NUM_FACES, seed=1)
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

    breakdown = translation.kept_breakdown(kept_counts, translation.class_names(lookup.lab))
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
    text = translation.format_kept_breakdown(breakdown)
    assert "worst targets of lighting: l00 0/" in text and "read as" in text
    json.dumps(breakdown)  # the report is written as JSON


def test_draws_are_seeded_and_every_target_differs_from_its_source(lookup):
    identity, source, new = translation.draw_edits(lookup.lab, HELD_OUT, 500, seed=4)
    again = translation.draw_edits(lookup.lab, HELD_OUT, 500, seed=4)
    assert np.array_equal(identity, again[0]) and np.array_equal(new["lighting"], again[2]["lighting"])
    assert not np.array_equal(new["lighting"], translation.draw_edits(lookup.lab, HELD_OUT, 500, seed=5)[2]["lighting"])
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
    region = translation.change_region(source, target)
    assert region.tolist() == [[[False, True, False], [False, False, True]]]
    assert translation.change_region(target, source).tolist() == region.tolist()


class CapturingGenerator:
    def __init__(self):
        self.calls = []

    def __call__(self, inputs):
        images, labels = inputs
        self.calls.append((images.shape, labels))
        return images * 0.5


def test_generator_translate_fn_concatenates_one_hots_in_label_order_and_batches():
    generator = CapturingGenerator()
    translate = translation.generator_translate_fn(generator, {"expression": 3, "lighting": 2}, batch_size=2)
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
    translate = translation.generator_translate_fn(generator, {"expression": 6, "lighting": 4}, batch_size=3)
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    out = translate(images, {"expression": np.arange(5), "lighting": np.arange(5) % 4})
    assert out.shape == images.shape and np.all(np.abs(out) <= 1.0)


def _metrics(expression=0.8, lighting=0.95, reduction=0.4, kept=0.95):
    return {"both/accuracy/expression": expression, "both/accuracy/lighting": lighting,
            "both/l1_reduction": reduction, "expression_only/kept/lighting": kept,
            "lighting_only/kept/expression": kept, "lighting_only/region_l1_reduction": 0.1}


def test_verdict_thresholds():
    rows = translation.learning_check_verdict(_metrics())
    assert [(name, target) for name, _, target, _ in rows] == [
        ("both/accuracy/expression", 0.75), ("both/accuracy/lighting", 0.90), ("both/l1_reduction", 0.30)]
    assert all(passed for *_, passed in rows)
    at_targets = translation.learning_check_verdict(_metrics(0.75, 0.90, 0.30))
    assert all(passed for *_, passed in at_targets)
    below = translation.learning_check_verdict(_metrics(0.7499, 0.8999, 0.2999))
    assert not any(passed for *_, passed in below)
    assert not translation.learning_check_verdict(_metrics(reduction=float("nan")))[2][3]


def test_legan_verdict_adds_disentanglement():
    rows = translation.learning_check_verdict(_metrics(kept=0.9), kind="legan")
    kept = [(name, passed) for name, _, _, passed in rows if "/kept/" in name]
    assert kept == [("expression_only/kept/lighting", True), ("lighting_only/kept/expression", True)]
    rows = translation.learning_check_verdict(_metrics(kept=0.89), kind="legan")
    assert [passed for name, _, _, passed in rows if "/kept/" in name] == [False, False]
    with pytest.raises(ValueError, match="kind must be one of"):
        translation.learning_check_verdict(_metrics(), kind="cyclegan")


def test_verdict_for_expression_only_metrics():
    rows = translation.learning_check_verdict({"both/accuracy/expression": 0.8, "both/l1_reduction": 0.5}, "legan")
    assert [name for name, *_ in rows] == ["both/accuracy/expression", "both/l1_reduction"]


def test_sample_figure(lookup, tmp_path):
    path = str(tmp_path / "samples.png")
    translation.plot_samples(lookup.oracle, lookup.lab, lookup.classifier(), HELD_OUT, path, num_rows=2,
                             num_faces=NUM_FACES)
    with Image.open(path) as figure:
        assert figure.format == "PNG" and figure.width > figure.height > 100


# --- the script -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 3-identity lab, an untrained generator in a run directory and an untrained classifier."""
    root = tmp_path_factory.mktemp("translation")
    lab_dir = root / "lab"
    write_face_lab(lab_dir, image_size=32, num_identities=3, num_lightings=4, parts=("multipie",), progress=False)
    run_dir = root / "run"
    run_dir.mkdir()
    generator = StarGANGenerator(image_size=32, num_labels=10, base_filters=4, num_residual_blocks=1)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 10), np.float32)))
    generator.save(str(run_dir / "generator.keras"))
    (run_dir / "flags.txt").write_text(
        "--task=stargan\n--data_format=multipie\n"
        f"--data_path={lab_dir / 'multipie' / 'manifest.csv'}\n--image_size=32\n"
        "--expression_names=neutral,smile,surprise,squint,disgust,scream\n--num_lightings=4\n")
    classifier = AttributeClassifier(image_size=32, head_classes={"expression": 6, "lighting": 4}, base_filters=4,
                                     num_downsamples=2)
    classifier(np.zeros((1, 32, 32, 3), np.float32))
    classifier.save(str(root / "classifier.keras"))
    return {"root": root, "run_dir": str(run_dir), "classifier": str(root / "classifier.keras")}


@pytest.mark.parametrize("image_size", [32, 16])
def test_inputs_are_what_training_reads_from_the_labs_pngs(tiny_run, image_size):
    manifest = str(tiny_run["root"] / "lab" / "multipie" / "manifest.csv")
    source = open_source(DataConfig("multipie", manifest, image_size=image_size,
                                    lighting_names=("00", "01", "02", "03")))
    batch = next(iter(source.dataset(4, training=False, repeat=False)))  # identity 0's first rows
    rgb = FaceLab(image_size=32, num_lightings=4).render(0, batch["expression"].numpy(), batch["lighting"].numpy())
    assert np.array_equal(translation.to_model_images(rgb["rgb"], image_size), batch["image"].numpy())


def test_script_end_to_end(tiny_run):
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--run_dir={tiny_run['run_dir']}", f"--classifier={tiny_run['classifier']}",
         "--num_faces=6", "--num_identities=2", "--sample_rows=2", "--kind=legan", "--noprogress_bar"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    output = os.path.join(tiny_run["run_dir"], "evaluation")
    report = json.load(open(os.path.join(output, "translation_metrics.json")))
    assert report["attributes"] == ["expression", "lighting"] and report["identities"] == [100000, 100001]
    assert report["lab"]["num_lightings"] == 4 and report["lab"]["lab_json"].endswith("lab.json")
    for name in ("both/accuracy/expression", "both/l1_reduction", "lighting_only/kept/expression",
                 "lighting_only/region_l1_reduction", "expression_only/region_l1_reduction",
                 "classifier_on_truth/lighting"):
        assert name in report["metrics"]
    assert [row["name"] for row in report["verdict"]][-2:] == ["expression_only/kept/lighting",
                                                             "lighting_only/kept/expression"]
    assert os.path.getsize(os.path.join(output, "translation_samples.png")) > 0
    assert "both/accuracy/expression" in result.stdout and "learning check (legan)" in result.stdout
    breakdown = report["kept_breakdown"]["lighting_only/kept/expression"]
    assert sum(row["edits"] for row in breakdown["by_source"].values()) == 6
    assert "lighting_only/kept/expression:" in result.stdout and "kept by source:" in result.stdout


def test_script_missing_classifier_is_one_line(tiny_run):
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--run_dir={tiny_run['run_dir']}", "--classifier=/nowhere/c.keras"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: --classifier=/nowhere/c.keras: no such classifier file."


def test_run_errors(tiny_run, tmp_path):
    def evaluate(**kwargs):
        arguments = dict(classifier_path=tiny_run["classifier"], run_dir=tiny_run["run_dir"], num_faces=2,
                         output_dir=str(tmp_path), progress=False)
        return translation.evaluate_run(**{**arguments, **kwargs})

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "flags.txt").write_text(open(os.path.join(tiny_run["run_dir"], "flags.txt")).read())
    with pytest.raises(ConfigError, match="it has no generator.keras"):
        evaluate(run_dir=str(unfinished))
    other_size = AttributeClassifier(image_size=64, head_classes={"expression": 6, "lighting": 4}, base_filters=4,
                                     num_downsamples=2)
    other_size(np.zeros((1, 64, 64, 3), np.float32))
    other_size.save(str(tmp_path / "classifier64.keras"))
    with pytest.raises(ConfigError, match="size mismatch: the classifier .* 64 px images, the generator on 32 px"):
        evaluate(classifier_path=str(tmp_path / "classifier64.keras"))
    with pytest.raises(ConfigError, match="identities 0..2 are in the lab"):
        evaluate(first_identity=0)
    with pytest.raises(ConfigError, match="lab has 4 lights, the run 20"):
        evaluate(settings={"num_lightings": 20})


def test_attributes_are_inferred_from_the_generators_label_count():
    counts = {"expression": 6, "lighting": 4}
    assert translation.infer_attributes(10, counts) == ("expression", "lighting")
    assert translation.infer_attributes(6, counts) == ("expression",)
    assert translation.infer_attributes(4, counts) == ("lighting",)
    with pytest.raises(ConfigError, match="several of .* fit: pass --attributes"):
        translation.infer_attributes(6, {"expression": 6, "lighting": 6})
    with pytest.raises(ConfigError, match="none of .* fit"):
        translation.infer_attributes(7, counts)


def test_without_lab_json_the_expression_set_follows_the_runs_names():
    affectnet = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sadness", "surprise")
    settings = translation.lab_settings(None, {"seed": 3}, affectnet, num_lightings=20, image_size=64)
    assert (settings["expression_set"], settings["seed"], settings["image_size"]) == ("affectnet", 3, 64)
    with pytest.raises(ConfigError, match="no face-lab expression set"):
        translation.lab_settings(None, {}, ("happy", "sad"), num_lightings=20, image_size=64)


def test_comparison_table_puts_runs_side_by_side_and_marks_missing_figures(tmp_path):
    import json
    import subprocess
    import sys

    from legan_tf.evaluation.translation import comparison_table

    stargan = {"both/accuracy/expression": 0.84, "both/l1_reduction": 0.538}
    legan = {"both/accuracy/expression": 0.943, "both/l1_reduction": 0.534, "lighting_only/kept/expression": 0.923}
    table = comparison_table({"StarGAN": stargan, "LEGAN": legan}).splitlines()
    assert table[0] == "| figure | StarGAN | LEGAN |"
    assert "| target expression recognised (both edited) | 84.0% | 94.3% |" in table
    assert "| lighting-only edits keep the expression | - | 92.3% |" in table
    assert not any("lighting recognised" in line for line in table)  # no run has it

    run = tmp_path / "legan-run"
    (run / "evaluation").mkdir(parents=True)
    (run / "evaluation" / "translation_metrics.json").write_text(json.dumps({"metrics": legan}))
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "scripts", "compare_translations.py")
    done = subprocess.run([sys.executable, script, f"--runs=LEGAN={run},{run}"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| figure | LEGAN | legan-run |" in done.stdout
    missing = subprocess.run([sys.executable, script, f"--runs={tmp_path}"], capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 1 and "run scripts/evaluate_translation.py first" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_comparison_table_shows_seed_groups_as_mean_and_range(tmp_path):
    import json
    import subprocess
    import sys

    from legan_tf.evaluation.translation import comparison_table

    seeds = [{"lighting_only/kept/expression": value, "both/l1_reduction": 0.66} for value in (0.85, 0.91, 0.88)]
    seeds[2].pop("both/l1_reduction")
    table = comparison_table({"LEGAN": seeds, "StarGAN": {"lighting_only/kept/expression": 0.877}}).splitlines()
    assert table[0] == "| figure | LEGAN (3 runs) | StarGAN |"
    assert "| lighting-only edits keep the expression | 88.0% (85.0-91.0) | 87.7% |" in table
    assert "| L1 to the exact target, reduction against the input | 66.0% (66.0-66.0) | - |" in table
    with pytest.raises(ValueError, match="no runs"):
        comparison_table({"LEGAN": []})

    runs = []
    for seed, metrics in enumerate(seeds[:2]):
        run = tmp_path / f"seed{seed}"
        (run / "evaluation").mkdir(parents=True)
        (run / "evaluation" / "translation_metrics.json").write_text(json.dumps({"metrics": metrics}))
        runs.append(run)
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "scripts", "compare_translations.py")
    done = subprocess.run([sys.executable, script, f"--runs=LEGAN={runs[0]},LEGAN={runs[1]}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| lighting-only edits keep the expression | 88.0% (85.0-91.0) |" in done.stdout
    twice = subprocess.run([sys.executable, script, f"--runs=LEGAN={runs[0]},LEGAN={runs[0]}"],
                           capture_output=True, text=True, timeout=120)
    assert twice.returncode == 1 and "given twice under the label 'LEGAN'" in twice.stderr
    assert "Traceback" not in twice.stderr
