#!/usr/bin/env python
"""Does balancing a dataset with a generator help a classifier? The experiment of docs/evaluation.md.

  python studies/augmentation_experiment/run.py --data_format=multipie \\
      --data_path=data/face_lab_32/multipie/manifest.csv --image_size=32 --num_lightings=20 \\
      --expression_names=neutral,smile,surprise,squint,disgust,scream --holdout_fraction=0.2 \\
      --rare=smile:0.02,disgust:0.02 --seeds=0,1,2,3,4 \\
      --generator=runs/legan-lab-.../generator.keras \\
      --quality_model=runs/quality-lab-32/quality_model.keras --min_quality=10.1 \\
      --classifier_flagfile=configs/lab/classifier_lab_32.flags --output_dir=runs/augmentation-lab-32

Per seed: keeps only --rare of the named classes' faces of the training subjects; trains the classifier of
--classifier_flagfile on that subset as it is, oversampled, augmented by scripts/augment.py's machinery,
and augmented with outputs below --min_quality rejected; judges each per class on every face of the
held-out subjects. Writes results.md, results.json and per_class.png to --output_dir; run it again with
the same flags to resume after an interruption (finished steps are kept).

Held-out subjects must also be held out of the generator's training (the same --holdout_fraction and
--split_seed as its run), or the test faces are ones it has seen.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

# The repository root (two folders up), so that `studies` imports when this runs as a file.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.data import data_config_from_flags, define_data_flags  # noqa: E402
from legan_tf.errors import ConfigError  # noqa: E402

define_data_flags()
flags.DEFINE_string("generator", None, "Required: the generator.keras of a StarGAN or LEGAN run.")
flags.DEFINE_string("quality_model", None, "Q's .keras file; needed by the q arm.")
flags.DEFINE_float("min_quality", None, "The q arm keeps outputs that Q scores at least this.")
flags.DEFINE_list("rare", None, "Required: class:fraction pairs, the share of each class's training faces kept.")
flags.DEFINE_list("seeds", ["0", "1"], "One imbalanced subset, augmentation and classifier per seed.")
flags.DEFINE_list("arms", ["base", "over", "noq", "q"], "Training sets to compare: base (imbalanced), over "
                  "(rare rows repeated), noq (augmented), q (augmented, Q-filtered).")
flags.DEFINE_string("classifier_flagfile", "configs/lab/classifier_lab_32.flags",
                    "scripts/train.py flagfile of the classifier (its width and schedule; the experiment sets "
                    "the data, the seed and the run directory).")
flags.DEFINE_list("classifier_flags", [], "Further scripts/train.py flags for the classifier, e.g. --train_steps=400.")
flags.DEFINE_float("attempts", 3.0, "At most this many outputs per missing face (see scripts/augment.py).",
                   lower_bound=1.0)
flags.DEFINE_string("output_dir", None, "Required: folder of the experiment (resumed when it exists).")
flags.DEFINE_bool("progress_bar", True, "Show progress bars.")

FLAGS = flags.FLAGS


def experiment():
    from studies.augmentation_experiment import experiment as augmentation

    for name in ("generator", "output_dir", "rare"):
        if not FLAGS[name].value:
            raise ConfigError(f"--{name} is required.")
    if not os.path.isfile(FLAGS.generator):
        raise ConfigError(f"--generator={FLAGS.generator}: no such file.")
    if FLAGS.classifier_flagfile and not os.path.isfile(FLAGS.classifier_flagfile):
        raise ConfigError(f"--classifier_flagfile={FLAGS.classifier_flagfile}: no such file.")
    try:
        seeds = [int(seed) for seed in FLAGS.seeds]
    except ValueError:
        raise ConfigError(f"--seeds={','.join(FLAGS.seeds)}: whole numbers, comma-separated.") from None
    classifier_flags = ([f"--flagfile={os.path.abspath(FLAGS.classifier_flagfile)}"] if FLAGS.classifier_flagfile
                        else []) + list(FLAGS.classifier_flags)
    setup = augmentation.Experiment(
        data=data_config_from_flags(FLAGS), generator=os.path.abspath(FLAGS.generator),
        output_dir=os.path.abspath(FLAGS.output_dir), rare=augmentation.parse_rare(FLAGS.rare), seeds=seeds,
        arms=FLAGS.arms, quality_model=FLAGS.quality_model and os.path.abspath(FLAGS.quality_model),
        min_quality=FLAGS.min_quality, classifier_flags=classifier_flags, attempts=FLAGS.attempts,
        progress=FLAGS.progress_bar)
    return augmentation.run(setup)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    results = run_main(experiment)
    from studies.augmentation_experiment import experiment as augmentation

    print(augmentation.results_table(results))
    print(f"Written: {os.path.join(FLAGS.output_dir, 'results.md')}, results.json, per_class.png")


if __name__ == "__main__":
    app.run(main)
