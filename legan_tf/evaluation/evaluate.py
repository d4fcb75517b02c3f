"""The papers' evaluation protocol on GAN runs in one call: scripts/evaluate.py's machinery.

`evaluate(run_dir, compare=..., judges=judges.load_judges(...))` evaluates one or several GAN run
directories of any recipe (stargan, legan, stargan_depth) on up to two sources of faces, and writes
metrics.json, report.md and PNG figures (`report`) to `<run_dir>/evaluation/` or `output_dir`.

The jobs, by module: `run_under_test` resolves each run (its settings, through `legan_tf.runs`, and its
generator); `judges` loads the judging networks once for every run and says which one a run trained
against; `lab_pass` scores the face lab (unseen identities, exact targets, the learning-check figures
in the same pass); `real_pass` scores real faces without paired truth; `metric_sets` builds and feeds
the registry's metrics of a source; `report` writes the files. This module runs them in order.

Baselines beside the models, once per distinct source: on the lab, "real faces" (the exact target
renders in the outputs' place: the classifier's ceiling, Q of real faces, the match score of two real
faces of one person) and "input unchanged" (the input in the outputs' place: what no edit scores on
FID, LPIPS, SSIM, PSNR); on real faces, "real faces" (Q of the reals, the classifier on their own labels).

A metric whose judge is missing is unavailable, with the reason; it is never computed from random weights.

Determinism: every draw is seeded by `seed` (faces, targets, KID's reservoir), data are read in file
order, and the networks run in inference mode, so the same checkpoint and seed give the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics as registry
from legan_tf.evaluation import report
from legan_tf.evaluation.judges import Judges, file_digest, judges_used_in_training
from legan_tf.evaluation.lab_pass import (DEFAULT_FIRST_IDENTITY, DEFAULT_NUM_FACES, LabPass, LabSetup, lab_pass,
                                          prepare_lab, translation_record)
from legan_tf.evaluation.metric_sets import LAB, REAL, SOURCES
from legan_tf.evaluation.real_pass import DEFAULT_NUM_REAL, RealPass, open_real_faces, open_real_reference, real_pass
from legan_tf.evaluation.run_under_test import RunUnderTest, resolve_run
from legan_tf.runs import RunDir

FORMAT_VERSION = 1


def parse_compare(entries: Sequence[str]) -> List[Tuple[Optional[str], str]]:
    """`label=path` or `path` entries -> (label or None, path)."""
    parsed = []
    for entry in entries or ():
        label, _, path = entry.rpartition("=")
        parsed.append((label or None, path))
    return parsed


def _source_key(description: Mapping) -> str:
    """Two models share a baseline row when their sources are the same faces and draw."""
    return json.dumps({key: value for key, value in description.items()}, sort_keys=True, default=str)


def _results_json(group: Mapping[str, registry.MetricResult]) -> Dict[str, dict]:
    return {key: result.to_json() for key, result in group.items()}


@dataclasses.dataclass
class ModelEvaluation:
    """One model's evaluation in memory (metrics.json holds its JSON side; the figures read the rest)."""

    run: RunUnderTest
    used: Dict[str, dict]
    record: dict
    lab: Optional[LabPass] = None
    lab_setup: Optional[LabSetup] = None
    real: Optional[RealPass] = None


def evaluate(run_dir: str, compare: Sequence[str] = (), judges: Optional[Judges] = None, label: Optional[str] = None,
             real: Optional[str] = None, real_format: Optional[str] = None, sources: Sequence[str] = SOURCES,
             num_faces: int = DEFAULT_NUM_FACES, num_real: int = DEFAULT_NUM_REAL,
             first_identity: int = DEFAULT_FIRST_IDENTITY, num_identities: int = 20, seed: int = 0,
             batch_size: int = 64, sample_rows: int = 6, lab_overrides: Optional[Mapping[str, object]] = None,
             output_dir: Optional[str] = None, progress: bool = True, command: Optional[str] = None,
             fid_reference_split: str = "auto") -> dict:
    """Evaluates `run_dir` and the `compare` runs (`label=path` or `path`) on the sources that their inputs
    allow; writes metrics.json, report.md and the figures to `output_dir` (default <run_dir>/evaluation).
    Returns the metrics.json content plus "output_dir" and "files"."""
    judges = judges or Judges()
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        raise ConfigError(f"--sources={','.join(sources)}: expected names from {', '.join(SOURCES)}.")
    for name, value in (("num_faces", num_faces), ("num_identities", num_identities), ("batch_size", batch_size),
                        ("sample_rows", sample_rows)):
        if value < 1:
            raise ConfigError(f"--{name}={value} must be positive.")
    if num_real < 0:
        raise ConfigError(f"--num_real={num_real} must be 0 (all) or positive.")
    entries = [(label, run_dir)] + parse_compare(compare)
    runs = [resolve_run(path, label=name) for name, path in entries]
    labels = [run.label for run in runs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two runs share a label ({', '.join(labels)}); name them with --compare=label=path.")

    evaluations: List[ModelEvaluation] = []
    baselines: Dict[Tuple[str, str], dict] = {}
    for run in runs:
        used = judges_used_in_training(run, judges)
        record = {"label": run.label, "run_dir": os.path.abspath(run.run_dir) if run.run_dir else None,
                  "generator": os.path.abspath(run.generator_path), "generator_sha256": file_digest(run.generator_path),
                  "task": run.task, "kind": run.kind, "image_size": run.image_size,
                  "judges_used_in_training": used, "sources": {}}
        evaluation = ModelEvaluation(run, used, record)
        if LAB in sources:
            _evaluate_lab(evaluation, judges, baselines, lab_overrides, first_identity, num_identities, num_faces,
                          seed, batch_size, progress, sample_rows)
        if REAL in sources:
            _evaluate_real(evaluation, judges, baselines, real, real_format, fid_reference_split, num_real, seed,
                           batch_size, progress, sample_rows)
        evaluations.append(evaluation)

    output_dir = output_dir or RunDir(run_dir).evaluation_dir
    os.makedirs(output_dir, exist_ok=True)
    content = {
        "format": FORMAT_VERSION,
        "command": command,
        "seed": seed,
        "protocol": protocol_summary(num_faces, num_real, seed),
        "judges": judges.records(),
        "models": [evaluation.record for evaluation in evaluations],
        "baselines": list(baselines.values()),
        "references": report.PAPER_REFERENCES,
    }
    metrics_path = report.write_metrics(content, output_dir)
    figures = report.write_figures(evaluations, output_dir)
    report_path = report.write_report(content, figures, output_dir)
    files = [metrics_path, report_path, *[os.path.join(output_dir, name) for name in figures.values()]]
    return {**content, "output_dir": output_dir, "files": files}


def _share_baselines(baselines: Dict[Tuple[str, str], dict], key: Tuple[str, str], description: Mapping,
                     result, label: str) -> None:
    """Keeps the baseline rows of the first model of a source (`result.baselines`); lists every model of it."""
    if key not in baselines:
        baselines[key] = {"source": key[0], "description": description, "models": [],
                          "rows": {name: _results_json(group) for name, group in result.baselines.items()}}
    baselines[key]["models"].append(label)


def _evaluate_lab(evaluation: ModelEvaluation, judges: Judges, baselines: Dict[Tuple[str, str], dict],
                  lab_overrides, first_identity: int, num_identities: int, num_faces: int, seed: int,
                  batch_size: int, progress: bool, sample_rows: int) -> None:
    """The lab pass of one model, into its record (unavailable, with the reason, for a run off the lab)."""
    run, record = evaluation.run, evaluation.record
    try:
        setup = prepare_lab(run, lab_overrides, None, first_identity, num_identities, judges.classifier.model,
                            judges.classifier.path, require_lab_json=True)
    except ConfigError as error:
        if "no lab.json" not in str(error):
            raise
        record["sources"][LAB] = {"available": False, "reason": str(error)}
        return
    description = setup.description(num_faces, seed)
    key = (LAB, _source_key(description))
    result = lab_pass(run, setup, judges, num_faces, seed, batch_size, progress, sample_rows,
                      baselines=key not in baselines, used=evaluation.used)
    _share_baselines(baselines, key, description, result, run.label)
    record["attributes"] = list(setup.attributes)
    record["sources"][LAB] = {
        "available": True, "description": description, "metrics": _results_json(result.metrics),
        "translation": translation_record(run, setup, judges, result, seed) if result.classifier_given else None,
        "translation_reason": None if result.classifier_given else
        "no --classifier given: the learning-check figures need an independent attribute classifier"}
    evaluation.lab, evaluation.lab_setup = result, setup


def _evaluate_real(evaluation: ModelEvaluation, judges: Judges, baselines: Dict[Tuple[str, str], dict],
                   real: Optional[str], real_format: Optional[str], fid_reference_split: str, num_real: int,
                   seed: int, batch_size: int, progress: bool, sample_rows: int) -> None:
    """The real pass of one model, into its record (unavailable, with the reason, without real faces)."""
    run, record = evaluation.run, evaluation.record
    try:
        faces = open_real_faces(run, real, real_format)
    except ConfigError as error:
        if not str(error).startswith("no real faces"):
            raise
        record["sources"][REAL] = {"available": False, "reason": str(error)}
        return
    reference = open_real_reference(run, fid_reference_split, real)
    key = (REAL, _source_key({**faces[1], "num_real": num_real, "seed": seed, "num_labels": run.generator.num_labels,
                              "fid_reference": reference and reference[1]}))
    result = real_pass(run, judges, faces, num_real, seed, batch_size, progress, sample_rows,
                       baselines=key not in baselines, used=evaluation.used, reference=reference)
    _share_baselines(baselines, key, result.description, result, run.label)
    record.setdefault("attributes", list(result.names))
    record["sources"][REAL] = {"available": True, "description": result.description,
                               "metrics": _results_json(result.metrics)}
    evaluation.real = result


def protocol_summary(num_faces: int, num_real: int, seed: int) -> dict:
    """The protocol in words, stored with every evaluation (each metric's own protocol is in its result)."""
    return {
        "seed": seed,
        "lab": f"{num_faces} faces of unseen lab identities, every controlled attribute changed (mode 'both'); "
               "paired truth: the exact render of the target; FID/KID reference: those exact renders",
        "real": ("every real face" if not num_real else f"up to {num_real} real faces (a seeded choice)")
                + ", each translated to the labels of another "
                "face of the set; FID/KID reference: the unedited faces of another stored split of the run's "
                "shards where there is one (--fid_reference_split; FER2013: PublicTest), with the floor (the "
                "translated faces unedited against the same) as the real-faces baseline row; else the same real "
                "faces (paired: copying the input scores 0); one distance over all classes (per-class FIDs would "
                "need thousands of faces per class); reconstruction: translated back to the face's own labels "
                "and compared with it",
        "fid": "Inception-v3 pool features (2048) of images rounded to 8-bit levels, resized to 299 px "
               "(bilinear, antialiased), in [-1, 1]; Frechet distance; KID: unbiased MMD^2, cubic kernel, "
               "jackknife standard error",
        "ssim_psnr": "per pair on [0, 1] (max_val 1), 11x11 Gaussian window sigma 1.5 (tf.image.ssim)",
        "lpips": "LPIPS v0.1 from a local .npz, at the images' own size",
        "match_score": "cosine similarity of identity embeddings of input and output",
        "quality_score": "mean Q (1-10) of the outputs; of the real faces beside it",
        "generation_rate": "argmax of the independent classifier on the outputs against the target labels, "
                           "per attribute and per target class",
    }
