"""FID and KID of real-face edits: which faces the edits are compared with, and how the figures read.

One edit per held-out face, G(x, t) to a seeded random target t != s, is compared by the FID network's
features with real faces in two ways:

  unpaired (fid, kid)    against the unedited faces of ANOTHER stored split (the reference: for FER2013
                         the validation split, PublicTest), faces the generator never edited. Beside it
                         the floor (fid_floor, kid_floor): the edited faces themselves, unedited, against
                         the same reference, i.e. what a generator that returns its input scores. The
                         edits' excess over the floor is what the generator added.
  paired (fid_paired,    against the SAME faces unedited. Copying the input scores 0 there, below what
  kid_paired)            two independent sets of real faces score, so a generator that changes less
                         scores better whether or not what it changes looks real. Kept for comparisons
                         with earlier reports; read the unpaired figures.

FID is biased upward when either set has no more faces than the 2048 features (rank-deficient
covariances): the table then prints no FID (the JSON keeps it, comparable only at equal counts); KID is
unbiased. Only FIDs over the same numbers of faces compare.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional

import numpy as np

# The choice of the reference split lives with the readers of real faces (real_pass), which this module uses.
from legan_tf.evaluation.real_pass import AUTO, NONE, reference_split  # noqa: E402,F401  (re-exported)


def fid_targets_for(source: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """One seeded random target t != s per face: the edits FID and KID are computed over."""
    shift = np.random.default_rng([seed, 36]).integers(1, num_classes, size=len(source))
    return (np.asarray(source, np.int64) + shift) % num_classes


def _pair_figures(real: np.ndarray, other: np.ndarray) -> Dict[str, object]:
    from legan_tf.evaluation.metrics.fid import frechet_distance
    from legan_tf.evaluation.metrics.kid import kernel_inception_distance

    real, other = np.asarray(real, np.float64), np.asarray(other, np.float64)
    notes: List[str] = []
    fid = frechet_distance(real.mean(0), np.cov(real, rowvar=False), other.mean(0), np.cov(other, rowvar=False),
                           notes=notes)
    kid, kid_error = kernel_inception_distance(real, other)
    return {"fid": fid, "kid": kid, "kid_error": kid_error, "notes": notes}


def distance_figures(unedited: np.ndarray, edits: np.ndarray, reference: Optional[np.ndarray] = None,
                     reference_name: Optional[str] = None) -> Dict[str, object]:
    """The module docstring's figures from feature rows: `unedited` and `edits` row-aligned (one edit per
    face), `reference` the other split's unedited faces (None: paired figures only, and fid/kid are those)."""
    paired = _pair_figures(unedited, edits)
    figures: Dict[str, object] = {
        "fid_paired": paired["fid"], "kid_paired": paired["kid"], "kid_paired_error": paired["kid_error"],
        "fid_faces": int(len(edits)), "fid_feature_dim": int(np.shape(edits)[1]),
        "fid_notes": list(paired["notes"])}
    if reference is None:
        figures.update(fid=paired["fid"], kid=paired["kid"], kid_error=paired["kid_error"], fid_protocol="paired",
                       fid_reference_faces=int(len(unedited)), fid_reference="the same faces, unedited")
        return figures
    unpaired, floor = _pair_figures(reference, edits), _pair_figures(reference, unedited)
    figures.update(fid=unpaired["fid"], kid=unpaired["kid"], kid_error=unpaired["kid_error"],
                   fid_floor=floor["fid"], kid_floor=floor["kid"], kid_floor_error=floor["kid_error"],
                   fid_protocol="unpaired", fid_reference_faces=int(len(reference)),
                   fid_reference=f"the {reference_name or 'reference'} split's unedited faces")
    figures["fid_notes"] += unpaired["notes"] + floor["notes"]
    return figures


def _too_few(overall: Mapping[str, object], paired: bool = False) -> Optional[int]:
    """The smaller face count behind an FID (the headline one, or with `paired` the edits against the same
    faces unedited) when it is not above the feature dimension, else None."""
    sides = [overall["fid_faces"]] if paired else [overall["fid_faces"], overall.get("fid_reference_faces", 0)]
    fewest = min(count for count in sides if count)
    return fewest if fewest <= overall["fid_feature_dim"] else None


def fid_text(overall: Mapping[str, object], key: str = "fid", paired: bool = False) -> str:
    """An FID as printed: a number only from more faces than features on both sides (below that the
    covariances are rank-deficient and the number means little; the JSON keeps it)."""
    fewest = _too_few(overall, paired)
    if fewest is not None:
        return (f"not given: {fewest} faces, not more than its {overall['fid_feature_dim']} features "
                "(use --num_faces above it; read KID)")
    return f"{overall[key]:.2f}"


def _kid_text(overall: Mapping[str, object], key: str) -> str:
    return f"{1000 * overall[key]:.2f} +- {1000 * overall[key + '_error']:.2f}"


def table_rows(overall: Mapping[str, object]) -> List[tuple]:
    """(figure, value) rows of the real-edit report's table; none without FID figures."""
    if overall.get("fid") is None:
        return []
    faces = overall["fid_faces"]
    if overall.get("fid_protocol") == "unpaired":
        against = f"{overall['fid_reference']} ({overall['fid_reference_faces']})"
        return [
            (f"**FID**: {faces} edits (one per face) against {against}, lower is more natural",
             f"**{fid_text(overall)}**"),
            (f"  floor: the {faces} faces unedited against the same (what returning the input scores)",
             fid_text(overall, "fid_floor")),
            ("KID x 1000 (unbiased MMD^2, cubic kernel) +- its standard error; floor",
             f"{_kid_text(overall, 'kid')}; {_kid_text(overall, 'kid_floor')}"),
            ("FID paired: the edits against the same faces unedited (copying the input scores 0)",
             fid_text(overall, "fid_paired", paired=True)),
        ]
    return [
        (f"FID paired: one edit per face against the {faces} faces unedited (copying the input scores 0)",
         fid_text(overall)),
        ("KID x 1000 (unbiased MMD^2, cubic kernel) +- its standard error", _kid_text(overall, "kid")),
    ]


def cautions(overall: Mapping[str, object]) -> List[str]:
    """What makes the FID figures hard to read, in words (none when nothing does)."""
    if overall.get("fid") is None:
        return []
    notes = []
    fewest = _too_few(overall)
    if fewest is not None:
        notes.append(f"FID over {fewest} faces, not more than its {overall['fid_feature_dim']} features: the "
                     "covariances are rank-deficient and FID is biased upward, so the table gives no FID (the JSON "
                     "keeps it, comparable only at the same numbers of faces); KID is unbiased")
    if overall.get("fid_protocol") == "paired":
        notes.append("FID and KID are paired (the edits against the same faces unedited): copying the input scores "
                     "0, so they favour generators that change less; pass --fid_reference_split=<another stored "
                     "split> for the unpaired figures")
    notes += [f"FID: {note}" for note in overall.get("fid_notes", [])]
    return notes


def reference_features(source, features, batch_size: int, seed: int, progress: bool = False,
                       num_faces: int = 0) -> np.ndarray:
    """The feature rows of the faces of `source` (a stored split), unedited: every face, or with `num_faces` a
    seeded uniform choice of that many."""
    import sys

    from tqdm import tqdm

    from legan_tf.evaluation.real_pass import read_real_faces

    images, _, _ = read_real_faces(source, [], num_faces, seed, batch_size)
    rows = []
    for start in tqdm(range(0, len(images), batch_size), desc="FID reference faces", unit="batch",
                      disable=not progress, file=sys.stderr):
        rows.append(np.asarray(features(images[start:start + batch_size]), np.float32))
    return np.concatenate(rows)
