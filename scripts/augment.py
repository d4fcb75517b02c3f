#!/usr/bin/env python
"""Balances a labelled face dataset with a trained StarGAN or LEGAN generator, keeping outputs Q passes.

  python scripts/augment.py --data_format=multipie --data_path=data/my_faces/manifest.csv --image_size=32 \\
      --generator=runs/legan-lab-.../generator.keras --quality_model=runs/quality-lab-32/quality_model.keras \\
      --min_quality=8 --balance=expression --output_dir=data/my_faces_augmented

For each under-represented class, faces of other classes (a seeded draw) are translated to it with
every other attribute kept; outputs whose Q score is below --min_quality are rejected and replaced
by translations of further faces (up to --attempts outputs per missing face). Writes --output_dir:
manifest.csv (the original rows, by reference, and the kept synthetic ones; a `synthetic` column
marks them, and each carries its source face's subject), synthetic.csv, rejected.csv, heldout.csv
(with --holdout_fraction > 0: the held-out faces, never used as sources), labels.json and
augment_report.json (per class: generated, kept, rejected, mean Q). See docs/evaluation.md, "Augmentation with Q filtering".
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.data import data_config_from_flags, define_data_flags  # noqa: E402
from legan_tf.errors import ConfigError  # noqa: E402

define_data_flags()
flags.DEFINE_string("generator", None, "Required: the generator.keras of a StarGAN or LEGAN run; called as "
                    "generator((images, labels)) with the run's label vector.")
flags.DEFINE_string("generator_labels", None,
                    "The generator's label names in label-vector order (a run's labels.json). Default: the "
                    "labels.json beside --generator; without one, the data's labels, expression first.")
flags.DEFINE_string("quality_model", None, "Q's .keras file (a --task=quality run's quality_model.keras), at the "
                    "generator's image size. Scores every output; needed by --min_quality.")
flags.DEFINE_float("min_quality", None, "Keep an output when Q scores it at least this (the raters' 1-10 scale); "
                   "others are rejected and replaced. Without it every output is kept (and scored when "
                   "--quality_model is given).")
flags.DEFINE_list("balance", ["expression"], "Attribute(s) whose classes to balance: expression, lighting. Each is "
                  "balanced on the original counts; a face translated in one attribute keeps the others.")
flags.DEFINE_list("classes", None, "Only these classes of the balanced attribute(s) (names; attribute:name where "
                  "a name is ambiguous). Default: every class below the target.")
flags.DEFINE_integer("per_class", 0, "Target faces per class, originals included; 0 = as many as the largest "
                     "class of that attribute. Classes at or above it get none.", lower_bound=0)
flags.DEFINE_float("attempts", 3.0, "At most this many outputs per missing face, rejected ones included; "
                   "1 = rejected outputs are not replaced.", lower_bound=1.0)
flags.DEFINE_string("output_dir", None, "Required: folder of the augmented dataset.")
flags.DEFINE_bool("overwrite", False, "Replace an earlier augmentation's files in --output_dir.")
flags.DEFINE_bool("keep_rejected", False, "Also write the rejected outputs (under rejected/), to look at them.")
flags.DEFINE_integer("seed", 0, "Seed of the draw of source faces.")
flags.DEFINE_integer("batch_size", 64, "Images per forward pass.", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")

FLAGS = flags.FLAGS


def augment():
    from legan_tf.augmentation import augment as augmentation
    from legan_tf.runs import load_generator

    if not FLAGS.generator:
        raise ConfigError("--generator is required (the generator.keras of a StarGAN or LEGAN run).")
    if not FLAGS.output_dir:
        raise ConfigError("--output_dir is required.")
    if not FLAGS["image_size"].present and os.path.isfile(FLAGS.generator):
        # Unset, the images are read at the generator's size rather than the data flags' default.
        FLAGS.image_size = load_generator(FLAGS.generator).image_size
    config = data_config_from_flags(FLAGS)
    return augmentation.run(
        config, FLAGS.generator, FLAGS.output_dir, generator_labels_path=FLAGS.generator_labels,
        quality_path=FLAGS.quality_model, min_quality=FLAGS.min_quality, balance=FLAGS.balance,
        classes=FLAGS.classes, per_class=FLAGS.per_class, attempts=FLAGS.attempts, seed=FLAGS.seed,
        batch_size=FLAGS.batch_size, keep_rejected=FLAGS.keep_rejected, overwrite=FLAGS.overwrite,
        progress=FLAGS.progress_bar)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    report = run_main(augment)
    from legan_tf.augmentation import augment as augmentation

    print(augmentation.summary(report))


if __name__ == "__main__":
    app.run(main)
