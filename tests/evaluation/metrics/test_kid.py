"""KID: a hand-computed value, the jackknife against brute force, zero expectation for one distribution, the
closed-form MMD^2 of two shifted Gaussians, the reservoir, and the metric on a stand-in network."""

import numpy as np
import pytest

from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics.kid import Reservoir, kernel_inception_distance, polynomial_kernel
from tests.evaluation.metrics.conftest import images

# Sums of a few O(1)-O(30) kernel values in float64, from float32 dot products of small integers (exact):
# round-off ~1e-14.
EXACT_TOLERANCE = 1e-10


def test_hand_computed_value():
    """d = 1, x = {0, 1}, y = {1, 2}, k(a, b) = (ab + 1)^3:
    k(0,1) = 1 (the x pair); k(1,2) = 27 (the y pair); k(x, y): k(0,1) = 1, k(0,2) = 1, k(1,1) = 8, k(1,2) = 27.
    MMD^2_u = 2*1 / 2 + 2*27 / 2 - 2 * 37 / 4 = 1 + 27 - 18.5 = 9.5."""
    value, error = kernel_inception_distance(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]]))
    assert abs(value - 9.5) < EXACT_TOLERANCE
    assert np.isnan(error)  # leaving one of two out leaves no pair: no jackknife
    assert polynomial_kernel(np.array([[1.0, 1.0]]), np.array([[2.0, 0.0]]))[0, 0] == (2.0 / 2 + 1) ** 3


def unbiased_mmd2(x, y):
    """The U-statistic straight from its definition (full kernel matrices)."""
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    n, m = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


def test_estimate_and_jackknife_equal_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 4)), rng.normal(0.3, 1.0, size=(7, 4))
    value, error = kernel_inception_distance(x, y)
    loo_x = np.array([unbiased_mmd2(np.delete(x, i, 0), y) for i in range(len(x))])
    loo_y = np.array([unbiased_mmd2(x, np.delete(y, j, 0)) for j in range(len(y))])
    variance = (8 / 9 * np.sum((loo_x - loo_x.mean()) ** 2) + 6 / 7 * np.sum((loo_y - loo_y.mean()) ** 2))
    # Features go through float32 (relative 6e-8) in both computations alike; what differs is the order of
    # float64 sums of kernel values ~1-10.
    assert abs(value - unbiased_mmd2(x, y)) < 1e-9
    assert abs(error - np.sqrt(variance)) < 1e-9


def test_zero_expectation_for_one_distribution():
    rng = np.random.default_rng(1)
    value, error = kernel_inception_distance(rng.normal(size=(500, 8)), rng.normal(size=(500, 8)))
    # The estimator is unbiased (mean 0 here), and the jackknife standard error is at least the true sd
    # in expectation (Efron-Stein; ~sqrt(2) times it for one distribution). Chebyshev: |value| >= 5 SE,
    # i.e. >= 7 true sd, has probability <= 1/49 whatever the estimator's distribution.
    assert error > 0
    assert abs(value) < 5 * error


def test_shifted_gaussians_give_the_closed_form_mmd():
    """d = 1: k(x, y) = (xy + 1)^3 = sum_p C(3, p) (xy)^p, so MMD^2 = sum_p C(3, p) (E x^p - E y^p)^2.
    N(0, 1) has moments (1, 0, 1, 0), N(1, 1) has (1, 1, 2, 4): MMD^2 = 3*1 + 3*1 + 1*16 = 22."""
    rng = np.random.default_rng(2)
    value, error = kernel_inception_distance(rng.normal(0, 1, size=(2000, 1)), rng.normal(1, 1, size=(2000, 1)))
    # Not degenerate here, so the U-statistic is asymptotically normal and the jackknife consistent:
    # 4 SE is a two-sided normal tail of 6e-5.
    assert abs(value - 22.0) < 4 * error
    assert value > 10 * error  # clearly positive
    assert error < 0.2 * 22.0  # and the sample is large enough for this to mean something


def test_reservoir_keeps_all_then_a_subset_of_the_stream():
    stream = np.arange(50, dtype=np.float32)[:, None]
    small = Reservoir(100, seed=0)
    small.add(stream[:20])
    small.add(stream[20:])
    np.testing.assert_array_equal(small.sample, stream)
    capped = Reservoir(10, seed=0)
    for part in np.split(stream, 5):
        capped.add(part)
    assert capped.seen == 50 and len(capped.sample) == 10
    assert len(np.unique(capped.sample)) == 10 and set(capped.sample[:, 0]) <= set(stream[:, 0])


def test_metric_on_a_stand_in_network(mean_extractor):
    outputs, reals = images(60, seed=3), images(50, seed=4, low=-0.2)
    metric = metrics.get("kid")(extractor=mean_extractor, context={"reference": "held-out"})
    result = metric.compute(outputs=outputs, reals=reals)
    value, error = kernel_inception_distance(mean_extractor(outputs), mean_extractor(reals))
    # Same float32 features; float64 sums in another order.
    assert result.available and abs(result.values["kid"] - value) < 1e-9
    assert abs(result.values["kid_standard_error"] - error) < 1e-9
    assert result.protocol["num_outputs"] == 60 and result.protocol["used_reals"] == 50
    assert result.protocol["kernel"] == "(x.y / d + 1)^3" and result.protocol["reference"] == "held-out"
    capped = metrics.get("kid")(extractor=mean_extractor, max_samples=20).compute(outputs=outputs, reals=reals)
    assert capped.protocol["used_outputs"] == 20 and "uniform random sample of 20" in capped.notes[0]


def test_too_few_samples_and_no_weights_are_unavailable(mean_extractor):
    result = metrics.get("kid")(extractor=mean_extractor).compute(outputs=images(2), reals=images(5))
    assert not result.available and "at least three" in result.reason
    assert not metrics.get("kid")(weights=None).compute(outputs=images(5), reals=images(5)).available


def test_update_features_skips_the_network(mean_extractor):
    metric = metrics.get("kid")(extractor=mean_extractor)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(30, 3))
    metric.update_features(outputs=x, reals=y)
    assert metric.result().values["kid"] == pytest.approx(kernel_inception_distance(x, y)[0], abs=1e-9)
