"""The augmentation experiment of docs/evaluation.md: does balancing a dataset with a generator (and
filtering its outputs by Q) help a classifier trained on it?

Per seed: a class-imbalanced subset of the training subjects is drawn (`write_imbalanced_split`); an
independent attribute classifier is trained on it as it is ("base"), with the rare classes' rows repeated
("over", the classic baseline), augmented by `legan_tf.augmentation.augment` without a Q filter ("noq") and with one
("q"); each is judged per class on every face of the held-out subjects, whom neither the subset nor the
generator's sources include. Every step leaves its output in `output_dir` and is skipped when that output
is already there, so an interrupted experiment resumes where it stopped.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import json
import os
import subprocess
import sys
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from legan_tf.data.config import DataConfig
from legan_tf.data.manifests import read_manifest, resolve, write_manifest
from legan_tf.data.errors import DataError
from legan_tf.errors import ConfigError

ARMS = ("base", "over", "noq", "q")
ARM_TITLES = {"base": "imbalanced", "over": "oversampled", "noq": "augmented", "q": "augmented + Q filter"}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_SCRIPT = os.path.join(REPO, "scripts", "train.py")


# --- the data of one seed -------------------------------------------------------------------------

def write_imbalanced_split(config: DataConfig, output_dir: str, rare: Mapping[str, float], seed: int = 0,
                           attribute: str = "expression") -> dict:
    """Splits a Multi-PIE or CSV manifest by subject (config.holdout_fraction, config.split_seed, as
    training does) and writes `train.csv`, the training subjects with only `rare[name]` of the faces of
    each named class (a seeded draw), and `test.csv`, every face of the held-out subjects. Rows are copied
    verbatim, their paths made relative to `output_dir`. Returns the counts (also in subset.json)."""
    from legan_tf.data import open_source

    if config.data_format not in ("multipie", "csv"):
        raise ConfigError("the augmentation experiment copies manifest rows: use a multipie or csv manifest.")
    if config.on_error != "fail":
        raise ConfigError("the augmentation experiment needs on_error=fail, so rows and examples align.")
    if not 0.0 < config.holdout_fraction < 1.0:
        raise ConfigError("the augmentation experiment judges on held-out subjects: give --holdout_fraction "
                          "between 0 and 1.")
    source = open_source(config)
    names = source.label_names[attribute]
    unknown = [name for name in rare if name not in names]
    if unknown:
        raise ConfigError(f"unknown {attribute} {', '.join(unknown)} (known: {', '.join(names)}).")
    train, test = source.split(config.holdout_fraction, config.split_seed)
    header, rows = read_manifest(config.data_path, ["image"])
    if len(rows) != len(source.all_groups):
        raise DataError(f"{config.data_path}: {len(rows)} rows but {len(source.all_groups)} examples.")
    labels = np.asarray(source.all_columns[attribute])
    keep = set(int(i) for i in train.indices)
    for name, fraction in sorted(rare.items()):
        members = np.asarray([i for i in train.indices if names[labels[i]] == name])
        count = int(round(fraction * len(members)))
        rng = np.random.default_rng([seed, names.index(name)])
        keep -= set(int(i) for i in members[rng.permutation(len(members))[count:]])
    os.makedirs(output_dir, exist_ok=True)
    base = os.path.dirname(os.path.abspath(config.data_path))

    def relocated(row):
        row = dict(row)
        for column in ("image", "mask", "depth", "normals"):
            if row.get(column):
                row[column] = os.path.relpath(resolve(row[column].strip(), base), os.path.abspath(output_dir))
        return row

    counts = {}
    for split_name, indices in (("train", sorted(keep)), ("test", [int(i) for i in test.indices])):
        write_manifest(os.path.join(output_dir, f"{split_name}.csv"), header, (relocated(rows[i]) for i in indices))
        counts[split_name] = {
            "examples": len(indices), "subjects": len({source.all_groups[i] for i in indices}),
            attribute: dict(zip(names, np.bincount(labels[indices], minlength=len(names)).tolist()))}
    summary = {"data_path": os.path.abspath(config.data_path), "holdout_fraction": config.holdout_fraction,
               "split_seed": config.split_seed, "rare": dict(rare), "seed": seed, **counts}
    with open(os.path.join(output_dir, "subset.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    return summary


def write_oversampled(manifest: str, output: str, column: str = "expression", target: int = 0) -> Dict[str, int]:
    """The classic baseline beside augmentation: a copy of `manifest` whose rows of each class of `column`
    are repeated (whole copies first, then the first rows again) up to `target` rows (0: the largest
    class's count). The copy sits beside the original, so its relative paths stay valid. Returns the counts."""
    if os.path.dirname(os.path.abspath(output)) != os.path.dirname(os.path.abspath(manifest)):
        raise ConfigError(f"{output}: write the oversampled manifest beside {manifest}, so its paths stay valid.")
    header, rows = read_manifest(manifest, ["image", column])
    by_class = collections.defaultdict(list)
    for row in rows:
        by_class[row[column].strip()].append(row)
    target = target or max(len(members) for members in by_class.values())
    repeated = []
    for members in by_class.values():
        copies = max(1, -(-target // len(members)))
        repeated.extend((members * copies)[:max(target, len(members))])
    write_manifest(output, header, repeated)
    counts = collections.Counter(row[column].strip() for row in repeated)
    return dict(sorted(counts.items()))


def per_class_accuracy(classifier_path: str, config: DataConfig, batch_size: int = 256) -> dict:
    """An AttributeClassifier's accuracy on every example of `config`'s data: overall and per true class
    (the recall of each class), with the confusion matrix, for each head the data has labels for."""
    from legan_tf.data import open_source
    from legan_tf.runs import load_model
    from legan_tf.models.classifier import AttributeClassifier

    classifier = load_model(classifier_path, "classifier", "--classifier", AttributeClassifier)
    source = open_source(config)
    heads = [name for name in source.label_names if name in classifier.head_classes]
    truth, guess = collections.defaultdict(list), collections.defaultdict(list)
    for batch in source.dataset(batch_size, training=False, repeat=False):
        logits = classifier(batch["image"], training=False)
        for name in heads:
            truth[name].append(batch[name].numpy())
            guess[name].append(np.argmax(np.asarray(logits[name]), axis=-1))
    result = {"examples": source.num_examples}
    for name in heads:
        t, g = np.concatenate(truth[name]), np.concatenate(guess[name])
        names = source.label_names[name]
        result[name] = {"accuracy": float(np.mean(t == g)),
                        "per_class": {n: (float(np.mean(g[t == i] == i)) if np.any(t == i) else None)
                                      for i, n in enumerate(names)},
                        "confusion": np.bincount(t * len(names) + g, minlength=len(names) ** 2)
                        .reshape(len(names), len(names)).tolist()}
    return result


# --- the experiment -------------------------------------------------------------------------------

@dataclasses.dataclass
class Experiment:
    data: DataConfig                 # the whole labelled manifest, with the held-out split's fraction and seed
    generator: str                   # generator.keras of a StarGAN or LEGAN run
    output_dir: str
    rare: Dict[str, float]           # expression name -> fraction of its training faces kept
    seeds: Sequence[int] = (0, 1)
    arms: Sequence[str] = ARMS
    quality_model: Optional[str] = None
    min_quality: Optional[float] = None
    classifier_flags: Sequence[str] = ()  # scripts/train.py flags of the judge (a flagfile, its schedule)
    attempts: float = 3.0
    progress: bool = True

    def __post_init__(self):
        unknown = [arm for arm in self.arms if arm not in ARMS]
        if unknown or not self.arms:
            raise ConfigError(f"--arms: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(ARMS)}.")
        if "q" in self.arms and (self.quality_model is None or self.min_quality is None):
            raise ConfigError("the q arm needs --quality_model and --min_quality (or leave q out of --arms).")
        if not self.rare:
            raise ConfigError("--rare names no class: give name:fraction pairs, e.g. smile:0.02,disgust:0.02.")
        if not all(0.0 < fraction < 1.0 for fraction in self.rare.values()):
            raise ConfigError("--rare: each fraction must lie between 0 and 1.")
        if not self.seeds:
            raise ConfigError("--seeds: give at least one seed.")


def parse_rare(entries: Sequence[str]) -> Dict[str, float]:
    rare = {}
    for entry in entries:
        name, sep, fraction = entry.partition(":")
        try:
            rare[name.strip()] = float(fraction)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigError(f"--rare={entry}: write class:fraction, e.g. smile:0.02.")
    return rare


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _arm_manifest(experiment: Experiment, arm: str, seed: int) -> str:
    subset = os.path.join(experiment.output_dir, f"subset-s{seed}")
    if arm == "base":
        return os.path.join(subset, "train.csv")
    if arm == "over":
        return os.path.join(subset, "oversampled.csv")
    return os.path.join(experiment.output_dir, f"aug-{arm}-s{seed}", "manifest.csv")


def _prepare_seed(experiment: Experiment, seed: int) -> None:
    from legan_tf.augmentation import augment

    subset = os.path.join(experiment.output_dir, f"subset-s{seed}")
    if not os.path.isfile(os.path.join(subset, "subset.json")):
        _log(f"seed {seed}: imbalanced subset")
        write_imbalanced_split(experiment.data, subset, experiment.rare, seed=seed)
    if "over" in experiment.arms and not os.path.isfile(os.path.join(subset, "oversampled.csv")):
        write_oversampled(os.path.join(subset, "train.csv"), os.path.join(subset, "oversampled.csv"))
    train_config = dataclasses.replace(experiment.data, data_path=os.path.join(subset, "train.csv"),
                                       holdout_fraction=0.0)
    for arm in ("noq", "q"):
        folder = os.path.join(experiment.output_dir, f"aug-{arm}-s{seed}")
        if arm not in experiment.arms or os.path.isfile(os.path.join(folder, "augment_report.json")):
            continue
        _log(f"seed {seed}: augmenting ({ARM_TITLES[arm]})")
        report = augment.run(
            train_config, experiment.generator, folder, quality_path=experiment.quality_model,
            min_quality=experiment.min_quality if arm == "q" else None, balance=["expression"],
            attempts=experiment.attempts, seed=seed, overwrite=True, progress=experiment.progress)
        _log(augment.summary(report))


def _classifier_file(runs_root: str, name: str) -> Optional[str]:
    done = sorted(glob.glob(os.path.join(runs_root, f"{name}-2*", "attribute_classifier.keras")))
    return done[-1] if done else None


def _data_flags(config: DataConfig, manifest: str) -> List[str]:
    return [f"--data_format={config.data_format}", f"--data_path={manifest}", f"--image_size={config.image_size}",
            f"--expression_names={','.join(config.expression_names)}",
            f"--lighting_names={','.join(config.lighting_names)}", "--holdout_fraction=0"]


def _train_classifier(experiment: Experiment, arm: str, seed: int) -> str:
    runs_root = os.path.join(experiment.output_dir, "runs")
    name = f"{arm}-s{seed}"
    found = _classifier_file(runs_root, name)
    if found:
        return found
    os.makedirs(os.path.join(experiment.output_dir, "logs"), exist_ok=True)
    log = os.path.join(experiment.output_dir, "logs", f"train-{name}.log")
    command = ([sys.executable, TRAIN_SCRIPT, "--task=classifier"] + list(experiment.classifier_flags)
               + _data_flags(experiment.data, _arm_manifest(experiment, arm, seed))
               + [f"--seed={seed}", f"--run_name={name}", f"--runs_root={runs_root}", "--noprogress_bar"])
    _log(f"seed {seed}: training the classifier on the {ARM_TITLES[arm]} data (log: {log})")
    with open(log, "w", encoding="utf-8") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
    found = _classifier_file(runs_root, name)
    if done.returncode != 0 or not found:
        raise ConfigError(f"training the {name} classifier failed (exit code {done.returncode}); see {log}.")
    return found


def run(experiment: Experiment) -> dict:
    """Runs (or resumes) every seed and arm, then writes results.json, results.md and per_class.png."""
    os.makedirs(os.path.join(experiment.output_dir, "eval"), exist_ok=True)
    with open(os.path.join(experiment.output_dir, "experiment.json"), "w", encoding="utf-8") as handle:
        json.dump({**dataclasses.asdict(experiment), "data": dataclasses.asdict(experiment.data)}, handle,
                  indent=2, default=list)
    for seed in experiment.seeds:
        _prepare_seed(experiment, seed)
        test_config = dataclasses.replace(
            experiment.data, data_path=os.path.join(experiment.output_dir, f"subset-s{seed}", "test.csv"),
            holdout_fraction=0.0)
        for arm in experiment.arms:
            path = os.path.join(experiment.output_dir, "eval", f"{arm}-s{seed}.json")
            if os.path.isfile(path):
                continue
            result = per_class_accuracy(_train_classifier(experiment, arm, seed), test_config)
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(result, handle, indent=1)
    return summarize(experiment.output_dir, experiment.arms, experiment.seeds, experiment.rare)


def summarize(output_dir: str, arms: Sequence[str], seeds: Sequence[int], rare: Mapping[str, float]) -> dict:
    """Mean, min and max over seeds of the held-out accuracy: overall, per rare class, and the mean of the
    other classes; the augmentation's kept/generated counts and Q scores per seed."""
    table = {}
    for arm in arms:
        runs = []
        for seed in seeds:
            with open(os.path.join(output_dir, "eval", f"{arm}-s{seed}.json"), encoding="utf-8") as handle:
                runs.append(json.load(handle)["expression"])
        values = {"all": [r["accuracy"] for r in runs]}
        for name in rare:
            values[name] = [r["per_class"][name] for r in runs]
        values["others"] = [float(np.mean([v for k, v in r["per_class"].items() if k not in rare and v is not None]))
                            for r in runs]
        table[arm] = {key: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)),
                            "seeds": [float(x) for x in v]} for key, v in values.items()}
    augmentation = {}
    for arm in ("noq", "q"):
        if arm not in arms:
            continue
        reports = []
        for seed in seeds:
            with open(os.path.join(output_dir, f"aug-{arm}-s{seed}", "augment_report.json"), encoding="utf-8") as h:
                reports.append(json.load(h))
        augmentation[arm] = {"min_quality": reports[0]["min_quality"], "per_seed": [
            {c["class"]: {k: c[k] for k in ("original", "generated", "kept", "mean_quality", "mean_quality_kept")}
             for c in report["classes"] if c["generated"]} for report in reports]}
    results = {"seeds": list(seeds), "rare": dict(rare), "arms": list(arms), "accuracy": table,
               "augmentation": augmentation}
    with open(os.path.join(output_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    with open(os.path.join(output_dir, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(results_table(results) + "\n")
    plot(results, os.path.join(output_dir, "per_class.png"))
    if "noq" in arms:
        examples_grid(os.path.join(output_dir, f"aug-noq-s{seeds[0]}"), rare,
                      augmentation.get("q", {}).get("min_quality"), os.path.join(output_dir, "examples.png"))
    return results


def examples_grid(folder: str, rare: Mapping[str, float], min_quality: Optional[float], path: str,
                  per_side: int = 6) -> None:
    """For each rare class, the unfiltered augmentation's `per_side` lowest- and highest-scored outputs with
    their Q scores, red where the Q filter would reject them: what the filter removes, for a person to judge."""
    import csv

    from PIL import Image

    from legan_tf import visualize

    with open(os.path.join(folder, "synthetic.csv"), newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("quality")]
    images, captions, colours = [], [], []
    for name in rare:
        scored = sorted((row for row in rows if row["expression"] == name), key=lambda row: float(row["quality"]))
        chosen = scored[:per_side] + scored[-per_side:] if len(scored) > 2 * per_side else scored
        for row in chosen:
            score = float(row["quality"])
            images.append(np.asarray(Image.open(os.path.join(folder, row["image"])).convert("RGB")))
            captions.append(f"{name} Q {score:.2f}")
            colours.append("red" if min_quality is not None and score < min_quality else "black")
    if images:
        visualize.save_png(visualize.labelled_grid(visualize.upscale(np.stack(images)), captions, colours,
                                                   columns=2 * per_side), path)


def _cell(stats: Mapping[str, float]) -> str:
    return f"{100 * stats['mean']:.1f} ({100 * stats['min']:.1f}-{100 * stats['max']:.1f})"


def results_table(results: Mapping) -> str:
    """Markdown: one row per arm, held-out accuracy in %, mean (min-max) over the seeds."""
    columns = ["all"] + list(results["rare"]) + ["others"]
    titles = ["all classes"] + [f"{name} (rare)" for name in results["rare"]] + ["other classes (mean)"]
    lines = ["| training data | " + " | ".join(titles) + " |", "|---" * (len(columns) + 1) + "|"]
    for arm in results["arms"]:
        stats = results["accuracy"][arm]
        lines.append(f"| {ARM_TITLES[arm]} | " + " | ".join(_cell(stats[c]) for c in columns) + " |")
    return "\n".join(lines)


def plot(results: Mapping, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = list(results["rare"]) + ["others", "all"]
    labels = [f"{name}\n(rare)" for name in results["rare"]] + ["other classes", "all classes"]
    arms = results["arms"]
    width = 0.8 / len(arms)
    figure, axis = plt.subplots(figsize=(2.0 + 1.6 * len(columns), 4.0), dpi=110)
    for index, arm in enumerate(arms):
        stats = [results["accuracy"][arm][c] for c in columns]
        means = np.asarray([100 * s["mean"] for s in stats])
        errors = np.asarray([[100 * (s["mean"] - s["min"]) for s in stats],
                             [100 * (s["max"] - s["mean"]) for s in stats]])
        axis.bar(np.arange(len(columns)) + (index - (len(arms) - 1) / 2) * width, means, width, yerr=errors,
                 capsize=3, label=ARM_TITLES[arm])
    axis.set_xticks(np.arange(len(columns)), labels)
    axis.set_ylabel("held-out accuracy (%)")
    axis.set_ylim(0, 105)
    axis.set_title(f"Classifier per class, mean and range over {len(results['seeds'])} seeds")
    # Below the axes: inside, the legend hides the bars of the last group.
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(arms), fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
