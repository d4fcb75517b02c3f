#!/usr/bin/env python
"""Exports a finished run's models as SavedModels into a TF-Serving directory.

  python scripts/export.py --run_dir=runs/legan-lab-20261122-154140 --serving_dir=serving/models

Each model (the generator, Q, the attribute classifier, the identity network: whichever the run
wrote) becomes the next integer version of serving/models/<name>/, with a model card in its
assets/; serving/models/models.config and batching.config are rewritten to list every model there.
Prints the commands that serve the folder and that edit a face through it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402

flags.DEFINE_string("run_dir", None, "A finished run directory (it holds generator.keras, quality_model.keras, ...), "
                    "or pretrained:<name>, a model that ships with the package.")
flags.DEFINE_string("serving_dir", "serving/models", "The TF-Serving model root: <serving_dir>/<name>/<version>/.")
flags.DEFINE_list("models", ["generator", "quality", "classifier", "identity"],
                  "Which of the run's models to export: generator, quality, classifier, identity.")
flags.DEFINE_string("name", "", "Serving name of the generator (default: the run's task, legan or stargan; a shipped "
                    "model's own name).")
flags.DEFINE_string("example_image", "",
                    "A face image to put in the printed edit command (default: one from the run's training data).")
flags.mark_flag_as_required("run_dir")
FLAGS = flags.FLAGS


def export_and_print():
    from legan_tf.serving import export
    from legan_tf.errors import ConfigError

    unknown = sorted(set(FLAGS.models) - set(export.KINDS))
    if unknown:
        raise ConfigError(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(export.KINDS)}.")
    exported = export.export_run(FLAGS.run_dir, FLAGS.serving_dir, FLAGS.models, FLAGS.name)
    print(export.serving_commands(exported, FLAGS.serving_dir, FLAGS.run_dir, FLAGS.example_image))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    run_main(export_and_print)


if __name__ == "__main__":
    app.run(main)
