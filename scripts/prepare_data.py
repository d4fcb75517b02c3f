"""Converts a dataset (any layout of docs/data_formats.md) into TFRecord shards + dataset.json.

  python scripts/prepare_data.py --data_format=multipie --data_path=data/manifest.csv \
      --output_dir=data/multipie_tfr --num_shards=8 --holdout_fraction=0.2 [--on_error=skip]

Real datasets as published keep their own layout and split through flagfiles (docs/real_data.md):

  python scripts/prepare_data.py --flagfile=configs/fer2013/fer2013_data.flags   # train, test, validation
  python scripts/prepare_data.py --flagfile=configs/ckplus/ckplus_data.flags    # subject-disjoint 20%

A folder of photos (faces anywhere in them) is aligned first with --align: each photo's one face is
found and mapped onto the crop that scripts/edit_photo.py edits (scripts/align_faces.py does the same
alone); the crops go to <output_dir>/aligned/ and the shards are made from them:

  python scripts/prepare_data.py --data_format=folder --data_path=my_photos --align --align_size=128 \
      --expression_names=neutral,smile --holdout_fraction=0.2 --output_dir=data/my_faces_tfr

Every entry is validated first; under --on_error=fail the first bad entry is printed (one line)
and nothing is written. --dry_run validates and prints the dataset summary only.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from legan_tf.data import DataError, data_config_from_flags, define_data_flags, open_source  # noqa: E402
from legan_tf.data import flags as data_flags  # noqa: E402
from legan_tf.data import tfrecord  # noqa: E402
from legan_tf.errors import ConfigError  # noqa: E402

define_data_flags()
flags.adopt_module_key_flags(data_flags)  # so --help lists the data flags too
flags.DEFINE_string("output_dir", None, "Folder for the shards, dataset.json and (with "
                    "--on_error=skip) skipped.csv. Must be empty unless --overwrite.")
flags.DEFINE_integer("num_shards", 4, "Shards per split (fewer when a split has fewer records).")
flags.DEFINE_bool("overwrite", False, "Replace the shards, dataset.json and skipped.csv already in "
                  "--output_dir (other files there are left alone).")
flags.DEFINE_bool("dry_run", False, "Validate the data and print its summary; write nothing.")
flags.DEFINE_bool("align", False, "--data_format=folder only: first find the one face in each photo and align it "
                  "to the crop scripts/edit_photo.py edits (as scripts/align_faces.py does), into "
                  "<output_dir>/aligned/ (kept, with skipped.csv for photos without exactly one face); the shards "
                  "are made from the crops. --exclude_pattern applies to the photos' names.")
flags.DEFINE_integer("align_size", 128, "With --align: side of the aligned crops in pixels.", lower_bound=16)
flags.DEFINE_enum("align_detector", "auto", ["auto", "short", "full"],
                  "With --align: MediaPipe face detector: auto (both, merged), short (faces filling the photo), "
                  "full (smaller faces).")
flags.DEFINE_float("align_min_face_size", 32.0, "With --align: skip photos whose face is narrower than this many "
                   "pixels.", lower_bound=0.0)
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
        if FLAGS.align:
            with tempfile.TemporaryDirectory() as scratch:  # a dry run aligns into a folder it then removes
                return _align_then_write(config, scratch if FLAGS.dry_run else FLAGS.output_dir)
        source = open_source(config)
        if FLAGS.dry_run:
            print(source.summary())
            return 0
        result = tfrecord.write_tfrecords(source, FLAGS.output_dir, FLAGS.num_shards,
                                          config.holdout_fraction, config.split_seed)
    except (DataError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def _align_then_write(config, align_root):
    from legan_tf.photos import align_faces  # the face detector loads only when asked for

    config, outcome = align_faces.align_for_shards(config, align_root, FLAGS.align_size, FLAGS.align_detector,
                                                   FLAGS.align_min_face_size, FLAGS.overwrite)
    print(align_faces.summary(outcome))
    source = open_source(config)
    if FLAGS.dry_run:
        print(source.summary())
        return 0
    result = tfrecord.write_tfrecords(source, FLAGS.output_dir, FLAGS.num_shards, config.holdout_fraction,
                                      config.split_seed)
    print(result.summary())
    return 0


if __name__ == "__main__":
    app.run(main)
