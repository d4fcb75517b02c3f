"""Converts a dataset (any layout of docs/data_formats.md) into TFRecord shards + dataset.json.

  python scripts/prepare_data.py --data_format=multipie --data_path=data/manifest.csv \
      --output_dir=data/multipie_tfr --num_shards=8 --holdout_fraction=0.2 [--on_error=skip]

Real datasets as published keep their own layout and split through flagfiles (docs/real_data.md):

  python scripts/prepare_data.py --flagfile=configs/fer2013_data.flags   # train, test, validation
  python scripts/prepare_data.py --flagfile=configs/ckplus_data.flags    # subject-disjoint 20%

Every entry is validated first; under --on_error=fail the first bad entry is printed (one line)
and nothing is written. --dry_run validates and prints the dataset summary only.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from legan_tf.data import DataError, data_config_from_flags, define_data_flags, open_source  # noqa: E402
from legan_tf.data import flags as data_flags  # noqa: E402
from legan_tf.data import tfrecord  # noqa: E402

define_data_flags()
flags.adopt_module_key_flags(data_flags)  # so --help lists the data flags too
flags.DEFINE_string("output_dir", None, "Folder for the shards, dataset.json and (with "
                    "--on_error=skip) skipped.csv. Must be empty unless --overwrite.")
flags.DEFINE_integer("num_shards", 4, "Shards per split (fewer when a split has fewer records).")
flags.DEFINE_bool("overwrite", False, "Replace the shards, dataset.json and skipped.csv already in "
                  "--output_dir (other files there are left alone).")
flags.DEFINE_bool("dry_run", False, "Validate the data and print its summary; write nothing.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = data_config_from_flags(FLAGS)
        if config.data_format == "tfrecord":
            raise DataError("--data_format=tfrecord: the data is already in TFRecord shards")
        if not FLAGS.dry_run:
            if not FLAGS.output_dir:
                raise DataError("--output_dir is required (or pass --dry_run)")
            # Check before the (possibly long) validation, so a wrong folder fails at once.
            tfrecord.prepare_output_dir(FLAGS.output_dir, FLAGS.overwrite)
        source = open_source(config)
        if FLAGS.dry_run:
            print(source.summary())
            return 0
        result = tfrecord.write_tfrecords(source, FLAGS.output_dir, FLAGS.num_shards,
                                          config.holdout_fraction, config.split_seed)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    app.run(main)
