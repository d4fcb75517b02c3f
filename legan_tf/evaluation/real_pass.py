"""Source 2 of an evaluation: real faces without paired truth.

The faces are `real` (a manifest or a folder), or by default the run's own held-out split, reopened
from its settings. Each face is translated to the labels of another face of the same set (a seeded
permutation whose fixed points are moved), so that the outputs and the reference reals have the same
class mix, and back to its own labels (the reconstruction, Bodur et al.'s PSNR/SSIM protocol). Gives
FID/KID against the real set, Q of outputs and reals, the match score, the generation rate, and
SSIM/PSNR/LPIPS of the reconstruction.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics as registry
from legan_tf.evaluation.judges import Judges, judges_used_in_training
from legan_tf.evaluation.metric_sets import BASELINE_REAL_FACES, REAL, REAL_METRICS, feed, make_metrics, results
from legan_tf.evaluation.run_under_test import RunUnderTest
from legan_tf.evaluation.translation_metrics import generator_translate_fn
from legan_tf.runs import FLAGS_FILE

DEFAULT_NUM_REAL = 1000
DISTANCES = ("fid", "kid")
# --fid_reference_split's keywords (reference_split).
AUTO = "auto"
NONE = "none"


def open_real_faces(run: RunUnderTest, real: Optional[str] = None, real_format: Optional[str] = None):
    """(source, description) of the real faces to translate: `real` (a manifest or a folder, read with the
    run's image size, label names and preprocessing) or the run's held-out split. Raises ConfigError when
    there are none (the caller reports the source unavailable) and DataError for unreadable data."""
    from legan_tf.data import DataConfig, open_source
    from legan_tf.data.tfrecord import METADATA_FILE

    config = run.data_config()
    if real:
        if real_format is None:
            if os.path.isdir(real):
                real_format = "tfrecord" if os.path.isfile(os.path.join(real, METADATA_FILE)) else "folder"
            else:
                real_format = config.data_format if config and config.data_format in ("multipie", "csv", "rgbd") \
                    else "multipie"
        base = config or DataConfig(real_format, real, image_size=run.image_size,
                                    expression_names=run.expression_names, lighting_names=run.lighting_names)
        config = dataclasses.replace(base, data_format=real_format, data_path=real, holdout_fraction=0.0,
                                     cache=False, image_size=run.image_size)
        source = open_source(config)
        kind = f"--real={real} ({real_format}), every face"
    else:
        if config is None:
            raise ConfigError("no real faces: give --real=<a manifest or folder of real faces> (the run's "
                              f"{FLAGS_FILE} names no data to reopen)")
        if config.holdout_fraction <= 0 and "test" not in stored_splits(config):
            raise ConfigError(f"no real faces: the run trained on all of {config.data_path} (--holdout_fraction=0), "
                              "so it held out none; give --real=<faces it never saw>")
        source = open_source(config).split(config.holdout_fraction, config.split_seed)[1]
        kind = (f"the run's held-out split of {config.data_path} ({config.data_format}, " + (
            "the stored test split of prepare_data.py's shards" if config.holdout_fraction <= 0 else
            f"holdout_fraction {config.holdout_fraction}, split_seed {config.split_seed}") +
            "): faces it never trained on")
    description = {"source": "real faces, unpaired", "faces_from": kind, "data_format": config.data_format,
                   "data_path": os.path.abspath(config.data_path), "image_size": config.image_size,
                   "apply_mask": config.apply_mask, "available_faces": source.num_examples,
                   "labels": sorted(source.label_names)}
    return source, description


def reference_split(requested: str, edited_split: str, stored: Sequence[str]) -> Optional[str]:
    """The split whose unedited faces the edits are compared with, or None for the paired figures only.

    `auto`: the first stored split that is neither the edited one nor `train` (the generator learned from
    train), in the order validation, test, then the rest by name; none such: None. `none`: None. A name:
    that split (it must be stored, and must not be the edited split)."""
    if requested == NONE:
        return None
    if requested == AUTO:
        preferred = [name for name in ("validation", "test") if name in stored]
        others = preferred + sorted(name for name in stored if name not in preferred)
        candidates = [name for name in others if name not in (edited_split, "train")]
        return candidates[0] if candidates else None
    if requested == edited_split:
        raise ConfigError(f"--fid_reference_split={requested} is the split being edited: that is the paired "
                          "comparison; name another stored split (or none for the paired figures only).")
    if requested not in stored:
        raise ConfigError(f"--fid_reference_split={requested}: no such stored split (stored: "
                          f"{', '.join(stored) or 'none'}).")
    return requested


def stored_split_names(data_path: str) -> List[str]:
    """The splits prepare_data.py stored with the shards at `data_path` (its metadata); none for other data."""
    from legan_tf.data.shard_format import METADATA_FILE, read_metadata

    if not os.path.isfile(os.path.join(data_path, METADATA_FILE)):
        return []
    return list(read_metadata(data_path).get("splits", {}))


def stored_splits(config) -> List[str]:
    """stored_split_names of a run's data when they are prepared shards; none for other data."""
    if config is None or config.data_format != "tfrecord":
        return []
    return stored_split_names(config.data_path)


def open_real_reference(run: RunUnderTest, requested: str, real: Optional[str] = None):
    """(source, description) of the unedited real faces FID and KID compare the edits with, or None for the
    paired comparison (the edits against the translated faces themselves, which copying the input wins).

    `requested` as judge_real_edits.py's --fid_reference_split (`reference_split`): auto
    takes the stored split of the run's shards that is neither the edited (test) nor train (FER2013:
    validation, PublicTest) when the run's own held-out faces are edited; none: paired."""
    from legan_tf.data import open_source

    if requested == AUTO and real:
        return None
    config = run.data_config()
    name = reference_split(requested, "test", stored_splits(config))
    if name is None:
        return None
    source = open_source(dataclasses.replace(config, cache=False, random_flip=False,
                                             image_size=run.image_size)).stored_split(name)
    return source, (f"the {source.num_examples} unedited faces of the stored {name} split of {config.data_path}, "
                    "never translated (unpaired)")


def choose_faces(count: int, limit: int, seed: int) -> np.ndarray:
    """The indices (file order) of read_real_faces' seeded uniform choice of at most `limit` of `count` faces."""
    rng = np.random.default_rng([seed, 1])
    return np.arange(count) if not limit or limit >= count else np.sort(rng.choice(count, limit, replace=False))


def read_real_faces(source, attributes: Sequence[str], limit: int, seed: int, batch_size: int = 64,
                    extra: Sequence[str] = ()):
    """(images, labels, indices): a seeded uniform choice of at most `limit` faces of `source` (all when
    `limit` is 0 or more than there are), in file order, with their labels of `attributes` that the data carry,
    and in `labels` too the `extra` columns of the records (e.g. identity) that the data carry."""
    count = source.num_examples
    if count == 0:
        raise ConfigError("no real faces: the split is empty")
    chosen = choose_faces(count, limit, seed)
    keep = np.zeros(count, bool)
    keep[chosen] = True
    images, labels, seen = [], {name: [] for name in attributes if name in source.label_names}, 0
    labels.update({name: [] for name in extra})
    for batch in source.dataset(batch_size, training=False, repeat=False):
        size = int(batch["image"].shape[0])
        rows = keep[seen:seen + size]
        seen += size
        if rows.any():
            images.append(batch["image"].numpy()[rows])
            for name in labels:
                if name in batch:
                    labels[name].append(batch[name].numpy()[rows].astype(np.int64))
    # An extra column the data do not carry stays out of `labels`.
    return (np.concatenate(images).astype(np.float32),
            {name: np.concatenate(parts) for name, parts in labels.items() if parts}, chosen)


def draw_real_targets(labels: Mapping[str, np.ndarray], attributes: Sequence[str], class_counts: Mapping[str, int],
                      count: int, seed: int) -> Tuple[Dict[str, np.ndarray], int]:
    """(targets, unchanged): each face gets the labels of another face of the set (a seeded permutation),
    so that outputs and reals share their class mix; faces whose target equals their own labels are
    swapped with a face for which both then differ, where one exists (`unchanged` counts the rest).
    Attributes the data do not label are drawn uniformly."""
    rng = np.random.default_rng([seed, 2])
    order = rng.permutation(count)
    present = [name for name in attributes if name in labels]
    if present:
        joint = np.stack([np.asarray(labels[name]) for name in present], axis=1)

        def same(i, j):  # would face i given face j's labels keep its own?
            return bool(np.array_equal(joint[i], joint[j]))

        for i in range(count):
            if not same(i, order[i]):
                continue
            for j in rng.permutation(count):
                if not same(i, order[j]) and not same(j, order[i]):
                    order[i], order[j] = order[j], order[i]
                    break
        unchanged = sum(same(i, order[i]) for i in range(count))
    else:
        unchanged = 0
    targets = {name: np.asarray(labels[name])[order] if name in labels
               else rng.integers(0, class_counts[name], count) for name in attributes}
    return targets, int(unchanged)


def _feed_features(distance_metrics, **images) -> None:
    """Feeds FID and KID (`features.InceptionDistance`) the same features, extracted once per image set."""
    available = [metric for metric in distance_metrics if metric.available]
    if available:
        features = {key: np.asarray(available[0].extractor(value)) for key, value in images.items()}
        for metric in available:
            metric.update_features(**features)


@dataclasses.dataclass
class RealPass:
    """What one pass over the real faces gives: the registry's metrics, the baselines' and the sample rows."""

    description: dict
    metrics: Dict[str, registry.MetricResult]
    baselines: Dict[str, Dict[str, registry.MetricResult]]
    samples: Dict[str, Any]
    names: Dict[str, List[str]]


def real_names(run: RunUnderTest, attributes: Sequence[str]) -> Dict[str, List[str]]:
    names = {"expression": list(run.expression_names), "lighting": [f"l{name}" for name in run.lighting_names]}
    return {name: names[name] for name in attributes}


def real_pass(run: RunUnderTest, judges: Judges, faces: Tuple[Any, dict], num_real: int = DEFAULT_NUM_REAL,
              seed: int = 0, batch_size: int = 64, progress: bool = True, sample_rows: int = 4,
              baselines: bool = False, used: Optional[Mapping[str, dict]] = None,
              attributes: Optional[Sequence[str]] = None, reference: Optional[Tuple[Any, str]] = None) -> RealPass:
    """Translates real faces (`faces`: open_real_faces' source and description) to the labels of others of
    the set and back, and scores them (module docstring). With `reference` (open_real_reference's), FID and
    KID compare the outputs with those other faces, and the real-faces baseline row holds the floor: the
    translated faces unedited against the same."""
    source, description = faces[0], dict(faces[1])
    class_counts = {"expression": len(run.expression_names), "lighting": len(run.lighting_names)}
    attributes = tuple(attributes) if attributes else run.attributes(class_counts)
    label_sizes = {name: class_counts[name] for name in attributes}
    names = real_names(run, attributes)
    images, labels, chosen = read_real_faces(source, attributes, num_real, seed, batch_size)
    targets, unchanged = draw_real_targets(labels, attributes, class_counts, len(images), seed)
    reconstructs = all(name in labels for name in attributes)
    description.update(
        num_faces=len(images), seed=seed, attributes=list(attributes),
        selection="all" if len(chosen) == source.num_examples else f"a seeded uniform choice of {len(images)}",
        targets="the labels of another face of the set (a seeded permutation, fixed points moved): outputs and "
                "reals have the same class mix" + "".join(f"; {name}: not labelled in the data, drawn uniformly"
                                                          for name in attributes if name not in labels),
        faces_left_at_their_own_labels=unchanged,
        reconstruction="G(G(x, target), own labels) against x" if reconstructs
        else "none: the data do not label every attribute the generator takes")
    if used is None:
        used = judges_used_in_training(run, judges)
    context = {"source": REAL, "model": run.label,
               "reference": reference[1] if reference else
               f"the {len(images)} real faces translated (same class mix as the targets; paired: copying the "
               f"input scores 0): {description['faces_from']}"}
    description["fid_reference"] = context["reference"]
    metric_set = make_metrics(REAL_METRICS if reconstructs else REAL_METRICS[:5], judges, used, names, context,
                              batch_size, seed)
    baseline_set = make_metrics(("quality_score", "generation_rate") + (DISTANCES if reference else ()), judges,
                                used, names, {**context, "model": None}, batch_size, seed) if baselines else {}
    # Unpaired: FID and KID get the outputs (the floor: the inputs) here and the reference faces after the loop,
    # never the inputs as their reals; the other metrics are fed as in the paired pass.
    unpaired = DISTANCES if reference else ()
    edit_distances = [metric_set[key] for key in unpaired if key in metric_set]
    floor_distances = [baseline_set[key] for key in unpaired if key in baseline_set]
    rest, baseline_rest = ({key: metric for key, metric in chosen.items() if key not in unpaired}
                           for chosen in (metric_set, baseline_set))
    translate = generator_translate_fn(run.generator, label_sizes, batch_size)
    # Sample rows spread evenly over the set (file order groups a person's faces together).
    shown = np.unique(np.linspace(0, len(images) - 1, min(sample_rows, len(images))).round().astype(int))
    parts = []
    for start in tqdm(range(0, len(images), batch_size), desc=f"{run.label}: real faces", unit="batch",
                      disable=not progress, file=sys.stderr):
        rows = slice(start, start + batch_size)
        inputs = images[rows]
        batch_targets = {name: values[rows] for name, values in targets.items()}
        outputs = np.asarray(translate(inputs, batch_targets), np.float32)
        reconstruction = None
        if reconstructs:
            reconstruction = np.asarray(translate(outputs, {name: labels[name][rows] for name in attributes}),
                                        np.float32)
        feed(rest, outputs=outputs, reals=inputs, inputs=inputs, target_labels=batch_targets,
             targets_paired=inputs, reconstruction=reconstruction)
        _feed_features(edit_distances, outputs=outputs)
        _feed_features(floor_distances, outputs=inputs)
        if baseline_rest:
            own = {name: labels[name][rows] for name in attributes if name in labels}
            feed(baseline_rest, outputs=inputs, target_labels=own if own else None)
        take = shown[(shown >= start) & (shown < start + len(inputs))] - start
        if len(take):
            parts.append({"inputs": inputs[take], "outputs": outputs[take],
                          "reconstruction": None if reconstruction is None else reconstruction[take],
                          "targets": {name: values[take] for name, values in batch_targets.items()},
                          "source": {name: labels[name][rows][take] for name in attributes if name in labels}})
    if reference:
        reals, _, _ = read_real_faces(reference[0], [], 0, seed, batch_size)
        for start in tqdm(range(0, len(reals), batch_size), desc="FID reference faces", unit="batch",
                          disable=not progress, file=sys.stderr):
            _feed_features(edit_distances + floor_distances, reals=reals[start:start + batch_size])
    samples = {key: (None if parts[0][key] is None else
                     {name: np.concatenate([part[key][name] for part in parts]) for name in parts[0][key]}
                     if isinstance(parts[0][key], dict) else np.concatenate([part[key] for part in parts]))
               for key in parts[0]}
    return RealPass(description, results(metric_set),
                    {BASELINE_REAL_FACES: results(baseline_set)} if baseline_set else {}, samples, names)
