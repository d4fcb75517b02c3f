#!/usr/bin/env python
"""The papers' evaluation protocol in one command: every metric the inputs allow, for one or several GAN runs.

  python scripts/evaluate.py --run_dir=runs/legan-lab-20250101-120000 \\
      --compare=StarGAN=runs/stargan-lab-20250101-120000 \\
      --classifier=runs/classifier-lab-32/attribute_classifier.keras \\
      --quality_model=runs/quality-lab-32-judge/quality_model.keras \\
      --identity_model=runs/identity-lab-300-judge/identity_model.keras \\
      [--inception_weights=fid2015] [--lpips_weights=<lpips .npz>] [--real=<manifest or folder>]

Faces: the face lab the run trained on (unseen identities, exact targets: SSIM/PSNR/LPIPS against them and
the learning-check figures) and real faces (--real, or the run's held-out split: FID/KID, Q, match score,
generation rate, the reconstruction's SSIM/PSNR/LPIPS). Writes <run_dir>/evaluation/ (or --output_dir):
metrics.json, report.md (the LEGAN poster's table with the papers' figures beside as reference rows,
Bodur et al.'s) and PNG figures. A metric whose judge is not given is reported unavailable with the
reason. docs/evaluation.md has the protocol.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import command_line, run_main  # noqa: E402

flags.DEFINE_string("run_dir", None, "A GAN run directory (any recipe) holding generator.keras and flags.txt.")
flags.DEFINE_string("label", None, "The run's name in the report. Default: its folder name.")
flags.DEFINE_list("compare", [],
                  "More runs in the same report, one row each: label=run_dir or run_dir, comma-separated.")
flags.DEFINE_string("classifier", None,
                    "An AttributeClassifier (.keras) trained on real faces at the generators' size, independent of "
                    "the models: the generation rate and the learning-check figures. Without it they are unavailable.")
flags.DEFINE_string("identity_model", None,
                    "f for the match score: an identity_model.keras of --task=identity. Use one the models were not "
                    "trained against (the report marks it otherwise).")
flags.DEFINE_string("identity_weights", None, "Instead of --identity_model: LightCNN-29 v2 weights converted to .npz "
                    "(tools/convert_lightcnn.py).")
flags.DEFINE_string("quality_model", None,
                    "Q for the quality score: a quality_model.keras. Use one the generators were not trained against "
                    "(the report marks it otherwise).")
flags.DEFINE_string("inception_weights", "fid2015",
                    "Inception-v3 for FID and KID. 'fid2015' (default): the FID Inception of published FIDs (the 2015 "
                    "TF graph's network) at weights/fid_inception_2015.npz, made by tools/convert_fid_inception.py "
                    "where PyTorch is; FID/KID are unavailable, saying so, until it is made. Or the path of such an "
                    ".npz; or 'imagenet' (Keras' download, cached in ~/.keras/models) or a local "
                    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5: Keras' ImageNet InceptionV3, another "
                    "protocol, not comparable with published FIDs. 'none': FID/KID unavailable.")
flags.DEFINE_string("lpips_weights", None, "An LPIPS .npz (legan_tf/evaluation/metrics/lpips.py says how to make it).")
flags.DEFINE_string("depth_judge", None, "A depth network (depth_generator.keras of a --task=depth_pretrain run): "
                    "adds depth consistency to the learning-check figures.")
flags.DEFINE_string("real", None, "Real faces to translate: a manifest (read as the run's --data_format) or a folder "
                    "(root/<expression>/*.png, or a prepare_data.py TFRecord folder). Default: the run's held-out "
                    "split.")
flags.DEFINE_string("fid_reference_split", "auto",
                    "Real faces: the unedited faces FID and KID compare the edits with. auto: the stored split of the "
                    "run's prepared shards that is neither the edited (test) nor train (FER2013: validation, "
                    "PublicTest), with the floor (the edited faces unedited against it) as the real-faces row; "
                    "the same faces (paired) where there is none or --real is given. A split name: that split. "
                    "none: paired (the edits against the faces translated, which copying the input wins).")
flags.DEFINE_enum("real_format", None, ["multipie", "folder", "csv", "rgbd", "tfrecord"],
                  "The layout of --real when it cannot be told from the path.")
flags.DEFINE_list("sources", ["lab", "real"], "Which faces: lab (unseen lab identities, exact targets), real.")
flags.DEFINE_integer("num_faces", 300, "Lab faces translated per edit mode.", lower_bound=1)
flags.DEFINE_integer("num_real", 1000, "Real faces translated (a seeded choice); 0 = all.", lower_bound=0)
flags.DEFINE_integer("first_identity", 100000, "First unseen lab identity; must lie beyond the lab's subjects.")
flags.DEFINE_integer("num_identities", 20, "Unseen lab identities faces are drawn from.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of every draw: the same checkpoints and seed give the same numbers.")
flags.DEFINE_integer("batch_size", 64, "Images per forward pass.", lower_bound=1)
flags.DEFINE_integer("sample_rows", 6, "Faces shown in the sample grids.", lower_bound=1)
flags.DEFINE_string("output_dir", None, "Where to write. Default: <run_dir>/evaluation.")
flags.DEFINE_bool("progress_bar", True, "Show progress bars.")

FLAGS = flags.FLAGS


def evaluate_from_flags(argv):
    from legan_tf.evaluation import evaluate
    from legan_tf.evaluation.judges import load_judges

    judges = load_judges(
        classifier=FLAGS.classifier, identity_model=FLAGS.identity_model, identity_weights=FLAGS.identity_weights,
        quality_model=FLAGS.quality_model, inception_weights=FLAGS.inception_weights,
        lpips_weights=FLAGS.lpips_weights, depth_judge=FLAGS.depth_judge)
    return evaluate.evaluate(
        FLAGS.run_dir, compare=FLAGS.compare, judges=judges, label=FLAGS.label, real=FLAGS.real,
        real_format=FLAGS.real_format, sources=FLAGS.sources, num_faces=FLAGS.num_faces, num_real=FLAGS.num_real,
        first_identity=FLAGS.first_identity, num_identities=FLAGS.num_identities, seed=FLAGS.seed,
        batch_size=FLAGS.batch_size, sample_rows=FLAGS.sample_rows, output_dir=FLAGS.output_dir,
        progress=FLAGS.progress_bar, command=command_line(argv), fid_reference_split=FLAGS.fid_reference_split)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.run_dir:
        raise app.UsageError("--run_dir is required: a GAN run directory (more with --compare).")
    result = run_main(evaluate_from_flags, sys.argv)
    from legan_tf.evaluation import report

    print(report.poster_table(result))
    print(f"\nwritten to {result['output_dir']}:")
    for path in result["files"]:
        print(f"  {os.path.basename(path)}")


if __name__ == "__main__":
    app.run(main)
