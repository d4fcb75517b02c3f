"""Judging an identity network f on real held-out people (scripts/evaluate_identity.py --data_path), and f as a
judge of edits: how far an edit moves f from its face, and whether f still reads it as the same person
(scripts/judge_real_edits.py and scripts/judge_joint_edits.py --identity_model).

The faces come from prepared shards that carry an `identity` label (a subject per face, e.g. CK+48's
S<nnn>, and relit copies of its photos), read from a split whose people f never saw in training.
Besides verification and retrieval over every pair (identity_metrics), the pairs of one person are
split by what else differs, because f must tell people apart while ignoring exactly the changes an
editor makes:

- another light: same person, same expression, another lighting label (relit copies of a photo);
- another expression: same person, same lighting, another expression label;
- another light and expression: same person, both differ;
- (the same person with the same labels: other frames of the same sequence, reported for completeness).

For each kind: the number of pairs, the mean distance 1 - cos (as L_id measures it) and the ROC AUC of
cosine against the different-person pairs (1.0: every pair of that kind scores above every pair of two
people; 0.5: f cannot tell that change from another person).
"""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

import numpy as np
from sklearn import metrics as sklearn_metrics

from legan_tf.errors import ConfigError
from legan_tf.statistics import TARGET_FAR, cosine_similarities, identity_metrics

REPORT_FILE = "identity_evaluation_real.json"
SAME_LABELS, ANOTHER_LIGHT, ANOTHER_EXPRESSION, BOTH, ANOTHER_PERSON = (
    "same labels", "another light", "another expression", "another light and expression", "another person")
PAIR_KINDS = (ANOTHER_LIGHT, ANOTHER_EXPRESSION, BOTH, SAME_LABELS, ANOTHER_PERSON)


def pair_kind_masks(identity, expression=None, lighting=None) -> Dict[str, np.ndarray]:
    """Boolean masks over the unordered pairs (np.triu_indices(n, 1) order) for each kind in PAIR_KINDS.
    A missing attribute counts as equal for every pair (its kinds are then empty)."""
    identity = np.asarray(identity).reshape(-1)
    count = len(identity)
    upper = np.triu_indices(count, k=1)

    def same(values):
        if values is None:
            return np.ones(len(upper[0]), bool)
        values = np.asarray(values).reshape(-1)
        if len(values) != count:
            raise ValueError(f"pair_kind_masks: {len(values)} labels for {count} faces")
        return values[upper[0]] == values[upper[1]]

    person, same_expression, same_light = same(identity), same(expression), same(lighting)
    return {ANOTHER_LIGHT: person & same_expression & ~same_light,
            ANOTHER_EXPRESSION: person & ~same_expression & same_light,
            BOTH: person & ~same_expression & ~same_light,
            SAME_LABELS: person & same_expression & same_light,
            ANOTHER_PERSON: ~person}


def real_identity_figures(embeddings, identity, expression=None, lighting=None) -> Dict[str, object]:
    """identity_metrics over every pair, plus per pair kind: pairs, mean 1 - cos and the AUC against
    the different-person pairs (None where a kind has no pairs or there are no different-person pairs)."""
    embeddings = np.asarray(embeddings, np.float64)
    overall = identity_metrics(embeddings, identity)
    similarity = cosine_similarities(embeddings)[np.triu_indices(len(embeddings), k=1)]
    masks = pair_kind_masks(identity, expression, lighting)
    impostor = similarity[masks[ANOTHER_PERSON]]
    kinds = {}
    for kind in PAIR_KINDS:
        scores = similarity[masks[kind]]
        entry = {"pairs": int(len(scores)), "mean_distance": float(np.mean(1.0 - scores)) if len(scores) else None,
                 "auc_vs_another_person": None}
        if kind != ANOTHER_PERSON and len(scores) and len(impostor):
            truth = np.concatenate([np.ones(len(scores)), np.zeros(len(impostor))])
            entry["auc_vs_another_person"] = float(sklearn_metrics.roc_auc_score(
                truth, np.concatenate([scores, impostor])))
        kinds[kind] = entry
    return {"overall": overall, "pair_kinds": kinds}


def degraded_figures(embed, images, embeddings, identity, seed: int = 0) -> Dict[str, object]:
    """How far f moves for each face blurred or noised as identity_sensitivity.DEGRADATIONS does (a generator's
    slight blur must not read as another person), and the share of those copies f accepts as the same person at
    the threshold that accepts 1% of the pairs of two held-out people."""
    from legan_tf.data.degradations import gaussian_blur
    from legan_tf.evaluation.identity_sensitivity import DEGRADATIONS

    threshold = same_person_threshold(embeddings, identity)
    rng = np.random.default_rng([seed, 4])
    result: Dict[str, object] = {"same_person_threshold": threshold}
    anchors = unit_rows(embeddings)
    for name, sigma, noise in DEGRADATIONS:
        copies = np.asarray(gaussian_blur(images, np.full(len(images), sigma, np.float32)))
        copies = np.clip(copies + noise * rng.standard_normal(copies.shape), -1.0, 1.0).astype(np.float32)
        distance = 1.0 - np.sum(anchors * unit_rows(embed(copies)), axis=1)
        result[name] = {"sigma": sigma, "noise": noise, "mean_distance": float(np.mean(distance)),
                        "same_person": None if threshold is None else float(np.mean(distance < threshold))}
    return result


def format_real(figures: Dict[str, object]) -> str:
    overall = figures["overall"]
    lines = [f"{int(overall['count'])} faces of {int(overall['identities'])} people: verification AUC "
             f"{overall.get('verification_auc', float('nan')):.4f}, "
             f"TAR@FAR1% {overall.get('tar_at_far_1pct', float('nan')):.3f}, "
             f"rank-1 {overall.get('rank1_accuracy', float('nan')):.3f}",
             f"{'pairs of':<32}{'count':>10}{'mean 1-cos':>12}{'AUC vs another person':>24}"]
    for kind, entry in figures["pair_kinds"].items():
        distance = "-" if entry["mean_distance"] is None else f"{entry['mean_distance']:.4f}"
        auc = "-" if entry["auc_vs_another_person"] is None else f"{entry['auc_vs_another_person']:.4f}"
        lines.append(f"{kind:<32}{entry['pairs']:>10}{distance:>12}{auc:>24}")
    degraded = figures.get("degraded")
    if degraded:
        threshold = degraded["same_person_threshold"]
        lines.append(f"the same face degraded (same person: 1 - cos < "
                     f"{'n/a' if threshold is None else f'{threshold:.4f}'}, 1% of the pairs of two people):")
        for name, entry in degraded.items():
            if name != "same_person_threshold":
                same = "n/a" if entry["same_person"] is None else f"{entry['same_person']:.1%}"
                lines.append(f"  {name} (sigma {entry['sigma']} px, noise {entry['noise']}): mean 1 - cos "
                             f"{entry['mean_distance']:.4f}, read as the same person {same}")
    return "\n".join(lines)


def read_identity_faces(data_path: str, split: str, image_size: int, num_faces: int, seed: int,
                        batch_size: int = 64):
    """(images in [-1, 1], identity, expression or None, lighting or None, shard label names) of a seeded
    choice of at most `num_faces` faces (all when 0) of the stored `split` of prepared shards."""
    from legan_tf.data import DataConfig, open_source
    from legan_tf.data.shard_format import METADATA_FILE, read_metadata
    from legan_tf.evaluation.real_pass import read_real_faces

    where = f"--data_path={data_path}"
    if not os.path.isfile(os.path.join(data_path, METADATA_FILE)):
        raise ConfigError(f"{where}: not prepared shards (no {METADATA_FILE}); run scripts/prepare_data.py first.")
    metadata = read_metadata(data_path)
    label_names = metadata["label_names"]
    if split not in metadata["splits"]:
        raise ConfigError(f"{where}: no stored {split!r} split (stored: {', '.join(metadata['splits'])}).")
    config = DataConfig("tfrecord", data_path, image_size=image_size,
                        expression_names=tuple(label_names.get("expression", ())),
                        lighting_names=tuple(label_names.get("lighting", ())))
    source = open_source(config).stored_split(split)
    if len(source.identities()) < 2:
        raise ConfigError(f"{where}: the {split} split carries {len(source.identities())} identities; verification "
                          "needs faces of at least two people with subjects (prepare_data's subject/group column).")
    images, labels, _ = read_real_faces(source, ("expression", "lighting"), num_faces, seed, batch_size,
                                        extra=("identity",))
    return images, labels["identity"], labels.get("expression"), labels.get("lighting"), label_names


def evaluate_real_identity(model_path: str, data_path: str, split: str = "test", num_faces: int = 2000,
                           seed: int = 0, output_dir: Optional[str] = None,
                           command: Optional[str] = None) -> Dict[str, object]:
    """Embeds held-out real faces with f and writes identity_evaluation_real.json (the figures above) into
    `output_dir` (default: the model's folder); returns its content plus "output_path"."""
    from legan_tf.evaluation.identity_report import EMBED_BATCH
    from legan_tf.models.lightcnn import load_identity_embedder  # TensorFlow

    if not os.path.exists(model_path):
        raise ConfigError(f"--model={model_path}: no such file.")
    embedder = load_identity_embedder(model_path)
    images, identity, expression, lighting, label_names = read_identity_faces(
        data_path, split, int(embedder.input_size), num_faces, seed)

    def embed_all(faces):
        return np.concatenate([np.asarray(embedder(faces[i:i + EMBED_BATCH]))
                               for i in range(0, len(faces), EMBED_BATCH)])

    embeddings = embed_all(images)
    figures = real_identity_figures(embeddings, identity, expression, lighting)
    figures["degraded"] = degraded_figures(embed_all, images, embeddings, identity, seed)
    report = {"model": model_path, "data_path": os.path.abspath(data_path), "split": split,
              "num_faces": int(len(images)), "seed": seed, "label_names": label_names,
              "command": command, **figures}
    output_dir = output_dir or os.path.dirname(os.path.abspath(model_path))
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, REPORT_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    return {**report, "output_path": path}


# --- f as a judge of edits --------------------------------------------------------------------------

def unit_rows(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def same_person_threshold(embeddings, people: Optional[np.ndarray]) -> Optional[float]:
    """The 1 - cos distance below which f accepts exactly the closest 1% of the pairs of two different people
    among `embeddings` (people: their subject ids; None: every face is its own person). None with fewer
    than 100 such pairs, where 1% is not one pair."""
    unit = unit_rows(embeddings)
    people = np.arange(len(unit)) if people is None else np.asarray(people).reshape(-1)
    upper = np.triu_indices(len(unit), k=1)
    different = people[upper[0]] != people[upper[1]]
    # One (N, N) product, not (pairs, D) copies: 2,000 faces make 2 million pairs.
    distances = np.sort((1.0 - unit @ unit.T)[upper][different])
    accepted = int(np.floor(TARGET_FAR * len(distances)))
    if accepted < 1:
        return None
    # Accept d < the (accepted + 1)-th smallest different-person distance: exactly `accepted` impostor pairs
    # pass (fewer on ties), as statistics.identity_metrics sets its TAR threshold.
    return float(distances[accepted])


def load_identity_network(path: Optional[str]):
    """(embed, record) of --identity_model (an identity_model.keras or a LightCNN-29 v2 .npz), or (None, None)."""
    if not path:
        return None, None
    if not os.path.isfile(path):
        raise ConfigError(f"--identity_model={path}: no such file (an identity_model.keras from --task=identity).")
    from legan_tf.digests import file_sha256
    from legan_tf.models.lightcnn import load_identity_embedder

    embedder = load_identity_embedder(path)

    def embed(images: np.ndarray) -> np.ndarray:
        return np.asarray(embedder(np.asarray(images, np.float32)))

    return embed, {"path": os.path.abspath(path), "sha256": file_sha256(path), "input_size": int(embedder.input_size)}


class EditIdentity:
    """Collects f's distance 1 - cos(f(x), f(G(x, t))) for every face x and target t while the edits are made
    (`observe`), then the figures (`figures`): the mean distance over the edits, the share f accepts as x's
    person at the 1%-false-accept threshold of the unedited faces' pairs of two people, and the same for the
    identity edit G(x, s). Collectors of one set of faces (one per edited attribute) may share `inputs`, the
    embeddings of the unedited faces by batch start, so that each face is embedded once."""

    def __init__(self, embed, count: int, num_classes: int, inputs: Optional[Dict[int, np.ndarray]] = None):
        self.embed = embed
        self.distance = np.zeros((count, num_classes))
        self.inputs: Dict[int, np.ndarray] = {} if inputs is None else inputs

    def observe(self, rows: slice, x: np.ndarray, target: int, edited: np.ndarray) -> None:
        if rows.start not in self.inputs:
            self.inputs[rows.start] = unit_rows(self.embed(x))
        self.distance[rows, target] = 1.0 - np.sum(self.inputs[rows.start] * unit_rows(self.embed(edited)), axis=1)

    def figures(self, source, people: Optional[np.ndarray] = None) -> Dict[str, object]:
        source = np.asarray(source, np.int64)
        faces = np.arange(len(source))
        pairs = np.arange(self.distance.shape[1])[None, :] != source[:, None]
        threshold = same_person_threshold(np.concatenate([self.inputs[key] for key in sorted(self.inputs)]), people)
        identity_edit = self.distance[faces, source]
        edits = self.distance[pairs]

        def share_below(values):
            return None if threshold is None or not len(values) else float(np.mean(values < threshold))

        return {"distance": float(np.mean(edits)) if len(edits) else None, "same_person": share_below(edits),
                "identity_edit_distance": float(np.mean(identity_edit)),
                "identity_edit_same_person": share_below(identity_edit), "threshold": threshold,
                "people": "the faces' subjects" if people is not None else "each face its own person"}


def edit_identity_section(entry: Optional[Dict[str, object]]) -> list:
    """Markdown lines of f's figures on a run's edits (nothing without --identity_model)."""
    if not entry:
        return []
    figures = entry["figures"]

    def number(value, percent=False):
        return "n/a" if value is None else (f"{value:.1%}" if percent else f"{value:.3f}")

    return ["## Identity: an identity network's reading of the edits", "",
            f"f: `{entry['path']}` (sha256 {entry['sha256'][:12]}...). Same-person threshold: 1 - cos < "
            f"{number(figures['threshold'])}, which accepts 1% of the pairs of two unedited faces "
            f"({figures['people']}).", "",
            "| edits | f: mean 1 - cos to the face | read as the same person by f |", "|---|---:|---:|",
            f"| G(x, t), t != s | {number(figures['distance'])} | {number(figures['same_person'], True)} |",
            f"| G(x, s) (identity edit) | {number(figures['identity_edit_distance'])} | "
            f"{number(figures['identity_edit_same_person'], True)} |", ""]
