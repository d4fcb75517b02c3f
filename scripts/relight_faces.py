#!/usr/bin/env python
"""Relight real faces under a grid of directional lights, as DPR built its training data (docs/relight_faces.md).

  python scripts/make_depth.py --input_dir=photos/ --output_dir=data/photos_d --expression=neutral
  python scripts/relight_faces.py --input_dir=data/photos_d --output_dir=data/photos_relit

From a make_depth output folder (rgb/, depth/, normals/, manifest.csv), fits each face's lighting as
2nd-order spherical harmonics over its normals and writes the face under every light of the grid (and as
it is, `original`) by ratio-image relighting, in the Multi-PIE layout: images/, masks/, manifest.csv
(image,subject,session,lighting,expression,mask), skipped.csv (every face left out and why) and
relight_faces.json (settings, counts, and the check: the angle between each light and the light fitted
again on the relit faces). It prints the prepare_data command that reads the output. Exit status 0 when
at least one face was relit, 1 when none could be.

  python scripts/relight_faces.py --lab_check=200   # the method on face-lab faces, whose lights are known
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.photos import relight, relight_faces  # noqa: E402

flags.DEFINE_string(
    "input_dir", None,
    "A scripts/make_depth.py output folder: manifest.csv (image,depth,normals,expression) with the rgb/, "
    "depth/ and normals/ it names.")
flags.DEFINE_string(
    "output_dir", None,
    "Where images/, masks/, manifest.csv, skipped.csv and relight_faces.json go. Must be empty unless "
    "--overwrite; the outputs are written beside it first and moved in when complete.")
flags.DEFINE_list(
    "lights", list(relight.GRID),
    "Lights of the grid to render (each face is also written as it is, lighting `original`). Names are as "
    "seen in the image: left_60 comes from the viewer's left at 60 degrees from the camera axis; above_* "
    f"are {relight.ELEVATION_DEGREES:g} degrees up. Choose from: {', '.join(relight.GRID)}.")
flags.DEFINE_float(
    "ambient", relight.AMBIENT,
    "Share of each target light that reaches every pixel whatever its orientation (the rest is the "
    "Lambertian term): lower gives darker attached shadows.")
flags.DEFINE_float(
    "shading_floor", relight.SHADING_FLOOR,
    "The fitted source shading is floored at this fraction of its mean over the face before dividing by it, "
    "so pixels the fit calls dark are not amplified without bound.")
flags.DEFINE_float("max_ratio", relight.MAX_RATIO, "The relighting factor stays within [1/max_ratio, max_ratio].")
flags.DEFINE_float(
    "feather", relight.FEATHER,
    "Inside the face mask the factor fades to 1 over this fraction of the image's side (at least 2 px), so "
    "the mask's edge leaves no seam.")
flags.DEFINE_float(
    "spill", relight.SPILL,
    "Beyond the mask the edge's factor continues and fades to 1 over this fraction of the image's side, so "
    "hair, forehead and neck beside a lit or shaded cheek follow it a little; 0 leaves them as they are.")
flags.DEFINE_float(
    "normal_blur", relight.NORMAL_BLUR,
    "Gaussian sigma, as a fraction of the image's side, that smooths the face mesh's per-triangle normals.")
flags.DEFINE_float(
    "max_clipped", relight.MAX_CLIPPED,
    "Skip a face whose depth map is clipped at 1 (make_depth's nearest depth) on more than this share of the "
    "face: its normals are flat there.")
flags.DEFINE_bool("overwrite", False, "Replace the outputs of an earlier run in --output_dir "
                  "(other files there are left alone).")
flags.DEFINE_string("contact_sheet", None, "Optional PNG: the first --sheet_count faces under every lighting.")
flags.DEFINE_integer("sheet_count", 4, "Faces on the contact sheet.", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")
flags.DEFINE_integer(
    "lab_check", None,
    "Instead of a folder: relight this many face-lab faces (128 px, exact normals) from one of the lab's "
    "flashes to another, and print how well the source light is found and how close the relit face is to "
    "the lab's own render under the target light.", lower_bound=1)

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.lab_check:
        print(relight.lab_report(relight.lab_check(FLAGS.lab_check)))
        return
    if not FLAGS.input_dir or not FLAGS.output_dir:
        raise app.UsageError("--input_dir and --output_dir are required.")
    outcome = run_main(
        relight_faces.relight_faces, FLAGS.input_dir, FLAGS.output_dir, lights=FLAGS.lights, overwrite=FLAGS.overwrite,
        ambient=FLAGS.ambient, floor=FLAGS.shading_floor, feather=FLAGS.feather, spill=FLAGS.spill,
        normal_blur=FLAGS.normal_blur, max_ratio=FLAGS.max_ratio, max_clipped=FLAGS.max_clipped,
        contact_sheet=FLAGS.contact_sheet, sheet_count=FLAGS.sheet_count, progress=FLAGS.progress_bar)
    print(relight_faces.summary_line(outcome))


if __name__ == "__main__":
    app.run(main)
