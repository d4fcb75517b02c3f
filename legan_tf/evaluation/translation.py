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
  <mode>/region_l1_out, _in,    single-attribute modes: the same, inside the change region (where
  /region_l1_reduction          the source and target exact renders differ), as whole-image L1
                                punishes small correct edits
  classifier_on_truth/<a>       the classifier on the exact `both` target renders: its ceiling
  classifier_on_input/<a>       the classifier on the inputs: the ceiling of the kept figures

Beside them, evaluate_run's report has "kept_breakdown": for each kept figure, the rate per source
class, the commonest misreadings and the rate per target of the edited attribute (translation_figures).
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from absl import flags
from tqdm import tqdm

from legan_tf import visualize
from legan_tf.data.config import MULTIPIE_EXPRESSIONS, MULTIPIE_NUM_LIGHTINGS
from legan_tf.data.synthetic.expressions import EXPRESSION_SETS
from legan_tf.data.synthetic.render import FaceLab
from legan_tf.data.synthetic.writer import SETTINGS_FILE as LAB_SETTINGS_FILE
from legan_tf.errors import ConfigError
from legan_tf.training.run_dir import parse_run_flags

TranslateFn = Callable[[np.ndarray, Dict[str, np.ndarray]], np.ndarray]

ATTRIBUTES = ("expression", "lighting")
BOTH = "both"
KINDS = ("stargan", "legan")
# The GAN issues' learning check.
TARGET_ACCURACY = {"expression": 0.75, "lighting": 0.90}
TARGET_L1_REDUCTION = 0.30
TARGET_KEPT_ACCURACY = 0.90  # LEGAN's disentanglement: the attribute not edited stays put
# A pixel is in the change region when some channel differs by more than one 8-bit level (1/255 on
# the [0, 1] scale). The cut sits at 1.5 levels so that float rounding of two 8-bit images cannot
# put an exact one-level difference on either side.
CHANGE_THRESHOLD = 1.5 * 2.0 / 255.0  # [-1, 1] scale
EVALUATION_DIR = "evaluation"
METRICS_FILE = "translation_metrics.json"
SAMPLES_FILE = "translation_samples.png"
GENERATOR_FILE = "generator.keras"


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
    rgb = lab.render(identity, labels["expression"], labels["lighting"])["rgb"]
    return to_model_images(rgb, image_size)


def one_hot_labels(targets: Mapping[str, np.ndarray], label_sizes: Mapping[str, int]) -> np.ndarray:
    """The StarGAN label vector: one-hot vectors concatenated in the order of `label_sizes`."""
    parts = []
    for name, size in label_sizes.items():
        ids = np.asarray(targets[name])
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            raise ValueError(f"{name} target ids must be in [0, {size}), got {np.unique(ids)}")
        parts.append(np.eye(size, dtype=np.float32)[ids])
    return np.concatenate(parts, axis=-1)


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
                         batch_size: int = 64, progress: bool = False) -> Dict[str, float]:
    """The learning-check metrics (module docstring) of `translate_fn` on `num_faces` seeded edits.

    translate_fn gets [-1, 1] images (B, S, S, 3) and {attribute: target ids (B,)} for `attributes`,
    and returns [-1, 1] images of the same shape. `classifier(images)` returns {attribute: logits}.
    `image_size` is the models' input size (default the lab's).
    """
    return translation_figures(translate_fn, lab, classifier, identities, num_faces, seed, attributes, image_size,
                               batch_size, progress)[0]


def translation_figures(translate_fn: TranslateFn, lab: FaceLab, classifier, identities: Sequence[int],
                        num_faces: int = 300, seed: int = 0,
                        attributes: Sequence[str] = ATTRIBUTES, image_size: Optional[int] = None,
                        batch_size: int = 64, progress: bool = False):
    """(metrics, kept_counts): evaluate_translation's metrics, and where a kept attribute is lost.

    kept_counts maps "<mode>/kept/<a>" (single-attribute modes) to count matrices:
      "confusion":    (C_a, C_a), row = the source's value of <a>, column = the classifier's reading;
      "by_<edited>":  (C_edited, 2), per target value of the edited attribute: [kept, edits].
    A kept figure below its target says how often the attribute is lost; these say which classes are
    lost and under which edits (e.g. the extreme lights), without a second pass over the translator.
    """
    modes = edit_modes(attributes)
    image_size = image_size or lab.image_size
    class_counts = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
    identity, source, new = draw_edits(lab, identities, num_faces, seed)
    sums = defaultdict(float)
    kept_counts = {}
    for mode, edited in modes.items():
        if mode != BOTH:
            for name in attributes:
                if name not in edited:
                    kept_counts[f"{mode}/kept/{name}"] = {
                        "confusion": np.zeros((class_counts[name],) * 2, np.int64),
                        **{f"by_{other}": np.zeros((class_counts[other], 2), np.int64) for other in edited}}
    chunks = range(0, num_faces, batch_size)
    for start in tqdm(chunks, desc="translating", unit="batch", disable=not progress, file=sys.stderr):
        chunk = slice(start, start + batch_size)
        faces = identity[chunk]
        chunk_source = {name: values[chunk] for name, values in source.items()}
        chunk_new = {name: values[chunk] for name, values in new.items()}
        inputs = render_model_images(lab, faces, chunk_source, image_size)
        predicted = classify(classifier, inputs, attributes, class_counts)
        for name in attributes:
            sums[f"classifier_on_input/{name}"] += np.sum(predicted[name] == chunk_source[name])

        for mode, edited in modes.items():
            targets = mode_targets(chunk_source, chunk_new, edited)
            truth = render_model_images(lab, faces, targets, image_size)
            translated = np.asarray(translate_fn(inputs, {name: targets[name] for name in attributes}),
                                    dtype=np.float32)
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
            if mode == BOTH:
                on_truth = classify(classifier, truth, attributes, class_counts)
                for name in attributes:
                    sums[f"classifier_on_truth/{name}"] += np.sum(on_truth[name] == targets[name])

            error_out = np.abs(translated - truth).mean(axis=-1)  # (B, S, S)
            error_in = np.abs(inputs - truth).mean(axis=-1)
            sums[f"{mode}/l1_out"] += error_out.mean(axis=(1, 2)).sum()
            sums[f"{mode}/l1_in"] += error_in.mean(axis=(1, 2)).sum()
            if mode != BOTH:
                # The inputs are the exact source renders, so this is where the two exact renders differ.
                region = change_region(inputs, truth)
                sums[f"{mode}/region_l1_out"] += error_out[region].sum()
                sums[f"{mode}/region_l1_in"] += error_in[region].sum()
                sums[f"{mode}/region_pixels"] += region.sum()

    metrics = {"num_faces": num_faces, "num_identities": int(np.unique(identity).size)}
    for name, total in sums.items():
        if "region_" not in name:
            metrics[name] = float(total) / num_faces
    for mode in modes:
        metrics[f"{mode}/l1_reduction"] = _reduction(metrics[f"{mode}/l1_out"], metrics[f"{mode}/l1_in"])
        if mode != BOTH:
            # Pooled over all faces' change pixels, so faces with tiny regions don't dominate.
            pixels = sums[f"{mode}/region_pixels"]
            for side in ("out", "in"):
                metrics[f"{mode}/region_l1_{side}"] = (float(sums[f"{mode}/region_l1_{side}"]) / pixels
                                                       if pixels else float("nan"))
            metrics[f"{mode}/region_l1_reduction"] = _reduction(metrics[f"{mode}/region_l1_out"],
                                                                metrics[f"{mode}/region_l1_in"])
    return dict(sorted(metrics.items())), kept_counts


def _reduction(out: float, into: float) -> float:
    return 1.0 - out / into if into > 0 else float("nan")


def learning_check_verdict(metrics: Mapping[str, float], kind: str = "stargan") -> List[Tuple[str, float, float, bool]]:
    """(metric, value, target, passed) for each of the issue's learning-check targets present in `metrics`.

    Both kinds: target accuracy with random targets for every attribute (expression >= 0.75, lighting
    >= 0.90) and whole-image L1 reduction >= 0.30. LEGAN adds disentanglement: the attribute not
    edited keeps its value in >= 90% of single-attribute edits. A NaN value fails.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    attributes = [name for name in ATTRIBUTES if f"{BOTH}/accuracy/{name}" in metrics]
    if not attributes:
        raise ValueError("metrics hold no both/accuracy/<attribute> figure; are they evaluate_translation's?")
    checks = [(f"{BOTH}/accuracy/{name}", TARGET_ACCURACY[name]) for name in attributes]
    checks.append((f"{BOTH}/l1_reduction", TARGET_L1_REDUCTION))
    if kind == "legan" and len(attributes) > 1:
        checks += [(f"{edited}_only/kept/{kept}", TARGET_KEPT_ACCURACY)
                   for edited in attributes for kept in attributes if kept != edited]
    return [(name, float(metrics[name]), target, bool(metrics[name] >= target)) for name, target in checks]


def reported_figures(metrics: Mapping[str, float]) -> List[Tuple[str, float]]:
    """Figures shown beside the verdict: single-edit accuracies and region L1, the classifier's ceilings."""
    shown = ("/region_l1_reduction", "_only/accuracy/", "classifier_on_truth/", "classifier_on_input/")
    return [(name, float(value)) for name, value in metrics.items()
            if isinstance(value, float) and any(part in name for part in shown)]


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


def format_kept_breakdown(breakdown: Mapping[str, dict], worst: int = 3) -> str:
    """A few lines per kept figure: the rate per source class, the commonest misreadings and the
    edits under which the attribute is lost most often."""
    lines = []
    for key, entry in breakdown.items():
        lines.append(f"{key}:")
        lines.append("  kept by source: " + ", ".join(f"{name} {100 * row['rate']:.0f}%"
                                                      for name, row in entry["by_source"].items()))
        if entry["lost_to"]:
            lines.append("  lost most often: " + ", ".join(f"{row['source']} read as {row['read_as']} "
                                                           f"{row['count']}/{row['of']}"
                                                           for row in entry["lost_to"][:worst]))
        for field, table in entry.items():
            if field.startswith("by_target_"):
                ranked = sorted(table.items(), key=lambda item: (item[1]["rate"], item[0]))[:worst]
                lines.append(f"  worst targets of {field[len('by_target_'):]}: "
                             + ", ".join(f"{name} {row['kept']}/{row['edits']}" for name, row in ranked))
    return "\n".join(lines)


def format_verdict(verdict, reported=()) -> str:
    width = max([len(name) for name, *_ in verdict] + [len(name) for name, _ in reported] + [6])
    lines = [f"{'check':{width}}  {'value':>7}  {'target':>7}  result"]
    lines += [f"{name:{width}}  {value:>7.3f}  {f'>={target:.2f}':>7}  {'pass' if passed else 'FAIL'}"
              for name, value, target, passed in verdict]
    if reported:
        lines += ["", f"{'reported':{width}}  {'value':>7}"]
        lines += [f"{name:{width}}  {value:>7.3f}" for name, value in reported]
    return "\n".join(lines)


# --- the sample figure ----------------------------------------------------------------------------

def plot_samples(translate_fn: TranslateFn, lab: FaceLab, classifier, identities: Sequence[int], path: str,
                 num_rows: int = 4, num_faces: int = 300, seed: int = 0,
                 attributes: Sequence[str] = ATTRIBUTES, image_size: Optional[int] = None) -> None:
    """Saves a PNG: one row per source (the first `num_rows` of evaluate_translation's draw with the
    same num_faces and seed); per mode the input, the translation (captioned with the classifier's
    reading, green when every edited attribute is right), the exact target and |translation - target|.
    """
    import matplotlib.pyplot as plt  # visualize has already selected the Agg backend

    modes = edit_modes(attributes)
    image_size = image_size or lab.image_size
    class_counts = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
    identity, source, new = draw_edits(lab, identities, num_faces, seed)
    rows = min(num_rows, num_faces)
    identity = identity[:rows]
    source = {name: values[:rows] for name, values in source.items()}
    new = {name: values[:rows] for name, values in new.items()}
    names = class_names(lab)

    def caption(labels, index):
        return " ".join(names[name][labels[name][index]] for name in attributes)

    inputs = render_model_images(lab, identity, source, image_size)
    columns = 4 * len(modes)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.25, rows * 1.45), dpi=100, squeeze=False)
    for mode_index, (mode, edited) in enumerate(modes.items()):
        targets = mode_targets(source, new, edited)
        truth = render_model_images(lab, identity, targets, image_size)
        translated = np.asarray(translate_fn(inputs, {name: targets[name] for name in attributes}))
        predicted = classify(classifier, translated, attributes, class_counts)
        error = np.abs(translated - truth).mean(axis=-1)  # [-1, 1] scale, as the L1 metrics
        for row in range(rows):
            correct = all(predicted[name][row] == targets[name][row] for name in edited)
            cells = [(visualize.to_uint8(inputs[row]), caption(source, row), "black"),
                     (visualize.to_uint8(translated[row]), caption(predicted, row), "green" if correct else "red"),
                     (visualize.to_uint8(truth[row]), caption(targets, row), "black"),
                     (error[row], f"L1 {error[row].mean():.3f}", "black")]
            for cell_index, (image, text, colour) in enumerate(cells):
                axis = axes[row, 4 * mode_index + cell_index]
                axis.axis("off")
                if image.ndim == 2:
                    axis.imshow(image, cmap="inferno", vmin=0.0, vmax=1.0)
                else:
                    axis.imshow(image)
                axis.text(0.5, -0.04, text, transform=axis.transAxes, ha="center", va="top", fontsize=5.5,
                          color=colour)
        for cell_index, title in enumerate(("input", "translated", "exact target", "|diff|")):
            axes[0, 4 * mode_index + cell_index].set_title(f"{mode}\n{title}", fontsize=6.5)
    visualize.save_png(visualize.figure_to_array(figure), path)


# --- a run ----------------------------------------------------------------------------------------

# What the evaluation needs from a run's flags.txt (or the command line).
RUN_SETTINGS = ("image_size", "expression_names", "lighting_names", "num_lightings", "data_path")


def read_run_settings(run_dir: str) -> Dict[str, object]:
    """The RUN_SETTINGS lines of `<run_dir>/flags.txt`, parsed with their types; absent ones are left out."""
    run_flags = flags.FlagValues()
    flags.DEFINE_integer("image_size", None, "", flag_values=run_flags)
    flags.DEFINE_list("expression_names", None, "", flag_values=run_flags)
    flags.DEFINE_list("lighting_names", None, "", flag_values=run_flags)
    flags.DEFINE_integer("num_lightings", None, "", flag_values=run_flags)
    flags.DEFINE_string("data_path", None, "", flag_values=run_flags)
    parse_run_flags(run_dir, run_flags)
    return {name: run_flags[name].value for name in RUN_SETTINGS if run_flags[name].present}


def lab_settings(data_path: Optional[str], overrides: Mapping[str, object], expression_names: Sequence[str],
                 num_lightings: int, image_size: int) -> Dict[str, object]:
    """The FaceLab arguments: `<lab>/lab.json` (the lab root holds `multipie/manifest.csv`), then overrides.

    Without a lab.json, the expression set is the one whose names are the run's, the lights the
    run's count, the size the model's, and seed and ambient FaceLab's defaults (held-out identities
    are unseen under any seed; the ambient share must be the lab's, so pass it when not the default).
    """
    settings = {"image_size": image_size, "expression_set": None, "num_lightings": num_lightings,
                "seed": 0, "ambient": 0.25, "subjects": [], "lab_json": None}
    if data_path:
        lab_json = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(data_path))), LAB_SETTINGS_FILE)
        if os.path.isfile(lab_json):
            with open(lab_json, encoding="utf-8") as handle:
                saved = json.load(handle)
            if "multipie" not in saved:
                raise ConfigError(f"{lab_json}: the lab has no multipie part, so no labelled faces to translate.")
            settings.update(image_size=saved["image_size"], expression_set=saved["multipie"]["expression_set"],
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


def _load(path: str, what: str, flag: str):
    import keras

    if not os.path.isfile(path):
        raise ConfigError(f"{flag}={path}: no such {what} file.")
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"{path}: cannot load the {what} ({error}).") from None


def infer_attributes(num_labels: int, class_counts: Mapping[str, int]) -> Tuple[str, ...]:
    """Which attributes a generator's label vector covers, from its length (expression first)."""
    candidates = [("expression", "lighting"), ("expression",), ("lighting",)]
    matching = [names for names in candidates if sum(class_counts[name] for name in names) == num_labels]
    if len(matching) != 1:
        why = "none" if not matching else "several"
        raise ConfigError(
            f"the generator takes {num_labels} labels; {why} of expression ({class_counts['expression']}), "
            f"lighting ({class_counts['lighting']}) or both fit: pass --attributes.")
    return matching[0]


def evaluate_run(classifier_path: str, run_dir: Optional[str] = None, generator_path: Optional[str] = None,
                 settings: Optional[Mapping[str, object]] = None, lab_overrides: Optional[Mapping[str, object]] = None,
                 attributes: Optional[Sequence[str]] = None, first_identity: int = 100000,
                 num_identities: int = 20, num_faces: int = 300, seed: int = 0, batch_size: int = 64,
                 kind: str = "stargan", output_dir: Optional[str] = None, sample_rows: int = 4,
                 progress: bool = True) -> Dict[str, object]:
    """Runs the learning check of a saved generator; writes translation_metrics.json and translation_samples.png.

    `settings` (RUN_SETTINGS names) override the run's flags.txt; `lab_overrides` (FaceLab argument
    names) override lab.json. Returns the JSON content plus output_dir.
    """
    import legan_tf.models  # noqa: F401  (registers the networks for load_model)
    from legan_tf.models.classifier import AttributeClassifier

    if kind not in KINDS:
        raise ConfigError(f"--kind={kind}: expected one of {', '.join(KINDS)}.")
    for name, value in (("num_faces", num_faces), ("num_identities", num_identities), ("batch_size", batch_size)):
        if value < 1:
            raise ConfigError(f"--{name}={value} must be positive.")
    if not run_dir and not generator_path:
        raise ConfigError("give --run_dir=<a GAN run directory> or --generator=<generator.keras>.")
    resolved = read_run_settings(run_dir) if run_dir else {}
    resolved.update({name: value for name, value in (settings or {}).items() if value is not None})
    if not generator_path:
        generator_path = os.path.join(run_dir, GENERATOR_FILE)
        if not os.path.isfile(generator_path):
            raise ConfigError(f"--run_dir={run_dir}: it has no {GENERATOR_FILE} (is the GAN run finished?); "
                              "or pass --generator=<file.keras>.")
    generator = _load(generator_path, "generator", "--generator")
    if not all(hasattr(generator, name) for name in ("image_size", "num_labels")):
        raise ConfigError(f"{generator_path}: a {type(generator).__name__}, not a label-conditioned generator.")
    classifier = _load(classifier_path, "classifier", "--classifier")
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
    if lab.num_lightings != num_lightings:
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

    translate = generator_translate_fn(generator, label_sizes, batch_size)
    metrics, kept_counts = translation_figures(translate, lab, classifier, identities, num_faces, seed, attributes,
                                               image_size, batch_size, progress)
    verdict = learning_check_verdict(metrics, kind)
    report = {
        "generator": os.path.abspath(generator_path),
        "classifier": os.path.abspath(classifier_path),
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
    plot_samples(translate, lab, classifier, identities, os.path.join(output_dir, SAMPLES_FILE), sample_rows,
                 num_faces, seed, attributes, image_size)
    report["output_dir"] = output_dir
    return report


# --- comparing runs -------------------------------------------------------------------------------

# The rows of a comparison table: the learning-check targets first, then what explains them.
COMPARISON_ROWS = (
    ("both/accuracy/expression", "target expression recognised (both edited)"),
    ("both/accuracy/lighting", "target lighting recognised (both edited)"),
    ("both/l1_reduction", "L1 to the exact target, reduction against the input"),
    ("lighting_only/kept/expression", "lighting-only edits keep the expression"),
    ("expression_only/kept/lighting", "expression-only edits keep the lighting"),
    ("expression_only/accuracy/expression", "expression-only edits: target recognised"),
    ("lighting_only/accuracy/lighting", "lighting-only edits: target recognised"),
    ("expression_only/region_l1_reduction", "expression-only edits: change-region L1 reduction"),
    ("lighting_only/region_l1_reduction", "lighting-only edits: change-region L1 reduction"),
)


def comparison_table(reports: Mapping[str, Union[Mapping[str, float], Sequence[Mapping[str, float]]]]) -> str:
    """A markdown table of the COMPARISON_ROWS of several runs' metrics, one column per label.

    `reports` maps a label to one run's evaluate_translation metrics, or to a list of them: the same
    setting trained with different seeds. A list shows as "mean (min-max)" so that a difference between
    settings can be read against the spread within one; the header gives the number of runs. A figure
    a run lacks shows as a dash (for a group, it is averaged over the runs that have it).
    """
    groups = {label: [runs] if isinstance(runs, Mapping) else list(runs) for label, runs in reports.items()}
    for label, runs in groups.items():
        if not runs:
            raise ValueError(f"comparison_table: no runs under the label {label!r}")
    headers = [label if len(runs) == 1 else f"{label} ({len(runs)} runs)" for label, runs in groups.items()]
    lines = ["| figure | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for key, description in COMPARISON_ROWS:
        cells = []
        for runs in groups.values():
            values = [100 * run[key] for run in runs if key in run]
            if not values:
                cells.append("-")
            elif len(runs) == 1:
                cells.append(f"{values[0]:.1f}%")
            else:
                cells.append(f"{np.mean(values):.1f}% ({min(values):.1f}-{max(values):.1f})")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {description} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_evaluation(path: str) -> Dict[str, float]:
    """The metrics of an evaluation: a translation_metrics.json, or a run directory holding evaluation/ with one."""
    if os.path.isdir(path):
        path = os.path.join(path, "evaluation", METRICS_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no translation metrics here; run scripts/evaluate_translation.py first.")
    with open(path) as f:
        try:
            return json.load(f)["metrics"]
        except (json.JSONDecodeError, KeyError):
            raise ConfigError(f"{path}: not a {METRICS_FILE} written by scripts/evaluate_translation.py.") from None
