#!/usr/bin/env python
"""Judges an identity network f (LEGAN's L_id) on face-lab people it has never seen.

  python scripts/evaluate_identity.py --model=runs/identity-lab-300-<ts>/identity_model.keras \\
      --lab_dir=data/face_lab_32

Two things, both on identities from --first_identity on (the lab never wrote them):
- verification AUC, TAR at a false accept rate of 0.01 and rank-1 retrieval over --faces_per_identity
  random renders each;
- sensitivity: mean 1 - cos(f(a), f(b)) when b is a with another light, another expression or another
  person. f should move for the person and hardly at all for the light or the expression, or L_id
  pulls against correct edits.
With --generator (a LEGAN or StarGAN generator.keras over expression and lighting), also L_id as that
generator meets it: 1 - cos(f(I), f(G(I, c))) over random joint edits, beside the same for the exact
target render. A large gap means f reads G's output as someone else.
Writes identity_evaluation.json beside the model (or into --output_dir) and prints both tables.

On real faces: --data_path=<prepared shards with subjects> reads the held-out --split instead of the lab
(its people unseen in training when the shards were split by subject) and reports verification over every
pair, and per kind of same-person pair (another light, another expression, both) the mean 1 - cos and the
AUC against pairs of two people; written to identity_evaluation_real.json.

  python scripts/evaluate_identity.py --model=runs/identity-ckplus-relit-<ts>/identity_model.keras \\
      --data_path=data/ckplus_relit_tfr
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import command_line, run_main  # noqa: E402

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
flags.DEFINE_string("data_path", None, "Real faces instead of the lab: prepare_data.py shards whose records carry a "
                    "subject (identity); --split of them is judged.")
flags.DEFINE_string("split", "test", "With --data_path: the stored split to judge (held-out people).")
flags.DEFINE_integer("num_faces", 2000, "With --data_path: a seeded choice of this many faces (0: all).", lower_bound=0)
flags.DEFINE_string("output_dir", None, "Where to write identity_evaluation.json. Default: the model's folder.")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model:
        raise app.UsageError("--model is required (an identity_model.keras or a LightCNN-29 v2 .npz).")
    if FLAGS.data_path:
        from legan_tf.evaluation.identity_real import evaluate_real_identity, format_real  # TensorFlow

        if FLAGS.generator:
            raise app.UsageError("--generator is measured on the lab only; leave out --data_path or --generator.")
        report = run_main(evaluate_real_identity, FLAGS.model, FLAGS.data_path, split=FLAGS.split,
                          num_faces=FLAGS.num_faces, seed=FLAGS.seed, output_dir=FLAGS.output_dir,
                          command=command_line(sys.argv))
        print(f"f: {report['model']}\nsplit {report['split']} of {report['data_path']}")
        print(format_real(report))
        print(f"written to {report['output_path']}")
        return
    from legan_tf.evaluation.identity_report import evaluate_identity  # TensorFlow: kept out of --help
    from legan_tf.evaluation.identity_sensitivity import format_sensitivity

    report = run_main(evaluate_identity, FLAGS.model, FLAGS.lab_dir, first_identity=FLAGS.first_identity,
                      num_identities=FLAGS.num_identities, faces_per_identity=FLAGS.faces_per_identity,
                      num_pairs=FLAGS.num_pairs, seed=FLAGS.seed, output_dir=FLAGS.output_dir,
                      generator_path=FLAGS.generator)
    verification, identities = report["verification"], report["identities"]
    print(f"f: {report['model']}\nunseen identities {identities[0]}..{identities[1]}, "
          f"{FLAGS.faces_per_identity} faces each: "
          f"verification AUC {verification.get('verification_auc', float('nan')):.4f}, "
          f"TAR@FAR1% {verification.get('tar_at_far_1pct', float('nan')):.3f}, "
          f"rank-1 {verification.get('rank1_accuracy', float('nan')):.3f}")
    print(format_sensitivity(report["sensitivity"]))
    if "generator" in report:
        generator = report["generator"]
        print(f"L_id on {generator['path']}'s joint edits: {generator['translation_mean']:.4f} "
              f"(exact target renders: {generator['exact_target_mean']:.4f})")
    print(f"written to {report['output_path']}")


if __name__ == "__main__":
    app.run(main)
