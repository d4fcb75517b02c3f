"""Edits of binary attributes (CelebA's, StarGAN's benchmark) judged on held-out people: the library side of
scripts/judge_attribute_edits.py.

Every held-out face x, with its attribute vector v (the multi-label group `attributes`), is edited once per
attribute k as StarGAN's reference edits at test time (`labels.flip_attribute`: a hair colour set and the
other hair colours cleared, any other attribute flipped). A multi-label attribute classifier trained on the
training people only (an AttributeClassifier with an `attributes` head, never a discriminator) reads every
unedited face and every edit, the edits resized to its input as the unedited faces are. Figures, over the
same faces:

  judge_accuracy[a]     the judge's reading of attribute a on the unedited faces equals the label
  asked[a]              over the edits of attribute a whose target differs from the face's own vector (a blond
                        face asked to be blond is left out), the share the judge reads with a as the target
                        asks; asked_unedited[a]: the same share of the unedited faces (what copying scores)
  kept[a]               over the edits of the other attributes that leave a's target as it was, the share in
                        which the judge reads a on the edit as it reads it on the unedited face
  asked_mean, kept_mean the means over the attributes
  edit_l1               mean |G(x, t) - x| over the edits of each attribute, [-1, 1] units

With a feature network (`inception_weights`, the 2015 FID Inception): FID and KID of one edit per face (a
seeded random attribute among those whose edit changes the target) against the same faces unedited
(`fid_paired`, `kid_paired`: copying scores 0), as `real_edit_distances` computes them. No reference split
of other people is read: the unpaired figures and their floor are not reported here.

With an identity network f trained on the training people (`identity_model`): per attribute, the mean
1 - cos(f(x), f(G(x, t))) and the share of edits f accepts as x's person at the threshold where 1% of the
unedited faces' pairs of two different people are accepted.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Callable, Dict, Optional, Sequence

import numpy as np
from tqdm import tqdm

from legan_tf.errors import ConfigError
from legan_tf.evaluation import real_edit_distances as distances
from legan_tf.evaluation.identity_real import load_identity_network, same_person_threshold, unit_rows
from legan_tf.evaluation.metrics.base import fit_to_model
from legan_tf.evaluation.real_pass import open_real_faces, read_real_faces
from legan_tf.evaluation.run_under_test import resolve_run
from legan_tf.evaluation.translation_metrics import generator_translate_fn
from legan_tf.labels import flip_attribute

GROUP = "attributes"
OUTPUT_DIR = "attribute_edits"
GRID_FACES = 8


def judge_reads(judge, images: np.ndarray, batch_size: int, protocol: dict) -> np.ndarray:
    """(N, K) 0/1: the attributes the judge reads as present (logit > 0) on `images`."""
    rows = []
    for start in range(0, len(images), batch_size):
        logits = judge(fit_to_model(images[start:start + batch_size], judge, protocol), training=False)[GROUP]
        rows.append(np.asarray(logits) > 0)
    return np.concatenate(rows).astype(np.float32)


def edit_targets(vectors: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(K, N, K): the target vectors of each face's edit of each attribute (`labels.flip_attribute`)."""
    return np.stack([flip_attribute(vectors, names, index) for index in range(len(names))])


def attribute_figures(names: Sequence[str], labels: np.ndarray, unedited: np.ndarray, targets: np.ndarray,
                      readings: np.ndarray) -> Dict[str, object]:
    """The module docstring's judge figures. labels, unedited: (N, K) 0/1 (the data's labels, the judge's
    readings of the unedited faces); targets, readings: (K, N, K) (per edited attribute, the edit's targets and
    the judge's readings of the edits)."""
    labels, unedited = np.asarray(labels) > 0.5, np.asarray(unedited) > 0.5
    targets, readings = np.asarray(targets) > 0.5, np.asarray(readings) > 0.5
    figures: Dict[str, object] = {"judge_accuracy": {}, "asked": {}, "asked_unedited": {}, "asked_edits": {},
                                  "kept": {}, "kept_edits": {}}
    for k, name in enumerate(names):
        figures["judge_accuracy"][name] = float(np.mean(unedited[:, k] == labels[:, k]))
        changed = np.any(targets[k] != labels, axis=1)  # an edit that asks for something new
        figures["asked_edits"][name] = int(changed.sum())
        figures["asked"][name] = float(np.mean(readings[k][changed, k] == targets[k][changed, k])) \
            if changed.any() else None
        figures["asked_unedited"][name] = float(np.mean(unedited[changed, k] == targets[k][changed, k])) \
            if changed.any() else None
        # Attribute k in the edits of the other attributes j whose target leaves k as the face had it.
        others = [j for j in range(len(names)) if j != k]
        kept_all = np.concatenate([(readings[j][:, k] == unedited[:, k])[targets[j][:, k] == labels[:, k]]
                                   for j in others]) if others else np.zeros(0)
        figures["kept_edits"][name] = int(len(kept_all))
        figures["kept"][name] = float(np.mean(kept_all)) if len(kept_all) else None
    for key in ("asked", "kept", "asked_unedited", "judge_accuracy"):
        values = [value for value in figures[key].values() if value is not None]
        figures[f"{key}_mean"] = float(np.mean(values)) if values else None
    return figures


def identity_figures(embed, images: np.ndarray, edits: Sequence[np.ndarray], people: Optional[np.ndarray],
                     names: Sequence[str], batch_size: int) -> Dict[str, object]:
    """Per attribute: f's mean distance from the face to its edit and the share f accepts as the same person."""
    def embedded(batch_images):
        return unit_rows(np.concatenate([embed(batch_images[start:start + batch_size])
                                         for start in range(0, len(batch_images), batch_size)]))

    inputs = embedded(images)
    threshold = same_person_threshold(inputs, people)
    figures: Dict[str, object] = {"threshold": threshold, "distance": {}, "same_person": {},
                                  "people": "the faces' people" if people is not None else "each face its own"}
    for name, edited in zip(names, edits):
        distance = 1.0 - np.sum(inputs * embedded(edited), axis=1)
        figures["distance"][name] = float(np.mean(distance))
        figures["same_person"][name] = None if threshold is None else float(np.mean(distance < threshold))
    shares = [value for value in figures["same_person"].values() if value is not None]
    figures["same_person_mean"] = float(np.mean(shares)) if shares else None
    return figures


def fid_choice(labels: np.ndarray, targets: np.ndarray, seed: int) -> np.ndarray:
    """(N,) the attribute each face is edited by for FID and KID: a seeded choice among the edits that change it
    (the first attribute for a face no edit changes, which cannot happen with a hair colour and another
    attribute)."""
    changes = np.any((targets > 0.5) != (labels > 0.5)[None], axis=2).T  # (N, K)
    rng = np.random.default_rng([seed, 62])
    draws = rng.random(changes.shape) * changes
    return np.argmax(draws, axis=1)


def judge_attribute_edits(run_dir: Optional[str], judge_path: str, generator_path: Optional[str] = None,
                          real: Optional[str] = None, num_faces: int = 2000, seed: int = 0, batch_size: int = 32,
                          identity_model: Optional[str] = None, inception_weights: Optional[str] = None,
                          output_dir: Optional[str] = None, progress: bool = True,
                          features: Optional[Callable] = None) -> Dict[str, object]:
    """Judges a multi-label generator's edits on held-out people (the module docstring); writes metrics.json,
    report.md and edits_grid.png to `output_dir` (default <run_dir>/attribute_edits) and returns the metrics."""
    from legan_tf.runs import load_attribute_classifier

    run = resolve_run(run_dir, generator_path)
    judge, judge_names = load_attribute_classifier(judge_path, "--judge",
                                                   " (train one with configs/celeba/classifier_celeba.flags)")
    source, description = open_real_faces(run, real)
    names = tuple(source.label_names.get(GROUP, ()))
    if not names:
        raise ConfigError(f"the faces have no {GROUP} labels (a multi-label group such as CelebA's); "
                          f"they have: {', '.join(source.label_names) or 'none'}")
    if tuple(judge_names.get(GROUP, ())) != names:
        raise ConfigError(f"--judge={judge_path}: its {GROUP} ({','.join(judge_names.get(GROUP, ())) or 'none'}) "
                          f"are not the faces' ({','.join(names)}), same names in the same order")
    other = [name for name in source.label_names if name != GROUP]
    sizes = {GROUP: len(names), **{name: len(source.label_names[name]) for name in other}}
    if sum(sizes.values()) != run.generator.num_labels:
        raise ConfigError(f"the generator takes {run.generator.num_labels} labels, the faces' groups make "
                          f"{sum(sizes.values())} ({', '.join(f'{k} {v}' for k, v in sizes.items())})")
    images, labels, _ = read_real_faces(source, [GROUP, *other], num_faces, seed, batch_size, extra=("identity",))
    vectors = labels[GROUP].astype(np.float32)
    people = labels.get("identity")
    translate = generator_translate_fn(run.generator, sizes, batch_size)
    targets = edit_targets(vectors, names)
    protocol: Dict[str, object] = {}
    unedited = judge_reads(judge, images, batch_size, protocol)
    edits, readings = [], []
    for k, name in enumerate(tqdm(names, desc="attribute edits", unit="attribute", disable=not progress,
                                  file=sys.stderr)):
        edited = translate(images, {GROUP: targets[k], **{name_: labels[name_] for name_ in other}})
        edits.append(np.clip(edited, -1.0, 1.0))
        readings.append(judge_reads(judge, edits[-1], batch_size, protocol))
    metrics: Dict[str, object] = {"faces": int(len(images)), "people": int(len(np.unique(people)))
                                  if people is not None else None, "attributes": list(names), "data": description,
                                  "generator": run.generator_path, "judge": os.path.abspath(judge_path),
                                  "judge_protocol": protocol, "seed": seed}
    metrics.update(attribute_figures(names, vectors, unedited, targets, np.stack(readings)))
    metrics["edit_l1"] = {name: float(np.mean(np.abs(edit - images))) for name, edit in zip(names, edits)}
    if identity_model:
        embed, record = load_identity_network(identity_model)
        metrics["identity"] = {**identity_figures(embed, images, edits, people, names, batch_size), "model": record}
    if inception_weights or features is not None:
        if features is None:
            from legan_tf.evaluation.metrics.base import Unavailable
            from legan_tf.evaluation.metrics.features import inception_features

            try:
                features = inception_features(inception_weights)
            except Unavailable as reason:
                raise ConfigError(f"--inception_weights={inception_weights}: {reason}") from None
        chosen = fid_choice(vectors, targets, seed)
        one_edit = np.stack(edits)[chosen, np.arange(len(images))]
        metrics["distances"] = distances.distance_figures(
            np.asarray(features(images), np.float32), np.asarray(features(one_edit), np.float32))
    output_dir = output_dir or os.path.join(run_dir or os.path.dirname(os.path.abspath(run.generator_path)),
                                            OUTPUT_DIR)
    os.makedirs(output_dir, exist_ok=True)
    write_outputs(output_dir, metrics, images, edits, names)
    return metrics


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def report_lines(metrics: Dict[str, object]) -> list:
    names = metrics["attributes"]
    lines = ["# Attribute edits on held-out people", "",
             f"{metrics['faces']} faces ({metrics['people'] or 'unknown'} people) of {metrics['data']['faces_from']}; "
             f"generator {metrics['generator']}; judge {metrics['judge']}.", "",
             "| attribute | judge accuracy (unedited) | read as asked | unedited read so | kept in other edits "
             "| edit L1 |", "|---|---:|---:|---:|---:|---:|"]
    for name in names:
        lines.append(f"| {name} | {_percent(metrics['judge_accuracy'][name])} | {_percent(metrics['asked'][name])} "
                     f"({metrics['asked_edits'][name]} edits) | {_percent(metrics['asked_unedited'][name])} | "
                     f"{_percent(metrics['kept'][name])} | {metrics['edit_l1'][name]:.3f} |")
    lines.append(f"| mean | {_percent(metrics['judge_accuracy_mean'])} | {_percent(metrics['asked_mean'])} | "
                 f"{_percent(metrics['asked_unedited_mean'])} | {_percent(metrics['kept_mean'])} | |")
    if "identity" in metrics:
        identity = metrics["identity"]
        lines += ["", "Identity (f of the training people): same person at 1% false accepts, per attribute: " +
                  ", ".join(f"{name} {_percent(identity['same_person'][name])}" for name in names) +
                  f"; mean {_percent(identity['same_person_mean'])}."]
    if "distances" in metrics:
        lines += ["", "One edit per face against the same faces unedited: " +
                  distances.fid_text(metrics["distances"], "fid_paired", paired=True) +
                  f"; KID x1000 {1000 * metrics['distances']['kid_paired']:.2f} "
                  f"+- {1000 * metrics['distances']['kid_paired_error']:.2f}."]
    return lines


def write_outputs(output_dir: str, metrics: Dict[str, object], images: np.ndarray, edits: Sequence[np.ndarray],
                  names: Sequence[str]) -> None:
    from legan_tf import visualize

    with open(os.path.join(output_dir, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2, default=str)
        handle.write("\n")
    with open(os.path.join(output_dir, "report.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(report_lines(metrics)) + "\n")
    columns = [images[:GRID_FACES], *(edit[:GRID_FACES] for edit in edits)]
    grid = visualize.titled_mosaic([visualize.to_uint8(column) for column in columns],
                                   ["input", *(name[:10] for name in names)])
    visualize.save_png(grid, os.path.join(output_dir, "edits_grid.png"))
