#!/usr/bin/env python
"""Unpacks Kaggle's fer2013.csv (FER2013 as its owner distributes it) into the folder layout.

  python scripts/unpack_fer2013.py --csv=fer2013.csv --output_dir=data/raw/fer2013
  python scripts/prepare_data.py --flagfile=configs/fer2013/fer2013_data.flags --exclude_pattern=

Each row (emotion 0-6, 2,304 grey levels as text, Usage) becomes <split>/<class>/<Usage>_<row>.png
(Training -> train, PublicTest -> validation, PrivateTest -> test), the layout and names of the folder
copy that configs/fer2013/fer2013_data.flags reads (with --exclude_pattern emptied: the csv has no augmented
copies to leave out). Rows that are not faces are skipped and listed in
<output_dir>/skipped.csv; the counts go to <output_dir>/unpack_fer2013.json. Nothing is written
half: the faces are staged beside the output and moved into place at the end.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.data import fer2013_csv  # noqa: E402

flags.DEFINE_string("csv", None, "Kaggle's fer2013.csv (columns emotion, pixels, Usage).")
flags.DEFINE_string("output_dir", None, "Where <split>/<class>/*.png go. Must be empty unless --overwrite.")
flags.DEFINE_bool("overwrite", False, "Replace the contents of a non-empty --output_dir.")
flags.DEFINE_integer("limit", None, "Read only the first N rows (a quick look).", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar on stderr.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.csv or not FLAGS.output_dir:
        raise app.UsageError("--csv and --output_dir are required.")
    summary = run_main(fer2013_csv.unpack, FLAGS.csv, FLAGS.output_dir, overwrite=FLAGS.overwrite,
                       limit=FLAGS.limit, progress=FLAGS.progress_bar)
    per_split = ", ".join(f"{split} {sum(counts.values())}" for split, counts in summary["per_split_and_class"].items())
    print(f"{summary['faces']} faces written to {FLAGS.output_dir} ({per_split}); {summary['skipped']} rows skipped"
          + (f" (listed in {os.path.join(FLAGS.output_dir, 'skipped.csv')})" if summary["skipped"] else ""))


if __name__ == "__main__":
    app.run(main)
