#!/usr/bin/env python
"""The real-face check of a generator that edits expression and lighting (LEGAN, or StarGAN with both groups).

  python scripts/judge_joint_edits.py --run_dir=runs/legan-fer2013-relit-20261126-200000 \\
      --data_path=data/fer2013_relit_tfr \\
      --expression_judge=runs/classifier-fer2013-20261126-005843/attribute_classifier.keras \\
      --lighting_judge=runs/classifier-fer2013-relit-20261126-190845/attribute_classifier.keras \\
      --other_judges=mini_xception

Every held-out relit face (--split, default test) is edited to every other expression with its lighting
kept, and to every other lighting with its expression kept. Independent judges read each edit: the
generation rate of each attribute (its judge reads the target; target: at least 80% of the judge's
accuracy on the unedited faces) and disentanglement (the other attribute's judge reads the edit as it
reads the unedited face; target: at least 90%), with the identity and edit L1 and the texture ratio.
Where the split holds other images of a face's subject that differ in the edited attribute only (relit
shards: the same photo under every light), the judge's reading of those copies is the kept share that
reproducing the data would score: reported beside each kept share (kept by the data, and the edits' share
of it). Writes <run_dir>/joint_edits/ (or --output_dir): metrics.json, report.md, expression_grid.png,
lighting_grid.png and joint_grid.png (one face, expressions x lightings); for a generator that moves the photo
(LEGAN with --legan_g_expression=warp) also how far its field moves the face for expression edits, and
warp_grid.png (each expression edit with a lattice drawn on the photo, moved by the field).

  python scripts/judge_joint_edits.py --data_only --data_path=data/fer2013_relit_tfr --num_faces=1000 \
      --image_size=64 --expression_judge=... --lighting_judge=... --output_dir=runs/judges-fer2013-relit

--data_only reads no generator: the judges' accuracy and the data's kept shares over the faces the check
would edit, to know before training what the disentanglement figures can reach with these judges, and
copies_grid_<judge>.png: --grid_faces faces x their copies under every light, framed green where the
expression judge reads the copy as it reads the face, red where not.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import command_line, run_main  # noqa: E402

flags.DEFINE_string("run_dir", None, "A GAN run directory holding generator.keras, flags.txt and labels.json "
                    "(LEGAN, or StarGAN trained with expression and lighting labels).")
flags.DEFINE_string("generator", None, "A saved generator (.keras) to judge instead of <run_dir>/generator.keras.")
flags.DEFINE_string("expression_judge", None,
                    "Required: an AttributeClassifier (.keras) with an expression head, trained on real faces the "
                    "generator's held-out faces are not among (e.g. configs/fer2013/classifier_fer2013.flags: FER2013 "
                    "Training, when the held-out relit faces are PrivateTest photos).")
flags.DEFINE_string("lighting_judge", None,
                    "Required: an AttributeClassifier (.keras) with a lighting head trained on relit faces of the "
                    "training split only (configs/relit/classifier_fer2013_relit.flags).")
flags.DEFINE_list("other_judges", [],
                  "Optional second expression judges read over the same edits (as in scripts/judge_real_edits.py: "
                  "mini_xception, or a classifier file). One that lacks some of the generator's expressions (the "
                  "mini-Xception has no contempt, CK+48's seventh) is read over the faces and targets it knows.")
flags.DEFINE_string("identity_model", None,
                    "Optional identity network trained on real people (an identity_model.keras, e.g. from "
                    "configs/relit/identity_ckplus_relit.flags): how far each edit moves f from its face, and the "
                    "share f still reads as the same person at a 1% false-accept threshold.")
flags.DEFINE_string("normals_dir", None,
                    "Optional make_depth.py output folder of the held-out photos (normals/ and manifest.csv, at the "
                    "generator's image size): each lighting edit's light is also fitted over its face's own normals, "
                    "a lighting judge with no learned weights (the angle to the target light, and how often the "
                    "nearest grid light is the target).")
flags.DEFINE_string("inception_weights", None,
                    "Optional: the FID network's weights (the converted 2015 FID Inception, "
                    "tools/convert_fid_inception.py; or imagenet / a Keras .h5, another protocol), to report FID "
                    "and KID of one expression-only and one lighting-only edit per face (seeded targets) against "
                    "unedited faces of another split, beside the floor of the edited faces unedited.")
flags.DEFINE_string("fid_reference_split", "auto",
                    "With --inception_weights: the stored split whose unedited faces the edits are compared with. "
                    "auto: the first stored split other than the edited one and train, else train (relit shards "
                    "store train and test only: the training photos, none of them edited); none: only the paired "
                    "figures (the edits against the same faces unedited, which copying the input wins).")
flags.DEFINE_integer("fid_reference_faces", 0, "With --inception_weights: faces of the reference split read (a "
                     "seeded choice); 0 = as many as the faces edited.", lower_bound=0)
flags.DEFINE_string("data_path", None, "Prepared TFRecord shards of relit faces with expression and lighting labels "
                    "and a stored held-out split. Default: the run's --data_path.")
flags.DEFINE_string("split", "test", "The stored split whose faces are edited.")
flags.DEFINE_integer("num_faces", 0, "Faces edited (a seeded choice); 0 = every face of the split.", lower_bound=0)
flags.DEFINE_integer("grid_faces", 6, "Faces in the grids, under their photo's own lighting, a seeded spread over "
                     "expressions.", lower_bound=0)
flags.DEFINE_string("output_dir", None, "Where to write. Default: <run_dir>/joint_edits.")
flags.DEFINE_integer("seed", 0, "Seed of the choice of faces (with --num_faces) and of the grid's faces.")
flags.DEFINE_integer("batch_size", 64, "Images per forward pass.", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")
flags.DEFINE_bool("data_only", False, "Judge the data, not a generator: the judges' accuracy over the faces the "
                  "check would edit and how often each judge keeps its reading across a face's own copies that "
                  "differ in the other attribute (needs --data_path and --output_dir; no --run_dir).")
flags.DEFINE_integer("image_size", 0, "With --data_only: the size the faces are read at before each judge's own "
                     "resize (the generator's, to match its check); 0 = the shards' stored size.", lower_bound=0)

GENERATOR_ONLY = ("run_dir", "generator", "identity_model", "normals_dir", "inception_weights")

FLAGS = flags.FLAGS


def judge_from_flags(argv):
    from legan_tf.errors import ConfigError
    from legan_tf.evaluation import joint_edits

    if FLAGS.data_only:
        given = [name for name in GENERATOR_ONLY if FLAGS[name].value]
        if given:
            raise ConfigError(f"--data_only judges no generator: drop --{', --'.join(given)}.")
        return joint_edits.evaluate_data_agreement(
            FLAGS.expression_judge, FLAGS.lighting_judge, FLAGS.data_path, FLAGS.output_dir, split=FLAGS.split,
            num_faces=FLAGS.num_faces, image_size=FLAGS.image_size, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
            progress=FLAGS.progress_bar, command=command_line(argv), other_judges=FLAGS.other_judges,
            grid_faces=FLAGS.grid_faces)
    if FLAGS.image_size:
        raise ConfigError("--image_size is for --data_only: the check reads faces at the generator's size.")
    return joint_edits.evaluate_joint_edits(
        FLAGS.expression_judge, FLAGS.lighting_judge, run_dir=FLAGS.run_dir, generator_path=FLAGS.generator,
        data_path=FLAGS.data_path, split=FLAGS.split, num_faces=FLAGS.num_faces, grid_faces=FLAGS.grid_faces,
        output_dir=FLAGS.output_dir, seed=FLAGS.seed, batch_size=FLAGS.batch_size, progress=FLAGS.progress_bar,
        command=command_line(argv), other_judges=FLAGS.other_judges,
        identity_model=FLAGS.identity_model, normals_dir=FLAGS.normals_dir,
        inception_weights=FLAGS.inception_weights, fid_reference_split=FLAGS.fid_reference_split,
        fid_reference_faces=FLAGS.fid_reference_faces)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    result = run_main(judge_from_flags, sys.argv)
    from legan_tf.evaluation import joint_edits

    if FLAGS.data_only:
        written = f"written to {result['output_dir']}: " + ", ".join(os.path.basename(path) for path in result["files"])
        print("\n".join(joint_edits.data_only_lines(result) + [written]))
    else:
        print("\n".join(joint_edits.main_lines(result)))


if __name__ == "__main__":
    app.run(main)
