"""An identity network judged on real held-out people, by kind of same-person pair
(legan_tf.evaluation.identity_real, scripts/evaluate_identity.py --data_path).

The figures are checked on embeddings whose every cosine is known (one-hot codes of a label: cosine 1 for
equal labels, 0 otherwise), so each AUC follows from counting pairs; the script runs end to end on tiny
face-lab shards with an untrained network, and refuses bad input in one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from legan_tf.evaluation.identity_real import (ANOTHER_EXPRESSION, ANOTHER_LIGHT, ANOTHER_PERSON, BOTH, PAIR_KINDS,
                                               SAME_LABELS, pair_kind_masks, real_identity_figures)
from tests.evaluation.conftest import save_tiny_identity_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "evaluate_identity.py")

# 4 people x 3 expressions x 2 lights, every combination once: 24 faces.
PERSON, EXPRESSION, LIGHT = (grid.reshape(-1) for grid in np.meshgrid(np.arange(4), np.arange(3), np.arange(2),
                                                                      indexing="ij"))


def one_hot(values):
    return np.eye(int(values.max()) + 1)[values]


def test_every_pair_has_exactly_one_kind_and_the_counts_follow_from_the_grid():
    masks = pair_kind_masks(PERSON, EXPRESSION, LIGHT)
    stacked = np.stack([masks[kind] for kind in PAIR_KINDS])
    assert stacked.shape[1] == 24 * 23 // 2 and np.all(stacked.sum(axis=0) == 1)
    # Per person (6 faces): another light only = 3 expressions x 1 pair; another expression only = 2 lights
    # x C(3,2) = 6; both = 3 x 2 ordered (e, e') with e < e' ... = C(3,2) x 2 = 6; same labels: none.
    assert masks[ANOTHER_LIGHT].sum() == 4 * 3 and masks[ANOTHER_EXPRESSION].sum() == 4 * 6
    assert masks[BOTH].sum() == 4 * 6 and masks[SAME_LABELS].sum() == 0
    assert masks[ANOTHER_PERSON].sum() == 24 * 23 // 2 - 4 * 15
    # Without lighting labels every same-person pair differs in expression or has the same labels.
    unlit = pair_kind_masks(PERSON, EXPRESSION)
    assert unlit[ANOTHER_LIGHT].sum() == 0 and unlit[BOTH].sum() == 0 and unlit[SAME_LABELS].sum() == 4 * 3


def test_an_embedding_of_the_person_only_separates_every_kind_perfectly():
    figures = real_identity_figures(one_hot(PERSON), PERSON, EXPRESSION, LIGHT)
    assert figures["overall"]["verification_auc"] == 1.0 and figures["overall"]["rank1_accuracy"] == 1.0
    for kind in (ANOTHER_LIGHT, ANOTHER_EXPRESSION, BOTH):
        entry = figures["pair_kinds"][kind]
        # Equal unit vectors: 1 - cos is exactly 0 in float64 (one 1.0 * 1.0 product).
        assert entry["mean_distance"] == 0.0 and entry["auc_vs_another_person"] == 1.0
    assert figures["pair_kinds"][ANOTHER_PERSON]["mean_distance"] == 1.0
    assert figures["pair_kinds"][SAME_LABELS] == {"pairs": 0, "mean_distance": None, "auc_vs_another_person": None}


def test_an_embedding_of_the_light_only_reads_a_change_of_light_as_another_person():
    figures = real_identity_figures(one_hot(LIGHT), PERSON, EXPRESSION, LIGHT)
    masks = pair_kind_masks(PERSON, EXPRESSION, LIGHT)
    upper = np.triu_indices(24, k=1)
    impostor_same_light = np.mean((LIGHT[upper[0]] == LIGHT[upper[1]])[masks[ANOTHER_PERSON]])
    # Another light scores 0 against impostors scoring 1 (same light) or 0 (tie, counted half): AUC is half
    # the impostors' share with another light. Another expression keeps the light: score 1, beaten by no impostor.
    light = figures["pair_kinds"][ANOTHER_LIGHT]
    assert light["mean_distance"] == 1.0
    assert light["auc_vs_another_person"] == pytest.approx(0.5 * (1 - impostor_same_light), abs=1e-12)
    expression = figures["pair_kinds"][ANOTHER_EXPRESSION]
    assert expression["mean_distance"] == 0.0
    assert expression["auc_vs_another_person"] == pytest.approx(1 - 0.5 * impostor_same_light, abs=1e-12)


def test_labels_of_another_length_are_refused():
    with pytest.raises(ValueError, match="23 labels for 24 faces"):
        pair_kind_masks(PERSON, EXPRESSION[:-1])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Face-lab shards with subjects (6 people, 2 lights, held out by subject) and an untrained identity_model.keras."""
    import keras

    from legan_tf.data import DataConfig, open_source, tfrecord
    from legan_tf.data.synthetic.writer import write_face_lab

    root = tmp_path_factory.mktemp("identity_real")
    write_face_lab(root / "lab", image_size=32, num_identities=6, seed=0, num_lightings=2, parts=("multipie",),
                   progress=False)
    config = DataConfig(data_format="multipie", data_path=str(root / "lab" / "multipie" / "manifest.csv"),
                        image_size=32, lighting_names=("00", "01"))
    shards = str(root / "shards")
    tfrecord.prepare_output_dir(shards, overwrite=False)
    tfrecord.write_tfrecords(open_source(config), shards, num_shards=1, holdout_fraction=0.34, seed=0)
    keras.utils.set_random_seed(0)
    model = save_tiny_identity_model(root / "identity_model.keras", 32)
    return {"root": root, "shards": shards, "model": model, "lab_manifest": config.data_path}


def _script(*arguments):
    return subprocess.run([sys.executable, SCRIPT, *arguments], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_the_script_judges_held_out_people_and_writes_the_figures(tiny, tmp_path):
    result = _script(f"--model={tiny['model']}", f"--data_path={tiny['shards']}", "--num_faces=0",
                     f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "another light" in result.stdout and "verification AUC" in result.stdout
    report = json.load(open(tmp_path / "identity_evaluation_real.json"))
    count = report["num_faces"]
    assert report["split"] == "test" and report["overall"]["count"] == count
    # 2 of the 6 people are held out (0.34 of 6 subjects, rounded): every pair is of exactly one kind.
    assert report["overall"]["identities"] == 2
    assert sum(entry["pairs"] for entry in report["pair_kinds"].values()) == count * (count - 1) // 2
    for kind in (ANOTHER_LIGHT, ANOTHER_EXPRESSION, BOTH):
        assert report["pair_kinds"][kind]["pairs"] > 0
        assert 0.0 <= report["pair_kinds"][kind]["auc_vs_another_person"] <= 1.0
    assert report["command"].startswith("python ") and "--data_path=" in report["command"]
    for name in ("blur", "noise"):
        assert 0.0 <= report["degraded"][name]["mean_distance"] <= 2.0
    assert "the same face degraded" in result.stdout

    fewer = _script(f"--model={tiny['model']}", f"--data_path={tiny['shards']}", "--num_faces=10",
                    f"--output_dir={tmp_path / 'fewer'}")
    assert fewer.returncode == 0, fewer.stderr[-3000:]
    assert json.load(open(tmp_path / "fewer" / "identity_evaluation_real.json"))["num_faces"] == 10


def test_bad_input_is_one_line_and_exit_1(tiny, tmp_path):
    cases = [
        ([f"--model={tiny['model']}", f"--data_path={tiny['lab_manifest']}"], "not prepared shards"),
        ([f"--model={tiny['model']}", f"--data_path={tiny['shards']}", "--split=validation"], "no stored 'validation'"),
        ([f"--model={tmp_path / 'missing.keras'}", f"--data_path={tiny['shards']}"], "no such file"),
    ]
    for arguments, message in cases:
        result = _script(*arguments, f"--output_dir={tmp_path / 'out'}")
        assert result.returncode == 1, (arguments, result.stderr[-2000:])
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not os.path.exists(tmp_path / "out" / "identity_evaluation_real.json")
