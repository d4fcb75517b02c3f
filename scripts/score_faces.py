#!/usr/bin/env python
"""Scores face images with Q, the perceptual quality model (1-10, the raters' naturalness scale).

  python scripts/score_faces.py --run_dir=runs/quality-... --input=generated/ --min_quality=5 --copy_to=natural/

Writes a CSV (image, score, passed) best first, a contact sheet of the best and worst images, and,
when some files could not be read, a report of the skipped ones. Exit status 0 when at least one
image was scored, 1 when none could be.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.naturalness import scoring  # noqa: E402
from legan_tf.cli import run_main  # noqa: E402

flags.DEFINE_string("model", None, "Saved Q (.keras). Default: quality_model.keras of --run_dir.")
flags.DEFINE_string("run_dir", None, "A --task=quality run directory whose quality_model.keras to use.")
flags.DEFINE_string(
    "input", None,
    "A folder, searched recursively for .png/.jpg/.jpeg files (any case), or a manifest CSV with an "
    "`image` column (paths relative to the CSV). Images are centre-cropped and resized to Q's input "
    "size exactly as in training. Grayscale, RGBA and palette images are converted to RGB (alpha "
    "composited over black), not skipped. Images are scored as given: a Q trained with --apply_mask "
    "expects faces whose background is already black.")
flags.DEFINE_string(
    "output_csv", None,
    "Scores CSV (image, score, passed), highest score first. Default: quality_scores.csv in the "
    "input folder, or beside the manifest. Unreadable files are listed in <name>.skipped.csv beside it.")
flags.DEFINE_float(
    "min_quality", None,
    "Pass mark: an image passes when its score is at least this (5 = fooled the raters, in the "
    "LEGAN Perceptual Dataset). Needed by --copy_to and --list_passing.")
flags.DEFINE_string("copy_to", None, "Copy the passing images into this folder, keeping their relative paths.")
flags.DEFINE_string("list_passing", None, "Write the paths of the passing images to this file, one a line.")
flags.DEFINE_string(
    "contact_sheet", None,
    "PNG of the best and worst --sheet_count images with their scores. Default: <output_csv name>_sheet.png.")
flags.DEFINE_integer("sheet_count", 8, "Images from each end of the ranking on the contact sheet.", lower_bound=1)
flags.DEFINE_integer("batch_size", 64, "Images per forward pass of Q.", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.input:
        raise app.UsageError("--input is required (a folder of images or a manifest CSV).")
    outcome = run_main(
        scoring.score_faces, FLAGS.input, model_path=FLAGS.model, run_dir=FLAGS.run_dir,
        output_csv=FLAGS.output_csv, min_quality=FLAGS.min_quality, copy_to=FLAGS.copy_to,
        list_passing=FLAGS.list_passing, contact_sheet_path=FLAGS.contact_sheet,
        sheet_count=FLAGS.sheet_count, batch_size=FLAGS.batch_size, progress=FLAGS.progress_bar)
    print(scoring.summary_line(outcome, FLAGS.min_quality))


if __name__ == "__main__":
    app.run(main)
