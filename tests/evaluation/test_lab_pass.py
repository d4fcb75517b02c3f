"""legan_tf.evaluation.lab_pass: the face lab's settings, and the lab pass scoring each translation against the
exact render of its own target."""

import json

import numpy as np
import pytest

from legan_tf.errors import ConfigError
from legan_tf.evaluation import lab_pass
from legan_tf.evaluation.judges import Judges, judges_used_in_training
from legan_tf.evaluation.metric_sets import BASELINE_INPUT
from legan_tf.evaluation.run_under_test import RunUnderTest
from tests.evaluation.conftest import HELD_OUT


class OracleGenerator:
    """A label-conditioned generator (image_size, num_labels, generator((images, one-hot labels))) whose output
    is the exact render of each input's identity with the target expression and light."""

    def __init__(self, lookup):
        self.lookup = lookup
        self.image_size = lookup.lab.image_size
        self.expressions = lookup.lab.num_expressions
        self.num_labels = self.expressions + lookup.lab.num_lightings

    def __call__(self, inputs):
        images, labels = (np.asarray(part) for part in inputs)
        targets = {"expression": labels[:, :self.expressions].argmax(axis=1),
                   "lighting": labels[:, self.expressions:].argmax(axis=1)}
        return self.lookup.oracle(images, targets)


def test_every_translation_is_scored_against_the_exact_render_of_its_own_target(lookup):
    generator = OracleGenerator(lookup)
    run = RunUnderTest("oracle", None, "oracle.keras", generator, {}, {}, "stargan")
    sizes = {"expression": lookup.lab.num_expressions, "lighting": lookup.lab.num_lightings}
    setup = lab_pass.LabSetup(lookup.lab, {}, ("expression", "lighting"), sizes, list(HELD_OUT))
    # 10 faces in chunks of 4: two whole chunks and one of 2, three edit modes each.
    judges = Judges()  # none given: the metrics that need no judge, PSNR among them
    result = lab_pass.lab_pass(run, setup, judges, num_faces=10, seed=3, batch_size=4, progress=False, sample_rows=2,
                               metric_names=("psnr",), baselines=True, used=judges_used_in_training(run, judges))
    psnr = result.metrics["psnr"].values
    # The oracle's output of a joint edit is that very render: an identical pair for every face, which holds
    # only when each output meets the truth of its own row and of the joint edit.
    assert (psnr["count"], psnr["identical_pairs"]) == (10, 10)
    # The input itself differs from the target render (both attributes change): no identical pair.
    unchanged = result.baselines[BASELINE_INPUT]["psnr"].values
    assert (unchanged["count"], unchanged["identical_pairs"]) == (10, 0)
    assert result.figures.metrics["both/l1_out"] == 0.0 and not result.classifier_given and result.verdict == []


def test_lab_settings_come_from_lab_json_then_the_overrides(tmp_path):
    lab = tmp_path / "lab"
    (lab / "multipie").mkdir(parents=True)
    saved = {"image_size": 64, "multipie": {"expression_set": "multipie"}, "counts": {"multipie": 12},
             "lighting_names": ["00", "01", "02"], "seed": 7, "ambient": 0.3, "subjects": [0, 1, 2]}
    (lab / "lab.json").write_text(json.dumps(saved))
    settings = lab_pass.lab_settings(str(lab / "multipie" / "manifest.csv"), {"seed": 9, "ambient": None},
                                     ("anything",), num_lightings=20, image_size=32)
    assert settings == {"image_size": 64, "expression_set": "multipie", "num_lightings": 3, "seed": 9,
                        "ambient": 0.3, "subjects": [0, 1, 2], "lab_json": str(lab / "lab.json"), "part": "multipie"}
    with pytest.raises(ConfigError, match="the lab has no rgbd part"):
        lab_pass.lab_settings(str(lab / "rgbd" / "manifest.csv"), {}, (), 20, 32)


def test_without_lab_json_the_expression_set_follows_the_runs_names():
    affectnet = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sadness", "surprise")
    settings = lab_pass.lab_settings(None, {"seed": 3}, affectnet, num_lightings=20, image_size=64)
    assert (settings["expression_set"], settings["seed"], settings["image_size"]) == ("affectnet", 3, 64)
    assert settings["lab_json"] is None
    with pytest.raises(ConfigError, match="no face-lab expression set"):
        lab_pass.lab_settings(None, {}, ("happy", "sad"), num_lightings=20, image_size=64)
