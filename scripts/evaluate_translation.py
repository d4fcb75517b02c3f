#!/usr/bin/env python
"""The GAN learning check: translates unseen face-lab faces and judges them with an independent classifier.

  python scripts/evaluate_translation.py --run_dir=runs/stargan-lab-20250101-120000 \\
      --classifier=runs/demo-20250101-110000/attribute_classifier.keras

Reads <run_dir>/generator.keras and the run's flags.txt (image size, expression names, lights,
data path); the lab's settings come from lab.json in the lab root (the folder holding
multipie/manifest.csv). Faces are drawn from identities the lab never wrote (--first_identity on),
so neither the GAN nor the classifier has seen them. Writes <run_dir>/evaluation/ (or --output_dir):
translation_metrics.json and translation_samples.png, and prints the verdict against the learning check's
targets.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.evaluation import run_under_test, translation, translation_metrics, translation_report  # noqa: E402

flags.DEFINE_string("run_dir", None, "A GAN run directory holding generator.keras and flags.txt.")
flags.DEFINE_string("generator", None, "A saved generator (.keras) to evaluate instead of <run_dir>/generator.keras.")
flags.DEFINE_string(
    "classifier", None,
    "Required: an AttributeClassifier (.keras) trained on real lab renders at the generator's image "
    "size, e.g. the attribute_classifier.keras of a `--flagfile=configs/lab/demo.flags` run.")
flags.DEFINE_enum("kind", None, list(translation_metrics.CHECK_SETS),
                  "Which learning-check set applies: stargan (target attributes recognised, L1 to the exact "
                  "target reduced); legan adds disentanglement (the attribute not edited keeps its value in "
                  ">= 90% of single-attribute edits). Default: the run's recipe's check (its --task in "
                  "flags.txt), stargan without one.")
flags.DEFINE_string("depth_judge", None,
                    "A depth network (depth_generator.keras of a --task=depth_pretrain run) that adds depth "
                    "consistency: its geometry of the translations against the exact geometry of the target faces. "
                    "Use the same pre-trained network for every run compared, not one trained along with a GAN.")
flags.DEFINE_list("attributes", None,
                  "Attributes the generator's label vector covers, in its order (expression,lighting). "
                  "Default: inferred from the generator's label count.")
# Settings of the run; each overrides the run's flags.txt (needed with --generator and no --run_dir).
flags.DEFINE_integer("image_size", None, "The run's image size (checked against the generator's).")
flags.DEFINE_list("expression_names", None, "The run's expression names in label order. Default: Multi-PIE's six.")
flags.DEFINE_list("lighting_names", None, "The run's lighting names in label order.")
flags.DEFINE_integer("num_lightings", None, "The run's number of lights (when no --lighting_names). Default 20.")
flags.DEFINE_string("data_path", None, "The run's <lab>/multipie/manifest.csv (or <lab>/rgbd/manifest.csv); "
                    "<lab>/lab.json gives the lab settings.")
# The face lab; each overrides lab.json.
flags.DEFINE_integer("lab_image_size", None, "Size the lab renders at (then resized to the model's, as in training).")
flags.DEFINE_enum("lab_expression_set", None, ["multipie", "affectnet"], "The lab's expression set.")
flags.DEFINE_integer("lab_num_lightings", None, "The lab's number of lights.")
flags.DEFINE_integer("lab_seed", None, "The lab's seed.")
flags.DEFINE_float("lab_ambient", None, "The lab's ambient light share.")
# The draw.
flags.DEFINE_integer("first_identity", 100000, "First held-out identity; must lie beyond the lab's subjects.")
flags.DEFINE_integer("num_identities", 20, "Number of held-out identities faces are drawn from.", lower_bound=1)
flags.DEFINE_integer("num_faces", 300, "Translated faces per edit mode.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the draw of sources and targets.")
flags.DEFINE_integer("batch_size", 64, "Images per forward pass.", lower_bound=1)
flags.DEFINE_integer("sample_rows", 4, "Sources shown in translation_samples.png.", lower_bound=1)
flags.DEFINE_string("output_dir", None, "Where to write the results. Default: <run_dir>/evaluation.")
flags.DEFINE_bool("progress_bar", True, "Show a progress bar.")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.classifier:
        raise app.UsageError("--classifier is required (an AttributeClassifier .keras trained on lab renders).")
    if not FLAGS.run_dir and not FLAGS.generator:
        raise app.UsageError("give --run_dir=<a GAN run directory> or --generator=<generator.keras>.")
    # The run's task has no flag here: --kind names its check directly.
    settings = {name: FLAGS[name].value for name in run_under_test.RUN_SETTINGS if name != "task"}
    lab_overrides = {"image_size": FLAGS.lab_image_size, "expression_set": FLAGS.lab_expression_set,
                     "num_lightings": FLAGS.lab_num_lightings, "seed": FLAGS.lab_seed,
                     "ambient": FLAGS.lab_ambient}
    report = run_main(
        translation.evaluate_run, FLAGS.classifier, run_dir=FLAGS.run_dir, generator_path=FLAGS.generator,
        settings=settings, lab_overrides=lab_overrides, attributes=FLAGS.attributes,
        first_identity=FLAGS.first_identity, num_identities=FLAGS.num_identities, num_faces=FLAGS.num_faces,
        seed=FLAGS.seed, batch_size=FLAGS.batch_size, kind=FLAGS.kind, output_dir=FLAGS.output_dir,
        sample_rows=FLAGS.sample_rows, progress=FLAGS.progress_bar, depth_judge_path=FLAGS.depth_judge)
    identities = report["identities"]
    print(f"generator: {report['generator']}\nclassifier: {report['classifier']}\n"
          f"{report['metrics']['num_faces']} faces per mode from held-out identities "
          f"{identities[0]}..{identities[1]}, attributes {','.join(report['attributes'])}")
    verdict = [(row["name"], row["value"], row["target"], row["passed"]) for row in report["verdict"]]
    print(translation_report.format_verdict(verdict, translation_metrics.reported_figures(
        report["metrics"], [name for name, *_ in verdict])))
    if report["kept_breakdown"]:
        print("\n" + translation_report.format_kept_breakdown(report["kept_breakdown"]) + "\n")
    print(f"learning check ({report['kind']}): {'PASSED' if report['passed'] else 'NOT PASSED'}")
    print(f"written to {report['output_dir']}: {translation.METRICS_FILE}, {translation.SAMPLES_FILE}")


if __name__ == "__main__":
    app.run(main)
