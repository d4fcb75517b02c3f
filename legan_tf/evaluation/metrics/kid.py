"""KID: the kernel Inception distance, an unbiased squared MMD between two feature sets, with its standard error.

Binkowski et al. 2018 ("Demystifying MMD GANs"): the squared maximum mean discrepancy with the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3 on Inception-v3 pool features (d = 2048), estimated by
the unbiased U-statistic

    MMD^2_u = sum_{i!=j} k(x_i, x_j) / (n (n-1)) + sum_{i!=j} k(y_i, y_j) / (m (m-1)) - 2 sum_{i,j} k(x_i, y_j) / (n m).

Its expectation is MMD^2 at every sample size (FID's is not), which is why it is the one to read for
a few hundred faces. It can be slightly negative when the two sets come from the same distribution.

Where this differs from the common implementations, and why: they average the estimator over 100
random subsets of 1000 features and report the spread of the subsets. Every subset estimate is
unbiased, so the mean is the same quantity as here; but for a few hundred faces the subsets are the
whole set (the spread is then zero, not an error). Here the estimator is taken over all pairs of all
features (up to `max_samples` per side, a uniform reservoir sample beyond), O((n + m)^2 d), and its
standard error is the two-sample jackknife's (leave one x out, then one y; computed from the kernel
matrices' row sums, so it costs nothing more). The jackknife variance is never too small in
expectation (Efron and Stein 1981); for two sets of the same distribution (a degenerate U-statistic)
it is about twice the true variance, so the error bar is conservative there and consistent otherwise.

Cost: n^2 + m^2 + n m dot products of d = 2048 features, in blocks (memory: 1024 rows of a kernel
matrix at a time): 1.2 s of CPU time for 2,000 faces a side (measured), so about half a minute for
10,000 a side, where `max_samples` caps it by default.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from legan_tf.evaluation.metrics.base import MetricResult, register
from legan_tf.evaluation.metrics.features import DEFAULT_FLAG_NAME, InceptionDistance

DEGREE = 3
COEF0 = 1.0
DEFAULT_MAX_SAMPLES = 10000
BLOCK = 1024  # rows of a kernel block


def polynomial_kernel(x, y) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for every row pair: (n, d), (m, d) -> (n, m), float64."""
    x, y = np.asarray(x), np.asarray(y)
    dimension = x.shape[1]
    # float32 products (relative error ~1e-7 over d terms of O(1) features), the cube and sums in float64
    products = (x.astype(np.float32) @ y.astype(np.float32).T).astype(np.float64)
    return (products / dimension + COEF0) ** DEGREE


def _row_sums(x, y, exclude_diagonal: bool):
    """Row and column sums of k(x, y), computed in blocks; the diagonal left out when x is y."""
    rows = np.zeros(len(x))
    columns = np.zeros(len(y))
    for start in range(0, len(x), BLOCK):
        block = polynomial_kernel(x[start:start + BLOCK], y)
        if exclude_diagonal:
            index = np.arange(start, min(start + BLOCK, len(x)))
            block[index - start, index] = 0.0
        rows[start:start + BLOCK] = block.sum(axis=1)
        columns += block.sum(axis=0)
    return rows, columns


def kernel_inception_distance(x, y):
    """The unbiased MMD^2 of feature sets x (n, d) and y (m, d), and its jackknife standard error.

    Returns (mmd2, standard_error); the standard error is nan when a side has fewer than 3 rows.
    Needs at least 2 rows a side.
    """
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"kernel_inception_distance: expected (n, d) and (m, d) features, got {x.shape}, {y.shape}")
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"kernel_inception_distance: need at least 2 rows a side, got {n} and {m}")
    r_x, _ = _row_sums(x, x, exclude_diagonal=True)      # r_x[i] = sum_{j != i} k(x_i, x_j)
    r_y, _ = _row_sums(y, y, exclude_diagonal=True)
    c_x, c_y = _row_sums(x, y, exclude_diagonal=False)  # c_x[i] = sum_j k(x_i, y_j); c_y[j] = sum_i k(x_i, y_j)
    s_xx, s_yy, s_xy = r_x.sum(), r_y.sum(), c_x.sum()
    mmd2 = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    if n < 3 or m < 3:
        return float(mmd2), float("nan")
    # Leaving out x_i removes its row and column of K_xx (2 r_x[i]) and its row of K_xy (c_x[i]).
    without_x = ((s_xx - 2.0 * r_x) / ((n - 1) * (n - 2)) + s_yy / (m * (m - 1))
                 - 2.0 * (s_xy - c_x) / ((n - 1) * m))
    without_y = (s_xx / (n * (n - 1)) + (s_yy - 2.0 * r_y) / ((m - 1) * (m - 2))
                 - 2.0 * (s_xy - c_y) / (n * (m - 1)))
    variance = ((n - 1) / n * np.sum((without_x - without_x.mean()) ** 2)
                + (m - 1) / m * np.sum((without_y - without_y.mean()) ** 2))
    return float(mmd2), float(np.sqrt(variance))


class Reservoir:
    """A uniform random sample of at most `capacity` rows of a stream (Vitter's algorithm R), seeded."""

    def __init__(self, capacity: int, seed: int = 0):
        self.capacity = int(capacity)
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.rows: Optional[np.ndarray] = None
        self.filled = 0

    def add(self, rows) -> None:
        rows = np.asarray(rows, np.float32)
        if self.rows is None:
            self.rows = np.zeros((self.capacity, rows.shape[1]), np.float32)
        for row in rows:
            if self.filled < self.capacity:
                self.rows[self.filled] = row
                self.filled += 1
            else:
                slot = self.rng.integers(0, self.seen + 1)
                if slot < self.capacity:
                    self.rows[slot] = row
            self.seen += 1

    @property
    def sample(self) -> np.ndarray:
        return np.zeros((0, 0), np.float32) if self.rows is None else self.rows[:self.filled]


@register("kid")
class KID(InceptionDistance):
    """KID of the outputs against the reals, with its standard error.

    Args and feeding as `features.InceptionDistance` (`weights` or `extractor`, `flag_name`, `quantize`;
    `update` or `update_features`), plus `max_samples` (features kept per side; a seeded uniform sample
    beyond) and `seed`. Values: `kid` and `kid_standard_error` (often printed x 1000).
    """

    description = "kernel Inception distance (unbiased MMD^2, cubic kernel) of the outputs to the real faces"

    def __init__(self, weights=None, extractor=None, flag_name: str = DEFAULT_FLAG_NAME, quantize: bool = True,
                 max_samples: int = DEFAULT_MAX_SAMPLES, seed: int = 0, batch_size: int = 50, context=None):
        self.max_samples = int(max_samples)
        self.seed = int(seed)
        super().__init__(weights=weights, extractor=extractor, flag_name=flag_name, quantize=quantize,
                         batch_size=batch_size, context=context)

    def reset(self) -> None:
        self.samples = {"outputs": Reservoir(self.max_samples, self.seed),
                        "reals": Reservoir(self.max_samples, self.seed + 1)}

    def _add_features(self, key, features) -> None:
        self.samples[key].add(features)

    def protocol(self) -> dict:
        return {"kernel": "(x.y / d + 1)^3", "estimator": "unbiased MMD^2 over all pairs (U-statistic)",
                "standard_error": "two-sample jackknife (conservative)", "max_samples": self.max_samples,
                "seed": self.seed, **super().protocol()}

    def _result(self) -> MetricResult:
        seen = {key: reservoir.seen for key, reservoir in self.samples.items()}
        used = {key: reservoir.filled for key, reservoir in self.samples.items()}
        protocol = {"num_outputs": seen["outputs"], "num_reals": seen["reals"],
                    "used_outputs": used["outputs"], "used_reals": used["reals"]}
        if min(used.values()) < 3:
            return MetricResult.unavailable(self.name, f"KID needs at least three outputs and three reals, got {seen}",
                                            protocol)
        value, error = kernel_inception_distance(self.samples["outputs"].sample, self.samples["reals"].sample)
        notes = []
        if used != seen:
            notes.append(f"KID used a uniform random sample of {self.max_samples} features per side "
                         f"(of {seen['outputs']} outputs and {seen['reals']} reals)")
        return MetricResult(self.name, True, values={"kid": value, "kid_standard_error": error},
                            protocol=protocol, notes=notes)
