"""The GAN learning check of a saved generator: scripts/evaluate_translation.py's library side.

A view of `evaluate.py`'s machinery: evaluate_run resolves the run (`evaluate.resolve_run`), checks
the lab and the classifier (`evaluate.prepare_lab`), translates and scores unseen face-lab faces in
the same pass scripts/evaluate.py makes (`evaluate.lab_pass`, here without the registry's metrics),
and writes the learning check's report and sample figure (translation_report).
"""

from __future__ import annotations

import json
import os
from typing import Dict, Mapping, Optional, Sequence

from legan_tf.errors import ConfigError
from legan_tf.evaluation import evaluate
from legan_tf.evaluation.evaluate import recipe_check  # noqa: F401  (part of this module's interface)
from legan_tf.evaluation.run_io import EVALUATION_DIR, METRICS_FILE, SAMPLES_FILE
from legan_tf.evaluation.translation_metrics import CHECK_SETS
from legan_tf.evaluation.translation_report import plot_samples


def evaluate_run(classifier_path: str, run_dir: Optional[str] = None, generator_path: Optional[str] = None,
                 settings: Optional[Mapping[str, object]] = None, lab_overrides: Optional[Mapping[str, object]] = None,
                 attributes: Optional[Sequence[str]] = None, first_identity: int = 100000,
                 num_identities: int = 20, num_faces: int = 300, seed: int = 0, batch_size: int = 64,
                 kind: Optional[str] = None, output_dir: Optional[str] = None, sample_rows: int = 4,
                 progress: bool = True, depth_judge_path: Optional[str] = None) -> Dict[str, object]:
    """Runs the learning check of a saved generator; writes translation_metrics.json and translation_samples.png.

    `settings` (run_io.RUN_SETTINGS names) override the run's flags.txt; `lab_overrides` (FaceLab
    argument names) override lab.json. `kind` names the check set (CHECK_SETS); None takes the run's
    recipe's (recipe_check). `depth_judge_path`: a depth network (depth_generator.keras of a
    --task=depth_pretrain run) that adds the depth-consistency figures. Returns the JSON content plus
    output_dir.
    """
    if kind is not None and kind not in CHECK_SETS:
        raise ConfigError(f"--kind={kind}: expected one of {', '.join(CHECK_SETS)}.")
    for name, value in (("num_faces", num_faces), ("num_identities", num_identities), ("batch_size", batch_size),
                        ("sample_rows", sample_rows)):
        if value < 1:
            raise ConfigError(f"--{name}={value} must be positive.")
    run = evaluate.resolve_run(run_dir, generator_path, settings, kind)
    judges = evaluate.load_judges(classifier=classifier_path, depth_judge=depth_judge_path)
    setup = evaluate.prepare_lab(run, lab_overrides, attributes, first_identity, num_identities,
                                 judges.classifier.model, classifier_path)
    result = evaluate.lab_pass(run, setup, judges, num_faces, seed, batch_size, progress, sample_rows,
                               metric_names=(), used={})
    report = evaluate.translation_record(run, setup, judges, result, seed)
    output_dir = output_dir or os.path.join(run_dir or os.path.dirname(os.path.abspath(run.generator_path)),
                                            EVALUATION_DIR)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    plot_samples(result.figures.samples, setup.names, os.path.join(output_dir, SAMPLES_FILE))
    report["output_dir"] = output_dir
    return report
