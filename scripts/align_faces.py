#!/usr/bin/env python
"""Aligned face crops of a folder of photos, framed as scripts/edit_photo.py frames faces (docs/edit_photo.md).

  python scripts/align_faces.py --input_dir=my_photos/ --output_dir=data/my_faces --size=48
  python scripts/prepare_data.py --data_format=folder --data_path=data/my_faces --convert_color ...

Every photo under --input_dir (searched recursively; class folders and deeper sub-folders are kept in
the output) with exactly one face becomes <output_dir>/<same path>.png: the face mapped by a
similarity transform onto the canonical crop (legan_tf.photos.faces.TEMPLATE, FER2013's framing: eyes
at 0.38 of the height, mouth at 0.77). Photos with no face, several faces or a face under
--min_face_size are skipped, printed and listed in skipped.csv; align_faces.json holds the counts.
Exit status 0 when at least one photo was aligned, 1 when none was (or for a bad flag or folder).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.photos import align_faces, faces  # noqa: E402

flags.DEFINE_string("input_dir", None, "A folder of photos, searched recursively (e.g. <input_dir>/<class>/*.jpg).")
flags.DEFINE_string("output_dir", None, "Where the crops, skipped.csv and align_faces.json go; must be empty "
                    "unless --overwrite.")
flags.DEFINE_integer("size", 48, "Side of the square crops in pixels (48: FER2013's).", lower_bound=16)
flags.DEFINE_bool("grey", False, "Write grey crops (as FER2013's); default RGB.")
flags.DEFINE_enum("detector", "auto", faces.DETECTORS,
                  "MediaPipe face detector: auto (both, merged), short (faces filling the photo) or full "
                  "(smaller faces).")
flags.DEFINE_float("min_face_size", faces.MIN_FACE_SIZE,
                   "Skip photos whose face is narrower than this many pixels; 0 keeps all.", lower_bound=0.0)
flags.DEFINE_bool("overwrite", False, "Replace this script's earlier outputs in --output_dir.")
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")
flags.mark_flags_as_required(["input_dir", "output_dir"])

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    outcome = run_main(align_faces.align_folder, FLAGS.input_dir, FLAGS.output_dir, size=FLAGS.size,
                       grey=FLAGS.grey, detector=FLAGS.detector, min_face_size=FLAGS.min_face_size,
                       overwrite=FLAGS.overwrite, progress=FLAGS.progress_bar)
    print(align_faces.summary(outcome))


if __name__ == "__main__":
    app.run(main)
