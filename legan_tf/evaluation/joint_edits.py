"""The real-face check of a generator that edits expression AND lighting (LEGAN, or StarGAN with both label
groups): scripts/judge_joint_edits.py's library side.

Every held-out face x (a stored split of prepare_data.py's shards of relit faces, e.g. relit FER2013
PrivateTest photos: unseen photos of people unseen in training), with its expression e and lighting l, is
edited one attribute at a time:

  expression-only edits  G(x, (t, l)) for every expression t != e (the lighting target is the face's own)
  lighting-only edits    G(x, (e, t)) for every lighting t != l
  the identity edit      G(x, (e, l))

Judges (each an independent classifier, never a discriminator; images resized to each judge's input with
antialiased bilinear filtering, the unedited faces too) read every image: an expression judge
(--expression_judge, plus any --other_judges second opinions, each read over the expressions it knows) and a
lighting judge (--lighting_judge, an AttributeClassifier with a lighting head trained on relit faces of the
training split only). Figures:

  judge_accuracy   a judge's reading of the unedited faces equals their label (the ceiling of its rates)
  target_rate      on edits of the judge's own attribute: it reads the target t (the generation rate),
                   with relative_to_ceiling = target_rate / judge_accuracy (target: at least 80%)
  baseline         how often it reads t on the unedited x over the same pairs (a generator that changes
                   nothing scores this)
  kept             on edits of the OTHER attribute: its reading of the edit equals its reading of the
                   unedited face (disentanglement: a lighting-only edit keeps the expression; target: 90%)
  kept_by_data     where the split holds other images of a face's subject that differ from it in the edited
                   attribute only (relit shards: the same photo under every light), the judge's reading of
                   those copies against its reading of the face, over the same pairs (the kept share that
                   reproducing the data exactly would score; kept_of_data = kept / kept_by_data;
                   relit_copies). FER2013 relit shards hold every light of each photo, one expression:
                   lighting edits only
  identity_l1      mean |G(x, (e, l)) - x|; edit_l1: mean |G(x, t) - x| over each attribute's edits
  texture_ratio    mean |Laplacian| of the edits over that of the unedited faces (real_edits.texture_energy)
  identity         with --identity_model (an identity network f trained on real people, e.g.
                   configs/relit/identity_ckplus_relit.flags):
                   distance: mean 1 - cos(f(x), f(edit)), as L_id measures it; same_person: the share of edits f
                   accepts as x's person at the threshold that accepts 1% of the pairs of two different people
                   among the unedited faces (their subjects differ), a figure no lighting or expression judge
                   can be pleased into
  lighting_fit     with --normals_dir (make_depth.py's normal maps of the held-out photos): the light of each
                   lighting edit fitted over its face's own normals, a lighting judge with no learned weights
                   (lighting_geometry)
  distances        with --inception_weights (the FID network): FID and KID of one edit per face and attribute,
                   G(x, t) to a seeded target t other than the face's own, against the unedited faces of another
                   stored split (relit shards store train and test only, so by default a seeded choice of as many
                   training faces: other people's photos, none of them edited), beside the floor (the edited
                   faces unedited against the same) and the paired figures (real_edit_distances)
  warp             for a generator that moves the photo along a displacement field (LEGANGenerator with
                   expression_output="warp"): the field's mean length over the central half of the face for
                   expression edits and for the face's own expression, and warp_grid.png (warp_field)

With no generator (`evaluate_data_agreement`, judge_joint_edits.py --data_only), only the judges' accuracy and
the kept_by_data figures: how far a judge agrees with itself across images that differ in one attribute, the
most a generator can be credited with, before one is trained.

Outputs (`evaluate_joint_edits`): metrics.json, report.md, expression_grid.png and lighting_grid.png (held-out
faces x every target of one attribute, the other kept; frames: green where the attribute's judge reads the
column's target, red where not, grey for the face's own value) and joint_grid.png (one face: expressions x
lightings, both edited).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm

from legan_tf.errors import ConfigError
from legan_tf.evaluation import lighting_geometry, warp_field
from legan_tf.evaluation import other_judges as second_opinion
from legan_tf.evaluation.relit_copies import _framed, copies_grid, data_agreement, read_split
from legan_tf.evaluation import real_edit_distances as distances
from legan_tf.evaluation.judges import file_digest, load_judges
from legan_tf.evaluation.real_edits import (HIT, MISS, NONE, OWN, _jsonable, _labels_of, _mean_l1, _percent, _ratio,
                                            _share, choose_grid_faces, open_split, texture_energy)
from legan_tf.evaluation.identity_real import EditIdentity, load_identity_network
from legan_tf.evaluation.real_pass import choose_faces, read_real_faces, stored_split_names
from legan_tf.evaluation.run_under_test import resolve_run
from legan_tf.evaluation.translation_metrics import generator_translate_fn
from legan_tf.runs import labels_beside, read_label_names

EXPRESSION, LIGHTING = "expression", "lighting"
ATTRIBUTES = (EXPRESSION, LIGHTING)
# Targets: each attribute's generation rate at least 80% of its judge's accuracy on real faces, and each
# attribute kept by the other's edits in at least 90% of them.
TARGET_SHARE_OF_CEILING = 0.80
TARGET_KEPT = 0.90
OUTPUT_DIR = "joint_edits"
METRICS_FILE, REPORT_FILE = "metrics.json", "report.md"
GRID_FILES = {EXPRESSION: "expression_grid.png", LIGHTING: "lighting_grid.png"}
JOINT_GRID_FILE = "joint_grid.png"
WARP_GRID_FILE = "warp_grid.png"
FORMAT_VERSION = 1

JudgeFn = Callable[[np.ndarray], np.ndarray]
TranslateFn = Callable[[np.ndarray, Dict[str, np.ndarray]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Judge:
    name: str        # "expression", "lighting", or an --other_judges label
    attribute: str   # which attribute it reads
    read: JudgeFn    # [-1, 1] images -> class ids of the generator's labels of `attribute`
    record: Dict[str, object]
    # The generator's classes of `attribute` the judge knows (None: all). A second opinion trained elsewhere may
    # lack some (the FER2013 mini-Xception has no contempt): its figures leave out the faces whose own class
    # and the edits whose target it has no class for, as judge_real_edits.py's second opinions do.
    known: Optional[Sequence[int]] = None


def attribute_judge(classifier, attribute: str, num_classes: int, batch_size: int = 64,
                    protocol: Optional[dict] = None) -> JudgeFn:
    """images in [-1, 1] -> the classifier's argmax of its `attribute` head, resized to its input first."""
    from legan_tf.evaluation.metrics.base import call_in_batches, call_model, fit_to_model

    protocol = {} if protocol is None else protocol
    heads = dict(getattr(classifier, "head_classes", {}))
    if heads.get(attribute) != num_classes:
        raise ConfigError(f"the {attribute} judge " + (
            f"has {heads[attribute]} {attribute} classes, the generator {num_classes}." if attribute in heads
            else f"has no {attribute} head (heads: {', '.join(heads) or 'none'})."))

    def judge(images: np.ndarray) -> np.ndarray:
        images = fit_to_model(np.asarray(images, np.float32), classifier, protocol)
        logits = call_in_batches(lambda part: call_model(classifier, part), images, batch_size)
        return np.asarray(logits[attribute]).argmax(axis=-1).astype(np.int64)

    return judge


@dataclasses.dataclass
class JointReadings:
    labels: Dict[str, np.ndarray]                   # attribute -> (N,) the faces' own ids
    input_read: Dict[str, np.ndarray]               # judge -> (N,) its reading of the unedited faces
    edit_read: Dict[str, Dict[str, np.ndarray]]     # edited attribute -> judge -> (N, C_attribute)
    edit_l1: Dict[str, np.ndarray]                  # edited attribute -> (N, C_attribute)
    input_texture: np.ndarray                       # (N,)
    edit_texture: Dict[str, np.ndarray]             # edited attribute -> (N, C_attribute)
    # With an identity network: edited attribute -> f's distances of its edits (identity_real.EditIdentity), and
    # the faces' subject ids (None where each face is its own person).
    identity: Optional[Dict[str, EditIdentity]] = None
    people: Optional[np.ndarray] = None
    # With the faces' normal maps: the light fitted over them on each unedited face and lighting edit.
    light_fits: Optional[lighting_geometry.LightingFits] = None
    # With the FID network: its features of the unedited faces and of one edit per face and attribute.
    features: Optional["EditFeatures"] = None


class EditFeatures:
    """The FID network's features of the unedited faces and of one edit per face and attribute, G(x, t) to a
    seeded target t other than the face's own (real_edit_distances.fid_targets_for; the lighting's seed is one
    on from the expression's, so the two choices are drawn apart)."""

    def __init__(self, extract: Callable[[np.ndarray], np.ndarray], labels: Mapping[str, np.ndarray],
                 sizes: Mapping[str, int], seed: int):
        self.extract = extract
        self.targets = {name: distances.fid_targets_for(labels[name], sizes[name], seed + place)
                        for place, name in enumerate(ATTRIBUTES)}
        self.input: List[np.ndarray] = []
        self.edits: Dict[str, List[np.ndarray]] = {name: [] for name in ATTRIBUTES}
        self._chosen: Dict[str, np.ndarray] = {}

    def observe_input(self, x: np.ndarray) -> None:
        self.input.append(np.asarray(self.extract(x), np.float32))
        self._chosen = {name: np.zeros_like(x) for name in ATTRIBUTES}

    def observe(self, rows: slice, name: str, target: int, edited: np.ndarray) -> None:
        chosen = self.targets[name][rows] == target
        self._chosen[name][chosen] = edited[chosen]

    def finish(self, name: str) -> None:
        """After every target of `name` in a batch: the features of its chosen edits."""
        self.edits[name].append(np.asarray(self.extract(self._chosen[name]), np.float32))

    def figures(self, reference: Optional[np.ndarray], reference_name: Optional[str]) -> Dict[str, Dict]:
        unedited = np.concatenate(self.input)
        return {name: distances.distance_figures(unedited, np.concatenate(self.edits[name]), reference,
                                                 reference_name) for name in ATTRIBUTES}


def edit_each_attribute(translate: TranslateFn, judges: Sequence[Judge], images: np.ndarray,
                        labels: Mapping[str, np.ndarray], sizes: Mapping[str, int], batch_size: int = 64,
                        progress: bool = False, embed: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                        people: Optional[np.ndarray] = None,
                        light_fits: Optional[lighting_geometry.LightingFits] = None,
                        features: Optional[EditFeatures] = None) -> JointReadings:
    """Edits every face to every value of each attribute in turn (the other kept at the face's own) and judges
    every result. Column t of an attribute is G(x, t); the face's own column is the identity edit. With `embed`
    (images -> identity embeddings), also f's distance of every edit to its face, and the same-person threshold
    over the unedited faces (`people`: their subject ids, None where each face is its own person)."""
    images = np.asarray(images, np.float32)
    count = len(images)
    if count == 0:
        raise ConfigError("no faces to edit.")
    own = {name: np.asarray(labels[name], np.int64) for name in ATTRIBUTES}
    for name in ATTRIBUTES:
        if own[name].min() < 0 or own[name].max() >= sizes[name]:
            raise ConfigError(f"{name} labels outside 0..{sizes[name] - 1}: {np.unique(own[name])}")
    input_read = {judge.name: np.zeros(count, np.int64) for judge in judges}
    edit_read = {name: {judge.name: np.zeros((count, sizes[name]), np.int64) for judge in judges}
                 for name in ATTRIBUTES}
    edit_l1 = {name: np.zeros((count, sizes[name])) for name in ATTRIBUTES}
    edit_texture = {name: np.zeros((count, sizes[name])) for name in ATTRIBUTES}
    input_texture = np.zeros(count)
    shared_inputs: Dict[int, np.ndarray] = {}
    identity = {name: EditIdentity(embed, count, sizes[name], shared_inputs) for name in ATTRIBUTES} if embed else None
    bar = tqdm(range(0, count, batch_size), desc="joint edits", unit="batch", disable=not progress, file=sys.stderr,
               postfix={"faces": count})
    for start in bar:
        rows = slice(start, start + batch_size)
        x = images[rows]
        kept = {name: ids[rows] for name, ids in own.items()}
        for judge in judges:
            input_read[judge.name][rows] = judge.read(x)
        input_texture[rows] = texture_energy(x)
        if light_fits:
            light_fits.observe_input(rows, x)
        if features:
            features.observe_input(x)
        for name in ATTRIBUTES:
            for target in range(sizes[name]):
                edited = np.asarray(translate(x, {**kept, name: np.full(len(x), target, np.int64)}), np.float32)
                for judge in judges:
                    edit_read[name][judge.name][rows, target] = judge.read(edited)
                edit_l1[name][rows, target] = _mean_l1(edited, x)
                edit_texture[name][rows, target] = texture_energy(edited)
                if identity:
                    identity[name].observe(rows, x, target, edited)
                if light_fits and name == LIGHTING:
                    light_fits.observe(rows, target, edited)
                if features:
                    features.observe(rows, name, target, edited)
            if features:
                features.finish(name)
    return JointReadings(own, input_read, edit_read, edit_l1, input_texture, edit_texture, identity, people,
                         light_fits, features)


def summarise(readings: JointReadings, judges: Sequence[Judge], names: Mapping[str, Sequence[str]],
              reference: Optional[np.ndarray] = None, reference_name: Optional[str] = None,
              by_data: Optional[Mapping[str, Mapping[str, Mapping[str, object]]]] = None) -> Dict:
    """The module docstring's figures: per edited attribute, each judge's rate (its own attribute) or kept
    share (the other), the L1 and texture figures, and the verdict against the targets; with FID features, the
    distances (unpaired against `reference`, the feature rows of another split's faces, when given)."""
    labels = readings.labels
    figures: Dict[str, Dict] = {}
    for edited in ATTRIBUTES:
        classes = len(names[edited])
        target = np.broadcast_to(np.arange(classes)[None, :], (len(labels[edited]), classes))
        pairs = target != labels[edited][:, None]
        identity_edit = readings.edit_l1[edited][np.arange(len(target)), labels[edited]]
        entry = {"pairs": int(pairs.sum()), "edit_l1": _share(readings.edit_l1[edited][pairs]),
                 "identity_l1": _share(identity_edit),
                 "texture_ratio": _ratio(_share(readings.edit_texture[edited][pairs]),
                                         _share(readings.input_texture)), "judges": {}}
        if readings.identity is not None:
            entry["identity"] = readings.identity[edited].figures(labels[edited], readings.people)
        for judge in judges:
            reads = readings.edit_read[edited][judge.name]
            on_input = readings.input_read[judge.name]
            known = np.ones(len(names[judge.attribute]), bool)
            if judge.known is not None:
                known[:] = False
                known[list(judge.known)] = True
            faces = known[labels[judge.attribute]]               # faces whose own class the judge knows
            if judge.attribute == edited:
                judged = pairs & faces[:, None] & known[None, :]
                accuracy = _share((on_input == labels[edited])[faces])
                rate = _share((reads == target)[judged])
                per_target = {names[edited][t]: _share((reads[:, t] == t)[(labels[edited] != t) & faces])
                              for t in range(classes) if known[t]}
                entry["judges"][judge.name] = {
                    "reads": edited, "judge_accuracy": accuracy, "target_rate": rate,
                    "baseline": _share((on_input[:, None] == target)[judged]),
                    "relative_to_ceiling": _ratio(rate, accuracy), "per_target": per_target}
            else:
                kept = _share((reads == on_input[:, None])[pairs & faces[:, None]])
                entry["judges"][judge.name] = {
                    "reads": judge.attribute, "judge_accuracy": _share((on_input == labels[judge.attribute])[faces]),
                    "kept": kept}
                data = (by_data or {}).get(edited, {}).get(judge.name)
                if data:
                    entry["judges"][judge.name].update(kept_by_data=data, kept_of_data=_ratio(kept, data["kept"]))
            if judge.known is not None:
                entry["judges"][judge.name]["knows"] = [names[judge.attribute][t] for t in judge.known]
        figures[edited] = entry
    summary = {"edits": figures, "verdict": verdict(figures, judges)}
    if readings.light_fits is not None:
        summary["lighting_fit"] = lighting_geometry.summarise(readings.light_fits, labels[LIGHTING], names[LIGHTING])
    if readings.features is not None:
        figures_by_attribute = readings.features.figures(reference, reference_name)
        summary["distances"] = figures_by_attribute
        summary["distance_cautions"] = list(dict.fromkeys(
            note for figures in figures_by_attribute.values() for note in distances.cautions(figures)))
    return summary


def verdict(figures: Mapping[str, Mapping], judges: Sequence[Judge]) -> Dict[str, object]:
    """Against the targets, with the main judge of each attribute (the first judge of that attribute)."""
    main = {}
    for judge in judges:
        main.setdefault(judge.attribute, judge.name)
    result = {}
    for edited in ATTRIBUTES:
        other = LIGHTING if edited == EXPRESSION else EXPRESSION
        rate = figures[edited]["judges"][main[edited]]["relative_to_ceiling"]
        kept = figures[edited]["judges"][main[other]]["kept"]
        result[f"{edited}_rate_met"] = rate is not None and rate >= TARGET_SHARE_OF_CEILING
        result[f"{edited}_only_keeps_{other}_met"] = kept is not None and kept >= TARGET_KEPT
    result["all_met"] = all(result.values())
    return result


# --- pictures -------------------------------------------------------------------------------------

def attribute_grid(translate: TranslateFn, judge: Judge, images: np.ndarray, labels: Mapping[str, np.ndarray],
                   names: Mapping[str, Sequence[str]], edited: str) -> np.ndarray:
    """Faces (rows) x every value of `edited` (columns, after the input), the other attribute kept; frames
    from `judge` (of the edited attribute)."""
    from legan_tf.visualize import row_labelled_mosaic

    own = {name: np.asarray(labels[name], np.int64) for name in ATTRIBUTES}
    columns = [_framed(images, [NONE] * len(images))]
    for target in range(len(names[edited])):
        edits = np.asarray(translate(images, {**own, edited: np.full(len(images), target, np.int64)}), np.float32)
        read = judge.read(edits)
        columns.append(_framed(edits, [OWN if o == target else (HIT if r == target else MISS)
                                       for o, r in zip(own[edited], read)]))
    rows = [f"{names[EXPRESSION][e]}\n{names[LIGHTING][light]}" for e, light in zip(own[EXPRESSION], own[LIGHTING])]
    return row_labelled_mosaic(columns, ["input", *names[edited]], rows)


def joint_grid(translate: TranslateFn, image: np.ndarray, names: Mapping[str, Sequence[str]]) -> np.ndarray:
    """One face edited to every expression (rows) x every lighting (columns), both attributes at once."""
    from legan_tf.visualize import row_labelled_mosaic

    lights = len(names[LIGHTING])
    columns = []
    for light in range(lights):
        expressions = np.arange(len(names[EXPRESSION]))
        batch = np.repeat(np.asarray(image, np.float32)[None], len(expressions), axis=0)
        edits = translate(batch, {EXPRESSION: expressions, LIGHTING: np.full(len(expressions), light, np.int64)})
        columns.append(_framed(np.asarray(edits, np.float32), [NONE] * len(expressions)))
    return row_labelled_mosaic(columns, list(names[LIGHTING]), list(names[EXPRESSION]))


# --- report ---------------------------------------------------------------------------------------

def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def tables(summary: Mapping[str, object]) -> str:
    """Markdown: one row per (edited attribute, judge)."""
    lines = ["| edits | judge (reads) | judge accuracy on unedited | target rate | of ceiling | baseline | kept |",
             "|---|---|---|---|---|---|---|"]
    for edited, entry in summary["edits"].items():
        for name, figures in entry["judges"].items():
            knows = f"; knows {len(figures['knows'])} of its classes" if "knows" in figures else ""
            lines.append(f"| {edited} only | {name} ({figures['reads']}{knows}) | "
                         f"{_percent(figures['judge_accuracy'])} | {_percent(figures.get('target_rate'))} | "
                         f"{_percent(figures.get('relative_to_ceiling'))} | "
                         f"{_percent(figures.get('baseline'))} | {_percent(figures.get('kept'))} |")
    lines += data_lines(summary)
    lines += ["", "| edits | pairs | identity L1 | edit L1 | texture ratio |", "|---|---|---|---|---|"]
    for edited, entry in summary["edits"].items():
        lines.append(f"| {edited} only | {entry['pairs']} | {_number(entry['identity_l1'])} | "
                     f"{_number(entry['edit_l1'])} | {_number(entry['texture_ratio'])}x |")
    if any("identity" in entry for entry in summary["edits"].values()):
        lines += ["", "| edits | f: 1 - cos to the face | read as the same person by f (FAR 1%) | "
                  "f: 1 - cos, identity edit |", "|---|---|---|---|"]
        for edited, entry in summary["edits"].items():
            figures = entry.get("identity", {})
            lines.append(f"| {edited} only | {_number(figures.get('distance'))} | "
                         f"{_percent(figures.get('same_person'))} | {_number(figures.get('identity_edit_distance'))} |")
    if summary.get("lighting_fit"):
        lines += [""] + lighting_geometry.report_lines(summary["lighting_fit"])
    if summary.get("distances"):
        lines += ["", "| naturalness (FID network) | expression-only edits | lighting-only edits |", "|---|---|---|"]
        rows = [distances.table_rows(summary["distances"][name]) for name in ATTRIBUTES]
        lines += [f"| {label} | {value} | {other} |" for (label, value), (_, other) in zip(*rows)]
        lines += [f"- {note}" for note in summary.get("distance_cautions", [])]
    if summary.get("warp"):
        lines += warp_field.report_lines(summary["warp"])
    return "\n".join(lines)


def data_lines(summary: Mapping[str, object]) -> List[str]:
    """Markdown rows of the kept_by_data figures (none when the split holds no copies)."""
    rows = [(edited, name, figures) for edited, entry in summary["edits"].items()
            for name, figures in entry["judges"].items() if "kept_by_data" in figures]
    if not rows:
        return []
    lines = ["", "| edits | judge (reads) | kept by the edits | kept by the data (the subject's images with the "
             "target, the other attribute as the face's) | of the data's | pairs with a copy |",
             "|---|---|---|---|---|---|"]
    for edited, name, figures in rows:
        data = figures["kept_by_data"]
        lines.append(f"| {edited} only | {name} ({figures['reads']}) | {_percent(figures.get('kept'))} | "
                     f"{_percent(data['kept'])} | {_percent(figures.get('kept_of_data'))} | "
                     f"{data['pairs_with_copy']} of {data['pairs']} |")
    return lines


def verdict_line(summary: Mapping[str, object]) -> str:
    checks = summary["verdict"]
    parts = [f"{name.replace('_met', '').replace('_', ' ')}: {'met' if ok else 'NOT met'}"
             for name, ok in checks.items() if name != "all_met"]
    return (f"targets (rate >= {TARGET_SHARE_OF_CEILING:.0%} of ceiling, kept >= {TARGET_KEPT:.0%}): "
            + "; ".join(parts))


def write_report(record: Mapping[str, object], path: str) -> str:
    data = record["data"]
    text = [f"# Joint edits of real faces: {os.path.basename(record['generator']['path'])}", "",
            f"Command: `{record['command']}`" if record.get("command") else "",
            f"Faces: {data['num_faces']} of split `{data['split']}` of `{data['data_path']}`.", "",
            tables(record), "", verdict_line(record), "",
            "Per target (generation rate of the attribute's own judge):", ""]
    for edited, entry in record["edits"].items():
        for name, figures in entry["judges"].items():
            if "per_target" in figures:
                text.append(f"- {edited}, {name}: " + ", ".join(f"{target} {_percent(value)}"
                                                                for target, value in figures["per_target"].items()))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(text) + "\n")
    return path


# --- the check ------------------------------------------------------------------------------------

def _load_classifier_judge(path: str, attribute: str, names: Sequence[str], batch_size: int, flag: str) -> Judge:
    if not path:
        raise ConfigError(f"--{flag} is required: an AttributeClassifier .keras with a {attribute} head, trained on "
                          "real faces of the training split only.")
    entry = load_judges(classifier=path).classifier
    protocol: dict = {}
    try:
        read = attribute_judge(entry.model, attribute, len(names), batch_size, protocol)
    except ConfigError as error:
        raise ConfigError(f"--{flag}={path}: {error}") from None
    labels_path = labels_beside(path)
    if labels_path:
        judged = tuple(read_label_names(labels_path).get(attribute, ()))
        if judged != tuple(names):
            raise ConfigError(f"--{flag}={path}: its {labels_path} names the {attribute} classes "
                              f"{','.join(judged) or '(none)'}, the generator's {','.join(names)}.")
    return Judge(attribute, attribute, read, {**entry.record(), "input": protocol, "labels_from": labels_path})


def _load_judges(expression_judge: Optional[str], lighting_judge: Optional[str], other_judges: Sequence[str],
                 names: Mapping[str, Sequence[str]], batch_size: int) -> List[Judge]:
    judges = [_load_classifier_judge(expression_judge, EXPRESSION, names[EXPRESSION], batch_size, "expression_judge"),
              _load_classifier_judge(lighting_judge, LIGHTING, names[LIGHTING], batch_size, "lighting_judge")]
    for spec in other_judges:
        other = second_opinion.load(spec, list(names[EXPRESSION]), batch_size)
        known = sorted(index for index, _ in other.pairs)
        judges.append(Judge(spec, EXPRESSION, other.read, other.record,
                            None if len(known) == len(names[EXPRESSION]) else known))
    return judges


def _open_relit_split(data_path: str, split: str, image_size: int, run, from_run: bool):
    source, _ = open_split(data_path, split, image_size, run, from_run)
    missing = [name for name in ATTRIBUTES if name not in source.label_names]
    if missing:
        raise ConfigError(f"--data_path={data_path}: the shards carry no {' or '.join(missing)} labels; relit faces "
                          "(scripts/relight_faces.py, then prepare_data.py --data_format=multipie) have both.")
    return source


def fid_reference(requested: str, split: str, stored: Sequence[str]) -> Optional[str]:
    """The split whose unedited faces the edits are compared with (real_edit_distances.reference_split), except
    that `auto` falls back to `train` when no other split is stored: relit shards hold train and test only, and
    the training split's faces are other people's photos under the same lights, none of them edited."""
    name = distances.reference_split(requested, split, stored)
    if name is None and requested == distances.AUTO and "train" in stored and split != "train":
        return "train"
    return name


def evaluate_joint_edits(expression_judge: Optional[str], lighting_judge: Optional[str],
                         run_dir: Optional[str] = None, generator_path: Optional[str] = None,
                         data_path: Optional[str] = None, split: str = "test", num_faces: int = 0,
                         grid_faces: int = 6, output_dir: Optional[str] = None, seed: int = 0,
                         batch_size: int = 64, progress: bool = True, command: Optional[str] = None,
                         other_judges: Sequence[str] = (), identity_model: Optional[str] = None,
                         normals_dir: Optional[str] = None, inception_weights: Optional[str] = None,
                         fid_reference_split: str = distances.AUTO, fid_reference_faces: int = 0) -> Dict[str, object]:
    """Runs the check (module docstring) and writes its files; returns the metrics.json content plus output_dir
    and files. Bad input is a ConfigError or DataError with a one-line message, before any edit is made."""
    from legan_tf import visualize
    from legan_tf.labels import generator_label_sizes

    for name, value, low in (("num_faces", num_faces, 0), ("grid_faces", grid_faces, 0), ("batch_size", batch_size, 1),
                             ("fid_reference_faces", fid_reference_faces, 0)):
        if value < low:
            raise ConfigError(f"--{name}={value} must be at least {low}.")
    run = resolve_run(run_dir, generator_path)
    generator = run.generator
    labels_path = _labels_of(run.generator_path, run_dir)
    generator_labels = read_label_names(labels_path) if labels_path else None
    from_run = not data_path
    data_path = data_path or run.settings.get("data_path")
    if not data_path:
        raise ConfigError("no data: pass --data_path=<relit faces prepared by scripts/prepare_data.py>.")
    source = _open_relit_split(data_path, split, generator.image_size, run, from_run)
    sizes = generator_label_sizes(generator, source.label_names, generator_labels, f"--data_path={data_path}")
    if tuple(sizes) != ATTRIBUTES:
        raise ConfigError(f"{run.generator_path}: the generator takes {', '.join(sizes) or 'no labels'}; this check "
                          "needs one that takes expression and lighting.")
    names = {name: tuple(source.label_names[name]) for name in ATTRIBUTES}
    judges = _load_judges(expression_judge, lighting_judge, other_judges, names, batch_size)
    translate = generator_translate_fn(generator, sizes, batch_size)
    embed, identity_record = load_identity_network(identity_model)
    extractor, reference_name = None, None
    if inception_weights:
        from legan_tf.evaluation.metrics.base import Unavailable
        from legan_tf.evaluation.metrics.features import inception_features

        reference_name = fid_reference(fid_reference_split, split, stored_split_names(data_path))
        try:  # before any work: a bad file is a one-line error now, not after the edits
            extractor = inception_features(inception_weights)
        except Unavailable as reason:
            raise ConfigError(f"--inception_weights={inception_weights}: {reason}") from None

    images, labels, chosen = read_real_faces(source, ATTRIBUTES, num_faces, seed, batch_size, extra=("identity",))
    subject_ids = labels.pop("identity", None)
    people = subject_ids if embed else None
    light_fits = None
    if normals_dir:
        geometry = lighting_geometry.load_geometry(normals_dir, lighting_geometry.shard_subjects(data_path),
                                                   subject_ids, generator.image_size)
        light_fits = lighting_geometry.LightingFits(geometry, sizes[LIGHTING])
    features, reference = None, None
    if extractor is not None:
        features = EditFeatures(extractor, labels, sizes, seed)
        if reference_name is not None:
            reference_source, _ = open_split(data_path, reference_name, generator.image_size, run, from_run)
            reference = distances.reference_features(reference_source, extractor, batch_size, seed, progress,
                                                     fid_reference_faces or len(images))
    split_readings = read_split(source, judges, batch_size, progress) if subject_ids is not None else None
    by_data = data_agreement(split_readings, chosen, judges, sizes) if split_readings is not None else None
    readings = edit_each_attribute(translate, judges, images, labels, sizes, batch_size, progress, embed, people,
                                   light_fits, features)
    summary = summarise(readings, judges, names, reference, reference_name, by_data)
    if warp_field.warps(generator):
        lengths = warp_field.displacement_lengths(generator, images, labels[LIGHTING], batch_size, progress)
        summary["warp"] = warp_field.summarise(lengths, labels[EXPRESSION], names[EXPRESSION],
                                               warp_field.allowed_px(generator))

    output_dir = output_dir or os.path.join(run_dir or os.path.dirname(os.path.abspath(run.generator_path)),
                                            OUTPUT_DIR)
    os.makedirs(output_dir, exist_ok=True)
    files = [os.path.join(output_dir, name) for name in (METRICS_FILE, REPORT_FILE)]
    # Grid faces under their photo's own lighting where the data has it ("original"), a spread over expressions.
    pool = np.arange(len(images))
    if "original" in names[LIGHTING]:
        under_own = pool[labels[LIGHTING] == names[LIGHTING].index("original")]
        pool = under_own if len(under_own) else pool
    grid_rows = pool[choose_grid_faces(labels[EXPRESSION][pool], grid_faces, seed)] if len(pool) else pool
    if len(grid_rows):
        for edited in ATTRIBUTES:
            judge = next(judge for judge in judges if judge.attribute == edited)
            picture = attribute_grid(translate, judge, images[grid_rows],
                                     {name: ids[grid_rows] for name, ids in labels.items()}, names, edited)
            visualize.save_png(picture, os.path.join(output_dir, GRID_FILES[edited]))
            files.append(os.path.join(output_dir, GRID_FILES[edited]))
        visualize.save_png(joint_grid(translate, images[grid_rows[0]], names),
                           os.path.join(output_dir, JOINT_GRID_FILE))
        files.append(os.path.join(output_dir, JOINT_GRID_FILE))
        if "warp" in summary:
            visualize.save_png(warp_field.lattice_grid(generator, translate, images[grid_rows],
                                                       {name: ids[grid_rows] for name, ids in labels.items()}, names),
                               os.path.join(output_dir, WARP_GRID_FILE))
            files.append(os.path.join(output_dir, WARP_GRID_FILE))

    record = _jsonable({
        "format_version": FORMAT_VERSION,
        "command": command,
        "generator": {"path": os.path.abspath(run.generator_path), "run_dir": run_dir and os.path.abspath(run_dir),
                      "sha256": file_digest(run.generator_path), "image_size": int(generator.image_size),
                      "label_sizes": dict(sizes)},
        "judges": {judge.name: {"reads": judge.attribute, **judge.record} for judge in judges},
        "identity_model": identity_record,
        **({"feature_network": extractor.protocol()} if extractor is not None else {}),
        "data": {"data_path": os.path.abspath(data_path), "split": split, "available_faces": int(source.num_examples),
                 "num_faces": int(len(images)), "selection": "every face" if len(images) == source.num_examples
                 else f"a seeded uniform choice (seed {seed})"},
        "protocol": {"edits": "each face edited to every value of one attribute other than its own, the other "
                              "attribute kept at the face's own value",
                     "target_rate": "the attribute's judge reads the target on the edit",
                     "kept": "the other attribute's judge reads the edit as it reads the unedited face",
                     "targets": f"rate >= {TARGET_SHARE_OF_CEILING:.0%} of the judge's accuracy; kept >= "
                                f"{TARGET_KEPT:.0%}", "seed": seed},
        **summary,
        "grid_faces": [int(chosen[row]) for row in grid_rows],
    })
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    write_report(record, os.path.join(output_dir, REPORT_FILE))
    return {**record, "output_dir": output_dir, "files": files}


def _stored_image_size(data_path: str) -> int:
    from legan_tf.data.shard_format import read_metadata

    sizes = list(read_metadata(data_path).get("image_sizes", {})) if os.path.isdir(data_path) else []
    square = [int(size.split("x")[0]) for size in sizes if size.split("x")[0] == size.split("x")[-1]]
    if len(sizes) != 1 or len(square) != 1:
        raise ConfigError(f"--data_path={data_path}: its images are not all of one square size "
                          f"({', '.join(sizes) or 'none recorded'}); pass --image_size (the generator's).")
    return square[0]


def evaluate_data_agreement(expression_judge: Optional[str], lighting_judge: Optional[str], data_path: Optional[str],
                            output_dir: Optional[str], split: str = "test", num_faces: int = 0, image_size: int = 0,
                            seed: int = 0, batch_size: int = 64, progress: bool = True,
                            command: Optional[str] = None, other_judges: Sequence[str] = (),
                            grid_faces: int = 6) -> Dict[str, object]:
    """No generator: the judges' accuracy over the faces the check would edit (the same seeded choice) and the
    kept_by_data figures of the module docstring, written as metrics.json and report.md to `output_dir`, with
    copies_grid_<judge>.png per expression judge with a data figure (`grid_faces` faces under their photo's
    own lighting where the data has it, a seeded spread over expressions)."""
    from legan_tf import visualize

    for name, value, low in (("num_faces", num_faces, 0), ("image_size", image_size, 0), ("batch_size", batch_size, 1),
                             ("grid_faces", grid_faces, 0)):
        if value < low:
            raise ConfigError(f"--{name}={value} must be at least {low}.")
    if not data_path:
        raise ConfigError("--data_only needs --data_path=<relit faces prepared by scripts/prepare_data.py>.")
    if not output_dir:
        raise ConfigError("--data_only needs --output_dir: there is no run folder to write into.")
    if not os.path.isdir(data_path):
        raise ConfigError(f"--data_path={data_path}: no such folder; pass a scripts/prepare_data.py output.")
    size = image_size or _stored_image_size(data_path)
    source = _open_relit_split(data_path, split, size, None, False)
    names = {name: tuple(source.label_names[name]) for name in ATTRIBUTES}
    judges = _load_judges(expression_judge, lighting_judge, other_judges, names, batch_size)
    split_readings = read_split(source, judges, batch_size, progress)
    if split_readings is None:
        raise ConfigError(f"--data_path={data_path}: the records carry no subject ids, so no face has a copy to "
                          "compare with (prepare_data.py --data_format=multipie stores the manifest's subject).")
    chosen = choose_faces(len(split_readings.subjects), num_faces, seed)
    by_data = data_agreement(split_readings, chosen, judges, {name: len(names[name]) for name in ATTRIBUTES})
    figures = {}
    for judge in judges:
        own = split_readings.labels[judge.attribute][chosen]
        known = np.ones(len(names[judge.attribute]), bool) if judge.known is None else np.isin(
            np.arange(len(names[judge.attribute])), judge.known)
        reads = split_readings.reads[judge.name][chosen]
        figures[judge.name] = {"reads": judge.attribute, "judge_accuracy": _share((reads == own)[known[own]]),
                               "kept_by_data": {edited: entry[judge.name] for edited, entry in by_data.items()
                                                if judge.name in entry}}
    record = _jsonable({
        "format_version": FORMAT_VERSION, "command": command,
        "judges": {judge.name: {"reads": judge.attribute, **judge.record} for judge in judges},
        "data": {"data_path": os.path.abspath(data_path), "split": split, "image_size": size,
                 "available_faces": int(len(split_readings.subjects)), "num_faces": int(len(chosen)),
                 "selection": "every face" if len(chosen) == len(split_readings.subjects)
                 else f"a seeded uniform choice (seed {seed}), the faces judge_joint_edits.py edits"},
        "names": {name: list(names[name]) for name in ATTRIBUTES}, "figures": figures})
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    with open(os.path.join(output_dir, REPORT_FILE), "w", encoding="utf-8") as handle:
        handle.write("\n".join(data_only_lines(record)) + "\n")
    files = [os.path.join(output_dir, name) for name in (METRICS_FILE, REPORT_FILE)]
    pool = np.asarray(chosen)
    if "original" in names[LIGHTING]:
        under_own = pool[split_readings.labels[LIGHTING][pool] == names[LIGHTING].index("original")]
        pool = under_own if len(under_own) else pool
    rows = pool[choose_grid_faces(split_readings.labels[EXPRESSION][pool], grid_faces, seed)] if len(pool) else pool
    for judge in judges:
        # Faces whose own expression the judge knows (the figures leave the others out too).
        shown = [int(row) for row in rows if judge.known is None
                 or split_readings.labels[EXPRESSION][row] in judge.known]
        if shown and judge.name in by_data.get(LIGHTING, {}):
            path = os.path.join(output_dir, f"copies_grid_{judge.name}.png")
            visualize.save_png(copies_grid(source, split_readings, shown, judge.name, names), path)
            files.append(path)
    return {**record, "output_dir": output_dir, "files": files}


def data_only_lines(record: Mapping[str, object]) -> List[str]:
    """Markdown of evaluate_data_agreement's figures."""
    data = record["data"]
    lines = [f"faces: {data['num_faces']} of split {data['split']} of {data['data_path']} at {data['image_size']} px",
             "", "| judge (reads) | accuracy | edits of | kept by the data (the subject's images with the target, the "
             "other attribute as the face's) | pairs with a copy |", "|---|---|---|---|---|"]
    for name, figures in record["figures"].items():
        kept = figures["kept_by_data"] or {"(none: no copies)": None}
        for edited, entry in kept.items():
            lines.append(f"| {name} ({figures['reads']}) | {_percent(figures['judge_accuracy'])} | {edited} | "
                         + (f"{_percent(entry['kept'])} | {entry['pairs_with_copy']} of {entry['pairs']} |"
                            if entry else "n/a | 0 |"))
    names = record.get("names", {})
    for name, figures in record["figures"].items():
        for edited, entry in figures["kept_by_data"].items():
            values = [f"{label} {_percent(value)}" for label, value in zip(names.get(edited, ()), entry["per_target"])
                      if value is not None]
            lines.append(f"- {name}, kept by the data per target {edited}: " + ", ".join(values))
    return lines


def main_lines(result: Mapping[str, object]) -> List[str]:
    """What scripts/judge_joint_edits.py prints."""
    data = result["data"]
    return [f"generator: {result['generator']['path']}",
            f"faces: {data['num_faces']} of split {data['split']} of {data['data_path']}", "", tables(result), "",
            verdict_line(result),
            f"written to {result['output_dir']}: " + ", ".join(os.path.basename(path) for path in result["files"])]
