"""Renders the synthetic face lab to disk in the layouts of docs/data_formats.md.

Example:
  python scripts/make_synthetic.py --output_dir=data/face_lab --image_size=64 --num_identities=50
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # `import legan_tf` loads TensorFlow; keep its start-up chatter quiet

from absl import app, flags  # noqa: E402

from legan_tf.data.synthetic.writer import write_face_lab  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "Folder to write the lab into (multipie/, quality/, rgbd/, "
                    "lab.json). Must be empty or absent unless --overwrite is given.")
flags.DEFINE_integer("image_size", 64, "Side of the square images in pixels, 32..256.")
flags.DEFINE_integer("num_identities", 50, "Number of identities (subjects 0..N-1) in every part.")
flags.DEFINE_integer("seed", 0, "Seed of the identities and of every random choice; the same seed "
                     "gives the same files.")
flags.DEFINE_integer("num_lightings", 20, "Number of lighting conditions, named 00..NN; 00 is no flash.")
flags.DEFINE_enum("expression_set", "multipie", ["multipie", "affectnet"],
                  "Expression classes of the attribute data (multipie/) and of the quality sources.")
flags.DEFINE_enum("rgbd_expression_set", "affectnet", ["multipie", "affectnet"],
                  "Expression classes of the RGB-depth pairs (rgbd/).")
flags.DEFINE_integer("lightings_per_face", None, "Lightings rendered per identity and expression in "
                     "multipie/, a seeded random subset; default all of them.", lower_bound=1)
flags.DEFINE_integer("rgbd_lightings_per_face", 1, "Lightings rendered per identity and expression "
                     "in rgbd/, a seeded random subset.", lower_bound=1)
flags.DEFINE_integer("naturalness_variants", 8, "Rated images per identity in quality/: one clean "
                     "render and the rest degraded by random artifacts.", lower_bound=1)
flags.DEFINE_float("ambient", 0.25, "Share of light reaching every surface regardless of orientation.")
flags.DEFINE_string("contact_sheet", None, "Optional path of a PNG contact sheet of the attribute lab.")
flags.DEFINE_list("parts", ["multipie", "quality", "rgbd"], "Which parts to write: multipie (attribute "
                  "labels), quality (naturalness ratings), rgbd (RGB-depth pairs).")
flags.DEFINE_boolean("overwrite", False, "Replace the lab's parts in a non-empty --output_dir.")
flags.mark_flag_as_required("output_dir")


def main(argv):
    del argv
    try:
        summary = write_face_lab(
            FLAGS.output_dir, image_size=FLAGS.image_size, num_identities=FLAGS.num_identities,
            seed=FLAGS.seed, num_lightings=FLAGS.num_lightings, expression_set=FLAGS.expression_set,
            rgbd_expression_set=FLAGS.rgbd_expression_set, lightings_per_face=FLAGS.lightings_per_face,
            rgbd_lightings_per_face=FLAGS.rgbd_lightings_per_face,
            naturalness_variants=FLAGS.naturalness_variants, ambient=FLAGS.ambient,
            overwrite=FLAGS.overwrite, contact_sheet_path=FLAGS.contact_sheet, parts=FLAGS.parts)
    except (FileExistsError, ValueError) as error:
        print(f"make_synthetic: {error}", file=sys.stderr)
        return 1
    counts = summary["counts"]
    print(f"face lab written to {FLAGS.output_dir}: multipie {counts['multipie']} images, "
          f"quality {counts['quality']} rated images, rgbd {counts['rgbd']} pairs, "
          f"{summary['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    app.run(main)
