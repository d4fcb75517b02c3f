"""How well face embeddings tell identities apart: verification by cosine and rank-1 retrieval."""

import numpy as np
from sklearn import metrics as sklearn_metrics

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
