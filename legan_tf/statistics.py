"""Plain numpy statistics of held-out predictions, shared by the recipes' evaluations and the reports.

Quality (Q): how well Q's scores agree with the raters, and how well they separate
clean faces from degraded ones. Identity: how well face embeddings tell identities apart (verification
by cosine, rank-1 retrieval).
"""

import numpy as np
from scipy import stats
from sklearn import metrics as sklearn_metrics

# --- shares of held-out decisions ---


def share(hits) -> "float | None":
    """The share of True (or the mean of 0/1) in `hits`; None for an empty set (no decision to count)."""
    return float(np.mean(hits)) if np.size(hits) else None


def ratio(numerator, denominator) -> "float | None":
    """numerator / denominator, or None when either is missing or the denominator is 0 (a figure against a
    ceiling that was not measured)."""
    return None if numerator is None or not denominator else numerator / denominator


# --- quality ---

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


# --- identity ---

# TAR is reported at this false accept rate (1%).
TARGET_FAR = 0.01


def cosine_similarities(embeddings) -> np.ndarray:
    """(N, D) embeddings -> (N, N) cosine similarities."""
    embeddings = np.asarray(embeddings, np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.maximum(norms, 1e-12)
    return unit @ unit.T


def identity_metrics(embeddings, identities) -> dict[str, float]:
    """Verification and retrieval on every pair of the given faces (identities unseen in training).

    - `verification_auc`: ROC AUC of cosine similarity for same- vs different-identity pairs (all
      unordered pairs); `tar_at_far_1pct`: the share of same-identity pairs accepted at the
      threshold that accepts 1% of different-identity pairs. Both need two identities and a pair
      of one; they are left out otherwise.
    - `rank1_accuracy`: for each face whose identity has another face, whether its nearest other
      face (by cosine, itself excluded) has the same identity.
    """
    embeddings = np.asarray(embeddings)
    identities = np.asarray(identities).reshape(-1)
    if embeddings.ndim != 2 or len(embeddings) != len(identities):
        raise ValueError(f"identity_metrics: expected (N, D) embeddings and N identities, got "
                         f"{embeddings.shape} and {identities.shape}")
    if len(identities) < 2:
        raise ValueError("identity_metrics: need at least two faces")
    similarity = cosine_similarities(embeddings)
    same = identities[:, None] == identities[None, :]
    result = {"count": float(len(identities)), "identities": float(len(np.unique(identities)))}

    upper = np.triu_indices(len(identities), k=1)
    scores, genuine = similarity[upper], same[upper]
    if genuine.any() and not genuine.all():
        result["verification_auc"] = float(sklearn_metrics.roc_auc_score(genuine, scores))
        impostor_scores = np.sort(scores[~genuine])
        # The smallest threshold that accepts at most TARGET_FAR of the impostor pairs.
        accepted = int(np.floor(TARGET_FAR * len(impostor_scores)))
        threshold = impostor_scores[len(impostor_scores) - accepted - 1] if accepted < len(impostor_scores) else -np.inf
        result["tar_at_far_1pct"] = float(np.mean(scores[genuine] > threshold))

    np.fill_diagonal(similarity, -np.inf)
    has_partner = same.sum(axis=1) > 1
    if has_partner.any():
        nearest = np.argmax(similarity, axis=1)
        result["rank1_accuracy"] = float(np.mean(identities[nearest][has_partner] == identities[has_partner]))
    return result


def nearest_neighbours(embeddings, count) -> tuple[np.ndarray, np.ndarray]:
    """For every face, the indices and cosines of its `count` most similar other faces, best first."""
    similarity = cosine_similarities(embeddings)
    np.fill_diagonal(similarity, -np.inf)
    count = min(count, len(similarity) - 1)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :count]
    return order, np.take_along_axis(similarity, order, axis=1)
