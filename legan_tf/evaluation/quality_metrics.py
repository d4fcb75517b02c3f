"""How well Q's scores agree with the raters (METHOD.md section 1)."""

import numpy as np
from scipy import stats

# A rating of at least 5 means the face fooled the rater (LEGAN Perceptual Dataset README).
FOOLED_THRESHOLD = 5.0


def quality_metrics(predicted, mean, std) -> dict[str, float]:
    """Pearson and Spearman correlation with the mean rating, MAE, the fraction of predictions inside
    mean +- std, and the accuracy of the "fooled the rater" decision (score >= 5 vs mean >= 5)."""
    predicted = np.asarray(predicted, np.float64).reshape(-1)
    mean = np.asarray(mean, np.float64).reshape(-1)
    std = np.asarray(std, np.float64).reshape(-1)
    if not len(predicted) == len(mean) == len(std):
        raise ValueError(f"quality_metrics: lengths differ ({len(predicted)}, {len(mean)}, {len(std)})")
    if len(predicted) < 2:
        raise ValueError("quality_metrics: need at least two images")
    constant = np.ptp(predicted) == 0 or np.ptp(mean) == 0  # correlations are undefined; report 0
    return {
        "pearson": 0.0 if constant else float(stats.pearsonr(predicted, mean)[0]),
        "spearman": 0.0 if constant else float(stats.spearmanr(predicted, mean)[0]),
        "mae": float(np.mean(np.abs(predicted - mean))),
        "within_std": float(np.mean(np.abs(predicted - mean) <= std)),
        "fooled_accuracy": float(np.mean((predicted >= FOOLED_THRESHOLD) == (mean >= FOOLED_THRESHOLD))),
        "count": float(len(predicted)),
    }


CLEAN = "clean"  # the ratings' generator/kind name of undegraded images (face lab, make_naturalness.py)


def separation_auc(clean_scores, degraded_scores) -> float:
    """The probability that a clean image scores above a degraded one, ties counting one half: the
    ROC AUC of Q's score as a clean-versus-degraded detector (0.5 is chance, 1 a perfect ranking)."""
    clean = np.asarray(clean_scores, np.float64).reshape(-1)
    degraded = np.asarray(degraded_scores, np.float64).reshape(-1)
    if not len(clean) or not len(degraded):
        raise ValueError("separation_auc: need at least one clean and one degraded score")
    # Mann-Whitney U from the ranks of the pooled scores (average ranks for ties).
    ranks = stats.rankdata(np.concatenate([clean, degraded]))
    u = ranks[:len(clean)].sum() - len(clean) * (len(clean) + 1) / 2
    return float(u / (len(clean) * len(degraded)))
