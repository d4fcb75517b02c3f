"""Evaluating a trained Q on the ratings it was held out from: what `scripts/evaluate_quality.py` does.

The run's flags.txt rebuilds the data config of training, and `Source.split` with the run's
holdout_fraction and split_seed gives back exactly the held-out sources training evaluated on.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from legan_tf import visualize
from legan_tf.data import DataConfig, data_config_from_flags, open_source
from legan_tf.data.pipeline import ManifestSource, Source
from legan_tf.errors import ConfigError
from legan_tf.naturalness import scoring
from legan_tf.runs import FLAGS_FILE, RunDir, RunSettings
from legan_tf.statistics import CLEAN, FOOLED_THRESHOLD, quality_metrics, separation_auc

SPLITS = ("test", "train", "all")
# What evaluate_run writes (into the run's evaluation folder by default).
METRICS_FILE = "metrics.json"
SCATTER_FILE = "scatter.png"
PREDICTIONS_FILE = "predictions.csv"
METRIC_NAMES = ("spearman", "pearson", "mae", "within_std", "fooled_accuracy", "auc_vs_clean")


# --- the run's data --------------------------------------------------------------------------------

def read_run_settings(run_dir: str) -> RunSettings:
    """The settings of a --task=quality run (`RunDir.settings`: its data flags typed, the script's own flags
    untouched); a run of another recipe is a ConfigError."""
    run = RunDir.open(run_dir)
    settings = run.settings()
    if settings.task is not None and settings.task != "quality":
        raise ConfigError(f"{run.flags_path}: a --task={settings.task} run; "
                          "evaluate_quality needs a --task=quality run.")
    return settings


def run_data_config(run_dir: str, data_path: Optional[str] = None) -> DataConfig:
    """The run's ratings config; `data_path` swaps in another ratings CSV (read with the same settings).

    Evaluation reads in order and writes nothing into the data, so caching and the skipped report
    are switched off.
    """
    config = data_config_from_flags(read_run_settings(run_dir).flags)
    if data_path:
        config = dataclasses.replace(config, data_format="ratings", data_path=data_path)
    elif config.data_format == "tfrecord":
        raise ConfigError(
            f"{run_dir} trained on TFRecord shards ({config.data_path}); evaluate_quality reads a ratings "
            "CSV: pass --data_path=<the ratings CSV the shards were made from>.")
    if config.data_format != "ratings":
        raise ConfigError(f"{run_dir} trained on data_format={config.data_format}; Q needs ratings.")
    if not os.path.exists(config.data_path):
        raise ConfigError(f"{config.data_path}: no such ratings CSV (paths in {FLAGS_FILE} are relative "
                          "to where training ran: run from there, or pass --data_path).")
    return dataclasses.replace(config, cache=False, skipped_report=None)


def select_split(source: Source, split: str) -> Source:
    """`train` or `test` as training split the data (same holdout_fraction and seed), or `all`."""
    if split not in SPLITS:
        raise ConfigError(f"--split={split}: expected one of {', '.join(SPLITS)}.")
    if split == "all":
        return source
    if source.config.holdout_fraction == 0.0:
        raise ConfigError("the run held out nothing (holdout_fraction=0): use --split=all.")
    train, test = source.split()
    return test if split == "test" else train


# --- predictions ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Predictions:
    images: List[str]
    generators: Optional[List[str]]  # None when the ratings have no generator column
    mean: np.ndarray
    std: np.ndarray
    predicted: np.ndarray


def predict(model, source: ManifestSource, batch_size: int = 64, progress: bool = True) -> Predictions:
    """Q's score for every example of `source`, read through the training input pipeline in order."""
    batches = -(-source.num_examples // batch_size)
    predicted, mean, std = [], [], []
    dataset = source.dataset(batch_size, training=False, repeat=False)
    for batch in tqdm(dataset, total=batches, desc="evaluating", unit="batch", disable=not progress,
                      file=sys.stderr):
        predicted.append(model(batch["image"], training=False).numpy().reshape(-1))
        mean.append(batch["mean"].numpy())
        std.append(batch["std"].numpy())
    # An unshuffled ManifestSource reads its examples in `indices` order, so the columns line up.
    ratings_folder = os.path.dirname(os.path.abspath(source.config.data_path))
    # Named as the ratings CSV names them (relative to its folder), so the two files can be joined.
    images = [os.path.relpath(source.all_columns["image"][i], ratings_folder) for i in source.indices]
    generators = [source.all_strata[i] for i in source.indices] if source.stratified else None
    return Predictions(images, generators, np.concatenate(mean), np.concatenate(std), np.concatenate(predicted))


def metrics_report(predictions: Predictions) -> Dict[str, object]:
    """Overall metrics and, with generators, each generator's (only its count where it has fewer than 2 images)."""
    report = {"overall": quality_metrics(predictions.predicted, predictions.mean, predictions.std)}
    if predictions.generators is not None:
        generators = np.asarray(predictions.generators)
        per_generator = {}
        for generator in sorted(set(predictions.generators)):
            chosen = generators == generator
            per_generator[generator] = (
                quality_metrics(predictions.predicted[chosen], predictions.mean[chosen], predictions.std[chosen])
                if chosen.sum() >= 2 else {"count": float(chosen.sum())})
        if CLEAN in per_generator:
            # How well Q tells each kind of degradation from the clean images of the same split.
            clean_scores = predictions.predicted[generators == CLEAN]
            for generator, metrics in per_generator.items():
                if generator != CLEAN:
                    metrics["auc_vs_clean"] = separation_auc(clean_scores, predictions.predicted[generators == generator])
        report["per_generator"] = per_generator
    return report


def plot_scatter(predictions: Predictions, overall: Dict[str, float], path: str) -> None:
    """Predicted score against mean rating, the raters' std as error bars on the rating axis."""
    import matplotlib.pyplot as plt  # visualize has already selected the Agg backend

    figure, axis = plt.subplots(figsize=(6.4, 6.0), dpi=120)
    groups = predictions.generators if predictions.generators is not None else [""] * len(predictions.mean)
    names = sorted(set(groups))
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for index, name in enumerate(names):
        chosen = np.asarray(groups) == name
        axis.errorbar(predictions.mean[chosen], predictions.predicted[chosen], xerr=predictions.std[chosen],
                      fmt="o", markersize=3.5, elinewidth=0.7, alpha=0.75, color=colours(index % colours.N),
                      label=name or None)
    axis.plot([1, 10], [1, 10], color="grey", linewidth=1, label="identity")
    # The "fooled the rater" decision: a rating (and, for Q, a score) of at least 5.
    axis.axvline(FOOLED_THRESHOLD, color="black", linestyle="--", linewidth=0.8)
    axis.axhline(FOOLED_THRESHOLD, color="black", linestyle="--", linewidth=0.8)
    low = min(1.0, float(predictions.predicted.min()) - 0.5)
    high = max(10.0, float(predictions.predicted.max()) + 0.5)
    axis.set_xlim(0.5, 10.5)
    axis.set_ylim(low, high)
    axis.set_xlabel("mean rating (error bar: raters' std)")
    axis.set_ylabel("Q's predicted score")
    axis.set_title(f"Spearman {overall['spearman']:.3f}   Pearson {overall['pearson']:.3f}   "
                   f"MAE {overall['mae']:.3f}   (n={int(overall['count'])})", fontsize=10)
    axis.legend(fontsize=7, loc="upper left")
    axis.grid(alpha=0.3)
    visualize.save_png(visualize.figure_to_array(figure), path)


def write_predictions_csv(predictions: Predictions, path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "mean", "std", "predicted"])
        for image, mean, std, predicted in zip(predictions.images, predictions.mean, predictions.std,
                                               predictions.predicted):
            writer.writerow([image, f"{mean:.4f}", f"{std:.4f}", f"{predicted:.4f}"])


def format_table(report: Dict[str, object]) -> str:
    """Overall and per-generator metrics as a fixed-width text table."""
    rows = [("overall", report["overall"]), *report.get("per_generator", {}).items()]
    width = max(12, *(len(name) for name, _ in rows))
    lines = [f"{'':{width}}  {'count':>5}  " + "  ".join(f"{name:>15}" for name in METRIC_NAMES)]
    for name, metrics in rows:
        cells = "  ".join(f"{metrics[m]:>15.3f}" if m in metrics else f"{'-':>15}" for m in METRIC_NAMES)
        lines.append(f"{name:{width}}  {int(metrics['count']):>5}  {cells}")
    return "\n".join(lines)


def evaluate_run(run_dir: str, model_path: Optional[str] = None, data_path: Optional[str] = None,
                 split: Optional[str] = None, output_dir: Optional[str] = None, batch_size: int = 64,
                 progress: bool = True) -> Dict[str, object]:
    """Evaluates Q on the run's held-out ratings and writes METRICS_FILE, SCATTER_FILE and PREDICTIONS_FILE.

    `split` defaults to the run's held-out test split, or to `all` when `data_path` names other
    ratings (their own held-out part would mean nothing). Returns the metrics.json content.
    """
    if batch_size < 1:
        raise ConfigError(f"--batch_size={batch_size} must be positive.")
    split = split or ("all" if data_path else "test")
    config = run_data_config(run_dir, data_path)
    model_file = scoring.quality_model_path(model_path, run_dir)
    model = scoring.load_quality_model(model_file)
    # The model fixes the input size, so a Q saved at another size still sees the same images.
    config = dataclasses.replace(config, image_size=model.image_size)
    source = select_split(open_source(config), split)
    if source.num_examples < 2:
        raise ConfigError(f"the {split} split has {source.num_examples} image(s); metrics need at least two.")
    predictions = predict(model, source, batch_size, progress)

    report = {"model": os.path.abspath(model_file), "data_path": os.path.abspath(config.data_path),
              "split": split, "count": source.num_examples, **metrics_report(predictions)}
    output_dir = output_dir or RunDir(run_dir).evaluation_dir
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    plot_scatter(predictions, report["overall"], os.path.join(output_dir, SCATTER_FILE))
    write_predictions_csv(predictions, os.path.join(output_dir, PREDICTIONS_FILE))
    report["output_dir"] = output_dir
    return report
