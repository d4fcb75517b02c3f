#!/usr/bin/env python
"""Naturalness ratings for Q from your own face photos, in the ratings layout (docs/quality.md).

  python scripts/make_naturalness.py --input=photos/ --output_dir=data/my_naturalness
  python scripts/make_naturalness.py --input='photos/**/*.jpg' --output_dir=data/nat --image_size=128 \\
      --variants_per_source=12 --kinds=blur,noise,warp --generator_run=runs/stargan-fer2013-<timestamp>

Each photo is centre-cropped to a square and resized to --image_size (background kept: the crop Q is
trained on is the crop scripts/score_faces.py scores), then written clean and degraded by the face lab's
artifacts (blur, blockiness, noise, colour blotches, warps, checkerboard) at severities spread over
[0, 1], plus, with --generator_run, the run's generator's translation of it to a random target label.
The face lab's three simulated raters rate every image from its kind and severity (not people).

Writes <output_dir>/images/<photo>/*.png, ratings.csv (image,mean,std,source,generator,kind,severity,
target,photo: --data_format=ratings, source = the photo, so splits never separate its variants),
skipped.csv, make_naturalness.json and contact_sheet.png. Exit status 0 when at least one photo was
used; 1 for bad flags, no usable photo, or (--on_error=fail) the first unreadable one.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.naturalness import make_naturalness  # noqa: E402

flags.DEFINE_list(
    "input", None,
    "Face photos: a folder (searched recursively for " + "/".join(make_naturalness.PHOTO_EXTENSIONS)
    + "; hidden files skipped, other files ignored and counted), photo files, or glob patterns (quote them; "
    "** matches folders at any depth); several, comma-separated. EXIF orientation is honoured; grey, palette, "
    "CMYK and 16-bit files are converted to 8-bit RGB; transparency is composited over black.")
flags.DEFINE_string(
    "output_dir", None,
    "Where images/, ratings.csv, skipped.csv, make_naturalness.json and contact_sheet.png go. Must be empty "
    "unless --overwrite.")
flags.DEFINE_integer(
    "image_size", 64,
    "Side of the square crops written, in pixels: the centred square of each photo, resized. Use Q's "
    "--image_size, so the ratings reader and score_faces.py see the crops at their own size.", lower_bound=16)
flags.DEFINE_integer(
    "variants_per_source", 9,
    "Degraded variants per photo, besides the clean photo itself (always written, rated as clean) and the "
    "--generator_run translation. Kinds cycle through --kinds; severities take one value in each of this "
    "many equal bins of [0, 1].", lower_bound=0)
flags.DEFINE_list(
    "kinds", list(make_naturalness.KINDS),
    f"Artifact kinds to use, a subset of {','.join(make_naturalness.KINDS)}.")
flags.DEFINE_integer("seed", 0, "Seed of the kinds, severities, artifacts, generator targets and rater noise "
                     "(each photo draws from its own stream, keyed by its id).")
flags.DEFINE_string(
    "generator_run", None,
    "Optional: a StarGAN or LEGAN run directory (generator.keras and labels.json), e.g. a short run whose "
    "generator still shows a GAN's failure modes. Its translation of each photo to a random target label is "
    "added as kind 'generator', rated as the lab's strongest artifact at --generator_severity.")
flags.DEFINE_float(
    "generator_severity", make_naturalness.DEFAULT_GENERATOR_SEVERITY,
    "With --generator_run: the severity its outputs are rated at (mean about 10 - 8.5 x this).",
    lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("max_images", 0, "Use at most this many photos (in sorted order); 0 = all.", lower_bound=0)
flags.DEFINE_enum(
    "on_error", "skip", list(make_naturalness.ON_ERROR),
    "A photo that cannot be read (corrupt, empty, not an image): skip it (counted, printed, listed in "
    "skipped.csv) or fail (one-line error, nothing written).")
flags.DEFINE_enum(
    "source_by", "photo", list(make_naturalness.SOURCE_BY),
    "The ratings' source column, which held-out splits keep together: photo (each photo's variants) or "
    "folder (every photo in one folder, e.g. one folder per person; photos directly in an --input folder share "
    "that folder's name).")
flags.DEFINE_integer("sheet_count", 4, "Photos on the contact sheet (rows; columns are the kinds); 0 = none.",
                     lower_bound=0)
flags.DEFINE_bool("overwrite", False, "Replace the outputs of an earlier run in --output_dir "
                  "(other files there are left alone).")
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")

FLAGS = flags.FLAGS
OWN_FLAGS = ("input", "output_dir", "image_size", "variants_per_source", "kinds", "seed", "generator_run",
             "generator_severity", "max_images", "on_error", "source_by", "sheet_count", "overwrite")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.input or not FLAGS.output_dir:
        raise app.UsageError("--input and --output_dir are required.")
    outcome = run_main(
        make_naturalness.make_naturalness, FLAGS.input, FLAGS.output_dir, image_size=FLAGS.image_size,
        variants_per_source=FLAGS.variants_per_source, kinds=FLAGS.kinds, seed=FLAGS.seed,
        generator_run=FLAGS.generator_run, generator_severity=FLAGS.generator_severity,
        max_images=FLAGS.max_images, on_error=FLAGS.on_error, source_by=FLAGS.source_by,
        overwrite=FLAGS.overwrite, sheet_count=FLAGS.sheet_count, progress=FLAGS.progress_bar,
        flag_values={name: FLAGS[name].value for name in OWN_FLAGS})
    print(make_naturalness.summary_line(outcome))


if __name__ == "__main__":
    app.run(main)
