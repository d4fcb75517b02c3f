#!/usr/bin/env python
"""Depth and normal maps for a folder of face photos, in the rgbd layout (docs/depth_maps.md).

  python scripts/make_depth.py --input_dir=photos/ --output_dir=data/photos_rgbd --expression=neutral
  python scripts/make_depth.py --input_dir=rafd/ --output_dir=data/rafd_d     # rafd/<expression>/*.jpg

Fits MediaPipe's 468-point face mesh to the one face of each photo, crops and aligns the face to
--image_size, and writes rgb/, depth/ (16-bit), normals/, manifest.csv (image,depth,normals,expression),
skipped.csv (every photo left out and why) and make_depth.json. Exit status 0 when at least one photo
was used, 1 when none could be.

  python scripts/make_depth.py --lab_check=200   # the mesh's depth against the face lab's exact depth
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.photos import depth_maps, lab_check, make_depth  # noqa: E402
from legan_tf.photos.face_mesh import DETECTORS  # noqa: E402

flags.DEFINE_string(
    "input_dir", None,
    "A folder of face photos (.png/.jpg/.jpeg, searched recursively), or a folder-per-class tree "
    "<input_dir>/<expression>/**/*.jpg whose folder names become the expression labels.")
flags.DEFINE_string(
    "output_dir", None,
    "Where rgb/, depth/, normals/, manifest.csv, skipped.csv and make_depth.json go. Must be empty "
    "unless --overwrite.")
flags.DEFINE_string(
    "expression", None,
    "Expression label of the photos directly under --input_dir (required for a flat folder; "
    "beside class folders it labels the loose photos, which are otherwise skipped and reported).")
flags.DEFINE_list(
    "expression_names", None,
    "Optional: the class names the data will be read with; a class outside them stops the run at once.")
flags.DEFINE_string(
    "exclude_pattern", "",
    "Leave out files whose path (relative to --input_dir) matches this regular expression, e.g. FER2013's "
    "augmented copies: '\\.jpg\\d+\\.jpg$'. They are counted, not reported as skipped; a pattern that "
    "matches no file is an error.")
flags.DEFINE_integer("image_size", 128, "Side of the square output crops (RGB, depth and normals).",
                     lower_bound=16)
flags.DEFINE_float(
    "margin", depth_maps.DEFAULT_MARGIN,
    "Space around the face mesh in the crop, as a fraction of the mesh's size on each side: the crop's "
    "side is the mesh's longer side times (1 + 2 * margin). 0.2 keeps brow to chin with a little room, "
    "like the face lab's framing.")
flags.DEFINE_bool("rotate", True, "Rotate each crop so the eye corners are level.")
flags.DEFINE_enum(
    "framing", "aligned", ["aligned", "as_given"],
    "aligned: crop and level each face around its mesh (--margin, --rotate); as_given: keep each photo's own "
    "framing (datasets that are already face crops, e.g. FER2013 or CK+48, whose faces touch the border), "
    "resized to --image_size, with the depth of the part of the face inside it.")
flags.DEFINE_enum(
    "detector", "short", DETECTORS,
    "MediaPipe face detector: short (faces filling much of the photo: portraits, face datasets) or "
    "full (smaller faces, up to 5 m from the camera).")
flags.DEFINE_float("min_detection_score", 0.5, "Faces the detector scores below this are not counted.")
flags.DEFINE_float(
    "min_face_size", 32.0,
    "Skip faces whose mesh is under this many pixels wide and high in the photo (too few pixels for a "
    "useful crop); 0 keeps all.", lower_bound=0.0)
flags.DEFINE_bool("overwrite", False, "Replace the outputs of an earlier run in --output_dir "
                  "(other files there are left alone).")
flags.DEFINE_string("contact_sheet", None, "Optional PNG: photo / depth / normals of the first "
                    "--sheet_count faces.")
flags.DEFINE_integer("sheet_count", 8, "Faces on the contact sheet.", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")
flags.DEFINE_integer(
    "lab_check", None,
    "Instead of a folder: render this many face-lab faces (128 px), fit the mesh to them and print "
    "the error of its depth against the exact depth after a per-face scale/offset fit.", lower_bound=1)

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.lab_check:
        print(lab_check.report(lab_check.summarise(lab_check.check_faces(FLAGS.lab_check))))
        return
    if not FLAGS.input_dir or not FLAGS.output_dir:
        raise app.UsageError("--input_dir and --output_dir are required.")
    outcome = run_main(
        make_depth.make_depth, FLAGS.input_dir, FLAGS.output_dir, expression=FLAGS.expression,
        image_size=FLAGS.image_size, margin=FLAGS.margin, rotate=FLAGS.rotate, detector=FLAGS.detector,
        min_detection_score=FLAGS.min_detection_score, min_face_size=FLAGS.min_face_size,
        expression_names=FLAGS.expression_names, overwrite=FLAGS.overwrite,
        contact_sheet=FLAGS.contact_sheet, sheet_count=FLAGS.sheet_count, progress=FLAGS.progress_bar,
        framing=FLAGS.framing, exclude_pattern=FLAGS.exclude_pattern)
    print(make_depth.summary_line(outcome))


if __name__ == "__main__":
    app.run(main)
