#!/usr/bin/env python
"""Judges an identity network f (LEGAN's L_id) on face-lab people it has never seen.

  python scripts/evaluate_identity.py --model=runs/identity-lab-300-<ts>/identity_model.keras \\
      --lab_dir=data/face_lab_32

Two things, both on identities from --first_identity on (the lab never wrote them):
- verification AUC, TAR at FAR 1% and rank-1 retrieval over --faces_per_identity random renders each;
- sensitivity: mean 1 - cos(f(a), f(b)) when b is a with another light, another expression or another
  person. f should move for the person and hardly at all for the light or the expression, or L_id
  pulls against correct edits.
With --generator (a LEGAN or StarGAN generator.keras over expression and lighting), also L_id as that
generator meets it: 1 - cos(f(I), f(G(I, c))) over random joint edits, beside the same for the exact
target render. A large gap means f reads G's output as someone else.
Writes identity_evaluation.json beside the model (or into --output_dir) and prints both tables.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.errors import ConfigError  # noqa: E402

flags.DEFINE_string("model", None, "Required: an identity_model.keras from --task=identity, or a converted "
                    "LightCNN-29 v2 .npz (paper sizes).")
flags.DEFINE_string("lab_dir", "data/face_lab_32", "A face-lab folder (holding lab.json) whose renderer to use.")
flags.DEFINE_integer("first_identity", 100000, "First unseen identity; must lie beyond every lab's subjects.")
flags.DEFINE_integer("num_identities", 20, "Unseen identities to draw faces of.", lower_bound=2)
flags.DEFINE_integer("faces_per_identity", 24, "Random renders per identity for verification.", lower_bound=2)
flags.DEFINE_integer("num_pairs", 400, "Anchor faces for the sensitivity table.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the draws.")
flags.DEFINE_string("generator", None, "Optional: a generator.keras taking (images, expression-then-lighting "
                    "one-hot labels) at the lab's size, to measure L_id on its translations.")
flags.DEFINE_string("output_dir", None, "Where to write identity_evaluation.json. Default: the model's folder.")

FLAGS = flags.FLAGS
OUTPUT_FILE = "identity_evaluation.json"


def evaluate(model_path, lab_dir, first_identity, num_identities, faces_per_identity, num_pairs, seed, output_dir,
             generator_path=None):
    import numpy as np

    from legan_tf.data.synthetic import FaceLab
    from legan_tf.evaluation.identity_metrics import identity_metrics
    from legan_tf.evaluation import translation
    from legan_tf.evaluation.identity_sensitivity import (attribute_sensitivity, format_sensitivity,
                                                          translation_identity_loss)
    from legan_tf.evaluation.translation import to_model_images
    from legan_tf.models.lightcnn import load_identity_embedder

    if not os.path.isfile(os.path.join(lab_dir, "lab.json")):
        raise ConfigError(f"--lab_dir={lab_dir}: no lab.json there (render a lab with scripts/make_synthetic.py).")
    # lab_settings reads <lab>/lab.json from the lab's manifest path, as evaluate_translation does.
    settings = translation.lab_settings(os.path.join(lab_dir, "multipie", "manifest.csv"), {}, (), 0, 0)
    if settings["subjects"] and first_identity <= max(settings["subjects"]):
        raise ConfigError(f"--first_identity={first_identity} lies inside the lab's subjects "
                          f"(0..{max(settings['subjects'])}); pick one beyond them.")
    lab = FaceLab(settings["image_size"], settings["expression_set"], settings["num_lightings"], settings["seed"],
                  settings["ambient"])
    lab_json = settings["lab_json"]
    embedder = load_identity_embedder(model_path)
    size = settings["image_size"]

    def embed(images):
        return np.concatenate([np.asarray(embedder(images[i:i + 256])) for i in range(0, len(images), 256)])

    identities = np.arange(first_identity, first_identity + num_identities)
    rng = np.random.default_rng(seed)
    who = np.repeat(identities, faces_per_identity)
    rgb = lab.render(who, rng.integers(0, lab.num_expressions, len(who)),
                     rng.integers(0, lab.num_lightings, len(who)))["rgb"]
    verification = identity_metrics(embed(to_model_images(rgb, size)), who)
    sensitivity = attribute_sensitivity(embed, lab, identities, size, num_pairs=num_pairs, seed=seed)

    report = {"model": model_path, "lab": lab_json, "identities": [int(identities[0]), int(identities[-1])],
              "verification": verification, "sensitivity": sensitivity}
    if generator_path:
        generator = translation._load(generator_path, "generator", "--generator")
        label_sizes = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
        if getattr(generator, "num_labels", None) != sum(label_sizes.values()) or generator.image_size != size:
            raise ConfigError(f"--generator={generator_path}: expected a generator of {size} px images over "
                              f"{lab.num_expressions} expressions + {lab.num_lightings} lights (the lab's).")
        translate = translation.generator_translate_fn(generator, label_sizes)
        report["generator"] = {"path": generator_path, **translation_identity_loss(
            embed, translate, lab, identities, size, num_faces=num_pairs, seed=seed)}
    output_dir = output_dir or os.path.dirname(os.path.abspath(model_path))
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, OUTPUT_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(f"f: {model_path}\nunseen identities {identities[0]}..{identities[-1]}, "
          f"{faces_per_identity} faces each: verification AUC {verification.get('verification_auc', float('nan')):.4f}, "
          f"TAR@FAR1% {verification.get('tar_at_far_1pct', float('nan')):.3f}, "
          f"rank-1 {verification.get('rank1_accuracy', float('nan')):.3f}")
    print(format_sensitivity(sensitivity))
    if generator_path:
        print(f"L_id on {generator_path}'s joint edits: {report['generator']['translation_mean']:.4f} "
              f"(exact target renders: {report['generator']['exact_target_mean']:.4f})")
    print(f"written to {path}")
    return report


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model:
        raise app.UsageError("--model is required (an identity_model.keras or a LightCNN-29 v2 .npz).")
    run_main(evaluate, FLAGS.model, FLAGS.lab_dir, FLAGS.first_identity, FLAGS.num_identities,
             FLAGS.faces_per_identity, FLAGS.num_pairs, FLAGS.seed, FLAGS.output_dir, FLAGS.generator)


if __name__ == "__main__":
    app.run(main)
