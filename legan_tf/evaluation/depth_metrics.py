"""How well a depth network predicts the geometry of unseen faces, against the mean-map baseline.

The learning check of the depth network's pre-training (Bodur et al.): on the run's held-out split
(identities never trained on), the mean absolute depth error of G_depth against that of predicting
the mean depth map of the training split for every face. A network that learned nothing about the
face in front of it cannot beat the mean map, since the lab's (and aligned real) faces share a layout.

Depth errors are in depth units ([0, 1], nearer brighter), over every pixel and over the face's
pixels (true depth > 0); with --geometry=normals, the mean angle between predicted and true normals
on the face, in degrees, against the mean normal map's.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

import numpy as np

from legan_tf.errors import ConfigError

TARGET_RATIO = 0.5  # the depth network's learning check: at most half the mean map's error
METRICS_FILE = "depth_metrics.json"
SAMPLES_FILE = "depth_samples.png"
ERROR_GAIN = 10  # the sample figure's error columns, network scale


def _batches(source, batch_size):
    return source.dataset(batch_size=batch_size, training=False, repeat=False)


def _unit_depth(batch) -> np.ndarray:
    """The batch's depth in [0, 1] (the pipeline holds it in [-1, 1], as every pixel map)."""
    return (batch["depth"].numpy().astype(np.float64) + 1.0) / 2.0


def mean_depth_map(train_source, batch_size: int = 64) -> np.ndarray:
    """The per-pixel mean depth (S, S, 1) in [0, 1] over the training split, as the pipeline decodes it."""
    total, count = None, 0
    for batch in _batches(train_source, batch_size):
        depth = _unit_depth(batch)
        total = depth.sum(axis=0) if total is None else total + depth.sum(axis=0)
        count += len(depth)
    if not count:
        raise ConfigError("the training split is empty: no mean depth map to compare with.")
    return (total / count).astype(np.float32)


def _angles(predicted, truth):
    """Degrees between unit normals (network maps are normalised first); 0-length maps count as 90."""
    predicted = predicted / np.maximum(np.linalg.norm(predicted, axis=-1, keepdims=True), 1e-12)
    cosine = np.clip(np.sum(predicted * truth, axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(cosine))


def depth_errors(depth_generator, eval_source, mean_map: np.ndarray, batch_size: int = 64,
                 keep_samples: int = 0) -> Dict[str, object]:
    """Held-out errors of `depth_generator` and of the mean map, and the first `keep_samples` faces."""
    from legan_tf.geometry import depth_from_network, geometry_from_depth

    geometry = depth_generator.geometry
    mean_geometry = geometry_from_depth(mean_map[None], geometry).numpy()[0]
    sums = {"model": 0.0, "mean_map": 0.0, "model_face": 0.0, "mean_map_face": 0.0}
    pixels = face_pixels = faces = 0
    samples = []
    for batch in _batches(eval_source, batch_size):
        depth = _unit_depth(batch).astype(np.float32)
        predicted = depth_generator.to_geometry(batch["image"], training=False).numpy()
        face = depth[..., 0] > 0
        if geometry == "depth":
            model_error = np.abs(depth_from_network(predicted).numpy() - depth)[..., 0]
            mean_error = np.abs(mean_map[None] - depth)[..., 0]
        else:
            truth = geometry_from_depth(depth, "normals").numpy()
            model_error = _angles(predicted, truth)
            mean_error = _angles(np.broadcast_to(mean_geometry, truth.shape), truth)
        sums["model"] += float(model_error.sum())
        sums["mean_map"] += float(mean_error.sum())
        sums["model_face"] += float(model_error[face].sum())
        sums["mean_map_face"] += float(mean_error[face].sum())
        pixels += model_error.size
        face_pixels += int(face.sum())
        faces += len(depth)
        if len(samples) < keep_samples:
            take = keep_samples - len(samples)
            samples += list(zip(batch["image"].numpy()[:take], geometry_from_depth(depth[:take], geometry).numpy(),
                                predicted[:take]))
    if not faces:
        raise ConfigError("the held-out split is empty: train with --holdout_fraction > 0 to evaluate.")
    unit = "depth" if geometry == "depth" else "angle_deg"
    metrics = {
        "geometry": geometry, "faces": faces,
        f"{unit}_error": sums["model"] / pixels, f"{unit}_error_mean_map": sums["mean_map"] / pixels,
        f"{unit}_error_face": sums["model_face"] / max(face_pixels, 1),
        f"{unit}_error_face_mean_map": sums["mean_map_face"] / max(face_pixels, 1),
    }
    for suffix in ("", "_face"):
        metrics[f"ratio{suffix}"] = metrics[f"{unit}_error{suffix}"] / metrics[f"{unit}_error{suffix}_mean_map"]
    # Over all pixels for depth (as the check is stated); on the face for normals, where the background is no surface.
    checked = "ratio" if geometry == "depth" else "ratio_face"
    metrics["passed"] = bool(metrics[checked] <= TARGET_RATIO)
    metrics["checked"] = checked
    metrics["target_ratio"] = TARGET_RATIO
    return {"metrics": metrics, "samples": samples, "mean_geometry": mean_geometry}


def evaluate_depth_run(run_dir: str, depth_generator_path: Optional[str] = None, batch_size: int = 64,
                       output_dir: Optional[str] = None, sample_rows: int = 8) -> Dict[str, object]:
    """Reopens a --task=depth_pretrain run's data split from its flags.txt and measures the depth check."""
    from legan_tf import visualize
    from legan_tf.data import open_source
    from legan_tf.geometry import geometry_to_rgb
    from legan_tf.models.depth import DepthGenerator
    from legan_tf.runs import FLAGS_FILE, RunDir, load_model

    run = RunDir.open(run_dir)
    config = run.settings().data_config()
    if config is None:
        raise ConfigError(f"--run_dir={run_dir}: its {FLAGS_FILE} names no data to reopen.")
    if config.holdout_fraction <= 0:
        raise ConfigError(f"--run_dir={run_dir} trained with --holdout_fraction=0: it held out no faces to evaluate.")
    train_source, eval_source = open_source(config).split(config.holdout_fraction, config.split_seed)
    path = depth_generator_path or run.model_path("depth_generator")
    generator = load_model(path, "depth network", "--depth_generator", DepthGenerator)
    if generator.image_size != config.image_size:
        raise ConfigError(f"{path} works on {generator.image_size} px, the run's data on {config.image_size} px.")
    mean_map = mean_depth_map(train_source, batch_size)
    result = depth_errors(generator, eval_source, mean_map, batch_size, keep_samples=sample_rows)
    output_dir = output_dir or run.evaluation_dir
    os.makedirs(output_dir, exist_ok=True)
    report = {"run_dir": os.path.abspath(run_dir), "depth_generator": os.path.abspath(path),
              "train_faces": train_source.num_examples, "held_out_faces": eval_source.num_examples,
              "metrics": result["metrics"]}
    with open(os.path.join(output_dir, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    if result["samples"]:
        images, truth, predicted = (np.stack(column) for column in zip(*result["samples"]))
        mean = np.broadcast_to(result["mean_geometry"], truth.shape)

        def error_map(estimate):
            # Faces differ by a few hundredths of depth: the error is shown 10x, black = exact, white >= 0.1.
            error = np.abs(estimate - truth).mean(axis=-1, keepdims=True)
            return geometry_to_rgb(np.clip(error * ERROR_GAIN, 0.0, 1.0) * 2.0 - 1.0).numpy()

        columns = [images, geometry_to_rgb(truth).numpy(), geometry_to_rgb(predicted).numpy(), error_map(predicted),
                   geometry_to_rgb(mean).numpy(), error_map(mean)]
        grid = visualize.titled_mosaic([visualize.to_uint8(column) for column in columns],
                                       ["input", "true", "G_depth", f"error x{ERROR_GAIN}", "mean map",
                                        f"error x{ERROR_GAIN}"])
        visualize.save_png(grid, os.path.join(output_dir, SAMPLES_FILE))
    report["output_dir"] = output_dir
    return report
