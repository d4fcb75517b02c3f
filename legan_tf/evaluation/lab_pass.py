"""Source 1 of an evaluation: the face lab the run trained on, unseen identities, exact targets.

Faces of identities the lab never rendered are translated as the learning check translates them
(`translation_metrics.translation_figures`: seeded sources and targets, the edit modes), each with the
exact render of its target as paired truth. One pass gives the learning-check figures of
scripts/evaluate_translation.py and, on the joint edits ("both"), every metric of the registry: FID and
KID of the outputs against the exact target renders, SSIM, PSNR and LPIPS against them, the match
score, Q of the outputs and of the exact targets, the generation rate with its confusion matrices.

The lab's settings come from lab.json in the lab root (the folder holding the run's manifest's folder),
then the caller's overrides (`lab_settings`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from legan_tf.data.synthetic.expressions import EXPRESSION_SETS
from legan_tf.data.synthetic.writer import SETTINGS_FILE as LAB_SETTINGS_FILE
from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics as registry
from legan_tf.evaluation.judges import Judges, judges_used_in_training
from legan_tf.evaluation.metric_sets import (BASELINE_INPUT, BASELINE_REAL_FACES, LAB, LAB_METRICS, feed,
                                             make_metrics, results)
from legan_tf.evaluation.run_under_test import RunUnderTest
from legan_tf.evaluation.translation_metrics import (ATTRIBUTES, BOTH, Chunk, class_names, generator_translate_fn,
                                                     kept_breakdown, learning_check_verdict, translation_figures)

DEFAULT_NUM_FACES = 300
DEFAULT_FIRST_IDENTITY = 100000


# --- the lab ---------------------------------------------------------------------------------------

def lab_settings(data_path: Optional[str], overrides: Mapping[str, object], expression_names: Sequence[str],
                 num_lightings: int, image_size: int) -> Dict[str, object]:
    """The FaceLab arguments: `<lab>/lab.json` (the lab root holds `multipie/manifest.csv`, or
    `rgbd/manifest.csv` for a run on the lab's RGB-depth pairs), then overrides.

    Without a lab.json, the expression set is the one whose names are the run's, the lights the
    run's count, the size the model's, and seed and ambient FaceLab's defaults (held-out identities
    are unseen under any seed; the ambient share must be the lab's, so pass it when not the default).
    """
    settings = {"image_size": image_size, "expression_set": None, "num_lightings": num_lightings,
                "seed": 0, "ambient": 0.25, "subjects": [], "lab_json": None, "part": "multipie"}
    if data_path:
        data_path = os.path.abspath(data_path)
        lab_json = os.path.join(os.path.dirname(os.path.dirname(data_path)), LAB_SETTINGS_FILE)
        # The part the run trained on: its manifest's folder (rgbd/ for RGB-depth pairs).
        part = "rgbd" if os.path.basename(os.path.dirname(data_path)) == "rgbd" else "multipie"
        if os.path.isfile(lab_json):
            with open(lab_json, encoding="utf-8") as handle:
                saved = json.load(handle)
            if part not in saved or not saved.get("counts", {}).get(part, 1):
                raise ConfigError(f"{lab_json}: the lab has no {part} part, so no labelled faces to translate.")
            settings.update(part=part)
            settings.update(image_size=saved["image_size"], expression_set=saved[part]["expression_set"],
                            num_lightings=len(saved["lighting_names"]), seed=saved["seed"],
                            ambient=saved["ambient"], subjects=saved["subjects"], lab_json=lab_json)
    settings.update({name: value for name, value in overrides.items() if value is not None})
    if settings["expression_set"] is None:
        matching = [name for name, names in EXPRESSION_SETS.items() if tuple(names) == tuple(expression_names)]
        if not matching:
            raise ConfigError(f"the expressions {','.join(expression_names)} are no face-lab expression set "
                              f"({', '.join(sorted(EXPRESSION_SETS))}); pass --lab_expression_set.")
        settings["expression_set"] = matching[0]
    return settings


@dataclasses.dataclass
class LabSetup:
    """The lab a run trained on, its unseen identities and what the generator controls of it."""

    lab: Any
    lab_args: Dict[str, object]
    attributes: Tuple[str, ...]
    label_sizes: Dict[str, int]
    identities: List[int]

    @property
    def names(self) -> Dict[str, List[str]]:
        return class_names(self.lab)

    def description(self, num_faces: int, seed: int) -> dict:
        return {"source": "face lab, unseen identities, exact target renders as paired truth",
                "lab": {name: value for name, value in self.lab_args.items() if name != "subjects"},
                "identities": [self.identities[0], self.identities[-1]], "num_faces": num_faces, "seed": seed,
                "attributes": list(self.attributes),
                "edits": "both: every controlled attribute changed to another value drawn uniformly "
                         "(translation_metrics.draw_edits)"}


def prepare_lab(run: RunUnderTest, lab_overrides: Optional[Mapping[str, object]] = None,
                attributes: Optional[Sequence[str]] = None, first_identity: int = DEFAULT_FIRST_IDENTITY,
                num_identities: int = 20, classifier=None, classifier_path: str = "",
                require_lab_json: bool = False) -> LabSetup:
    """The face lab of the run (lab.json beside its data_path, then `lab_overrides`), checked against the
    generator and, when given, the classifier. With `require_lab_json`, a run that did not train on the
    lab is a ConfigError (the caller reports the lab source unavailable)."""
    from legan_tf.data.synthetic.render import FaceLab

    image_size = run.image_size
    if classifier is not None and classifier.image_size != image_size:
        raise ConfigError(f"size mismatch: the classifier {classifier_path} works on {classifier.image_size} px "
                          f"images, the generator on {image_size} px; train the classifier at {image_size} px "
                          f"(--image_size={image_size}).")
    expression_names = run.expression_names
    num_lightings = len(run.lighting_names)
    lab_args = lab_settings(run.settings.get("data_path"), lab_overrides or {}, expression_names, num_lightings,
                            image_size)
    if require_lab_json and not lab_args["lab_json"]:
        raise ConfigError("the run did not train on the face lab (no lab.json beside its data_path "
                          f"{run.settings.get('data_path')}): no unseen faces with exact targets")
    try:
        lab = FaceLab(lab_args["image_size"], lab_args["expression_set"], lab_args["num_lightings"],
                      lab_args["seed"], lab_args["ambient"])
    except ValueError as error:
        raise ConfigError(f"the face lab cannot be built from these settings: {error}") from None
    if tuple(lab.expression_names) != expression_names:
        raise ConfigError(f"the lab's expressions ({','.join(lab.expression_names)}) are not the run's "
                          f"({','.join(expression_names)}), so the label ids would mean other classes.")
    # RGB-depth runs have no lighting labels: the lab's lights are only the faces' nuisance then.
    if lab.num_lightings != num_lightings and lab_args["part"] != "rgbd":
        raise ConfigError(f"the lab has {lab.num_lightings} lights, the run {num_lightings}.")
    class_counts = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
    attributes = tuple(attributes) if attributes else run.attributes(class_counts)
    if set(attributes) - set(ATTRIBUTES):
        raise ConfigError(f"--attributes={','.join(attributes)}: expected names from {', '.join(ATTRIBUTES)}.")
    label_sizes = {name: class_counts[name] for name in attributes}
    if sum(label_sizes.values()) != run.generator.num_labels:
        raise ConfigError(f"the generator takes {run.generator.num_labels} labels, but {label_sizes} make "
                          f"{sum(label_sizes.values())}.")
    if classifier is not None:
        missing_heads = {name: count for name, count in label_sizes.items()
                         if classifier.head_classes.get(name) != count}
        if missing_heads:
            raise ConfigError(f"{classifier_path}: its heads {classifier.head_classes} do not cover {missing_heads}.")
    identities = list(range(first_identity, first_identity + num_identities))
    seen = sorted(set(identities) & set(lab_args["subjects"]))
    if seen:
        raise ConfigError(f"identities {seen[0]}..{seen[-1]} are in the lab the models trained on; pick "
                          "--first_identity beyond its subjects so the faces are unseen.")
    return LabSetup(lab, lab_args, attributes, label_sizes, identities)


class _NoClassifier:
    """Stands in for the classifier when none is given: the translation figures are then dropped."""

    def __init__(self, counts: Mapping[str, int]):
        self.counts = dict(counts)

    def __call__(self, images):
        return {name: np.zeros((len(images), count), np.float32) for name, count in self.counts.items()}


@dataclasses.dataclass
class LabPass:
    """What one pass over the lab gives: the learning-check figures and the registry's metrics."""

    figures: Any                                  # translation_metrics.TranslationFigures
    metrics: Dict[str, registry.MetricResult]     # on the joint edits
    baselines: Dict[str, Dict[str, registry.MetricResult]]
    verdict: List[tuple]
    classifier_given: bool


def lab_pass(run: RunUnderTest, setup: LabSetup, judges: Judges, num_faces: int = DEFAULT_NUM_FACES,
             seed: int = 0, batch_size: int = 64, progress: bool = True, sample_rows: int = 4,
             metric_names: Sequence[str] = LAB_METRICS, baselines: bool = False,
             used: Optional[Mapping[str, dict]] = None) -> LabPass:
    """Translates the lab draw once: translation_figures' learning-check figures (edit modes, kept
    breakdown, sample rows, depth consistency with judges.depth), and on the joint edits the registry's
    `metric_names` against the exact targets (and the baselines' metrics when `baselines`)."""
    lab, attributes, image_size = setup.lab, setup.attributes, run.image_size
    if used is None:
        used = judges_used_in_training(run, judges)
    context = {"source": LAB, "model": run.label,
               "reference": "the exact renders of the targets (real lab faces of the target classes), "
                            f"{num_faces} joint edits of identities {setup.identities[0]}..{setup.identities[-1]}"}
    metric_set = make_metrics(metric_names, judges, used, setup.names, context, batch_size, seed)
    baseline_sets = {}
    if baselines:
        baseline_context = {**context, "model": None}
        baseline_sets = {
            BASELINE_REAL_FACES: make_metrics(("match_score", "quality_score", "generation_rate"), judges, used,
                                              setup.names, baseline_context, batch_size, seed),
            BASELINE_INPUT: make_metrics(("fid", "kid", "lpips", "ssim", "psnr"), judges, used, setup.names,
                                         baseline_context, batch_size, seed),
        }
    translate = generator_translate_fn(run.generator, setup.label_sizes, batch_size)

    def translate_and_score(images: np.ndarray, targets: Dict[str, np.ndarray], chunk: Chunk) -> np.ndarray:
        """The generator's translation of one chunk of the draw; the joint edits are scored on the way."""
        outputs = np.asarray(translate(images, targets), np.float32)
        if chunk.mode == BOTH and (metric_set or baseline_sets):
            truth = chunk.truth
            feed(metric_set, outputs=outputs, reals=truth, inputs=images, targets_paired=truth, target_labels=targets)
            if baseline_sets:
                feed(baseline_sets[BASELINE_REAL_FACES], outputs=truth, reals=truth, inputs=images,
                     target_labels=targets)
                feed(baseline_sets[BASELINE_INPUT], outputs=images, reals=truth, targets_paired=truth)
        return outputs

    geometry_fn, geometry = None, "depth"
    if judges.depth.model is not None:
        judge = judges.depth.model
        if judge.image_size != image_size:
            raise ConfigError(f"--depth_judge={judges.depth.path} works on {judge.image_size} px images, the "
                              f"generator on {image_size} px.")
        geometry = judge.geometry
        geometry_fn = _batched(judge, batch_size)
    classifier = judges.classifier.model
    figures = translation_figures(translate_and_score, lab, classifier or _NoClassifier(setup.label_sizes),
                                  setup.identities, num_faces, seed, attributes, image_size, batch_size, progress,
                                  sample_rows, geometry_fn, geometry, pass_chunk=True)
    verdict = learning_check_verdict(figures.metrics, run.kind) if classifier is not None else []
    return LabPass(figures, results(metric_set), {name: results(group) for name, group in baseline_sets.items()},
                   verdict, classifier is not None)


def translation_record(run: RunUnderTest, setup: LabSetup, judges: Judges, result: LabPass, seed: int) -> dict:
    """The learning check's JSON record (translation_metrics.json of scripts/evaluate_translation.py)."""
    verdict = result.verdict
    return {
        "generator": os.path.abspath(run.generator_path),
        "classifier": os.path.abspath(judges.classifier.path) if judges.classifier.path else None,
        "depth_judge": os.path.abspath(judges.depth.path) if judges.depth.path else None,
        "task": run.task,
        "kind": run.kind,
        "attributes": list(setup.attributes),
        "image_size": run.image_size,
        "lab": {name: value for name, value in setup.lab_args.items() if name != "subjects"},
        "identities": [setup.identities[0], setup.identities[-1]],
        "seed": seed,
        "metrics": result.figures.metrics,
        "verdict": [{"name": name, "value": value, "target": target, "passed": passed}
                    for name, value, target, passed in verdict],
        "passed": all(passed for *_, passed in verdict),
        "kept_breakdown": kept_breakdown(result.figures.kept_counts, setup.names),
    }


def _batched(network, batch_size: int):
    """numpy images -> numpy outputs of `network`, `batch_size` at a time."""

    def run(images):
        return np.concatenate([np.asarray(network(images[start:start + batch_size]))
                               for start in range(0, len(images), batch_size)])

    return run
