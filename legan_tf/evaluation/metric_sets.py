"""The registry's metrics of one source of faces, built with the judges and fed batch by batch.

An evaluation scores its models on up to two sources of faces (LAB, REAL); `make_metrics` builds the
registry's metrics of a source with the judges given (a metric whose judge is missing reports itself
unavailable), `feed` passes them a batch, `results` collects their MetricResults.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Sequence

from legan_tf.evaluation import metrics as registry
from legan_tf.evaluation.judges import Judges

LAB, REAL = "lab", "real"
SOURCES = (LAB, REAL)
# The metrics of each source, in report order. "reconstruction/<m>" compares G(G(x, t), s) with x.
LAB_METRICS = ("fid", "kid", "lpips", "ssim", "psnr", "match_score", "quality_score", "generation_rate")
REAL_METRICS = ("fid", "kid", "match_score", "quality_score", "generation_rate",
                "reconstruction/lpips", "reconstruction/ssim", "reconstruction/psnr")
# The baseline rows: real faces in the outputs' place, and (on the lab) the input unchanged.
BASELINE_REAL_FACES = "real faces"
BASELINE_INPUT = "input unchanged"


def make_metrics(names: Sequence[str], judges: Judges, used: Mapping[str, dict], class_names_: Mapping,
                 context: Mapping, batch_size: int, seed: int) -> Dict[str, registry.Metric]:
    """The registry's metrics `names` (a "reconstruction/" prefix keeps the metric) with the judges given."""
    built = {}
    for key in names:
        name = key.split("/")[-1]
        # The reference set is FID's and KID's; the others compare row by row or score one set.
        options: Dict[str, Any] = {"context": {k: v for k, v in context.items()
                                               if k != "reference" or name in ("fid", "kid")}}
        if name in ("fid", "kid"):
            if judges.inception_extractor is not None:
                options["extractor"] = judges.inception_extractor
            else:
                options["weights"] = judges.inception.path or None
            if name == "kid":
                options["seed"] = seed
        elif name == "lpips":
            if judges.lpips.model is not None:
                options.update(network=judges.lpips.model, network_source=os.path.abspath(judges.lpips.path))
            options["keep_per_image"] = False
        elif name in ("ssim", "psnr"):
            options["keep_per_image"] = False
        elif name == "match_score":
            options.update(identity_model=judges.identity.model, used_in_training=used["identity"]["used"],
                           identity_source=judges.identity.path and os.path.abspath(judges.identity.path))
        elif name == "quality_score":
            options.update(quality_model=judges.quality.model, used_in_training=used["quality"]["used"],
                           quality_source=judges.quality.path and os.path.abspath(judges.quality.path),
                           keep_scores=False)
        elif name == "generation_rate":
            options.update(classifier=judges.classifier.model, class_names=dict(class_names_),
                           classifier_source=judges.classifier.path and os.path.abspath(judges.classifier.path))
        if name in ("match_score", "quality_score", "generation_rate"):
            options["batch_size"] = batch_size
        built[key] = registry.get(name)(**options)
    return built


def feed(metrics: Mapping[str, registry.Metric], **batch) -> None:
    """One batch to each metric: `reconstruction/<m>` metrics get `reconstruction` as their outputs."""
    plain = {key: value for key, value in batch.items() if key != "reconstruction"}
    for key, metric in metrics.items():
        if key.startswith("reconstruction/"):
            if batch.get("reconstruction") is not None:
                registry.update_all([metric], **{**plain, "outputs": batch["reconstruction"]})
        else:
            registry.update_all([metric], **plain)


def results(metrics: Mapping[str, registry.Metric]) -> Dict[str, registry.MetricResult]:
    return {key: metric.result() for key, metric in metrics.items()}
