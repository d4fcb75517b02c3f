"""FID: the Frechet distance between Gaussians fitted to Inception-v3 pool features of two image sets.

    FID = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))

(Heusel et al. 2017). `frechet_distance` takes the means and covariances; `GaussianStatistics`
accumulates them over batches (Chan et al.'s pairwise update: exact, stable, one pass, memory
D + D^2 floats whatever the number of images); the metric `fid` feeds the outputs and the reals
through the feature extractor (`features.inception_features`, see there for the weights and the
protocol) and compares them.

The square root is `scipy.linalg.sqrtm`'s, real part taken, as in the common implementations; when the
product is near-singular and the root is not finite, `eps * I` is added to both covariances inside
the root (the traces keep the given covariances, as pytorch-fid does) and the result's notes say so.
FID is biased upward at small sample counts: with n <= 2048 images on a side (the features' count) the
covariances are rank-deficient (rank <= n - 1). The value is still given, with
`protocol["covariance_rank_deficient"]` True and a note saying so and that it compares only at equal n;
the report marks such a figure (§) with the note beside. For a few hundred faces read KID (`kid`) beside it.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
from scipy import linalg

from legan_tf.evaluation.metrics.base import MetricResult, register
from legan_tf.evaluation.metrics.features import InceptionDistance

EPS = 1e-6
# The imaginary part sqrtm leaves from round-off; larger is reported (pytorch-fid fails above 1e-3).
IMAGINARY_TOLERANCE = 1e-3


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = EPS, notes: Optional[List[str]] = None) -> float:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2); `notes` (a list) gets what was done
    about a near-singular product or a large imaginary part of its square root."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: shapes do not fit: mu {mu1.shape}, {mu2.shape}; "
                         f"sigma {sigma1.shape}, {sigma2.shape}")
    notes = notes if notes is not None else []
    difference = mu1 - mu2
    root = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(root).all():
        notes.append(f"the covariance product is near-singular (its square root was not finite); "
                     f"{eps:g} * I was added to both covariances")
        offset = np.eye(sigma1.shape[0]) * eps
        root = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(root):
        imaginary = float(np.max(np.abs(np.diagonal(root).imag)))
        if imaginary > IMAGINARY_TOLERANCE:
            notes.append(f"the square root of the covariance product has an imaginary part up to {imaginary:.3g} "
                         "on its diagonal (round-off of a near-singular product); its real part was used")
        root = root.real
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


class GaussianStatistics:
    """Running count, mean and covariance of feature rows, merged batch by batch (float64)."""

    def __init__(self):
        self.count = 0
        self.mean: Optional[np.ndarray] = None
        self._scatter: Optional[np.ndarray] = None  # sum of outer products of deviations from the mean

    def update(self, features) -> None:
        features = np.asarray(features, np.float64)
        if features.ndim != 2:
            raise ValueError(f"GaussianStatistics: expected (N, D) features, got {features.shape}")
        count = len(features)
        if count == 0:
            return
        batch_mean = features.mean(axis=0)
        centred = features - batch_mean
        batch_scatter = centred.T @ centred
        if self.count == 0:
            self.count, self.mean, self._scatter = count, batch_mean, batch_scatter
            return
        if features.shape[1] != self.mean.size:
            raise ValueError(f"GaussianStatistics: {features.shape[1]} features after {self.mean.size}")
        total = self.count + count
        delta = batch_mean - self.mean
        self._scatter = self._scatter + batch_scatter + np.outer(delta, delta) * (self.count * count / total)
        self.mean = self.mean + delta * (count / total)
        self.count = total

    @property
    def covariance(self) -> np.ndarray:
        """The unbiased sample covariance (divides by count - 1, as numpy.cov)."""
        if self.count < 2:
            raise ValueError("GaussianStatistics: a covariance needs at least two samples")
        return self._scatter / (self.count - 1)


def rank_deficiency_note(num_outputs: int, num_reals: int, dimension: int) -> str:
    """What a reader must know of an FID from at most `dimension` images on a side."""
    return (f"n={num_outputs} outputs and {num_reals} reals, not more than the {dimension} features: the covariances "
            "are rank-deficient (rank <= n - 1); FID at this n is biased upward and only comparable at equal n "
            "(read KID beside it)")


@register("fid")
class FID(InceptionDistance):
    """FID of the outputs against the reals (e.g. the held-out real faces of the target classes).

    Args and feeding as `features.InceptionDistance`: `weights` (Inception-v3's: "fid2015", a converted FID
    Inception .npz, "imagenet" or a Keras .h5; None: unavailable) or `extractor`, `flag_name`, `quantize`;
    `update(outputs=..., reals=...)` in any numbers, or `update_features(...)` with features computed already
    (by `metric.extractor`), e.g. to share them with KID or across class splits.
    """

    description = "Frechet Inception distance of the outputs to the real faces (lower is better)"

    def reset(self) -> None:
        self.statistics = {"outputs": GaussianStatistics(), "reals": GaussianStatistics()}

    def _add_features(self, key, features) -> None:
        self.statistics[key].update(features)

    def protocol(self) -> dict:
        return {"distance": "Frechet distance of Gaussians fitted to the features (scipy.linalg.sqrtm, real part)",
                **super().protocol()}

    def _result(self) -> MetricResult:
        counts = {key: statistics.count for key, statistics in self.statistics.items()}
        protocol = {"num_outputs": counts["outputs"], "num_reals": counts["reals"]}
        if min(counts.values()) < 2:
            return MetricResult.unavailable(self.name, f"FID needs at least two outputs and two reals, got {counts}",
                                            protocol)
        outputs, reals = self.statistics["outputs"], self.statistics["reals"]
        notes: List[str] = []
        dimension = outputs.mean.size
        # n samples give a covariance of rank <= n - 1: below full rank up to n = d.
        protocol["covariance_rank_deficient"] = min(counts.values()) <= dimension
        if protocol["covariance_rank_deficient"]:
            notes.append(rank_deficiency_note(counts["outputs"], counts["reals"], dimension))
        value = frechet_distance(outputs.mean, outputs.covariance, reals.mean, reals.covariance, notes=notes)
        protocol["feature_dim"] = int(dimension)
        return MetricResult(self.name, True, values={"fid": value}, protocol=protocol, notes=notes)
