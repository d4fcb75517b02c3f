"""The GAN learning check of a saved generator: scripts/evaluate_translation.py's library side.

evaluate_run resolves the run (run_io), translates and scores unseen face-lab faces
(translation_metrics), and writes the report and the sample figure (translation_report).
"""

from __future__ import annotations

import json
import os
from typing import Dict, Mapping, Optional, Sequence

from legan_tf.data.config import MULTIPIE_EXPRESSIONS, MULTIPIE_NUM_LIGHTINGS
from legan_tf.data.synthetic.render import FaceLab
from legan_tf.errors import ConfigError
from legan_tf.evaluation.run_io import (EVALUATION_DIR, GENERATOR_FILE, METRICS_FILE, SAMPLES_FILE, infer_attributes,
                                        lab_settings, load_model, read_run_settings)
from legan_tf.evaluation.translation_metrics import (ATTRIBUTES, CHECK_SETS, DEFAULT_CHECK, class_names,
                                                     generator_translate_fn, kept_breakdown, learning_check_verdict,
                                                     translation_figures)
from legan_tf.evaluation.translation_report import plot_samples


def recipe_check(task: Optional[str]) -> str:
    """The check set a run's recipe holds its generators to: its task class's `translation_check`.

    A run with no --task (or a recipe that names no check) gets DEFAULT_CHECK.
    """
    if not task:
        return DEFAULT_CHECK
    from legan_tf import tasks  # TensorFlow, and only needed here

    try:
        task_class = tasks.get_task_class(task)
    except ValueError as error:
        raise ConfigError(f"{error} The run's recipe is unknown here: pass --kind.") from None
    check = getattr(task_class, "translation_check", DEFAULT_CHECK)
    if check not in CHECK_SETS:
        raise ConfigError(f"--task={task} names the learning check {check!r}; known: {', '.join(CHECK_SETS)}.")
    return check


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
    from legan_tf.models.classifier import AttributeClassifier

    if kind is not None and kind not in CHECK_SETS:
        raise ConfigError(f"--kind={kind}: expected one of {', '.join(CHECK_SETS)}.")
    for name, value in (("num_faces", num_faces), ("num_identities", num_identities), ("batch_size", batch_size),
                        ("sample_rows", sample_rows)):
        if value < 1:
            raise ConfigError(f"--{name}={value} must be positive.")
    if not run_dir and not generator_path:
        raise ConfigError("give --run_dir=<a GAN run directory> or --generator=<generator.keras>.")
    resolved = read_run_settings(run_dir) if run_dir else {}
    resolved.update({name: value for name, value in (settings or {}).items() if value is not None})
    kind = kind or recipe_check(resolved.get("task"))
    if not generator_path:
        generator_path = os.path.join(run_dir, GENERATOR_FILE)
        if not os.path.isfile(generator_path):
            raise ConfigError(f"--run_dir={run_dir}: it has no {GENERATOR_FILE} (is the GAN run finished?); "
                              "or pass --generator=<file.keras>.")
    generator = load_model(generator_path, "generator", "--generator")
    if not all(hasattr(generator, name) for name in ("image_size", "num_labels")):
        raise ConfigError(f"{generator_path}: a {type(generator).__name__}, not a label-conditioned generator.")
    classifier = load_model(classifier_path, "classifier", "--classifier")
    if not isinstance(classifier, AttributeClassifier):
        raise ConfigError(f"{classifier_path}: a {type(classifier).__name__}, not an AttributeClassifier.")

    image_size = generator.image_size
    if resolved.get("image_size") not in (None, image_size):
        raise ConfigError(f"the generator works on {image_size} px images but the flags say "
                          f"--image_size={resolved['image_size']}.")
    if classifier.image_size != image_size:
        raise ConfigError(f"size mismatch: the classifier {classifier_path} works on {classifier.image_size} px "
                          f"images, the generator on {image_size} px; train the classifier at {image_size} px "
                          f"(--image_size={image_size}).")
    # Unset, they default as the data flags do: Multi-PIE's expressions and 20 lights.
    expression_names = tuple(resolved.get("expression_names") or MULTIPIE_EXPRESSIONS)
    num_lightings = (len(resolved["lighting_names"]) if resolved.get("lighting_names")
                     else resolved.get("num_lightings", MULTIPIE_NUM_LIGHTINGS))

    lab_args = lab_settings(resolved.get("data_path"), lab_overrides or {}, expression_names, num_lightings, image_size)
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
    attributes = tuple(attributes) if attributes else infer_attributes(generator.num_labels, class_counts)
    if set(attributes) - set(ATTRIBUTES):
        raise ConfigError(f"--attributes={','.join(attributes)}: expected names from {', '.join(ATTRIBUTES)}.")
    label_sizes = {name: class_counts[name] for name in attributes}
    if sum(label_sizes.values()) != generator.num_labels:
        raise ConfigError(f"the generator takes {generator.num_labels} labels, but {label_sizes} make "
                          f"{sum(label_sizes.values())}.")
    missing_heads = {name: count for name, count in label_sizes.items()
                     if classifier.head_classes.get(name) != count}
    if missing_heads:
        raise ConfigError(f"{classifier_path}: its heads {classifier.head_classes} do not cover {missing_heads}.")

    identities = list(range(first_identity, first_identity + num_identities))
    seen = sorted(set(identities) & set(lab_args["subjects"]))
    if seen:
        raise ConfigError(f"identities {seen[0]}..{seen[-1]} are in the lab the models trained on; pick "
                          "--first_identity beyond its subjects so the faces are unseen.")

    geometry_fn, geometry = None, "depth"
    if depth_judge_path:
        from legan_tf.models.depth import DepthGenerator

        judge = load_model(depth_judge_path, "depth network", "--depth_judge")
        if not isinstance(judge, DepthGenerator):
            raise ConfigError(f"{depth_judge_path}: a {type(judge).__name__}, not a DepthGenerator "
                              "(the depth_generator.keras of a --task=depth_pretrain run).")
        if judge.image_size != image_size:
            raise ConfigError(f"--depth_judge={depth_judge_path} works on {judge.image_size} px images, the "
                              f"generator on {image_size} px.")
        geometry = judge.geometry
        geometry_fn = _batched(judge, batch_size)
    translate = generator_translate_fn(generator, label_sizes, batch_size)
    metrics, kept_counts, samples = translation_figures(translate, lab, classifier, identities, num_faces, seed,
                                                        attributes, image_size, batch_size, progress, sample_rows,
                                                        geometry_fn, geometry)
    verdict = learning_check_verdict(metrics, kind)
    report = {
        "generator": os.path.abspath(generator_path),
        "classifier": os.path.abspath(classifier_path),
        "depth_judge": os.path.abspath(depth_judge_path) if depth_judge_path else None,
        "task": resolved.get("task"),
        "kind": kind,
        "attributes": list(attributes),
        "image_size": image_size,
        "lab": {name: value for name, value in lab_args.items() if name != "subjects"},
        "identities": [identities[0], identities[-1]],
        "seed": seed,
        "metrics": metrics,
        "verdict": [{"name": name, "value": value, "target": target, "passed": passed}
                    for name, value, target, passed in verdict],
        "passed": all(passed for *_, passed in verdict),
        "kept_breakdown": kept_breakdown(kept_counts, class_names(lab)),
    }
    output_dir = output_dir or os.path.join(run_dir or os.path.dirname(os.path.abspath(generator_path)),
                                            EVALUATION_DIR)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    plot_samples(samples, class_names(lab), os.path.join(output_dir, SAMPLES_FILE))
    report["output_dir"] = output_dir
    return report


def _batched(network, batch_size: int):
    """numpy images -> numpy outputs of `network`, `batch_size` at a time."""
    import numpy as np

    def run(images):
        return np.concatenate([np.asarray(network(images[start:start + batch_size]))
                               for start in range(0, len(images), batch_size)])

    return run
