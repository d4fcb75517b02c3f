"""Match score (Bodur et al. fig. 4, LEGAN's table): how well the outputs keep the input's identity.

    match(input, output) = cos(f(input), f(output)) = 1 - legan_tf.losses.identity_loss(f(input), f(output))

with f an identity network that was not used to train the model under test (a network that the
generator was trained against scores its own objective). The metric cannot see where f came from:
pass `identity_source` (for the protocol) and `used_in_training=True` when it was f, and the result
notes that the score is not independent. Values: the mean, std and median over pairs; the per-pair
scores are kept for the distribution plot (`plot_match_scores`, one panel per model).
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Optional

import numpy as np

from legan_tf.evaluation.metrics.base import (Metric, MetricResult, as_images, as_numpy, call_in_batches,
                                              call_model, fit_to_model, register)
from legan_tf.losses import identity_loss


def match_scores(input_embeddings, output_embeddings) -> np.ndarray:
    """Cosine similarity of each pair of embeddings (rows, flattened beyond the batch axis), float64."""
    return 1.0 - as_numpy(identity_loss(input_embeddings, output_embeddings)).astype(np.float64)


@register("match_score")
class MatchScore(Metric):
    """Mean cosine similarity of identity embeddings of each input and its output (1 = same embedding).

    Args:
        identity_model: f, a callable images in [-1, 1] -> (B, D) embeddings (a Keras model is called with
            training=False; a project network declaring `image_size`/`input_size` gets images resized to it).
            None: unavailable.
        identity_source: where f came from (a path, "LightCNN-29 v2"), for the protocol.
        used_in_training: True when f is the network the model under test was trained against.
    """

    description = "cosine similarity of identity embeddings of input and output (higher keeps identity better)"
    needs = frozenset({"inputs", "outputs"})
    requires = ("identity_model",)
    paired = True

    def __init__(self, identity_model=None, identity_source: str = "", used_in_training: Optional[bool] = None,
                 batch_size: int = 64, context=None):
        self.identity_model = identity_model
        self.identity_source = identity_source
        self.used_in_training = used_in_training
        if identity_model is None:
            self.unavailable_reason = ("no identity network given: the match score needs one, and one that the "
                                       "model under test was not trained against")
        self._resize = {}
        super().__init__(batch_size=batch_size, context=context)

    def reset(self) -> None:
        self.scores = []

    def protocol(self) -> dict:
        return {"similarity": "cosine of identity embeddings (1 - legan_tf.losses.identity_loss)",
                "identity_network": self.identity_source or type(self.identity_model).__name__,
                "identity_network_used_in_training": self.used_in_training, **self._resize}

    def _embed(self, images) -> np.ndarray:
        images = fit_to_model(images, self.identity_model, self._resize)
        return call_in_batches(lambda batch: call_model(self.identity_model, batch), images, self.batch_size)

    def _update(self, batch) -> None:
        inputs = as_images(batch["inputs"], "inputs")
        outputs = as_images(batch["outputs"], "outputs")
        self.scores.append(match_scores(self._embed(inputs), self._embed(outputs)))

    def _result(self) -> MetricResult:
        if not self.scores:
            return MetricResult.unavailable(self.name, "no input/output pairs were given")
        scores = np.concatenate(self.scores)
        notes = []
        if self.used_in_training:
            notes.append("the identity network is the one the model was trained against: the match score is "
                         "not an independent measure")
        return MetricResult(self.name, True,
                            values={"match_score": float(scores.mean()), "match_score_std": float(scores.std()),
                                    "match_score_median": float(np.median(scores)), "count": len(scores)},
                            protocol={"num_pairs": len(scores)}, arrays={"per_pair": scores}, notes=notes)


def plot_match_scores(results: Mapping[str, MetricResult], path: str, title: str = "Match score per model",
                      bins: int = 40) -> str:
    """Writes a PNG of the match-score distribution of each model (one panel each, the same axes, the mean
    marked) from `match_score` results keyed by model name; unavailable results get a panel saying why.
    Returns `path`."""
    from legan_tf import visualize  # noqa: F401  (selects matplotlib's Agg backend)
    import matplotlib.pyplot as plt

    names = list(results)
    if not names:
        raise ValueError("plot_match_scores: no results")
    scores = {name: np.asarray(results[name].arrays.get("per_pair", []), np.float64)
              for name in names if results[name].available}
    every = np.concatenate([value for value in scores.values() if len(value)] or [np.zeros(1)])
    low = min(0.0, float(np.min(every)))
    edges = np.linspace(low, 1.0, bins + 1)
    figure, axes = plt.subplots(len(names), 1, figsize=(7.0, 1.9 * len(names) + 0.8), dpi=110, sharex=True,
                                squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        axis.set_ylabel("pairs", fontsize=10)
        axis.tick_params(labelsize=9)
        if name not in scores or not len(scores[name]):
            reason = results[name].reason or "no scores"
            axis.text(0.5, 0.5, f"{name}: unavailable\n" + "\n".join(textwrap.wrap(reason, 70)[:3]), ha="center",
                      va="center", fontsize=9, transform=axis.transAxes)
            axis.set_yticks([])
            axis.set_ylabel("")
            continue
        value = scores[name]
        axis.hist(value, bins=edges, color="#4477aa")
        axis.axvline(value.mean(), color="#cc3311", linewidth=1.5)
        axis.set_title(f"{name}: mean {value.mean():.3f}, median {np.median(value):.3f}, n = {len(value)}",
                       fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("match score: cosine similarity of identity embeddings, input vs output", fontsize=10)
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
