"""The GAN learning check of a saved generator: scripts/evaluate_translation.py's library side, and the
reading of its figures back for scripts/compare_translations.py.

evaluate_run resolves the run (`run_under_test.resolve_run`), checks the lab and the classifier
(`lab_pass.prepare_lab`), translates and scores unseen face-lab faces in the same pass scripts/evaluate.py
makes (`lab_pass.lab_pass`, here without the registry's metrics), and writes the learning check's
record (translation_metrics.json) and sample figure (translation_samples.png, `translation_report`).
`read_translation_figures` reads the learning-check figures back from that record or from
scripts/evaluate.py's metrics.json.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from legan_tf.errors import ConfigError
from legan_tf.evaluation import report
from legan_tf.evaluation.judges import load_judges
from legan_tf.evaluation.lab_pass import lab_pass, prepare_lab, translation_record
from legan_tf.evaluation.metric_sets import LAB
from legan_tf.evaluation.run_under_test import resolve_run
from legan_tf.evaluation.translation_metrics import CHECK_SETS
from legan_tf.evaluation.translation_report import plot_samples
from legan_tf.runs import RunDir

METRICS_FILE = "translation_metrics.json"
SAMPLES_FILE = "translation_samples.png"


def evaluate_run(classifier_path: str, run_dir: Optional[str] = None, generator_path: Optional[str] = None,
                 settings: Optional[Mapping[str, object]] = None, lab_overrides: Optional[Mapping[str, object]] = None,
                 attributes: Optional[Sequence[str]] = None, first_identity: int = 100000,
                 num_identities: int = 20, num_faces: int = 300, seed: int = 0, batch_size: int = 64,
                 kind: Optional[str] = None, output_dir: Optional[str] = None, sample_rows: int = 4,
                 progress: bool = True, depth_judge_path: Optional[str] = None) -> Dict[str, object]:
    """Runs the learning check of a saved generator; writes translation_metrics.json and translation_samples.png.

    `settings` (run_under_test.RUN_SETTINGS names) override the run's flags.txt; `lab_overrides` (FaceLab
    argument names) override lab.json. `kind` names the check set (CHECK_SETS); None takes the run's
    recipe's (recipe_check). `depth_judge_path`: a depth network (depth_generator.keras of a
    --task=depth_pretrain run) that adds the depth-consistency figures. Returns the JSON content plus
    output_dir (default: the evaluation folder of the run, or of the folder holding the generator).
    """
    if kind is not None and kind not in CHECK_SETS:
        raise ConfigError(f"--kind={kind}: expected one of {', '.join(CHECK_SETS)}.")
    for name, value in (("num_faces", num_faces), ("num_identities", num_identities), ("batch_size", batch_size),
                        ("sample_rows", sample_rows)):
        if value < 1:
            raise ConfigError(f"--{name}={value} must be positive.")
    run = resolve_run(run_dir, generator_path, settings, kind)
    judges = load_judges(classifier=classifier_path, depth_judge=depth_judge_path)
    setup = prepare_lab(run, lab_overrides, attributes, first_identity, num_identities, judges.classifier.model,
                        classifier_path)
    result = lab_pass(run, setup, judges, num_faces, seed, batch_size, progress, sample_rows, metric_names=(),
                      used={})
    record = translation_record(run, setup, judges, result, seed)
    output_dir = output_dir or RunDir(run_dir or os.path.dirname(os.path.abspath(run.generator_path))).evaluation_dir
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    plot_samples(result.figures.samples, setup.names, os.path.join(output_dir, SAMPLES_FILE))
    record["output_dir"] = output_dir
    return record


def read_translation_figures(path: str) -> List[Tuple[Optional[str], Dict[str, float]]]:
    """(label, learning-check metrics) from a translation_metrics.json (label None), a scripts/evaluate.py
    metrics.json (one entry per model with lab figures), or a run directory whose evaluation folder holds
    either (the translation_metrics.json first; of a metrics.json, the entries of this very run)."""
    candidates = [path]
    if os.path.isdir(path):
        evaluation_dir = RunDir(path).evaluation_dir
        candidates = [os.path.join(evaluation_dir, name) for name in (METRICS_FILE, report.METRICS_FILE)]
    found = next((candidate for candidate in candidates if os.path.isfile(candidate)), None)
    if found is None:
        raise ConfigError(f"{path}: no translation metrics here; run scripts/evaluate_translation.py first "
                          "(or scripts/evaluate.py).")
    with open(found, encoding="utf-8") as handle:
        try:
            content = json.load(handle)
        except json.JSONDecodeError:
            content = None
    if isinstance(content, dict) and isinstance(content.get("metrics"), dict):
        return [(None, content["metrics"])]
    if isinstance(content, dict) and isinstance(content.get("models"), list):
        rows = []
        wanted = os.path.realpath(path) if os.path.isdir(path) else None
        for model in content["models"]:
            translation = (model.get("sources", {}).get(LAB) or {}).get("translation")
            if not translation:
                continue
            if wanted and model.get("run_dir") and os.path.realpath(model["run_dir"]) != wanted:
                continue
            rows.append((model["label"], translation["metrics"]))
        if rows:
            return rows
        raise ConfigError(f"{found}: no model in it has learning-check figures (lab source with a classifier).")
    raise ConfigError(f"{found}: not a {METRICS_FILE} of scripts/evaluate_translation.py nor a "
                      f"{report.METRICS_FILE} of scripts/evaluate.py.")
