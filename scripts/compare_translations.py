#!/usr/bin/env python
"""Puts the learning-check figures of several GAN runs side by side, as a markdown table.

  python scripts/compare_translations.py \\
      --runs=StarGAN=runs/stargan-lab-20250101-120000,LEGAN=runs/legan-lab-20250101-130000

Each run needs evaluation/translation_metrics.json from scripts/evaluate_translation.py, or
evaluation/metrics.json from scripts/evaluate.py (the same figures, from the same pass over the lab); or
give such a file's path instead of the run directory (an evaluate.py metrics.json of several models gives
one column per model, under the models' labels). Runs given under the same label are one setting trained with
different seeds: their column shows the mean and the range, so that seed noise can be told from an effect:

  python scripts/compare_translations.py --runs=LEGAN=runs/legan-seed0,LEGAN=runs/legan-seed1,StarGAN=runs/stargan
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.errors import ConfigError  # noqa: E402
from legan_tf.evaluation.translation import read_translation_figures  # noqa: E402
from legan_tf.evaluation.translation_report import comparison_table  # noqa: E402

flags.DEFINE_list("runs", None, "Comma-separated label=path pairs (a path alone is labelled by its folder name); "
                  "runs sharing a label are seeds of one setting, shown as mean (min-max).")
flags.DEFINE_string("output", None, "Also write the table to this markdown file.")

FLAGS = flags.FLAGS


def compare(entries, output=None):
    reports, seen = {}, set()
    for entry in entries:
        label, _, path = entry.rpartition("=")
        explicit = bool(label)
        label = label or os.path.basename(os.path.normpath(path))
        # The same run twice in one column would shrink the range without being a second seed.
        if (label, os.path.realpath(path)) in seen:
            raise ConfigError(f"--runs: {path} is given twice under the label {label!r}.")
        seen.add((label, os.path.realpath(path)))
        rows = read_translation_figures(path)
        if len(rows) > 1:
            if explicit:
                raise ConfigError(f"--runs: {path} holds {len(rows)} models; give it without a label (each model "
                                  "is a column under its own label).")
            for model_label, metrics in rows:
                reports.setdefault(model_label, []).append(metrics)
            continue
        reports.setdefault(label, []).append(rows[0][1])
    table = comparison_table(reports)
    if output:
        with open(output, "w") as f:
            f.write(table + "\n")
    return table


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.runs:
        raise app.UsageError("--runs is required: label=run_dir pairs, comma-separated.")
    print(run_main(compare, FLAGS.runs, FLAGS.output))


if __name__ == "__main__":
    app.run(main)
