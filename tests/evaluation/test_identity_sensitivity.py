"""How far an identity embedding moves when one thing about a face-lab face changes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from legan_tf.data.synthetic import FaceLab
from legan_tf.evaluation.identity_sensitivity import (CHANGES, DEGRADATIONS, _other, attribute_sensitivity,
                                                      translation_identity_loss)
from legan_tf.evaluation.translation_metrics import draw_edits, to_model_images

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = FaceLab(image_size=32, expression_set="multipie", num_lightings=4, seed=0)
IDENTITIES = np.arange(100000, 100004)


def test_a_constant_embedding_moves_for_nothing():
    result = attribute_sensitivity(lambda images: np.ones((len(images), 3)), LAB, IDENTITIES, 32, num_pairs=12)
    # Equal vectors: 1 - cos is float64 1 - (a sum of 3 squares of a normalised vector), <= ~4 * 1.1e-16.
    for name in [f"other_{change}" for change in CHANGES] + [name for name, _, _ in DEGRADATIONS]:
        assert result[f"{name}_mean"] == pytest.approx(0.0, abs=1e-9)


def test_a_pixel_embedding_moves_for_every_change_and_light_moves_it_most():
    # The raw pixels (shifted so black is 0): light changes every pixel, expression only the features.
    result = attribute_sensitivity(lambda images: images.reshape(len(images), -1) + 1.0, LAB, IDENTITIES, 32,
                                   num_pairs=40)
    for name in [f"other_{change}" for change in CHANGES] + [name for name, _, _ in DEGRADATIONS]:
        assert result[f"{name}_mean"] > 0.0, name
    assert result["lighting_over_expression"] > 1.0


def _pixels(images):
    return images.reshape(len(images), -1) + 1.0


def test_translation_identity_loss_of_an_exact_and_of_a_do_nothing_translator():
    # The lab itself as the translator: it scores exactly what the exact target renders score.
    def exact(images, targets):
        return to_model_images(LAB.render(exact.identity, targets["expression"], targets["lighting"])["rgb"], 32)

    exact.identity = draw_edits(LAB, IDENTITIES, 20, 3)[0]
    result = translation_identity_loss(_pixels, exact, LAB, IDENTITIES, 32, num_faces=20, seed=3)
    # The same renders through the same float64 ops: equal but for rounding (~1e-16), well inside approx's 1e-6.
    assert result["translation_mean"] == pytest.approx(result["exact_target_mean"]) and result["exact_target_mean"] > 0
    unchanged = translation_identity_loss(_pixels, lambda images, targets: images, LAB, IDENTITIES, 32, num_faces=20)
    # Equal embeddings of 32*32*3 values: float64 1 - (a sum of 3072 squares summing to 1) is <= 3072 * 1.1e-16.
    assert unchanged["translation_mean"] == pytest.approx(0.0, abs=1e-9)


def test_the_compared_value_always_differs_from_the_anchor():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 3, 200)
    other = _other(rng, values, np.arange(3))
    assert np.all(other != values) and set(other) <= {0, 1, 2}


def test_script_reports_both_tables_and_refuses_a_folder_without_a_lab(tmp_path):
    from legan_tf.data.synthetic.writer import write_face_lab
    from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
    from legan_tf.models.stargan import StarGANGenerator

    write_face_lab(tmp_path / "lab", image_size=32, num_identities=2, seed=0, num_lightings=3, parts=("multipie",),
                   progress=False)
    embedder = IdentityEmbedder(LightCNN29v2(input_size=32, channels=(4, 8, 8, 8, 8), num_blocks=(1, 1, 1, 1),
                                             embedding_dim=8), name="identity_embedder")
    embedder(np.zeros((1, 32, 32, 3), np.float32))
    model = str(tmp_path / "identity_model.keras")
    embedder.save(model)
    generator = StarGANGenerator(32, num_labels=6 + 3, base_filters=4, num_residual_blocks=1)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 9), np.float32)))
    generator.save(str(tmp_path / "generator.keras"))
    script = [sys.executable, os.path.join(REPO, "scripts", "evaluate_identity.py"), f"--model={model}",
              "--num_identities=3", "--faces_per_identity=3", "--num_pairs=10"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(script + [f"--lab_dir={tmp_path / 'lab'}", f"--generator={tmp_path / 'generator.keras'}"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verification AUC" in result.stdout and "same face, other light" in result.stdout
    report = json.load(open(tmp_path / "identity_evaluation.json"))
    assert report["identities"] == [100000, 100002] and report["sensitivity"]["num_pairs"] == 10
    assert "L_id on" in result.stdout
    # L_id of the generator's edits, recomputed here from its definition: seeded edits of the lab's faces
    # (lab.json: 32 px, multipie expressions, 3 lights, seed 0), translated with expression-then-lighting
    # one-hots, 1 - cos of the embeddings in float64. The embedder and generator are the saved ones, run on
    # the same 10 faces in one batch as the script does: the same float32 ops on the same shapes, so only the
    # float64 mean of 10 terms <= 2 can differ by its order: <= 10 * 2 * 1.1e-16, far inside 1e-12.
    lab = FaceLab(image_size=32, expression_set="multipie", num_lightings=3, seed=0)
    identity, source, new = draw_edits(lab, np.arange(100000, 100003), 10, 0)

    def faces(labels):
        return to_model_images(lab.render(identity, labels["expression"], labels["lighting"])["rgb"], 32)

    def one_minus_cosine(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return 1.0 - np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    labels = np.concatenate([np.eye(6, dtype=np.float32)[new["expression"]],
                             np.eye(3, dtype=np.float32)[new["lighting"]]], axis=1)
    anchor = embedder(faces(source))
    translated = one_minus_cosine(anchor, embedder(np.asarray(generator((faces(source), labels)))))
    exact = one_minus_cosine(anchor, embedder(faces(new)))
    assert report["generator"]["translation_mean"] == pytest.approx(translated.mean(), rel=0, abs=1e-12)
    assert report["generator"]["exact_target_mean"] == pytest.approx(exact.mean(), rel=0, abs=1e-12)

    refused = subprocess.run(script + [f"--lab_dir={tmp_path}"], capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 1 and "no lab.json there" in refused.stderr and "Traceback" not in refused.stderr
