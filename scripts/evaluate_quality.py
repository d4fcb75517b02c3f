#!/usr/bin/env python
"""Evaluates a trained Q (perceptual quality model) against the raters, on the run's held-out split.

  python scripts/evaluate_quality.py --run_dir=runs/quality-lab-20250101-120000

Writes <run_dir>/evaluation/ (or --output_dir): metrics.json (overall and per generator),
scatter.png (predicted score vs mean rating) and predictions.csv (image, mean, std, predicted).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.evaluation import quality_report  # noqa: E402

flags.DEFINE_string(
    "run_dir", None,
    "A --task=quality run directory. Its flags.txt gives the data (format, path, image size, "
    "on_error, ...) and the held-out split (holdout_fraction, split_seed) training used.")
flags.DEFINE_string("model", None, "Saved Q (.keras) to evaluate instead of the run's quality_model.keras.")
flags.DEFINE_string(
    "data_path", None,
    "Evaluate on this ratings CSV instead of the run's data (read with the run's other data settings).")
flags.DEFINE_enum(
    "split", None, ["test", "train", "all"],
    "Which examples: test = the sources training held out, train = the rest, all = every example. "
    "Default: test, or all with --data_path.")
flags.DEFINE_string("output_dir", None, "Where to write the results. Default: <run_dir>/evaluation.")
flags.DEFINE_integer("batch_size", 64, "Images per forward pass of Q.", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.run_dir:
        raise app.UsageError("--run_dir is required (a --task=quality run directory).")
    report = run_main(
        quality_report.evaluate_run, FLAGS.run_dir, model_path=FLAGS.model, data_path=FLAGS.data_path,
        split=FLAGS.split, output_dir=FLAGS.output_dir, batch_size=FLAGS.batch_size,
        progress=FLAGS.progress_bar)
    print(f"Q: {report['model']}\nratings: {report['data_path']} (split {report['split']}, "
          f"{report['count']} images)")
    print(quality_report.format_table(report))
    print(f"written to {report['output_dir']}: {quality_report.METRICS_FILE}, {quality_report.SCATTER_FILE}, "
          f"{quality_report.PREDICTIONS_FILE}")


if __name__ == "__main__":
    app.run(main)
