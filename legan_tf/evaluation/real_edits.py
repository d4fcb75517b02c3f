"""The real-face check of a StarGAN-style generator on REAL held-out faces: scripts/judge_real_edits.py's library side.

Every held-out face x (a stored split of prepare_data.py's shards, PrivateTest for FER2013) is translated
to every expression other than its own, t != s (6 edits per face for 7 classes; any other label group
the generator takes, e.g. lighting, keeps the face's own value), and to its own expression (G(x, s),
the identity translation). An independent expression classifier (an AttributeClassifier, never a
discriminator) judges every image; generator outputs are resized to the judge's input size with
antialiased bilinear filtering (`metrics.base.fit_to_model`), the unedited faces too, so both are read
the same way. Figures (all over the same faces):

  judge_accuracy         the judge's reading of the unedited faces equals their label: the ceiling of
                         the target rate, overall and per class
  baseline               how often the judge reads target t on the UNEDITED face x, over the same (x, t)
                         pairs: what a generator that changes nothing scores ((1 - accuracy) / (C - 1)
                         overall)
  target_rate            the judge reads t on G(x, t): overall (mean over all pairs), per target class
                         (over the faces of other classes) and per source class (over a face's C - 1 edits)
  relative_to_ceiling    target_rate / judge_accuracy; the check's target is at least TARGET_SHARE_OF_CEILING
  cycle_l1               mean |G(G(x, t), s) - x| over all pairs, [-1, 1] units
  identity_l1            mean |G(x, s) - x|; edit_l1: mean |G(x, t) - x| over the pairs (how much an
                         edit changes at all)

  texture_unedited       mean |Laplacian| of the grey image (4 neighbours, edges mirrored), per pixel, of
                         the unedited faces; texture_edits: of the edits; texture_ratio: edits / unedited.
                         A fixed filter, not a network: speckle, checkerboard and noise raise it, blur
                         lowers it, and a generator cannot learn to please it the way it can please Q

With a naturalness model Q (`quality_model`, optional; an independent judge: one the generator was not
trained against, e.g. a Q trained on a disjoint split of the ratings):

  quality_unedited       Q's mean score of the unedited faces (1-10); quality_edits: of the edits G(x, t)
  quality_auc            P(Q(x) > Q(G(x, t))) over every unedited face and every edit (ties count half):
                         0.5 = Q cannot tell the edits from real faces, 1 = it ranks every edit lower
  quality_below_real_p10 share of edits Q scores below the 10th percentile of the unedited faces' scores,
                         i.e. what a --min_quality filter that keeps 90% of real faces would throw away

With a feature network (`inception_weights`: the FID Inception, `metrics.features.inception_features`):

  fid, kid               FID and KID (with its standard error) of one edit per face, G(x, t) to a seeded
                         random target t != s, against the unedited faces of another stored split (the
                         reference, e.g. FER2013's PublicTest), beside the floor: the edited faces
                         unedited against the same; fid_paired, kid_paired: against the same faces
                         unedited (copying the input scores 0). `real_edit_distances` has the details.

With an identity network f (`identity_model`, e.g. one trained on other people: identity_real.EditIdentity):
mean 1 - cos(f(x), f(G(x, t))) and the share of edits f accepts as x's person at 1% false accepts.

Outputs (`evaluate_real_edits`): metrics.json, report.md, a picture grid (held-out faces x every
expression), a bar chart of the rate per target class beside the judge's per-class accuracy, and the
confusion matrix of the judge's readings of the edits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from legan_tf.errors import ConfigError
from legan_tf.statistics import ratio as _ratio, share as _share
from legan_tf.evaluation import other_judges as second_opinion
from legan_tf.evaluation import real_edit_distances as distances
from legan_tf.evaluation.judges import file_digest, load_judges
from legan_tf.evaluation.identity_real import EditIdentity, edit_identity_section, load_identity_network
from legan_tf.evaluation.real_pass import read_real_faces, stored_split_names
from legan_tf.evaluation.run_under_test import RunUnderTest, resolve_run
from legan_tf.evaluation.translation_metrics import generator_translate_fn
from legan_tf.runs import FLAGS_FILE, LABELS_FILE, RunDir, labels_beside, read_label_names

EXPRESSION = "expression"
# The real-face check's target: the target-expression rate on real held-out faces reaches at least 80% of
# the judge's own accuracy there.
TARGET_SHARE_OF_CEILING = 0.80
OUTPUT_DIR = "real_edits"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
GRID_FILE = "edits_grid.png"
BARS_FILE = "rate_per_class.png"
CONFUSION_FILE = "confusion.png"
FORMAT_VERSION = 1
DEFAULT_GRID_FACES = 8
# Frames around the grid's cells (outside the face, so every generated pixel stays visible): the judge
# reads the column's expression (green) or not (red); grey marks the face's own expression (G(x, s)).
HIT, MISS, OWN, NONE = (0, 160, 0), (210, 0, 0), (150, 150, 150), (255, 255, 255)
BORDER_PX = 3

ScoreFn = Callable[[np.ndarray], np.ndarray]
JudgeFn = Callable[[np.ndarray], np.ndarray]
TranslateFn = Callable[[np.ndarray, Dict[str, np.ndarray]], np.ndarray]


# --- the judge ------------------------------------------------------------------------------------

def expression_judge(classifier, num_classes: int, batch_size: int = 64, protocol: Optional[dict] = None) -> JudgeFn:
    """images in [-1, 1] -> the classifier's expression ids (argmax), resized to its input size first.

    `classifier(images)` returns {attribute: logits} (an AttributeClassifier, or a stand-in with the same
    call); a classifier without an expression head of `num_classes` classes is a ConfigError.
    """
    from legan_tf.evaluation.metrics.base import call_in_batches, call_model, fit_to_model

    protocol = {} if protocol is None else protocol

    def judge(images: np.ndarray) -> np.ndarray:
        images = fit_to_model(np.asarray(images, np.float32), classifier, protocol)
        logits = call_in_batches(lambda part: call_model(classifier, part), images, batch_size)
        if not isinstance(logits, Mapping) or EXPRESSION not in logits:
            heads = sorted(logits) if isinstance(logits, Mapping) else "a single unnamed head"
            raise ConfigError(f"the classifier has no {EXPRESSION!r} head (it has {heads}).")
        scores = np.asarray(logits[EXPRESSION])
        if scores.shape[-1] != num_classes:
            raise ConfigError(f"the classifier's expression head has {scores.shape[-1]} classes, the generator "
                              f"{num_classes}.")
        return scores.argmax(axis=-1).astype(np.int64)

    return judge


def texture_energy(images: np.ndarray) -> np.ndarray:
    """(N,) mean |Laplacian| of each image's grey level (module docstring); images (N, H, W, C)."""
    grey = np.asarray(images, np.float64).mean(axis=-1)
    padded = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="symmetric")  # the edge pixel is its own neighbour
    centre = padded[:, 1:-1, 1:-1]
    laplacian = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
                 - 4.0 * centre)
    return np.abs(laplacian).mean(axis=(1, 2))


def quality_scorer(quality_model, batch_size: int = 64, protocol: Optional[dict] = None) -> ScoreFn:
    """images in [-1, 1] -> Q's naturalness scores (N,), resized to Q's input size first."""
    from legan_tf.evaluation.metrics.quality_score import quality_scores

    protocol = {} if protocol is None else protocol
    return lambda images: quality_scores(quality_model, np.asarray(images, np.float32), batch_size, protocol)


# --- the edits ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Readings:
    """What the judge read and how far the images moved, per face (N) and target expression (C)."""

    source: np.ndarray      # (N,) the faces' expression labels
    input_read: np.ndarray  # (N,) the judge's reading of the unedited faces
    edit_read: np.ndarray   # (N, C) its reading of G(x, t); column s is G(x, s)
    edit_l1: np.ndarray     # (N, C) mean |G(x, t) - x|, [-1, 1] units
    cycle_l1: np.ndarray    # (N, C) mean |G(G(x, t), s) - x|; NaN where t == s
    input_texture: np.ndarray  # (N,) texture_energy(x)
    edit_texture: np.ndarray   # (N, C) texture_energy(G(x, t))
    input_quality: Optional[np.ndarray] = None  # (N,) Q's score of x, with a quality model
    edit_quality: Optional[np.ndarray] = None   # (N, C) Q's score of G(x, t)
    input_features: Optional[np.ndarray] = None  # (N, D) features of x, with a feature network
    edit_features: Optional[np.ndarray] = None   # (N, D) features of G(x, fid_targets[i])
    other_reads: Tuple[Tuple[np.ndarray, np.ndarray], ...] = ()  # per other judge: (N,) of x, (N, C) of G(x, t)

    @property
    def num_classes(self) -> int:
        return self.edit_read.shape[1]


def _mean_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).reshape(len(a), -1).mean(axis=1)


def edit_faces(translate: TranslateFn, judge: JudgeFn, images: np.ndarray, labels: Mapping[str, np.ndarray],
               num_classes: int, batch_size: int = 64, progress: bool = False,
               score: Optional[ScoreFn] = None, features: Optional[Callable] = None,
               fid_targets: Optional[np.ndarray] = None, other_judges: Sequence[JudgeFn] = (),
               observers: Sequence[Callable] = ()) -> Readings:
    """Translates every face to every expression (the other label groups kept) and back, and judges the results.

    `translate(images, targets)` gets [-1, 1] images and {group: ids} for every group the generator takes
    (`translation_metrics.generator_translate_fn`); `labels` holds the faces' own ids of those groups. Each
    observer is called as observer(rows, x, target, edited) after every edit (identity_real.EditIdentity).
    """
    images = np.asarray(images, np.float32)
    count = len(images)
    source = np.asarray(labels[EXPRESSION], np.int64)
    if count == 0:
        raise ConfigError("no faces to translate.")
    if source.min() < 0 or source.max() >= num_classes:
        raise ConfigError(f"expression labels outside 0..{num_classes - 1}: {np.unique(source)}")
    input_read = np.zeros(count, np.int64)
    edit_read = np.zeros((count, num_classes), np.int64)
    edit_l1 = np.zeros((count, num_classes), np.float64)
    cycle_l1 = np.full((count, num_classes), np.nan)
    input_quality = np.zeros(count) if score else None
    input_texture, edit_texture = np.zeros(count), np.zeros((count, num_classes))
    edit_quality = np.zeros((count, num_classes)) if score else None
    other_reads = tuple((np.zeros(count, np.int64), np.zeros((count, num_classes), np.int64)) for _ in other_judges)
    feature_parts: Dict[str, list] = {"input": [], "edit": []}
    if features is not None and (fid_targets is None or len(fid_targets) != count):
        raise ValueError("edit_faces: features need one FID target per face")
    batches = range(0, count, batch_size)
    bar = tqdm(batches, desc="real edits", unit="batch", disable=not progress, file=sys.stderr,
               postfix={"faces": count, "targets": num_classes})
    for start in bar:
        rows = slice(start, start + batch_size)
        x = images[rows]
        own = {name: np.asarray(values[rows]) for name, values in labels.items()}
        input_read[rows] = judge(x)
        for read, (other_input, _) in zip(other_judges, other_reads):
            other_input[rows] = read(x)
        input_texture[rows] = texture_energy(x)
        if score:
            input_quality[rows] = score(x)
        fid_edits = np.zeros_like(x) if features is not None else None
        for target in range(num_classes):
            targets = {**own, EXPRESSION: np.full(len(x), target, np.int64)}
            edited = np.asarray(translate(x, targets), np.float32)
            edit_read[rows, target] = judge(edited)
            for read, (_, other_edits) in zip(other_judges, other_reads):
                other_edits[rows, target] = read(edited)
            edit_l1[rows, target] = _mean_l1(edited, x)
            edit_texture[rows, target] = texture_energy(edited)
            for observe in observers:
                observe(rows, x, target, edited)
            if score:
                edit_quality[rows, target] = score(edited)
            if fid_edits is not None:
                chosen = fid_targets[rows] == target
                fid_edits[chosen] = edited[chosen]
            moved = own[EXPRESSION] != target
            if moved.any():
                back = np.asarray(translate(edited[moved], {name: ids[moved] for name, ids in own.items()}),
                                  np.float32)
                cycle_l1[np.flatnonzero(moved) + start, target] = _mean_l1(back, x[moved])
        if fid_edits is not None:
            feature_parts["input"].append(np.asarray(features(x), np.float32))
            feature_parts["edit"].append(np.asarray(features(fid_edits), np.float32))
    stacked = {key: np.concatenate(parts) if parts else None for key, parts in feature_parts.items()}
    return Readings(source, input_read, edit_read, edit_l1, cycle_l1, input_texture, edit_texture, input_quality,
                    edit_quality, stacked["input"], stacked["edit"], other_reads)


# --- the figures ----------------------------------------------------------------------------------

def quality_figures(real: np.ndarray, edits: np.ndarray) -> Dict[str, float]:
    """Q's view of the edits beside the unedited faces (module docstring)."""
    real, edits = np.asarray(real, np.float64).ravel(), np.asarray(edits, np.float64).ravel()
    # Mann-Whitney: the share of (real, edit) pairs ordered real above edit, ties half, from ranks.
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([real, edits]))
    auc = (ranks[:len(real)].sum() - len(real) * (len(real) + 1) / 2) / (len(real) * len(edits))
    return {"quality_unedited": float(real.mean()), "quality_edits": float(edits.mean()),
            "quality_auc": float(auc),
            "quality_below_real_p10": float((edits < np.percentile(real, 10)).mean())}


def summarise(readings: Readings, names: Sequence[str], reference_features: Optional[np.ndarray] = None,
              reference_name: Optional[str] = None) -> Dict[str, object]:
    """The figures of the module docstring: {"overall": {...}, "per_class": {name: {...}}, "confusion": {...}}.

    Figures without any face behind them (a class absent from the faces) are None. With feature rows, FID and
    KID (`real_edit_distances`): unpaired against `reference_features` when given, else paired only.
    """
    count, classes = readings.edit_read.shape
    if len(names) != classes:
        raise ValueError(f"{len(names)} names for {classes} classes")
    source, faces = readings.source, np.arange(count)
    columns = np.arange(classes)[None, :]
    pair = np.ones((count, classes), bool)
    pair[faces, source] = False                              # (x, t) with t != s
    hit = readings.edit_read == columns                      # the judge reads t on G(x, t)
    base = np.broadcast_to(readings.input_read[:, None] == columns, (count, classes))  # ... on x itself
    correct = readings.input_read == source
    own_kept = readings.edit_read[faces, source] == source
    judge_accuracy = _share(correct)
    rate = _share(hit[pair])
    per_class, targets_weighted = {}, []
    for index, name in enumerate(names):
        of_class, targeted = source == index, pair[:, index]
        entry = {
            "faces": int(of_class.sum()),
            "judge_accuracy": _share(correct[of_class]),
            "pairs_as_target": int(targeted.sum()),
            "target_rate": _share(hit[targeted, index]),
            "baseline": _share(base[targeted, index]),
            "rate_as_source": _share(hit[of_class][pair[of_class]]),
            "identity_kept": _share(own_kept[of_class]),
            "cycle_l1_as_source": _share(readings.cycle_l1[of_class][pair[of_class]]),
        }
        entry["relative_to_ceiling"] = _ratio(entry["target_rate"], entry["judge_accuracy"])
        per_class[name] = entry
        if entry["judge_accuracy"] is not None:
            targets_weighted.append((entry["pairs_as_target"], entry["judge_accuracy"]))
    weights = sum(weight for weight, _ in targets_weighted)
    ceiling_by_targets = (sum(weight * accuracy for weight, accuracy in targets_weighted) / weights
                          if weights else None)
    present = [entry for entry in per_class.values() if entry["faces"]]
    overall = {
        "num_faces": int(count),
        "num_classes": int(classes),
        "num_pairs": int(pair.sum()),
        "judge_accuracy": judge_accuracy,
        "judge_balanced_accuracy": _share([entry["judge_accuracy"] for entry in present]),
        "baseline": _share(base[pair]),
        "target_rate": rate,
        "target_rate_balanced": _share([entry["target_rate"] for entry in per_class.values()
                                        if entry["target_rate"] is not None]),
        "relative_to_ceiling": _ratio(rate, judge_accuracy),
        "meets_target": bool(rate is not None and judge_accuracy is not None
                             and rate >= TARGET_SHARE_OF_CEILING * judge_accuracy),
        "target_share_of_ceiling": TARGET_SHARE_OF_CEILING,
        "ceiling_weighted_by_targets": ceiling_by_targets,
        "relative_to_ceiling_weighted_by_targets": _ratio(rate, ceiling_by_targets),
        "cycle_l1": _share(readings.cycle_l1[pair]),
        "identity_l1": _share(readings.edit_l1[faces, source]),
        "edit_l1": _share(readings.edit_l1[pair]),
        "identity_kept": _share(own_kept),
    }
    unedited, edits = float(readings.input_texture.mean()), float(readings.edit_texture[pair].mean())
    overall.update(texture_unedited=unedited, texture_edits=edits, texture_ratio=_ratio(edits, unedited))
    if readings.input_quality is not None:
        overall.update(quality_figures(readings.input_quality, readings.edit_quality[pair]))
    if readings.input_features is not None:
        overall.update(distances.distance_figures(readings.input_features, readings.edit_features,
                                                  reference_features, reference_name))
    edits = np.zeros((classes, classes), np.int64)   # rows: target, columns: the judge's reading
    inputs = np.zeros((classes, classes), np.int64)  # rows: the face's label, columns: the judge's reading
    np.add.at(edits, (np.broadcast_to(columns, (count, classes))[pair], readings.edit_read[pair]), 1)
    np.add.at(inputs, (source, readings.input_read), 1)
    return {"overall": overall, "per_class": per_class, "cautions": cautions(overall),
            "confusion": {"class_names": list(names), "edits_target_by_reading": edits.tolist(),
                          "inputs_label_by_reading": inputs.tolist()}}


def cautions(overall: Mapping[str, object]) -> List[str]:
    """Every caution of the report, in words: the verdict's (`verdict_cautions`), then the FID figures'."""
    return verdict_cautions(overall) + distances.cautions(overall)


def verdict_cautions(overall: Mapping[str, object]) -> List[str]:
    """What makes the verdict against the ceiling meaningless, in words (none when nothing does)."""
    notes = []
    chance = 1.0 / overall["num_classes"]
    if overall["judge_accuracy"] is not None and overall["judge_accuracy"] <= chance:
        notes.append(f"the judge reads the unedited faces no better than chance ({_percent(overall['judge_accuracy'])} "
                     f"<= 1/{overall['num_classes']}): its accuracy is no ceiling, and the rate relative to it "
                     "means nothing")
    if overall["target_rate"] is not None and overall["baseline"] is not None \
            and overall["target_rate"] <= overall["baseline"]:
        notes.append(f"the target rate ({_percent(overall['target_rate'])}) is not above the baseline "
                     f"({_percent(overall['baseline'])}): the judge finds the targets on the edits no more often "
                     "than on the unedited faces")
    return notes


# --- the grid -------------------------------------------------------------------------------------

def choose_grid_faces(source: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Up to `count` face indices, a seeded spread over the source classes: one face of each class present
    in turn (classes in label order), each a seeded draw among that class's faces not yet chosen."""
    source = np.asarray(source)
    rng = np.random.default_rng([seed, 3])
    pools = {label: list(rng.permutation(np.flatnonzero(source == label))) for label in np.unique(source)}
    chosen = []
    while len(chosen) < min(count, len(source)):
        for label in sorted(pools):
            if pools[label] and len(chosen) < count:
                chosen.append(int(pools[label].pop()))
    return np.asarray(chosen, np.int64)


def _framed(cells: np.ndarray, colours: Sequence[tuple]) -> np.ndarray:
    """uint8 cells upscaled to >= 96 px (nearest neighbour), each in a BORDER_PX frame of its colour."""
    from legan_tf import visualize

    cells = visualize.upscale(np.asarray(cells))
    framed = np.pad(cells, ((0, 0), (BORDER_PX, BORDER_PX), (BORDER_PX, BORDER_PX), (0, 0)))
    for cell, colour in zip(framed, colours):
        cell[:BORDER_PX], cell[-BORDER_PX:], cell[:, :BORDER_PX], cell[:, -BORDER_PX:] = (colour,) * 4
    return framed


def grid_picture(translate: TranslateFn, judge: JudgeFn, images: np.ndarray, labels: Mapping[str, np.ndarray],
                 names: Sequence[str]) -> Dict[str, object]:
    """The picture of `images` (the grid faces) translated to every expression: a uint8 array (rows: faces;
    columns: the input, then each expression, the face's own being G(x, s)) and what the judge read."""
    from legan_tf import visualize
    from legan_tf.visualize import row_labelled_mosaic

    source = np.asarray(labels[EXPRESSION], np.int64)
    input_read = judge(images)
    columns, readings = [_framed(visualize.to_uint8(images), [NONE] * len(images))], []
    for target in range(len(names)):
        edited = np.asarray(translate(images, {**labels, EXPRESSION: np.full(len(images), target, np.int64)}),
                            np.float32)
        read = judge(edited)
        readings.append(read)
        colours = [OWN if own == target else (HIT if value == target else MISS) for own, value in zip(source, read)]
        columns.append(_framed(visualize.to_uint8(edited), colours))
    row_labels = [f"{names[s]}\njudge: {names[r]}" for s, r in zip(source, input_read)]
    picture = row_labelled_mosaic(columns, ["input", *names], row_labels)
    return {"picture": picture, "input_read": input_read, "edit_read": np.stack(readings, axis=1)}


# --- the other figures ----------------------------------------------------------------------------

def plot_rates(summary: Mapping[str, object], path: str, title: str = "") -> str:
    """A bar chart per class: the judge's accuracy on the unedited faces (the ceiling), the target rate of the
    edits to that class, and the baseline (the judge reading that class on unedited faces of other classes)."""
    from legan_tf import visualize  # noqa: F401  (selects matplotlib's Agg backend)
    import matplotlib.pyplot as plt

    names = list(summary["per_class"])
    rows = [summary["per_class"][name] for name in names]
    series = (("judge on real faces (ceiling)", "judge_accuracy", "#9e9e9e"),
              ("target rate of the edits", "target_rate", "#1f77b4"),
              ("baseline: target read on the unedited face", "baseline", "#ffbf80"))
    positions = np.arange(len(names))
    width = 0.27
    figure, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2.0), 4.2), dpi=100)
    for offset, (label, key, colour) in enumerate(series):
        values = [100 * row[key] if row[key] is not None else 0.0 for row in rows]
        bars = axis.bar(positions + (offset - 1) * width, values, width, label=label, color=colour)
        for bar, row in zip(bars, rows):
            text = f"{100 * row[key]:.0f}" if row[key] is not None else "n/a"
            axis.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1, text, ha="center", va="bottom",
                      fontsize=7)
    for position, row in zip(positions, rows):  # the check's target: 80% of the class's ceiling
        if row["judge_accuracy"] is not None:
            level = 100 * TARGET_SHARE_OF_CEILING * row["judge_accuracy"]
            axis.plot([position - 0.45, position + 0.45], [level, level], color="black", linestyle="--", linewidth=1)
    axis.plot([], [], color="black", linestyle="--", linewidth=1,
              label=f"{100 * TARGET_SHARE_OF_CEILING:.0f}% of the ceiling")
    axis.set_xticks(positions, names, rotation=30, ha="right")
    axis.set_ylabel("%")
    axis.set_ylim(0, 112)
    axis.legend(fontsize=8, loc="upper left", ncol=2)
    overall = summary["overall"]
    axis.set_title(title or (f"target rate {_percent(overall['target_rate'])} vs ceiling "
                             f"{_percent(overall['judge_accuracy'])} (baseline {_percent(overall['baseline'])})"),
                   fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_confusion(summary: Mapping[str, object], path: str) -> str:
    """The judge's readings of the edits per target expression (generation_rate's confusion figure)."""
    from legan_tf.evaluation.metrics.base import MetricResult
    from legan_tf.evaluation.metrics.generation_rate import plot_confusion_matrices

    confusion = summary["confusion"]
    matrix = np.asarray(confusion["edits_target_by_reading"], np.int64)
    result = MetricResult("generation_rate", True,
                          values={f"accuracy/{EXPRESSION}": float(np.trace(matrix) / max(1, matrix.sum()))},
                          protocol={"class_names": {EXPRESSION: confusion["class_names"]}},
                          arrays={f"confusion/{EXPRESSION}": matrix})
    return plot_confusion_matrices(result, path, title="The judge's reading of the edits G(x, t), t != s")


# --- the report -----------------------------------------------------------------------------------

def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def verdict_line(overall: Mapping[str, object]) -> str:
    relative = overall["relative_to_ceiling"]
    return (f"target-expression rate {_percent(overall['target_rate'])} = "
            f"{_percent(relative)} of the judge's accuracy {_percent(overall['judge_accuracy'])} on the unedited "
            f"faces (target >= {100 * TARGET_SHARE_OF_CEILING:.0f}%): "
            + ("MEETS the real-face check's target" if overall["meets_target"]
               else "does NOT meet the real-face check's target")
            + (" (no valid verdict: see the cautions)" if verdict_cautions(overall) else ""))


def overall_table(overall: Mapping[str, object]) -> str:
    rows = [
        ("judge's accuracy on the unedited faces (ceiling)", _percent(overall["judge_accuracy"])),
        ("  balanced over classes", _percent(overall["judge_balanced_accuracy"])),
        ("baseline: judge reads the target on the unedited face", _percent(overall["baseline"])),
        ("**target-expression rate** (all pairs)", f"**{_percent(overall['target_rate'])}**"),
        ("  balanced over target classes", _percent(overall["target_rate_balanced"])),
        ("rate / ceiling", _percent(overall["relative_to_ceiling"])),
        (f"meets {100 * TARGET_SHARE_OF_CEILING:.0f}% of the ceiling", "yes" if overall["meets_target"] else "no"),
        ("ceiling weighted as the targets are (per-class accuracy x pairs)",
         _percent(overall["ceiling_weighted_by_targets"])),
        ("rate / that ceiling", _percent(overall["relative_to_ceiling_weighted_by_targets"])),
        ("cycle L1: G(G(x, t), s) against x (mean abs, [-1, 1] units)", _number(overall["cycle_l1"])),
        ("identity L1: G(x, s) against x", _number(overall["identity_l1"])),
        ("edit L1: G(x, t) against x (how much an edit changes)", _number(overall["edit_l1"])),
        ("G(x, s) still read as s", _percent(overall["identity_kept"])),
        *([("texture: mean |Laplacian| of the edits / of the unedited faces (speckle, noise; blur lowers it)",
            f"{overall['texture_edits']:.4f} / {overall['texture_unedited']:.4f} = {overall['texture_ratio']:.2f}x")]
          if overall.get("texture_ratio") is not None else []),
        *([("Q: mean score of the unedited faces / of the edits (1-10)",
            f"{overall['quality_unedited']:.2f} / {overall['quality_edits']:.2f}"),
           ("Q: P(unedited face scored above an edit) (0.5: Q cannot tell them apart)",
            f"{overall['quality_auc']:.3f}"),
           ("Q: edits below the unedited faces' 10th percentile", _percent(overall["quality_below_real_p10"]))]
          if "quality_auc" in overall else []),
        *distances.table_rows(overall),
        ("faces / pairs (x, t != s)", f"{overall['num_faces']} / {overall['num_pairs']}"),
    ]
    return "\n".join(["| figure | value |", "|---|---:|"] + [f"| {name} | {value} |" for name, value in rows])


def per_class_table(per_class: Mapping[str, Mapping[str, object]]) -> str:
    lines = ["| class | faces | judge on real faces (ceiling) | baseline (read as class, unedited) | "
             "target rate (edits to class) | rate / ceiling | rate of edits away from class | "
             "cycle L1 (as source) | G(x, s) kept |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in per_class.items():
        lines.append(f"| {name} | {row['faces']} | {_percent(row['judge_accuracy'])} | {_percent(row['baseline'])} | "
                     f"{_percent(row['target_rate'])} ({row['pairs_as_target']} edits) | "
                     f"{_percent(row['relative_to_ceiling'])} | {_percent(row['rate_as_source'])} | "
                     f"{_number(row['cycle_l1_as_source'])} | {_percent(row['identity_kept'])} |")
    return "\n".join(lines)


def write_report(record: Mapping[str, object], path: str) -> str:
    overall, data = record["overall"], record["data"]
    lines = [
        "# Real held-out faces: target-expression rate and cycle L1", "",
        f"- generator: `{record['generator']['path']}` ({record['generator']['image_size']} px, label groups "
        f"{record['generator']['label_sizes']}; names from {record['generator']['labels_from']})",
        f"- judge: `{record['classifier']['path']}` ({record['classifier']['description']}; names from "
        f"{record['classifier']['labels_from']})",
        f"- faces: split `{data['split']}` of `{data['data_path']}`: {data['num_faces']} of "
        f"{data['available_faces']} ({data['selection']})",
    ]
    if record.get("quality_model"):
        lines.append(f"- naturalness judge Q: `{record['quality_model']['path']}` "
                     f"({record['quality_model']['description']}; {record['quality_model']['input']})")
    if record.get("command"):
        lines.append(f"- command: `{record['command']}`")
    lines += ["", f"**{verdict_line(overall)}**", ""]
    for note in record.get("cautions", []):
        lines += [f"> caution: {note}.", ""]
    lines += ["## Overall", "", overall_table(overall), "",
              "## Per class", "", per_class_table(record["per_class"]), "",
              "Ceiling: the judge's accuracy on the unedited faces of the class. Baseline: how often the judge "
              "reads the class on unedited faces of the other classes (what an edit that changes nothing scores). "
              "Target rate: how often it reads the class on edits of those faces to it.", "",
              "## Figures", "",
              f"![edits]({GRID_FILE})", "",
              "Rows: held-out faces (left: their label and the judge's reading of the unedited face); columns: the "
              "input, then the face translated to each expression. Border: green, the judge reads the column's "
              "expression; red, it does not; grey, the face's own expression (G(x, s)).", "",
              f"![rate per class]({BARS_FILE})", "", f"![confusion]({CONFUSION_FILE})", "",
              *second_opinion.report_section(record.get("other_judges", [])),
              *edit_identity_section(record.get("identity_model")), "## Protocol", ""]
    lines += [f"- {key}: {value}" for key, value in record["protocol"].items()]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _resize_note(protocol: Mapping[str, object]) -> str:
    resize = protocol.get("model_input_resize")
    if not resize:
        return "at the generator's size (the judge's too): no resize"
    return (f"faces and generator outputs resized {resize['from'][0]} -> {resize['to'][0]} px for the judge, "
            "bilinear, antialiased (tf.image.resize)")


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


# --- inputs ---------------------------------------------------------------------------------------

def _labels_of(model_path: str, run_dir: Optional[str] = None) -> Optional[str]:
    """The labels.json beside a model file, else the run directory's; None when there is none."""
    found = labels_beside(model_path)
    if found is None and run_dir and os.path.isfile(RunDir(run_dir).labels_path):
        found = RunDir(run_dir).labels_path
    return found


def open_split(data_path: str, split: str, image_size: int, run: Optional[RunUnderTest], from_run: bool):
    """The stored `split` of `data_path` (prepare_data.py's shards, or the data the run trained on when it
    names its own split), read at `image_size` with the run's preprocessing (none without a run)."""
    from legan_tf.data import DataConfig, open_source
    from legan_tf.data.shard_format import METADATA_FILE, read_metadata

    where = f"--data_path={data_path}" + (f" (the run's, from its {FLAGS_FILE})" if from_run else "")
    if not os.path.exists(data_path):
        raise ConfigError(f"{where}: no such folder; pass --data_path=<a scripts/prepare_data.py output>.")
    run_config = run.data_config() if run is not None else None
    apply_mask = bool(run_config and run_config.apply_mask)
    if os.path.isdir(data_path) and os.path.isfile(os.path.join(data_path, METADATA_FILE)):
        label_names = read_metadata(data_path)["label_names"]
        if EXPRESSION not in label_names:
            raise ConfigError(f"{where}: the shards carry no expression labels (they have "
                              f"{', '.join(label_names) or 'none'}).")
        config = DataConfig("tfrecord", data_path, image_size=image_size,
                            expression_names=tuple(label_names[EXPRESSION]),
                            lighting_names=tuple(label_names.get("lighting", ())), apply_mask=apply_mask)
    elif run_config is not None and os.path.abspath(run_config.data_path) == os.path.abspath(data_path):
        config = dataclasses.replace(run_config, image_size=image_size, cache=False, random_flip=False)
    else:
        raise ConfigError(f"{where}: not prepared TFRecord shards (no {METADATA_FILE}); run "
                          "scripts/prepare_data.py on the data first.")
    return open_source(config).stored_split(split), config


def _check_judge_names(classifier_path: str, labels_path: str, judge_labels: Mapping[str, Sequence[str]],
                       names: Optional[Sequence[str]]) -> None:
    judged, expected = tuple(judge_labels.get(EXPRESSION, ())), tuple(names or ())
    if judged != expected:
        raise ConfigError(f"--classifier={classifier_path}: its {labels_path} names the expressions "
                          f"{','.join(judged) or '(none)'}, the generator's labels {','.join(expected) or '(none)'}: "
                          "the judge would read other classes.")


def evaluate_real_edits(classifier_path: Optional[str], run_dir: Optional[str] = None,
                        generator_path: Optional[str] = None, data_path: Optional[str] = None, split: str = "test",
                        num_faces: int = 0, grid_faces: int = DEFAULT_GRID_FACES, output_dir: Optional[str] = None,
                        seed: int = 0, batch_size: int = 64, progress: bool = True,
                        command: Optional[str] = None, quality_model: Optional[str] = None,
                        inception_weights: Optional[str] = None,
                        fid_reference_split: str = distances.AUTO,
                        other_judges: Sequence[str] = (), identity_model: Optional[str] = None) -> Dict[str, object]:
    """Runs the check (module docstring) and writes its files; returns the metrics.json content plus
    output_dir and files. Bad input is a ConfigError or DataError with a one-line message."""
    from legan_tf.labels import generator_label_sizes

    for name, value, low in (("num_faces", num_faces, 0), ("grid_faces", grid_faces, 0), ("batch_size", batch_size, 1)):
        if value < low:
            raise ConfigError(f"--{name}={value} must be at least {low}.")
    if not classifier_path:
        raise ConfigError("--classifier is required: an AttributeClassifier .keras trained on real faces "
                          "(the independent judge).")
    run = resolve_run(run_dir, generator_path, kind="stargan")  # the check set is not used here
    generator = run.generator
    labels_path = _labels_of(run.generator_path, run_dir)
    generator_labels = read_label_names(labels_path) if labels_path else None
    judges = load_judges(classifier=classifier_path, quality_model=quality_model)
    judge_entry = judges.classifier
    classifier = judge_entry.model
    classifier_labels_path = labels_beside(classifier_path)
    classifier_labels = read_label_names(classifier_labels_path) if classifier_labels_path else None
    if generator_labels is not None and classifier_labels is not None:
        _check_judge_names(classifier_path, classifier_labels_path, classifier_labels, generator_labels.get(EXPRESSION))

    from_run = not data_path
    data_path = data_path or run.settings.get("data_path")
    if not data_path:
        raise ConfigError("no data: pass --data_path=<a scripts/prepare_data.py output with stored splits> "
                          f"(the run's {FLAGS_FILE} names none).")
    source, config = open_split(data_path, split, generator.image_size, run, from_run)
    reference_name = None
    if inception_weights:
        reference_name = distances.reference_split(fid_reference_split, split, stored_split_names(data_path))
    label_sizes = generator_label_sizes(generator, source.label_names, generator_labels, f"--data_path={data_path}")
    if EXPRESSION not in label_sizes:
        raise ConfigError(f"{run.generator_path}: the generator takes no expression labels ({', '.join(label_sizes)}).")
    names = list(source.label_names[EXPRESSION])
    if len(names) < 2:
        raise ConfigError(f"--data_path={data_path}: {len(names)} expression class; edits need at least 2.")
    heads = dict(classifier.head_classes)
    if heads.get(EXPRESSION) != len(names):
        raise ConfigError(f"--classifier={classifier_path}: " + (
            f"its expression head has {heads[EXPRESSION]} classes, the generator's labels {len(names)}."
            if EXPRESSION in heads else f"it has no expression head (heads: {', '.join(heads)})."))
    if classifier_labels is not None:
        _check_judge_names(classifier_path, classifier_labels_path, classifier_labels, names)
    judge_protocol: dict = {}
    judge = expression_judge(classifier, len(names), batch_size, judge_protocol)
    others = [second_opinion.load(spec, names, batch_size) for spec in other_judges]
    translate = generator_translate_fn(generator, label_sizes, batch_size)
    quality_protocol: dict = {}
    score = quality_scorer(judges.quality.model, batch_size, quality_protocol) if judges.quality.given else None

    extractor = None
    if inception_weights:
        from legan_tf.evaluation.metrics.base import Unavailable
        from legan_tf.evaluation.metrics.features import inception_features

        try:  # before any work: a bad file is a one-line error now, not after the edits
            extractor = inception_features(inception_weights)
        except Unavailable as reason:
            raise ConfigError(f"--inception_weights={inception_weights}: {reason}") from None

    embed, identity_record = load_identity_network(identity_model)
    images, labels, chosen = read_real_faces(source, list(label_sizes), num_faces, seed, batch_size)
    edit_identity = EditIdentity(embed, len(images), len(names)) if embed else None
    fid_targets = distances.fid_targets_for(labels[EXPRESSION], len(names), seed) if extractor is not None else None
    reference = None
    if reference_name is not None:
        reference_source, _ = open_split(data_path, reference_name, generator.image_size, run, from_run)
        reference = distances.reference_features(reference_source, extractor, batch_size, seed, progress)
    readings = edit_faces(translate, judge, images, labels, len(names), batch_size, progress, score, extractor,
                          fid_targets, [other.read for other in others],
                          [edit_identity.observe] if edit_identity else [])
    summary = summarise(readings, names, reference, reference_name)

    output_dir = output_dir or os.path.join(run_dir or os.path.dirname(os.path.abspath(run.generator_path)),
                                            OUTPUT_DIR)
    os.makedirs(output_dir, exist_ok=True)
    grid_rows = choose_grid_faces(readings.source, grid_faces, seed)
    files = [os.path.join(output_dir, name) for name in (METRICS_FILE, REPORT_FILE)]
    grid_record = []
    if len(grid_rows):
        grid = grid_picture(translate, judge, images[grid_rows], {name: ids[grid_rows] for name, ids in labels.items()},
                            names)
        from legan_tf import visualize

        visualize.save_png(grid["picture"], os.path.join(output_dir, GRID_FILE))
        files.append(os.path.join(output_dir, GRID_FILE))
        grid_record = [{"face": int(chosen[row]), "label": names[readings.source[row]],
                        "judge_on_input": names[int(grid["input_read"][index])],
                        "judge_on_edits": [names[int(value)] for value in grid["edit_read"][index]]}
                       for index, row in enumerate(grid_rows)]
    files.append(plot_rates(summary, os.path.join(output_dir, BARS_FILE)))
    files.append(plot_confusion(summary, os.path.join(output_dir, CONFUSION_FILE)))

    record = {
        "format_version": FORMAT_VERSION,
        "command": command,
        "generator": {"path": os.path.abspath(run.generator_path), "run_dir": run_dir and os.path.abspath(run_dir),
                      "sha256": file_digest(run.generator_path), "image_size": int(generator.image_size),
                      "label_sizes": dict(label_sizes),
                      "labels_from": labels_path or f"the data's label names (no {LABELS_FILE} beside the generator)"},
        "classifier": {**judge_entry.record(), "image_size": int(classifier.image_size),
                       "labels_from": classifier_labels_path
                       or f"not checked by name (no {LABELS_FILE} beside the classifier); head width checked"},
        **({"feature_network": extractor.protocol()} if extractor is not None else {}),
        **({"quality_model": {**judges.quality.record(), "input": _resize_note(quality_protocol),
                              "note": "give a Q the generator was not trained against (L_qual): its own Q "
                                      "is not an independent judge"}} if judges.quality.given else {}),
        "data": {"data_path": os.path.abspath(data_path), "data_format": config.data_format, "split": split,
                 "available_faces": int(source.num_examples), "num_faces": int(len(images)),
                 "selection": "every face" if len(images) == source.num_examples
                 else f"a seeded uniform choice (seed {seed})",
                 "class_counts": {name: int((readings.source == index).sum()) for index, name in enumerate(names)}},
        "protocol": {
            "edits": "each face x (label s) translated to every expression t != s; other label groups kept at the "
                     "face's own values" + (f" ({', '.join(n for n in label_sizes if n != EXPRESSION)})"
                                            if len(label_sizes) > 1 else ""),
            "hit": "the judge's argmax on G(x, t) equals t",
            "judge_input": _resize_note(judge_protocol),
            "ceiling": "the judge's accuracy on the unedited faces",
            "baseline": "how often the judge reads t on the unedited x, over the same (x, t) pairs",
            "target": f"rate >= {TARGET_SHARE_OF_CEILING:.0%} of the ceiling (the real-face check's target)",
            "cycle_l1": "mean |G(G(x, t), s) - x| over all pairs, per pixel and channel, [-1, 1] units",
            "seed": seed,
        },
        "overall": summary["overall"],
        "per_class": summary["per_class"],
        "cautions": summary["cautions"],
        "confusion": summary["confusion"],
        "other_judges": [{"label": other.label, "judge": other.record, "figures": second_opinion.figures(
            readings.source, readings.input_read, readings.edit_read, *reads, names, [g for g, _ in other.pairs])}
            for other, reads in zip(others, readings.other_reads)],
        "grid_faces": grid_record,
        **({"identity_model": {**identity_record, "figures": edit_identity.figures(readings.source)}}
           if edit_identity else {}),
    }
    record = _jsonable(record)
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    write_report(record, os.path.join(output_dir, REPORT_FILE))
    return {**record, "output_dir": output_dir, "files": files}
