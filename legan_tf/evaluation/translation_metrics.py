"""The GAN learning check on the face lab: does a translator put the requested attributes on unseen faces?

The face lab renders any (identity, expression, lighting) exactly, so every translation has a true
answer: the render of the same identity with the target attributes. Faces come from identities the
lab never wrote (so neither the GAN nor the classifier saw them), and an independent attribute
classifier (trained on real lab renders, never the discriminator) judges the translated images.

Three edit modes, on the same sources:
  both             every attribute gets a new, different value;
  expression_only  the expression changes, the lighting keeps the source's;
  lighting_only    the lighting changes, the expression keeps the source's.
With a single attribute (e.g. the 8 AffectNet expressions, no lighting labels) only `both` exists.

Metrics (a flat dict; <a> is an attribute):
  <mode>/accuracy/<a>           the classifier finds the target value of an edited attribute
  <mode>/kept/<a>               the classifier still finds the source value of an attribute left alone
  <mode>/l1_out, /l1_in         whole-image mean L1 ([-1, 1] scale) of the translation and of the
                                input to the exact target render; /l1_reduction = 1 - out / in
  <mode>/region_l1_out, _in,    modes that edit one attribute (`both` too, for a one-attribute
  /region_l1_reduction          translator): the same, inside the change region (where the source and
                                target exact renders differ), as whole-image L1 punishes small
                                correct edits
  classifier_on_truth/<a>       the classifier on the exact `both` target renders: its ceiling
  classifier_on_input/<a>       the classifier on the inputs: the ceiling of the kept figures

With a geometry judge (a depth network G_depth: images -> depth or normals maps, Bodur et al.), the
depth consistency of `both` edits, in network-scale L1 ([-1, 1] maps) against the exact geometry of
the target face (the lab's depth, or normals from it):
  both/geometry_l1_out          G_depth(translation); /geometry_l1_in: G_depth(input), i.e. no edit;
  both/geometry_l1_truth        G_depth(exact target render): the judge's own floor;
  both/geometry_l1_reduction    1 - out / in;
  both/geometry_region_l1_out, _in, /geometry_region_l1_reduction
                                the same inside the geometry change region, where the exact source
                                and target geometry differ (an expression moves a small part of the face)

Beside them, translation_figures counts where a kept attribute is lost (kept_breakdown names the
classes) and keeps the first rows of its draw for the sample figure (translation_report.plot_samples).
"""

from __future__ import annotations

import dataclasses
import sys
from collections import defaultdict
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from legan_tf.data.synthetic.render import FaceLab

TranslateFn = Callable[[np.ndarray, Dict[str, np.ndarray]], np.ndarray]

ATTRIBUTES = ("expression", "lighting")
BOTH = "both"
# The GAN learning check's targets.
TARGET_ACCURACY = {"expression": 0.75, "lighting": 0.90}
TARGET_L1_REDUCTION = 0.30
TARGET_KEPT_ACCURACY = 0.90  # disentanglement: the attribute not edited stays put
# Learning-check sets by name, each the list of target groups it applies. A recipe names its set
# (Task.translation_check), so a new recipe picks a set here instead of being added to a list of recipes.
CHECK_SETS = {
    "stargan": ("accuracy", "l1_reduction"),
    "legan": ("accuracy", "l1_reduction", "kept"),
    # The depth-guided StarGAN edits expression alone on the RGB-D lab: a mouth and brows in a 32 px face,
    # so an edit's whole-image L1 to the exact target is mostly the reconstruction error of the unchanged
    # face (plain StarGAN's as much as the depth-guided one's) and says little about the edit. Its check
    # sets no L1 target; the L1 figures (whole image and change region) and depth consistency are reported.
    "expression_edit": ("accuracy",),
}
DEFAULT_CHECK = "stargan"
# A pixel is in the change region when some channel differs by more than one 8-bit level (1/255 on
# the [0, 1] scale). The cut sits at 1.5 levels so that float rounding of two 8-bit images cannot
# put an exact one-level difference on either side.
CHANGE_THRESHOLD = 1.5 * 2.0 / 255.0  # [-1, 1] scale
# The geometry change region: where the exact source and target maps differ by more than this
# ([-1, 1] scale). The lab's depth is exact (no 8-bit step), so any difference is real; the cut only
# keeps float noise of equal surfaces (~1e-7) out.
GEOMETRY_CHANGE_THRESHOLD = 1e-4


# --- images and labels ----------------------------------------------------------------------------

def to_model_images(rgb: np.ndarray, image_size: int) -> np.ndarray:
    """Lab renders ([0, 1] floats) -> exactly what the data pipeline makes of the lab's PNGs.

    The PNGs hold 8-bit values, and the pipeline resizes them (antialiased bilinear) to the model's
    size and scales to [-1, 1]; the same steps here keep evaluation inputs in the training distribution.
    """
    levels = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.float32)
    if levels.shape[1] == image_size:
        return levels / 127.5 - 1.0
    from legan_tf.data.preprocess import resize_rgb  # TensorFlow, only when a resize is needed

    return resize_rgb(levels, image_size).numpy()


def render_model_images(lab: FaceLab, identity: np.ndarray, labels: Mapping[str, np.ndarray],
                        image_size: int) -> np.ndarray:
    return render_model_faces(lab, identity, labels, image_size)[0]


def render_model_faces(lab: FaceLab, identity: np.ndarray, labels: Mapping[str, np.ndarray],
                       image_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """(images, depth): the model's [-1, 1] images and the exact depth maps (B, S, S, 1) in [0, 1],
    resized as the data pipeline resizes depth (nearest) when the model's size is not the lab's."""
    out = lab.render(identity, labels["expression"], labels["lighting"])
    depth = out["depth"][..., None]
    if depth.shape[1] != image_size:
        from legan_tf.data.preprocess import resize_geometry  # TensorFlow, only when a resize is needed

        depth = resize_geometry(depth, image_size).numpy()
    return to_model_images(out["rgb"], image_size), depth.astype(np.float32)


def exact_geometry(depth: np.ndarray, geometry: str) -> np.ndarray:
    """The network-scale geometry map (legan_tf.geometry) of exact depth maps in [0, 1]."""
    from legan_tf.geometry import geometry_from_depth  # TensorFlow, imported when a depth network runs anyway

    return geometry_from_depth(depth, geometry).numpy()


def one_hot_labels(targets: Mapping[str, np.ndarray], label_sizes: Mapping[str, int]) -> np.ndarray:
    """`legan_tf.labels.one_hot_labels` as numpy, refusing ids out of range (it would give all-zero groups) and a
    multi-label group's vectors of another width or with values other than 0 and 1."""
    from legan_tf import labels  # TensorFlow, imported when a generator is about to run anyway

    for name, size in label_sizes.items():
        ids = np.asarray(targets[name])
        if labels.is_multi_label(name):
            if ids.ndim != 2 or ids.shape[1] != size or not np.isin(ids, (0, 1)).all():
                raise ValueError(f"{name} targets must be (N, {size}) vectors of 0 and 1, got shape {ids.shape}")
            continue
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            raise ValueError(f"{name} target ids must be in [0, {size}), got {np.unique(ids)}")
    return labels.one_hot_labels({name: np.asarray(targets[name]) for name in label_sizes}, label_sizes).numpy()


def generator_translate_fn(generator, label_sizes: Mapping[str, int], batch_size: int = 64) -> TranslateFn:
    """A translate_fn that calls a StarGAN-style `generator((images, labels))` in batches."""
    label_sizes = dict(label_sizes)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")

    def translate(images: np.ndarray, targets: Dict[str, np.ndarray]) -> np.ndarray:
        labels = one_hot_labels(targets, label_sizes)
        return np.concatenate([
            np.asarray(generator((images[start:start + batch_size], labels[start:start + batch_size])))
            for start in range(0, len(images), batch_size)])

    return translate


def change_region(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(B, H, W) bool: where two [-1, 1] images differ by more than one 8-bit level in some channel."""
    return np.abs(np.asarray(source) - np.asarray(target)).max(axis=-1) > CHANGE_THRESHOLD


# --- the check ------------------------------------------------------------------------------------

def edit_modes(attributes: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    """Mode name -> the attributes it edits: `both` (all of them) and, with two, each one alone."""
    attributes = tuple(attributes)
    if not attributes or len(set(attributes)) != len(attributes) or not set(attributes) <= set(ATTRIBUTES):
        raise ValueError(f"attributes must be distinct names from {ATTRIBUTES}, got {attributes}")
    modes = {BOTH: attributes}
    if len(attributes) > 1:
        modes.update({f"{name}_only": (name,) for name in attributes})
    return modes


def draw_edits(lab: FaceLab, identities: Sequence[int], num_faces: int, seed: int):
    """Seeded sources and, per attribute, a new value different from the source's.

    Returns (identity, source, new): identity (N,), source and new {attribute: (N,)} for both lab
    attributes (the lab renders both, whether or not the translator controls them).
    """
    identities = np.asarray(identities)
    if identities.size == 0 or num_faces < 1:
        raise ValueError(f"need at least one identity and one face, got {identities.size} and {num_faces}")
    rng = np.random.default_rng(seed)
    identity = rng.choice(identities, size=num_faces)
    counts = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
    source = {name: rng.integers(0, count, num_faces) for name, count in counts.items()}
    # A shift drawn uniformly from 1..count-1 reaches every other class with equal chance, never the source's.
    new = {name: (source[name] + rng.integers(1, count, num_faces)) % count for name, count in counts.items()}
    return identity, source, new


def mode_targets(source, new, edited: Sequence[str]) -> Dict[str, np.ndarray]:
    return {name: new[name] if name in edited else source[name] for name in ATTRIBUTES}


def classify(classifier, images: np.ndarray, attributes: Sequence[str], class_counts: Mapping[str, int]):
    """The classifier's predicted ids per attribute; checks it has a head of the right width for each."""
    logits = classifier(images)
    predicted = {}
    for name in attributes:
        if name not in logits:
            raise ValueError(f"the classifier has no {name!r} head (it has {sorted(logits)})")
        values = np.asarray(logits[name])
        if values.shape[-1] != class_counts[name]:
            raise ValueError(f"the classifier's {name!r} head has {values.shape[-1]} classes, "
                             f"the lab has {class_counts[name]}")
        predicted[name] = values.argmax(axis=-1)
    return predicted


def evaluate_translation(translate_fn: TranslateFn, lab: FaceLab, classifier, identities: Sequence[int],
                         num_faces: int = 300, seed: int = 0,
                         attributes: Sequence[str] = ATTRIBUTES, image_size: Optional[int] = None,
                         batch_size: int = 64, progress: bool = False,
                         geometry_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                         geometry: str = "depth") -> Dict[str, float]:
    """The learning-check metrics (module docstring) of `translate_fn` on `num_faces` seeded edits.

    translate_fn gets [-1, 1] images (B, S, S, 3) and {attribute: target ids (B,)} for `attributes`,
    and returns [-1, 1] images of the same shape. `classifier(images)` returns {attribute: logits}.
    `image_size` is the models' input size (default the lab's). `geometry_fn` (images -> `geometry`
    maps) adds depth consistency.
    """
    return translation_figures(translate_fn, lab, classifier, identities, num_faces, seed, attributes, image_size,
                               batch_size, progress, geometry_fn=geometry_fn, geometry=geometry).metrics


@dataclasses.dataclass
class ModeSamples:
    """One edit mode's translations of the sample rows."""

    edited: Tuple[str, ...]
    targets: Dict[str, np.ndarray]    # per lab attribute, (R,) ids
    truth: np.ndarray                 # (R, S, S, 3) exact target renders, [-1, 1]
    translated: np.ndarray            # (R, S, S, 3) translate_fn's output, [-1, 1]
    predicted: Dict[str, np.ndarray]  # the classifier's reading of `translated`, per translated attribute


@dataclasses.dataclass
class TranslationSamples:
    """The first rows of translation_figures' draw, as the metrics saw them (for the sample figure)."""

    attributes: Tuple[str, ...]
    inputs: np.ndarray                # (R, S, S, 3) exact source renders, [-1, 1]
    source: Dict[str, np.ndarray]     # per lab attribute, (R,) ids
    modes: Dict[str, ModeSamples]


class Chunk(NamedTuple):
    """What one translate_fn call of translation_figures translates (handed over with `pass_chunk`)."""

    rows: slice                       # the rows of the draw (draw_edits' order)
    mode: str                         # the edit mode (edit_modes)
    edited: Tuple[str, ...]           # the attributes it edits
    identity: np.ndarray              # (B,) the identities of those rows
    targets: Dict[str, np.ndarray]    # per lab attribute, (B,) target ids (mode_targets)
    truth: np.ndarray                 # (B, S, S, 3) the exact target renders, [-1, 1]


class TranslationFigures(NamedTuple):
    metrics: Dict[str, float]
    kept_counts: Dict[str, Dict[str, np.ndarray]]
    samples: Optional[TranslationSamples]  # None when no sample rows were asked for


def translation_figures(translate_fn: TranslateFn, lab: FaceLab, classifier, identities: Sequence[int],
                        num_faces: int = 300, seed: int = 0,
                        attributes: Sequence[str] = ATTRIBUTES, image_size: Optional[int] = None,
                        batch_size: int = 64, progress: bool = False, sample_rows: int = 0,
                        geometry_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                        geometry: str = "depth", pass_chunk: bool = False) -> TranslationFigures:
    """(metrics, kept_counts, samples): evaluate_translation's metrics, where a kept attribute is lost,
    and the first `sample_rows` faces with their translations.

    kept_counts maps "<mode>/kept/<a>" (single-attribute modes) to count matrices:
      "confusion":    (C_a, C_a), row = the source's value of <a>, column = the classifier's reading;
      "by_<edited>":  (C_edited, 2), per target value of the edited attribute: [kept, edits].
    A kept figure below its target says how often the attribute is lost; these say which classes are
    lost and under which edits (e.g. the extreme lights), without a second pass over the translator.
    The samples are kept for the same reason: the figure shows the very translations that were scored.
    `geometry_fn` (images -> `geometry` maps, e.g. a DepthGenerator) adds the depth-consistency figures.
    With `pass_chunk`, translate_fn is called as translate_fn(images, targets, chunk): `chunk` (a Chunk)
    says which rows of the draw and which edit mode it translates, with their exact target renders, so
    that a caller can score the same translations against its own metrics.
    """
    modes = edit_modes(attributes)
    image_size = image_size or lab.image_size
    class_counts = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
    identity, source, new = draw_edits(lab, identities, num_faces, seed)
    sums = defaultdict(float)
    kept_counts = {}
    sample_rows = min(max(sample_rows, 0), num_faces)
    sample_parts = []
    for mode, edited in modes.items():
        if mode != BOTH:
            for name in attributes:
                if name not in edited:
                    kept_counts[f"{mode}/kept/{name}"] = {
                        "confusion": np.zeros((class_counts[name],) * 2, np.int64),
                        **{f"by_{other}": np.zeros((class_counts[other], 2), np.int64) for other in edited}}
    chunks = range(0, num_faces, batch_size)
    for start in tqdm(chunks, desc="translating", unit="batch", disable=not progress, file=sys.stderr):
        rows = slice(start, min(start + batch_size, num_faces))
        faces = identity[rows]
        chunk_source = {name: values[rows] for name, values in source.items()}
        chunk_new = {name: values[rows] for name, values in new.items()}
        inputs, source_depth = render_model_faces(lab, faces, chunk_source, image_size)
        predicted = classify(classifier, inputs, attributes, class_counts)
        for name in attributes:
            sums[f"classifier_on_input/{name}"] += np.sum(predicted[name] == chunk_source[name])
        keep = slice(0, max(sample_rows - start, 0))  # this chunk's share of the sample rows
        part = {"inputs": inputs[keep], "source": _rows(chunk_source, keep), "modes": {}}

        for mode, edited in modes.items():
            targets = mode_targets(chunk_source, chunk_new, edited)
            truth, truth_depth = render_model_faces(lab, faces, targets, image_size)
            requested = {name: targets[name] for name in attributes}
            if pass_chunk:
                translated = translate_fn(inputs, requested, Chunk(rows, mode, edited, faces, targets, truth))
            else:
                translated = translate_fn(inputs, requested)
            translated = np.asarray(translated, dtype=np.float32)
            if translated.shape != inputs.shape:
                raise ValueError(f"translate_fn returned shape {translated.shape} for inputs {inputs.shape}")
            predicted = classify(classifier, translated, attributes, class_counts)
            for name in attributes:
                # An edited attribute must reach its target; one left alone must keep the source's value.
                figure = "accuracy" if name in edited else "kept"
                sums[f"{mode}/{figure}/{name}"] += np.sum(predicted[name] == targets[name])
                counts = kept_counts.get(f"{mode}/{figure}/{name}")
                if counts is not None:
                    np.add.at(counts["confusion"], (targets[name], predicted[name]), 1)
                    for other in edited:
                        np.add.at(counts[f"by_{other}"], (targets[other], 0), predicted[name] == targets[name])
                        np.add.at(counts[f"by_{other}"], (targets[other], 1), 1)
            part["modes"][mode] = {"targets": _rows(targets, keep), "truth": truth[keep],
                                   "translated": translated[keep], "predicted": _rows(predicted, keep)}
            if mode == BOTH:
                on_truth = classify(classifier, truth, attributes, class_counts)
                for name in attributes:
                    sums[f"classifier_on_truth/{name}"] += np.sum(on_truth[name] == targets[name])
                if geometry_fn is not None:
                    _add_geometry_sums(sums, geometry_fn, geometry, inputs, translated, truth, source_depth,
                                       truth_depth)

            error_out = np.abs(translated - truth).mean(axis=-1)  # (B, S, S)
            error_in = np.abs(inputs - truth).mean(axis=-1)
            sums[f"{mode}/l1_out"] += error_out.mean(axis=(1, 2)).sum()
            sums[f"{mode}/l1_in"] += error_in.mean(axis=(1, 2)).sum()
            if len(edited) == 1:
                # The inputs are the exact source renders, so this is where the two exact renders differ.
                region = change_region(inputs, truth)
                sums[f"{mode}/region_l1_out"] += error_out[region].sum()
                sums[f"{mode}/region_l1_in"] += error_in[region].sum()
                sums[f"{mode}/region_pixels"] += region.sum()
        if len(part["inputs"]):
            sample_parts.append(part)

    metrics = {"num_faces": num_faces, "num_identities": int(np.unique(identity).size)}
    for name, total in sums.items():
        if "region_" not in name and "geometry_" not in name:
            metrics[name] = float(total) / num_faces
    for mode in modes:
        metrics[f"{mode}/l1_reduction"] = _reduction(metrics[f"{mode}/l1_out"], metrics[f"{mode}/l1_in"])
        if len(modes[mode]) == 1:
            # Pooled over all faces' change pixels, so faces with tiny regions don't dominate.
            pixels = sums[f"{mode}/region_pixels"]
            for side in ("out", "in"):
                metrics[f"{mode}/region_l1_{side}"] = (float(sums[f"{mode}/region_l1_{side}"]) / pixels
                                                       if pixels else float("nan"))
            metrics[f"{mode}/region_l1_reduction"] = _reduction(metrics[f"{mode}/region_l1_out"],
                                                                metrics[f"{mode}/region_l1_in"])
    if geometry_fn is not None:
        _finish_geometry_metrics(metrics, sums, num_faces)
    samples = None
    if sample_parts:
        joined = _concatenate(sample_parts)
        samples = TranslationSamples(
            tuple(attributes), joined["inputs"], joined["source"],
            {mode: ModeSamples(modes[mode], **fields) for mode, fields in joined["modes"].items()})
    return TranslationFigures(dict(sorted(metrics.items())), kept_counts, samples)


def _add_geometry_sums(sums, geometry_fn, geometry, inputs, translated, truth, source_depth, truth_depth):
    """Per-face geometry L1 sums of a `both` chunk (see the module docstring)."""
    target = exact_geometry(truth_depth, geometry)
    region = np.abs(exact_geometry(source_depth, geometry) - target).max(axis=-1) > GEOMETRY_CHANGE_THRESHOLD
    for side, images in (("out", translated), ("in", inputs), ("truth", truth)):
        error = np.abs(np.asarray(geometry_fn(images), np.float32) - target).mean(axis=-1)  # (B, S, S)
        sums[f"{BOTH}/geometry_l1_{side}"] += error.mean(axis=(1, 2)).sum()
        if side != "truth":
            sums[f"{BOTH}/geometry_region_l1_{side}"] += error[region].sum()
    sums[f"{BOTH}/geometry_region_pixels"] += region.sum()


def _finish_geometry_metrics(metrics, sums, num_faces):
    for side in ("out", "in", "truth"):
        metrics[f"{BOTH}/geometry_l1_{side}"] = float(sums[f"{BOTH}/geometry_l1_{side}"]) / num_faces
    metrics[f"{BOTH}/geometry_l1_reduction"] = _reduction(metrics[f"{BOTH}/geometry_l1_out"],
                                                          metrics[f"{BOTH}/geometry_l1_in"])
    pixels = sums[f"{BOTH}/geometry_region_pixels"]
    for side in ("out", "in"):
        metrics[f"{BOTH}/geometry_region_l1_{side}"] = (float(sums[f"{BOTH}/geometry_region_l1_{side}"]) / pixels
                                                         if pixels else float("nan"))
    metrics[f"{BOTH}/geometry_region_l1_reduction"] = _reduction(metrics[f"{BOTH}/geometry_region_l1_out"],
                                                                 metrics[f"{BOTH}/geometry_region_l1_in"])


def _rows(arrays: Mapping[str, np.ndarray], rows: slice) -> Dict[str, np.ndarray]:
    return {name: values[rows] for name, values in arrays.items()}


def _concatenate(parts):
    """Equally nested dicts of arrays -> one such dict, the arrays joined along their first axis."""
    if isinstance(parts[0], dict):
        return {key: _concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _reduction(out: float, into: float) -> float:
    return 1.0 - out / into if into > 0 else float("nan")


def learning_check_verdict(metrics: Mapping[str, float],
                           kind: str = DEFAULT_CHECK) -> List[Tuple[str, float, float, bool]]:
    """(metric, value, target, passed) for each target of the check set `kind` present in `metrics`.

    "stargan": target accuracy with random targets for every attribute (expression >= 0.75, lighting
    >= 0.90) and whole-image L1 reduction >= 0.30. "legan" adds disentanglement: the attribute not
    edited keeps its value in >= 90% of single-attribute edits. "expression_edit": the target accuracy
    alone (the L1 figures reported beside it). A NaN value fails.
    """
    if kind not in CHECK_SETS:
        raise ValueError(f"kind must be one of {tuple(CHECK_SETS)}, got {kind!r}")
    groups = CHECK_SETS[kind]
    attributes = [name for name in ATTRIBUTES if f"{BOTH}/accuracy/{name}" in metrics]
    if not attributes:
        raise ValueError("metrics hold no both/accuracy/<attribute> figure; are they evaluate_translation's?")
    checks = []
    if "accuracy" in groups:
        checks += [(f"{BOTH}/accuracy/{name}", TARGET_ACCURACY[name]) for name in attributes]
    if "l1_reduction" in groups:
        checks.append((f"{BOTH}/l1_reduction", TARGET_L1_REDUCTION))
    if "kept" in groups and len(attributes) > 1:
        checks += [(f"{edited}_only/kept/{kept}", TARGET_KEPT_ACCURACY)
                   for edited in attributes for kept in attributes if kept != edited]
    return [(name, float(metrics[name]), target, bool(metrics[name] >= target)) for name, target in checks]


def reported_figures(metrics: Mapping[str, float], checked: Sequence[str] = ()) -> List[Tuple[str, float]]:
    """Figures shown beside the verdict: whole-image and region L1, single-edit accuracies, geometry, the
    classifier's ceilings; less the `checked` names, which the verdict already shows."""
    shown = (f"{BOTH}/l1_", "/region_l1_reduction", "_only/accuracy/", "classifier_on_truth/",
             "classifier_on_input/", "/geometry_")
    return [(name, float(value)) for name, value in metrics.items()
            if isinstance(value, float) and any(part in name for part in shown) and name not in checked]


def class_names(lab: FaceLab) -> Dict[str, List[str]]:
    """Display names of the lab's classes per attribute (lights as l00, l01, ...)."""
    return {"expression": list(lab.expression_names), "lighting": [f"l{name}" for name in lab.lighting_names]}


def kept_breakdown(kept_counts, names: Mapping[str, Sequence[str]]) -> Dict[str, dict]:
    """translation_figures' kept counts as a JSON-ready report with class names.

    Per "<mode>/kept/<a>": "by_source" {class: {kept, edits, rate}}, "lost_to" [{source, read_as,
    count, of}] (most frequent first), and per edited attribute "by_target_<e>" {class: {kept, edits,
    rate}}.
    """
    report = {}
    for key, counts in kept_counts.items():
        kept_name = key.rsplit("/", 1)[1]
        confusion = counts["confusion"]
        totals = confusion.sum(axis=1)
        entry = {"by_source": {names[kept_name][c]: _rate(int(confusion[c, c]), int(totals[c]))
                               for c in range(len(totals)) if totals[c]}}
        lost = [(int(confusion[a, b]), a, b) for a in range(len(totals)) for b in range(len(totals))
                if a != b and confusion[a, b]]
        entry["lost_to"] = [{"source": names[kept_name][a], "read_as": names[kept_name][b], "count": count,
                             "of": int(totals[a])} for count, a, b in sorted(lost, key=lambda row: (-row[0], row[1:]))]
        for field, table in counts.items():
            if field.startswith("by_"):
                edited = field[3:]
                entry[f"by_target_{edited}"] = {names[edited][v]: _rate(int(table[v, 0]), int(table[v, 1]))
                                                for v in range(len(table)) if table[v, 1]}
        report[key] = entry
    return report


def _rate(kept: int, edits: int) -> Dict[str, float]:
    return {"kept": kept, "edits": edits, "rate": kept / edits}
