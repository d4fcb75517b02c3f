"""Quality score (LEGAN's table): the mean naturalness Q gives the outputs, and the real faces beside it.

Q rates one face on the raters' 1-10 scale (`legan_tf.models.quality.QualityModel`). A generator
trained with L_qual was trained against its Q, so that Q's score of its outputs is not an independent
judgement: give another Q where there is one (`used_in_training=False`), or say it was the one
(`used_in_training=True`, then the result notes it). The real faces' mean is the scale to read the
outputs' against.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from legan_tf.evaluation.metrics.base import (Metric, MetricResult, as_images, call_in_batches, call_model,
                                              fit_to_model, register)


def quality_scores(quality_model, images, batch_size: int, resize: dict) -> np.ndarray:
    """(B,) float64 scores of Q for images in [-1, 1], resized to Q's input size first (`resize` records it)."""
    images = fit_to_model(images, quality_model, resize)
    scores = np.asarray(call_in_batches(lambda part: call_model(quality_model, part), images, batch_size), np.float64)
    if scores.ndim > 1 and scores.shape[1:] != (1,):
        raise ValueError(f"quality_score: Q returned shape {scores.shape}; expected (B,) or (B, 1)")
    return scores.reshape(-1)


@register("quality_score")
class QualityScore(Metric):
    """Mean and std of Q over the outputs and, separately, over real faces (`reals`, optional).

    Args:
        quality_model: Q, a callable images in [-1, 1] -> (B,) or (B, 1) scores; a project network with
            `image_size` gets images resized to it (bilinear, antialiased; recorded). None: unavailable.
        quality_source: where Q came from, for the protocol.
        used_in_training: True when Q is the one the generator was trained against (L_qual).
    """

    description = "mean perceptual quality Q of the outputs, and of real faces (higher is better, 1-10)"
    needs = frozenset({"outputs"})
    optional = frozenset({"reals"})
    requires = ("quality_model",)
    paired = False

    def __init__(self, quality_model=None, quality_source: str = "", used_in_training: Optional[bool] = None,
                 keep_scores: bool = True, batch_size: int = 64, context=None):
        self.quality_model = quality_model
        self.quality_source = quality_source
        self.used_in_training = used_in_training
        self.keep_scores = bool(keep_scores)
        if quality_model is None:
            self.unavailable_reason = "no quality model Q given"
        self._resize = {}
        super().__init__(batch_size=batch_size, context=context)

    def reset(self) -> None:
        self.scores = {"outputs": [], "reals": []}

    def protocol(self) -> dict:
        return {"quality_model": self.quality_source or type(self.quality_model).__name__,
                "quality_model_used_in_training": self.used_in_training, **self._resize}

    def _update(self, batch) -> None:
        for key, images in batch.items():
            self.scores[key].append(quality_scores(self.quality_model, as_images(images, key), self.batch_size,
                                                   self._resize))

    def _result(self) -> MetricResult:
        scores = {key: np.concatenate(parts) if parts else np.zeros(0) for key, parts in self.scores.items()}
        if not len(scores["outputs"]):
            return MetricResult.unavailable(self.name, "no outputs were given")
        values = {"quality_outputs": float(scores["outputs"].mean()),
                  "quality_outputs_std": float(scores["outputs"].std()), "count_outputs": len(scores["outputs"])}
        if len(scores["reals"]):
            values.update(quality_reals=float(scores["reals"].mean()), quality_reals_std=float(scores["reals"].std()),
                          count_reals=len(scores["reals"]))
        notes = []
        if self.used_in_training:
            notes.append("Q is the quality model the generator was trained against: its score of the outputs is "
                         "not an independent judgement")
        if not len(scores["reals"]):
            notes.append("no real faces were scored: the outputs' mean has no real-face baseline beside it")
        arrays = {key: value for key, value in scores.items() if len(value)} if self.keep_scores else {}
        return MetricResult(self.name, True, values=values,
                            protocol={"num_outputs": len(scores["outputs"]), "num_reals": len(scores["reals"])},
                            arrays=arrays, notes=notes)
