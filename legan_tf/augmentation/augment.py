"""Balancing a labelled face dataset with a trained generator, filtered by Q: what `scripts/augment.py` does.

For every under-represented class of the balanced attribute(s), source faces of the other classes
(a seeded draw, each source used at most once per class) are translated to that class by a StarGAN
or LEGAN generator; every other attribute keeps the source's value. Each output is scored by Q, the
perceptual quality model, on the 8-bit image that is written, and kept when its score is at least
`min_quality`. Rejected outputs are replaced by translations of further sources until the class
reaches its target or `attempts` outputs per missing face were made.

The output (docs/evaluation.md, "Augmentation with Q filtering") is a manifest dataset the readers load:
`manifest.csv` (the original rows, by reference, then the kept synthetic rows), `synthetic.csv` (the
synthetic rows alone), `rejected.csv`, `heldout.csv` (when a held-out split was asked for),
`labels.json` and `augment_report.json`. A synthetic row carries its source face's `subject`, so a
split by subject keeps a source and its variants on one side, and `synthetic=1`, `source`, `edited`
and `quality` columns.

The experiment that judges it (a classifier trained on imbalanced data with and without augmentation)
is a study: studies/augmentation_experiment/.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import sys
import time
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from legan_tf.data.config import DataConfig
from legan_tf.data.errors import DataError
from legan_tf.data.manifests import read_manifest, resolve, write_manifest
from legan_tf.errors import ConfigError
from legan_tf.labels import ATTRIBUTES, generator_label_sizes
from legan_tf.runs import LABELS_FILE, labels_beside, load_generator, read_label_names, write_label_names
MANIFEST_FILE = "manifest.csv"
SYNTHETIC_FILE = "synthetic.csv"
REJECTED_FILE = "rejected.csv"
HELDOUT_FILE = "heldout.csv"
REPORT_FILE = "augment_report.json"
SYNTHETIC_DIR = "synthetic"
REJECTED_DIR = "rejected"
ORIGINALS_DIR = "originals"
# Everything a run writes into its output folder; --overwrite removes exactly these.
OUTPUTS = (MANIFEST_FILE, SYNTHETIC_FILE, REJECTED_FILE, HELDOUT_FILE, LABELS_FILE, REPORT_FILE,
           SYNTHETIC_DIR, REJECTED_DIR, ORIGINALS_DIR)
# Written for rows whose data carries no recording session (the multipie layout needs a value).
NO_SESSION = "0"


# --- the dataset's examples, in the source's order ------------------------------------------------

class _Examples:
    """Labels, groups and names of a Source's examples (positions 0..N-1 in its reading order), and
    their model-ready images on demand, read through the data layer's own pipeline."""

    def __init__(self, source):
        from legan_tf.data.pipeline import ManifestSource, TFRecordSource

        self.source = source
        self.label_names = {name: tuple(names) for name, names in source.label_names.items()}
        if isinstance(source, ManifestSource):
            self.kind = "manifest"
            columns, indices = source.all_columns, source.indices
            self.labels = {name: np.asarray(columns[name], np.int64)[indices] for name in self.label_names}
            self.groups = list(source.groups)
            self.paths = [columns["image"][i] for i in indices]
            self.masks = [columns["mask"][i] for i in indices] if "mask" in columns else None
        elif isinstance(source, TFRecordSource):
            self.kind = "tfrecord"
            index = self._tfrecord_index(source)
            self.labels = {name: index[name] for name in self.label_names}
            self.groups, self.paths = list(index["group"]), list(index["path"])
            self.masks = None  # stored as bytes; written out with the originals (see write_originals)
        else:
            raise ConfigError(f"augmentation cannot read a {type(source).__name__}.")
        self.count = len(self.groups)

    @staticmethod
    def _tfrecord_index(source) -> Dict[str, np.ndarray]:
        import tensorflow as tf

        labels = [name for name in source.label_names]
        spec = {"group": tf.io.FixedLenFeature([], tf.string), "path": tf.io.FixedLenFeature([], tf.string)}
        spec.update({name: tf.io.FixedLenFeature([], tf.int64) for name in labels})
        rows = list(source._records_in_order().map(lambda r: tf.io.parse_single_example(r, spec))
                    .as_numpy_iterator())
        index = {name: np.asarray([row[name] for row in rows], np.int64) for name in labels}
        for key in ("group", "path"):
            index[key] = np.asarray([row[key].decode() for row in rows], dtype=object)
        return index

    def _subset(self, positions: np.ndarray):
        """A Source over the examples at `positions` (ascending), read in that order."""
        from legan_tf.data.pipeline import ManifestSource, TFRecordSource

        source = self.source
        if self.kind == "manifest":
            return ManifestSource(source.config, source._parsed, source.indices[positions], "augment")
        files = source.files
        base = (source.record_filter if source.record_filter is not None
                else np.ones(self._num_records(files), dtype=bool))
        record_filter = np.zeros_like(base)
        record_filter[np.flatnonzero(base)[positions]] = True
        return TFRecordSource(source.config, source.metadata, files, "augment", record_filter)

    @staticmethod
    def _num_records(files) -> int:
        import tensorflow as tf

        return int(tf.data.TFRecordDataset(files).reduce(np.int64(0), lambda n, _: n + 1))

    def images(self, positions: Sequence[int], batch_size: int) -> Iterator[Tuple[int, np.ndarray]]:
        """(position, image (S, S, 3) float32 in [-1, 1]) for each of `positions` (ascending, distinct)."""
        positions = np.asarray(positions, np.int64)
        if not len(positions):
            return
        dataset = self._subset(positions).dataset(batch_size, training=False, repeat=False)
        remaining = iter(positions)
        for batch in dataset:
            for image in batch["image"].numpy():
                yield int(next(remaining)), image


# --- the generator and Q --------------------------------------------------------------------------

def load_quality(path: str):
    from legan_tf.naturalness.scoring import load_quality_model

    if not os.path.isfile(path):
        raise ConfigError(f"--quality_model={path}: no such file.")
    return load_quality_model(path)


# --- the plan -------------------------------------------------------------------------------------

@dataclasses.dataclass
class ClassPlan:
    """One class to fill: its sources in the seeded order, and what became of them."""

    attribute: str
    class_id: int
    name: str
    original: int
    target: int
    order: np.ndarray          # candidate source positions (other classes), seeded permutation
    budget: int                # most outputs this class may make
    generated: int = 0
    kept: int = 0
    scores: list = dataclasses.field(default_factory=list)
    kept_scores: list = dataclasses.field(default_factory=list)

    @property
    def missing(self) -> int:
        return max(0, self.target - self.original)

    def wanted(self) -> int:
        """Outputs the next round should make."""
        return max(0, min(self.missing - self.kept, self.budget - self.generated, len(self.order) - self.generated))


def parse_classes(classes: Optional[Sequence[str]], balance: Sequence[str],
                  label_names: Mapping[str, Sequence[str]]) -> Optional[Dict[str, set]]:
    """`--classes` -> {attribute: {class ids}}; names may be written `attribute:name` when ambiguous."""
    if not classes:
        return None
    chosen = {name: set() for name in balance}
    for entry in classes:
        entry = entry.strip()
        if ":" in entry:
            attribute, name = entry.split(":", 1)
            candidates = [attribute] if attribute in balance else []
            if not candidates:
                raise ConfigError(f"--classes={entry}: {attribute!r} is not a balanced attribute "
                                  f"(--balance={','.join(balance)}).")
        else:
            name = entry
            candidates = [attribute for attribute in balance if name in label_names[attribute]]
        matches = [attribute for attribute in candidates if name in label_names[attribute]]
        if not matches:
            known = "; ".join(f"{a}: {', '.join(label_names[a])}" for a in balance)
            raise ConfigError(f"--classes: unknown class {entry!r} (known {known}).")
        if len(matches) > 1:
            raise ConfigError(f"--classes: {name!r} names a class of {' and '.join(matches)}; write "
                              f"{matches[0]}:{name}.")
        chosen[matches[0]].add(list(label_names[matches[0]]).index(name))
    return chosen


def plan_classes(examples: _Examples, balance: Sequence[str], classes: Optional[Dict[str, set]],
                 per_class: int, attempts: float, seed: int) -> List[ClassPlan]:
    plans = []
    for attribute_index, attribute in enumerate(balance):
        names = examples.label_names[attribute]
        labels = examples.labels[attribute]
        counts = np.bincount(labels, minlength=len(names))
        target = per_class if per_class > 0 else int(counts.max())
        for class_id, name in enumerate(names):
            if classes is not None and class_id not in classes[attribute]:
                continue
            candidates = np.flatnonzero(labels != class_id)
            rng = np.random.default_rng([seed, attribute_index, class_id])
            order = candidates[rng.permutation(len(candidates))]
            plan = ClassPlan(attribute, class_id, name, int(counts[class_id]), target, order, 0)
            plan.budget = int(math.ceil(attempts * plan.missing))
            plans.append(plan)
    return plans


# --- generation -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    plan: int        # index into the plans
    rank: int        # position in the plan's source order (names the output file)
    position: int    # the source example


def _quantize(images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """[-1, 1] floats -> (uint8 as written to PNG, those 8-bit values back in [-1, 1] as the reader gives them)."""
    from legan_tf.visualize import to_uint8

    pixels = to_uint8(images)
    return pixels, pixels.astype(np.float32) / 127.5 - 1.0


class _Translator:
    def __init__(self, generator, label_sizes: Mapping[str, int], quality_model, examples: _Examples,
                 plans: List[ClassPlan]):
        self.generator, self.label_sizes, self.quality_model = generator, dict(label_sizes), quality_model
        self.examples, self.plans = examples, plans

    def __call__(self, images: np.ndarray, jobs: Sequence[Job]):
        from legan_tf.labels import one_hot_labels

        ids = {}
        for attribute in self.label_sizes:
            ids[attribute] = np.asarray([
                self.plans[job.plan].class_id if self.plans[job.plan].attribute == attribute
                else self.examples.labels[attribute][job.position] for job in jobs], np.int32)
        outputs = np.asarray(self.generator((images, one_hot_labels(ids, self.label_sizes)), training=False))
        pixels, as_read = _quantize(outputs)
        if self.quality_model is None:
            return pixels, None
        return pixels, np.asarray(self.quality_model(as_read, training=False), np.float64).reshape(-1)


def _run_round(examples: _Examples, jobs: List[Job], translate: _Translator, batch_size: int,
               on_result, bar) -> None:
    """Translates every job, streaming the sources once in reading order, `batch_size` outputs a pass."""
    by_position = collections.defaultdict(list)
    for job in jobs:
        by_position[job.position].append(job)
    pending_images, pending_jobs = [], []

    def flush():
        if pending_jobs:
            pixels, scores = translate(np.stack(pending_images), pending_jobs)
            for index, job in enumerate(pending_jobs):
                on_result(job, pixels[index], None if scores is None else float(scores[index]))
            bar.update(len(pending_jobs))
            pending_images.clear()
            pending_jobs.clear()

    for position, image in examples.images(sorted(by_position), batch_size):
        for job in by_position[position]:
            pending_images.append(image)
            pending_jobs.append(job)
            if len(pending_jobs) == batch_size:
                flush()
    flush()


# --- output ---------------------------------------------------------------------------------------

def _prepare_output_dir(output_dir: str, data_path: str, overwrite: bool) -> None:
    from legan_tf.output_dirs import prepare_output_dir

    output_dir = os.path.abspath(output_dir)
    data_path = os.path.abspath(data_path)
    if os.path.commonpath([output_dir, data_path]) == output_dir:
        raise ConfigError(f"--output_dir={output_dir} holds the input data ({data_path}); write the augmented "
                          "dataset to a folder of its own.")
    prepare_output_dir(output_dir, OUTPUTS, overwrite, "an earlier augmentation's files")


def _sessions(config: DataConfig) -> Dict[str, str]:
    """Resolved image path -> session cell, for a Multi-PIE manifest (other layouts have no sessions)."""
    if config.data_format != "multipie":
        return {}
    _, rows = read_manifest(config.data_path, ["image", "session"])
    base = os.path.dirname(os.path.abspath(config.data_path))
    return {resolve((row.get("image") or "").strip(), base): (row.get("session") or "").strip() or NO_SESSION
            for row in rows}


def _image_extension(data: bytes) -> str:
    return ".jpg" if data[:2] == b"\xff\xd8" else ".png"


def _write_tfrecord_originals(examples: _Examples, output_dir: str) -> Tuple[List[str], Optional[List[str]]]:
    """TFRecord shards hold image bytes, not files: writes them (and masks) under originals/ as stored."""
    import tensorflow as tf

    features = examples.source.features
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in ("image", "mask") if name in features}
    folder = os.path.join(output_dir, ORIGINALS_DIR)
    os.makedirs(folder, exist_ok=True)
    images, masks = [], [] if "mask" in spec else None
    records = examples.source._records_in_order().map(lambda r: tf.io.parse_single_example(r, spec))
    for position, record in enumerate(records.as_numpy_iterator()):
        path = os.path.join(folder, f"{position:07d}{_image_extension(record['image'])}")
        with open(path, "wb") as handle:
            handle.write(record["image"])
        images.append(path)
        if masks is not None:
            mask_path = os.path.join(folder, f"{position:07d}_mask.png")
            with open(mask_path, "wb") as handle:
                handle.write(record["mask"])
            masks.append(mask_path)
    return images, masks


def _columns(label_names: Mapping[str, Sequence[str]], has_masks: bool) -> List[str]:
    columns = ["image", "subject", "session", *[a for a in ATTRIBUTES if a in label_names]]
    if has_masks:
        columns.append("mask")
    return columns + ["synthetic", "source", "edited", "quality"]


def _original_rows(examples: _Examples, image_paths: Sequence[str], mask_paths: Optional[Sequence[str]],
                   sessions: Mapping[str, str], output_dir: str) -> List[dict]:
    rows = []
    for position in range(examples.count):
        row = {"image": os.path.relpath(image_paths[position], output_dir), "subject": examples.groups[position],
               "session": sessions.get(examples.paths[position], NO_SESSION),
               "synthetic": 0, "source": "", "edited": "", "quality": ""}
        for attribute, names in examples.label_names.items():
            row[attribute] = names[examples.labels[attribute][position]]
        if mask_paths is not None:
            row["mask"] = os.path.relpath(mask_paths[position], output_dir)
        rows.append(row)
    return rows


def read_with(output_dir: str, label_names: Mapping[str, Sequence[str]], manifest: str = MANIFEST_FILE) -> str:
    """The data flags that read an augmentation's output."""
    path = os.path.join(output_dir, manifest)
    if "lighting" in label_names and "expression" in label_names:
        return f"--data_format=multipie --data_path={path}"
    return f"--data_format=csv --label_columns={','.join(label_names)} --data_path={path}"


# --- the whole run --------------------------------------------------------------------------------

def augment(source, generator, output_dir: str, generator_labels: Optional[Mapping[str, Sequence[str]]] = None,
            quality_model=None, min_quality: Optional[float] = None, balance: Sequence[str] = ("expression",),
            classes: Optional[Sequence[str]] = None, per_class: int = 0, attempts: float = 3.0, seed: int = 0,
            batch_size: int = 64, keep_rejected: bool = False, overwrite: bool = False,
            heldout=None, progress: bool = True, inputs: Optional[Mapping[str, object]] = None) -> dict:
    """Balances `source` (a training Source) with `generator` and writes the augmented dataset.

    `quality_model` is anything that maps a batch of [-1, 1] images to (B, 1) scores (a loaded Q);
    `heldout` an optional Source written to heldout.csv, never used as a source of faces. Returns the
    report that augment_report.json holds.
    """
    started = time.perf_counter()
    config = source.config
    balance = tuple(dict.fromkeys(balance))
    if not balance:
        raise ConfigError("--balance names no attribute (expression, lighting).")
    for attribute in balance:
        if attribute not in ATTRIBUTES:
            raise ConfigError(f"--balance={attribute}: expected expression and/or lighting.")
        if attribute not in source.label_names:
            raise ConfigError(f"--balance={attribute}: the data has no {attribute} labels "
                              f"(it has {', '.join(source.label_names) or 'none'}).")
    if per_class < 0:
        raise ConfigError(f"--per_class={per_class} must be >= 0 (0: up to the largest class).")
    if not attempts >= 1.0:
        raise ConfigError(f"--attempts={attempts} must be >= 1 (1: rejected outputs are not replaced).")
    if batch_size < 1:
        raise ConfigError(f"--batch_size={batch_size} must be positive.")
    if min_quality is not None and quality_model is None:
        raise ConfigError("--min_quality needs --quality_model (Q's .keras file).")
    if source.num_examples == 0:
        raise DataError(f"{config.data_path}: no examples to augment (the training split is empty).")
    where = (inputs or {}).get("generator") or "the generator"
    label_sizes = generator_label_sizes(generator, source.label_names, generator_labels, where)
    for attribute in balance:
        if attribute not in label_sizes:
            raise ConfigError(f"--balance={attribute}: the generator does not take {attribute} labels "
                              f"(it takes {', '.join(label_sizes)}).")
    if generator.image_size != config.image_size:
        raise ConfigError(f"the generator works on {generator.image_size} px images, the data is read at "
                          f"--image_size={config.image_size}.")
    q_size = getattr(quality_model, "image_size", None)
    if quality_model is not None and q_size is not None and q_size != generator.image_size:
        raise ConfigError(f"Q works on {q_size} px images, the generator on {generator.image_size} px; "
                          f"use a Q trained at {generator.image_size} px (--image_size={generator.image_size}).")
    chosen_classes = parse_classes(classes, balance, source.label_names)

    examples = _Examples(source)
    plans = plan_classes(examples, balance, chosen_classes, per_class, attempts, seed)
    _prepare_output_dir(output_dir, config.data_path, overwrite)
    output_dir = os.path.abspath(output_dir)

    translate = _Translator(generator, label_sizes, quality_model, examples, plans)
    results = []   # (plan, rank, position, score, kept, path)

    def on_result(job: Job, pixels: np.ndarray, score: Optional[float]):
        from PIL import Image

        plan = plans[job.plan]
        plan.generated += 1
        passed = min_quality is None or score >= min_quality
        if passed and plan.kept >= plan.missing:
            passed = False  # cannot happen with exact rounds; kept for safety
        if score is not None:
            plan.scores.append(score)
        folder = SYNTHETIC_DIR if passed else REJECTED_DIR
        path = None
        if passed or keep_rejected:
            path = os.path.join(output_dir, folder, plan.attribute, plan.name, f"{job.rank:06d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(pixels).save(path)
        if passed:
            plan.kept += 1
            if score is not None:
                plan.kept_scores.append(score)
        results.append((job.plan, job.rank, job.position, score, passed, path))

    total = sum(plan.wanted() for plan in plans)
    rounds = 0
    with tqdm(total=total, desc="augmenting", unit="img", disable=not progress, file=sys.stderr) as bar:
        while True:
            jobs = []
            for index, plan in enumerate(plans):
                for rank in range(plan.generated, plan.generated + plan.wanted()):
                    jobs.append(Job(index, rank, int(plan.order[rank])))
            if not jobs:
                break
            if rounds:  # replacements for rejected outputs
                bar.total += len(jobs)
                bar.refresh()
            rounds += 1
            _run_round(examples, jobs, translate, batch_size, on_result, bar)
            bar.set_postfix(kept=sum(plan.kept for plan in plans))

    # The manifests.
    if examples.kind == "tfrecord":
        image_paths, mask_paths = _write_tfrecord_originals(examples, output_dir)
    else:
        image_paths, mask_paths = examples.paths, examples.masks
    columns = _columns(source.label_names, mask_paths is not None)
    sessions = _sessions(config)
    originals = _original_rows(examples, image_paths, mask_paths, sessions, output_dir)
    synthetic, rejected = [], []
    for plan_index, rank, position, score, passed, path in sorted(results, key=lambda r: (r[0], r[1])):
        plan = plans[plan_index]
        row = dict(originals[position])
        row.update(synthetic=1, source=originals[position]["image"], edited=plan.attribute,
                   quality="" if score is None else f"{score:.4f}")
        row[plan.attribute] = plan.name
        row["image"] = os.path.relpath(path, output_dir) if path else ""
        (synthetic if passed else rejected).append(row)
    write_manifest(os.path.join(output_dir, MANIFEST_FILE), columns, originals + synthetic)
    write_manifest(os.path.join(output_dir, SYNTHETIC_FILE), columns, synthetic)
    write_manifest(os.path.join(output_dir, REJECTED_FILE), columns, rejected)
    if heldout is not None and heldout.num_examples:
        held = _Examples(heldout)
        held_images, held_masks = ((held.paths, held.masks) if held.kind == "manifest"
                                   else _write_tfrecord_originals(held, output_dir))
        write_manifest(os.path.join(output_dir, HELDOUT_FILE), columns,
                   _original_rows(held, held_images, held_masks, sessions, output_dir))
    write_label_names(output_dir, source.label_names)

    report = _report(plans, examples, source, output_dir, label_sizes, min_quality, quality_model is not None,
                     balance, per_class, attempts, seed, rounds, heldout, time.perf_counter() - started, inputs)
    with open(os.path.join(output_dir, REPORT_FILE), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    return report


def _mean(values) -> Optional[float]:
    return round(float(np.mean(values)), 4) if len(values) else None


def _report(plans, examples, source, output_dir, label_sizes, min_quality, scored, balance, per_class, attempts,
            seed, rounds, heldout, seconds, inputs) -> dict:
    classes = []
    for plan in plans:
        classes.append({
            "attribute": plan.attribute, "class": plan.name, "original": plan.original, "target": plan.target,
            "missing": plan.missing, "sources_available": int(len(plan.order)), "generated": plan.generated,
            "kept": plan.kept, "rejected": plan.generated - plan.kept, "final": plan.original + plan.kept,
            "shortfall": plan.missing - plan.kept,
            "mean_quality": _mean(plan.scores) if scored else None,
            "mean_quality_kept": _mean(plan.kept_scores) if scored else None,
        })
    counts = {}
    for attribute, names in source.label_names.items():
        final = np.bincount(examples.labels[attribute], minlength=len(names)).astype(int)
        for plan in plans:
            if plan.attribute == attribute:
                final[plan.class_id] += plan.kept
        counts[attribute] = {
            "original": dict(zip(names, np.bincount(examples.labels[attribute], minlength=len(names)).tolist())),
            "augmented": dict(zip(names, final.tolist()))}
    totals = {key: sum(c[key] for c in classes) for key in ("generated", "kept", "rejected")}
    return {
        "inputs": dict(inputs or {}),
        "data_format": source.config.data_format, "data_path": os.path.abspath(source.config.data_path),
        "image_size": source.config.image_size,
        "generator_labels": list(label_sizes), "balance": list(balance),
        "per_class": per_class, "attempts": attempts, "seed": seed,
        "min_quality": min_quality, "scored_by_q": scored,
        "original_examples": examples.count, "heldout_examples": heldout.num_examples if heldout is not None else 0,
        "classes": classes, "totals": totals, "class_counts": counts, "rounds": rounds,
        "seconds": round(seconds, 1),
        "output_dir": output_dir,
        "read_with": read_with(output_dir, source.label_names),
        "files": {"manifest": MANIFEST_FILE, "synthetic": SYNTHETIC_FILE, "rejected": REJECTED_FILE,
                  "heldout": HELDOUT_FILE if heldout is not None and heldout.num_examples else None},
    }


def run(config: DataConfig, generator_path: str, output_dir: str, generator_labels_path: Optional[str] = None,
        quality_path: Optional[str] = None, **options) -> dict:
    """What scripts/augment.py does: opens the data (its training split when config holds one out), loads
    the generator, its label names and Q, then `augment`."""
    from legan_tf.data import open_source

    if not generator_path:
        raise ConfigError("--generator is required (the generator.keras of a StarGAN or LEGAN run).")
    if not os.path.isfile(generator_path):
        raise ConfigError(f"--generator={generator_path}: no such file.")
    if options.get("min_quality") is not None and not quality_path:
        raise ConfigError("--min_quality needs --quality_model (Q's .keras file).")
    generator_labels = read_label_names(generator_labels_path, "--generator_labels") if generator_labels_path else (
        read_label_names(labels_beside(generator_path)) if labels_beside(generator_path) else None)
    source = open_source(config)
    train, heldout = source.split(config.holdout_fraction, config.split_seed)
    generator = load_generator(generator_path)
    quality_model = load_quality(quality_path) if quality_path else None
    inputs = {"generator": os.path.abspath(generator_path),
              "quality_model": os.path.abspath(quality_path) if quality_path else None,
              "holdout_fraction": config.holdout_fraction, "split_seed": config.split_seed}
    return augment(train, generator, output_dir, generator_labels, quality_model,
                   heldout=heldout if heldout.num_examples else None, inputs=inputs, **options)


def summary(report: dict) -> str:
    """The per-class table the script prints."""
    lines = [f"{'attribute':<10} {'class':<10} {'original':>8} {'target':>6} {'generated':>9} {'kept':>5} "
             f"{'rejected':>8} {'final':>6} {'mean Q':>7} {'kept Q':>7}"]
    for c in report["classes"]:
        q = "" if c["mean_quality"] is None else f"{c['mean_quality']:.2f}"
        kq = "" if c["mean_quality_kept"] is None else f"{c['mean_quality_kept']:.2f}"
        lines.append(f"{c['attribute']:<10} {c['class']:<10} {c['original']:>8} {c['target']:>6} "
                     f"{c['generated']:>9} {c['kept']:>5} {c['rejected']:>8} {c['final']:>6} {q:>7} {kq:>7}"
                     + (f"  short by {c['shortfall']}" if c["shortfall"] else ""))
    totals = report["totals"]
    lines.append(f"generated {totals['generated']}, kept {totals['kept']}, rejected {totals['rejected']} "
                 f"({report['seconds']} s)")
    lines.append(f"read it with: {report['read_with']}")
    if report["files"]["heldout"]:
        lines.append(f"held-out faces (never sources): {os.path.join(report['output_dir'], HELDOUT_FILE)}")
    return "\n".join(lines)
