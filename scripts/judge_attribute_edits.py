#!/usr/bin/env python
"""Judge a StarGAN's edits of binary attributes (CelebA's) on held-out people: StarGAN's own benchmark.

  python scripts/judge_attribute_edits.py --run_dir=runs/stargan-celeba-cpu-20261129-120000 \\
      --judge=runs/classifier-celeba/attribute_classifier.keras

Every face of the run's held-out split (people it never trained on) is edited once per attribute as StarGAN's
reference edits at test time (a hair colour set and the others cleared; any other attribute flipped). A
multi-label attribute classifier trained on the training people only (configs/celeba/classifier_celeba.flags)
reads the unedited faces and the edits. Reports its accuracy on the unedited faces, the share of edits it
reads as asked (beside the unedited faces' share: what copying scores), the share in which the other
attributes are read as before, the edits' L1 and, optionally, identity (an identity network trained on the
training people) and FID/KID of one edit per face against the same faces unedited.
Writes <run_dir>/attribute_edits/ (or --output_dir): metrics.json, report.md, edits_grid.png.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402

flags.DEFINE_string("run_dir", None, "A GAN run directory trained on multi-label attributes (generator.keras, "
                    "flags.txt, labels.json).")
flags.DEFINE_string("generator", None, "A saved generator (.keras) to judge instead of <run_dir>/generator.keras.")
flags.DEFINE_string("judge", None, "Required: a multi-label AttributeClassifier (.keras, an attributes head, "
                    "labels.json beside it) trained on the training people only, e.g. the attribute_classifier.keras "
                    "of a configs/celeba/classifier_celeba.flags run.")
flags.DEFINE_string("real", None, "Faces to edit instead of the run's held-out split (prepared shards, a manifest "
                    "or a folder): every face of it.")
flags.DEFINE_string("identity_model", None, "Optional: an identity network (identity_model.keras) trained on the "
                    "training people (configs/celeba/identity_celeba.flags): how far each edit moves it from the "
                    "face and the share it still reads as the same person at 1% false accepts.")
flags.DEFINE_string("inception_weights", None, "Optional: the 2015 FID Inception (weights/fid_inception_2015.npz, "
                    "tools/convert_fid_inception.py) for FID and KID of one edit per face against the same faces "
                    "unedited.")
flags.DEFINE_integer("num_faces", 2000, "Faces edited (a seeded choice); 0 = every face.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of the choice of faces and of each face's FID edit.")
flags.DEFINE_integer("batch_size", 32, "Images per forward pass.", lower_bound=1)
flags.DEFINE_string("output_dir", None, "Where to write. Default: <run_dir>/attribute_edits.")
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")

FLAGS = flags.FLAGS


def judge_from_flags(argv):
    from legan_tf.errors import ConfigError
    from legan_tf.evaluation import attribute_edits

    if not FLAGS.judge:
        raise ConfigError("give --judge=<attribute_classifier.keras>: a multi-label classifier trained on the "
                          "training people (configs/celeba/classifier_celeba.flags).")
    return attribute_edits.judge_attribute_edits(
        FLAGS.run_dir, FLAGS.judge, generator_path=FLAGS.generator, real=FLAGS.real, num_faces=FLAGS.num_faces,
        seed=FLAGS.seed, batch_size=FLAGS.batch_size, identity_model=FLAGS.identity_model,
        inception_weights=FLAGS.inception_weights, output_dir=FLAGS.output_dir, progress=FLAGS.progress_bar)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from legan_tf.evaluation import attribute_edits

    metrics = run_main(judge_from_flags, sys.argv)
    print("\n".join(attribute_edits.report_lines(metrics)))


if __name__ == "__main__":
    app.run(main)
