import numpy as np
import pytest

from legan_tf.statistics import quality_metrics

# quality_metrics works in float64 on four values: a few roundings of 1e-16 each, far inside approx's default
# 1e-6 relative; mae, within_std and fooled_accuracy are sums of halves and integers, so exact.


def test_perfect_predictions():
    mean = np.array([2.0, 4.0, 6.0, 8.0])
    metrics = quality_metrics(mean, mean, np.zeros(4))
    assert metrics["pearson"] == pytest.approx(1.0)
    assert metrics["spearman"] == pytest.approx(1.0)
    assert metrics["mae"] == 0.0 and metrics["within_std"] == 1.0 and metrics["fooled_accuracy"] == 1.0
    assert metrics["count"] == 4


def test_hand_computed_values():
    predicted = np.array([3.0, 5.5, 4.0, 9.0])
    mean = np.array([2.0, 4.5, 6.0, 8.0])
    std = np.array([1.0, 0.5, 0.5, 1.5])
    metrics = quality_metrics(predicted, mean, std)
    assert metrics["mae"] == pytest.approx((1 + 1 + 2 + 1) / 4)
    assert metrics["within_std"] == pytest.approx(2 / 4)  # rows 0 and 3 lie inside m +- s
    # fooled (>= 5): predicted F T F T vs mean F F T T -> rows 0 and 3 agree
    assert metrics["fooled_accuracy"] == pytest.approx(0.5)
    assert metrics["spearman"] == pytest.approx(0.8)  # ranks 1,3,2,4 vs 1,2,3,4: 1 - 6*2/(4*15)
    assert metrics["pearson"] == pytest.approx(np.corrcoef(predicted, mean)[0, 1])


def test_constant_predictions_report_zero_correlation_not_nan():
    metrics = quality_metrics(np.full(3, 5.0), np.array([1.0, 5.0, 9.0]), np.ones(3))
    assert metrics["pearson"] == 0.0 and metrics["spearman"] == 0.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="lengths differ"):
        quality_metrics([1.0, 2.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0])


def test_separation_auc_on_known_rankings():
    from legan_tf.statistics import separation_auc

    assert separation_auc([3, 4], [1, 2]) == 1.0
    assert separation_auc([1, 2], [3, 4]) == 0.0
    assert separation_auc([2, 2], [2, 2]) == 0.5  # ties count one half
    # Pairs (clean, degraded): (2,1) win, (2,3) loss, (4,1) win, (4,3) win -> 3 of 4.
    assert separation_auc([2, 4], [1, 3]) == 0.75
    import pytest

    with pytest.raises(ValueError):
        separation_auc([], [1.0])


def test_share_and_ratio_on_known_inputs():
    from legan_tf.statistics import ratio, share

    assert share(np.array([True, False, True, True])) == 0.75
    assert share(np.array([], bool)) is None
    assert ratio(0.3, 0.6) == 0.5 and ratio(None, 0.6) is None and ratio(0.3, 0.0) is None and ratio(0.3, None) is None
