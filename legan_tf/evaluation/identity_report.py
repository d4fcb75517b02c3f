"""Judging an identity network f (LEGAN's L_id) on face-lab people it has never seen:
scripts/evaluate_identity.py's library side.

Verification and retrieval over random renders of unseen identities (identity_metrics), how far f
moves for a change of light, expression or person (identity_sensitivity), and optionally L_id as a
generator meets it.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

import numpy as np

from legan_tf.data.synthetic import FaceLab
from legan_tf.data.synthetic.writer import SETTINGS_FILE as LAB_SETTINGS_FILE
from legan_tf.errors import ConfigError
from legan_tf.evaluation.identity_sensitivity import attribute_sensitivity, translation_identity_loss
from legan_tf.evaluation.lab_pass import lab_settings
from legan_tf.evaluation.translation_metrics import generator_translate_fn, to_model_images
from legan_tf.runs import load_model
from legan_tf.statistics import identity_metrics

REPORT_FILE = "identity_evaluation.json"
EMBED_BATCH = 256


def evaluate_identity(model_path: str, lab_dir: str, first_identity: int = 100000, num_identities: int = 20,
                      faces_per_identity: int = 24, num_pairs: int = 400, seed: int = 0,
                      output_dir: Optional[str] = None, generator_path: Optional[str] = None) -> Dict[str, object]:
    """Evaluates f (an identity_model.keras or a LightCNN-29 v2 .npz) on identities from `first_identity` on.

    Writes identity_evaluation.json into `output_dir` (default: the model's folder) and returns its
    content plus "output_path". With `generator_path` (a generator over the lab's expression-then-
    lighting one-hots at the lab's size), the report also holds L_id of its translations.
    """
    from legan_tf.models.lightcnn import load_identity_embedder  # TensorFlow

    if not os.path.isfile(os.path.join(lab_dir, LAB_SETTINGS_FILE)):
        raise ConfigError(f"--lab_dir={lab_dir}: no lab.json there (render a lab with scripts/make_synthetic.py).")
    # lab_settings finds <lab>/lab.json from the lab's manifest path, as the translation check does.
    settings = lab_settings(os.path.join(lab_dir, "multipie", "manifest.csv"), {}, (), 0, 0)
    if settings["subjects"] and first_identity <= max(settings["subjects"]):
        raise ConfigError(f"--first_identity={first_identity} lies inside the lab's subjects "
                          f"(0..{max(settings['subjects'])}); pick one beyond them.")
    lab = FaceLab(settings["image_size"], settings["expression_set"], settings["num_lightings"], settings["seed"],
                  settings["ambient"])
    embedder = load_identity_embedder(model_path)
    size = settings["image_size"]

    def embed(images):
        return np.concatenate([np.asarray(embedder(images[i:i + EMBED_BATCH]))
                               for i in range(0, len(images), EMBED_BATCH)])

    identities = np.arange(first_identity, first_identity + num_identities)
    rng = np.random.default_rng(seed)
    who = np.repeat(identities, faces_per_identity)
    rgb = lab.render(who, rng.integers(0, lab.num_expressions, len(who)),
                     rng.integers(0, lab.num_lightings, len(who)))["rgb"]
    verification = identity_metrics(embed(to_model_images(rgb, size)), who)
    sensitivity = attribute_sensitivity(embed, lab, identities, size, num_pairs=num_pairs, seed=seed)

    report = {"model": model_path, "lab": settings["lab_json"],
              "identities": [int(identities[0]), int(identities[-1])],
              "verification": verification, "sensitivity": sensitivity}
    if generator_path:
        generator = load_model(generator_path, "generator", "--generator")
        label_sizes = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
        if (getattr(generator, "num_labels", None), getattr(generator, "image_size", None)) != (
                sum(label_sizes.values()), size):
            raise ConfigError(f"--generator={generator_path}: expected a generator of {size} px images over "
                              f"{lab.num_expressions} expressions + {lab.num_lightings} lights (the lab's).")
        translate = generator_translate_fn(generator, label_sizes)
        report["generator"] = {"path": generator_path, **translation_identity_loss(
            embed, translate, lab, identities, size, num_faces=num_pairs, seed=seed)}
    output_dir = output_dir or os.path.dirname(os.path.abspath(model_path))
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, REPORT_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    report["output_path"] = path
    return report
