"""A judge's agreement with itself across a face's copies in the data: judge_joint_edits.py's kept_by_data.

Relit shards hold each photo under every light (relight_faces.py), and CK+48's, grouped by person, the same
person with other expressions: images of a face's subject that differ from it in one attribute only. What a
judge of the OTHER attribute reads on those copies, against what it reads on the face, is the kept share an
edit that reproduced the data exactly would score: the ceiling of joint_edits' disentanglement figures for
that judge (one that changes nothing keeps everything, so a kept share means most beside this one).
copies_grid draws those copies for a person to look at.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm

from legan_tf.evaluation.real_edits import HIT, MISS, NONE, OWN
from legan_tf.evaluation.real_edits import _framed as _framed_cells

EXPRESSION, LIGHTING = "expression", "lighting"
ATTRIBUTES = (EXPRESSION, LIGHTING)


def _framed(images: np.ndarray, colours: Sequence[tuple]) -> np.ndarray:
    """[-1, 1] images as real_edits' framed grid cells."""
    from legan_tf import visualize

    return _framed_cells(visualize.to_uint8(images), colours)


@dataclasses.dataclass
class SplitReadings:
    """Every judge's reading of every unedited face of a split (file order), with the faces' labels and subject
    ids: what the kept_by_data figures compare."""
    reads: Dict[str, np.ndarray]      # judge -> (N,)
    labels: Dict[str, np.ndarray]     # attribute -> (N,)
    subjects: np.ndarray              # (N,)


def read_split(source, judges: Sequence, batch_size: int = 64, progress: bool = False
               ) -> Optional[SplitReadings]:
    """Reads every face of `source` (a stored split) once with every judge; None when the records carry no
    subject ids (nothing to pair)."""
    reads: Dict[str, List[np.ndarray]] = {judge.name: [] for judge in judges}
    labels: Dict[str, List[np.ndarray]] = {name: [] for name in ATTRIBUTES}
    subjects: List[np.ndarray] = []
    bar = tqdm(total=source.num_examples, desc="judges on the split", unit="face", disable=not progress,
               file=sys.stderr)
    for batch in source.dataset(batch_size, training=False, repeat=False):
        if "identity" not in batch:
            bar.close()
            return None
        images = batch["image"].numpy().astype(np.float32)
        for judge in judges:
            reads[judge.name].append(np.asarray(judge.read(images), np.int64))
        for name in ATTRIBUTES:
            labels[name].append(batch[name].numpy().astype(np.int64))
        subjects.append(batch["identity"].numpy().astype(np.int64))
        bar.update(len(images))
    bar.close()
    if not subjects:
        return None
    return SplitReadings({name: np.concatenate(parts) for name, parts in reads.items()},
                         {name: np.concatenate(parts) for name, parts in labels.items()}, np.concatenate(subjects))


def copy_agreement(split: SplitReadings, chosen: np.ndarray, judge, edited: str, classes: int
                   ) -> Dict[str, object]:
    """The kept share that reproducing the data would score: for each chosen face i (rows of the split) and each
    target t of `edited` other than its own, the images of the split with i's subject, `edited` = t and i's own
    value of the judge's attribute (relit shards: the same photo under light t) stand for a perfect edit; the
    judge's reading of each is compared with its reading of i. A pair's share is averaged over its copies, the
    figure over the pairs that have one (per_target: the same by target id). Faces whose own class of the
    judge's attribute it does not know are left out, as in summarise."""
    other = judge.attribute
    groups: Dict[tuple, List[int]] = {}
    for index, key in enumerate(zip(split.subjects.tolist(), split.labels[edited].tolist(),
                                    split.labels[other].tolist())):
        groups.setdefault(key, []).append(index)
    reads = split.reads[judge.name]
    known = set(range(int(split.labels[other].max()) + 1)) if judge.known is None else set(judge.known)
    shares, pairs, by_target = [], 0, [[] for _ in range(classes)]
    for i in np.asarray(chosen, np.int64).tolist():
        subject, own, value = int(split.subjects[i]), int(split.labels[edited][i]), int(split.labels[other][i])
        if value not in known:
            continue
        for target in range(classes):
            if target == own:
                continue
            pairs += 1
            copies = groups.get((subject, target, value))
            if copies:
                shares.append(float(np.mean(reads[copies] == reads[i])))
                by_target[target].append(shares[-1])
    return {"kept": float(np.mean(shares)) if shares else None, "pairs_with_copy": len(shares), "pairs": pairs,
            "per_target": [float(np.mean(part)) if part else None for part in by_target]}


def data_agreement(split: SplitReadings, chosen: np.ndarray, judges: Sequence,
                   sizes: Mapping[str, int]) -> Dict[str, Dict[str, Dict[str, object]]]:
    """edited attribute -> judge of the other attribute -> copy_agreement, where the split has any copy."""
    result: Dict[str, Dict[str, Dict[str, object]]] = {}
    for edited in ATTRIBUTES:
        for judge in judges:
            if judge.attribute != edited:
                figures = copy_agreement(split, chosen, judge, edited, sizes[edited])
                if figures["pairs_with_copy"]:
                    result.setdefault(edited, {})[judge.name] = figures
    return result


def copies_grid(source, split: SplitReadings, rows: Sequence[int], judge: str,
                names: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Faces (rows: split indices) x their copies under every lighting (the first image of the subject with the
    face's expression under it; under the face's own lighting, the face itself); frames: grey for the face's
    own lighting, green where `judge` reads the copy's expression as it reads the face's, red where not; an
    empty cell where the split has no copy."""
    from legan_tf.visualize import row_labelled_mosaic

    wanted = {(int(split.subjects[row]), int(split.labels[EXPRESSION][row])): place for place, row in enumerate(rows)}
    places = {int(row): place for place, row in enumerate(rows)}
    found: Dict[tuple, tuple] = {}
    index = 0
    for batch in source.dataset(64, training=False, repeat=False):
        images = batch["image"].numpy().astype(np.float32)
        for offset in range(len(images)):
            key = (int(split.subjects[index]), int(split.labels[EXPRESSION][index]))
            cell = (wanted.get(key), int(split.labels[LIGHTING][index]))
            if index in places:
                found[(places[index], cell[1])] = (index, images[offset])
            elif cell[0] is not None and cell not in found:
                found[cell] = (index, images[offset])
            index += 1
    reads = split.reads[judge]
    blank = np.zeros_like(next(iter(found.values()))[1])
    columns = []
    for light in range(len(names[LIGHTING])):
        cells, colours = [], []
        for place, row in enumerate(rows):
            copy = found.get((place, light))
            cells.append(copy[1] if copy else blank)
            colours.append(NONE if copy is None else OWN if light == split.labels[LIGHTING][row]
                           else HIT if reads[copy[0]] == reads[row] else MISS)
        columns.append(_framed(np.stack(cells), colours))
    labels = [f"{names[EXPRESSION][split.labels[EXPRESSION][row]]}\nread: {names[EXPRESSION][reads[row]]}"
              for row in rows]
    return row_labelled_mosaic(columns, list(names[LIGHTING]), labels)
