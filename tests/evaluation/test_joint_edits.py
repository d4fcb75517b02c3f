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
from legan_tf.evaluation import joint_edits
from legan_tf.evaluation.translation_metrics import generator_translate_fn

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


def summary_of(edit):
    classifier = ReadingClassifier()
    judges = [joint_edits.Judge(name, name, joint_edits.attribute_judge(classifier, name, size, batch_size=4), {})
              for name, size in (("expression", E), ("lighting", L))]
    translate = generator_translate_fn(StubGenerator(edit), {"expression": E, "lighting": L}, batch_size=5)
    labels = {"expression": EXPRESSION_LABELS, "lighting": LIGHTING_LABELS}
    readings = joint_edits.edit_each_attribute(translate, judges, faces(EXPRESSION_LABELS, LIGHTING_LABELS), labels,
                                               {"expression": E, "lighting": L}, batch_size=5)
    return joint_edits.summarise(readings, judges, NAMES)


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


def test_a_judge_without_the_attribute_head_is_refused():
    class ExpressionOnly(ReadingClassifier):
        head_classes = {"expression": E}

    with pytest.raises(ConfigError, match="no lighting head"):
        joint_edits.attribute_judge(ExpressionOnly(), "lighting", L)
    with pytest.raises(ConfigError, match="has 3 lighting classes, the generator 4"):
        joint_edits.attribute_judge(ReadingClassifier(), "lighting", 4)


# --- the script on tiny shards --------------------------------------------------------------------

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
    with Image.open(output / "lighting_grid.png") as grid:
        # A 20 px title row, then 2 rows of 96 px faces in 3 px frames, 2 px apart.
        assert grid.size[1] == 20 + 2 * (96 + 6 + 2)
    with Image.open(output / "joint_grid.png") as grid:
        assert grid.size[1] == 20 + E * (96 + 6 + 2)


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
