#!/usr/bin/env python
"""How often an expression judge reads the target on faces only moved along the target's mean landmark move.

  python studies/template_warp/run.py --train_manifest=data/fer2013_d/manifest.csv \\
      --heldout_manifest=data/fer2013_privtest_relit/manifest.csv --judge=mini_xception \\
      --gains=1,3 --output_dir=runs/template-warp-fer2013

No generator is involved: it measures what a smooth move of a photo's own pixels (what LEGAN's
`--legan_g_expression=warp` may do) can carry of an expression for this judge, and draws it. Face-mesh
landmarks of `--per_class` training faces of every expression give each expression's mean shape
(generalised Procrustes); `--num_faces` held-out faces (rows of `--lighting` where the manifest has a
lighting column, e.g. the relit faces' own light) are each moved toward every other expression by
`gain x` the difference of the two mean shapes (a thin-plate spline through the landmarks, the border held
still) and read by the judge. Per gain: the share read as the target, the baseline (the unedited face read
as the target), the judge's accuracy on the unedited faces, by target, and the mean move over the face's
central half. Faces the face mesh cannot fit are skipped and counted.

Writes to --output_dir: template_warp.json, shapes.npz (the mean shapes), grid_gain<gain>.png (--grid_faces
held-out faces x every expression; the face's own column is the photo).
"""

import json
import os
import sys
import time

import numpy as np
from absl import app, flags

# The repository root (two folders up), so that `studies` imports when this runs as a file.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from legan_tf.errors import ConfigError  # noqa: E402
from studies.template_warp import template_warp  # noqa: E402

flags.DEFINE_string("train_manifest", None, "CSV with image and expression columns (paths relative to its folder): "
                    "the faces whose landmarks give each expression's mean shape, e.g. make_depth's manifest.")
flags.DEFINE_string("heldout_manifest", None, "CSV of the faces to move (image, expression; lighting optional).")
flags.DEFINE_string("lighting", "original", "Where the held-out manifest has a lighting column: the rows of this "
                    "lighting only.")
flags.DEFINE_string("judge", "mini_xception", "The expression judge: a name --other_judges knows (mini_xception) or "
                    "a classifier file (legan_tf/evaluation/other_judges.py).")
flags.DEFINE_integer("per_class", 400, "Training faces per expression (fewer where a class has fewer).")
flags.DEFINE_integer("num_faces", 250, "Held-out faces to move, a seeded draw.")
flags.DEFINE_list("gains", ["1", "3"], "Multiples of the mean move to apply.")
flags.DEFINE_integer("image_size", 64, "Faces are read at this size (square).")
flags.DEFINE_integer("grid_faces", 6, "Held-out faces in each grid.")
flags.DEFINE_integer("seed", 0, "Seed of the draws of training and held-out faces.")
flags.DEFINE_string("output_dir", None, "Where to write the figures and grids.")
FLAGS = flags.FLAGS

# The black border around the crop before the mesh is fitted (make_depth's as_given framing), as a share of the
# side: a face cut by a tight crop still has every landmark inside the picture the mesh model sees.
PAD = 0.5


def _read(path: str, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(image)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable image ({error}).") from None


def _landmarks(mesh, image: np.ndarray):
    """The 468 landmarks (x, y) in the image's pixels, or None where the mesh does not fit."""
    from legan_tf.photos.face_mesh import FaceFault

    border = int(round(PAD * image.shape[0]))
    try:
        found = mesh(np.pad(image, ((border, border), (border, border), (0, 0))))
    except FaceFault:
        return None
    return found.points[:, :2] - border


def _progress(label: str, done: int, total: int, started: float):
    print(f"{label}: {done}/{total} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)


def _fit(rows, mesh, size, label):
    """(images, landmarks, rows) of the rows the mesh fits, and the skipped rows' count."""
    images, points, kept, started = [], [], [], time.time()
    for index, row in enumerate(rows, 1):
        image = _read(row["path"], size)
        found = _landmarks(mesh, image)
        if found is not None:
            images.append(image)
            points.append(found)
            kept.append(row)
        if index % 100 == 0 or index == len(rows):
            _progress(f"{label} faces fitted", index, len(rows), started)
    return np.array(images), np.array(points), kept, len(rows) - len(kept)


def _grid(originals, sources, edits_by_face, path):
    """A row per face: its move toward every expression in order, the photo itself in its own column."""
    from PIL import Image

    rows = []
    for face, source, edits in zip(originals, sources, edits_by_face):
        cells = [face if target == source else edits[target] for target in range(len(edits) + 1)]
        rows.append(np.concatenate(cells, axis=1))
    picture = np.clip(np.concatenate(rows, axis=0), 0, 255).astype(np.uint8)
    Image.fromarray(picture).save(path)


def run(names, train_rows, heldout_rows, judge, gains, size, per_class, num_faces, grid_faces, seed, output_dir):
    from legan_tf.photos.face_mesh import FaceMesh

    rng = np.random.default_rng(seed)
    index = {name: k for k, name in enumerate(names)}
    picked = []
    for name in names:
        rows = [row for row in train_rows if row["expression"] == name]
        picked += [rows[i] for i in sorted(rng.choice(len(rows), min(per_class, len(rows)), replace=False))]
    heldout = [heldout_rows[i] for i in sorted(rng.choice(len(heldout_rows), min(num_faces, len(heldout_rows)),
                                                          replace=False))]
    for rows, label in ((picked, "training"), (heldout, "held-out")):  # every image, before any is read
        missing = [row["path"] for row in rows if not os.path.isfile(row["path"])]
        if missing:
            raise ConfigError(f"{missing[0]}: no such image (named in the {label} manifest; {len(missing)} missing).")
    mesh = FaceMesh(min_face_size=0)
    _, train_points, train_kept, train_skipped = _fit(picked, mesh, size, "training")
    labels = np.array([index[row["expression"]] for row in train_kept])
    try:
        reference, means = template_warp.class_mean_shapes(train_points, labels, len(names))
    except ValueError as error:
        raise ConfigError(f"--train_manifest: {error} (the face mesh fitted {len(train_kept)} of "
                          f"{len(picked)}).") from None
    images, points, kept, skipped = _fit(heldout, mesh, size, "held-out")
    if not len(kept):
        raise ConfigError(f"--heldout_manifest: the face mesh fitted none of the {len(heldout)} faces drawn.")
    np.savez(os.path.join(output_dir, "shapes.npz"), reference=reference, means=means, names=np.array(names))
    sources = np.array([index[row["expression"]] for row in kept])
    own = judge.read(images.astype(np.float32) / 127.5 - 1.0)
    report = {"expressions": list(names), "judge": judge.record, "faces": len(kept), "skipped": skipped,
              "training_faces": len(train_kept), "training_skipped": train_skipped,
              "judge_accuracy": float(np.mean(own == sources)), "gains": {}}
    for gain in gains:
        edits, targets, lengths, by_face, started = [], [], [], [], time.time()
        for face in range(len(kept)):
            mine = {}
            for target in range(len(names)):
                if target == sources[face]:
                    continue
                move = template_warp.template_displacement(points[face], reference, means, sources[face], target, gain)
                field = template_warp.dense_field(points[face], move, size)
                mine[target] = template_warp.warp_image(images[face], field)
                edits.append(mine[target])
                targets.append(target)
                lengths.append(template_warp.move_lengths(field))
            if face < grid_faces:
                by_face.append(mine)
            if (face + 1) % 50 == 0 or face + 1 == len(kept):
                _progress(f"gain {gain:g}: faces moved", face + 1, len(kept), started)
        targets = np.array(targets)
        known = np.isin(targets, [generator_id for generator_id, _ in judge.pairs])
        read = judge.read(np.array(edits)[known] / 127.5 - 1.0)
        baseline = np.repeat(own, len(names) - 1)[known] == targets[known]
        targets, lengths = targets[known], np.array(lengths)[known]
        report["gains"][f"{gain:g}"] = {
            "target_rate": float(np.mean(read == targets)), "baseline": float(np.mean(baseline)),
            "by_target": {names[t]: float(np.mean(read[targets == t] == t)) for t in range(len(names))
                          if np.any(targets == t)},
            "mean_move_px": float(np.mean(lengths)), "pairs": int(len(targets))}
        _grid(images[:grid_faces], sources[:grid_faces], by_face, os.path.join(output_dir, f"grid_gain{gain:g}.png"))
    return report


def main(argv):
    del argv
    try:
        if not FLAGS.output_dir:
            raise ConfigError("--output_dir is required.")
        gains = template_warp.parse_gains(FLAGS.gains)
        for flag in ("per_class", "num_faces", "image_size"):
            if getattr(FLAGS, flag) < 1:
                raise ConfigError(f"--{flag} must be at least 1.")
        train_rows = template_warp.read_manifest(FLAGS.train_manifest, "train_manifest")
        heldout_rows = template_warp.read_manifest(FLAGS.heldout_manifest, "heldout_manifest")
        names, heldout_rows = template_warp.choose_rows(train_rows, heldout_rows, FLAGS.lighting)
        from legan_tf.evaluation import other_judges

        judge = other_judges.load(FLAGS.judge, names)
        known = {names[generator_id] for generator_id, _ in judge.pairs}
        heldout_rows = [row for row in heldout_rows if row["expression"] in known]
        if set(names) - known:
            print(f"the judge has no class for {sorted(set(names) - known)}: those faces and the moves toward them "
                  "are left out of the figures", file=sys.stderr)
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        report = run(names, train_rows, heldout_rows, judge, gains, FLAGS.image_size, FLAGS.per_class,
                     FLAGS.num_faces, FLAGS.grid_faces, FLAGS.seed, FLAGS.output_dir)
    except ConfigError as error:
        print(f"template_warp: {error}", file=sys.stderr)
        sys.exit(1)
    path = os.path.join(FLAGS.output_dir, "template_warp.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(f"{report['faces']} held-out faces ({report['skipped']} without a face mesh), judge accuracy "
          f"{100 * report['judge_accuracy']:.1f}%")
    for gain, entry in report["gains"].items():
        by_target = ", ".join(f"{name} {100 * value:.0f}%" for name, value in entry["by_target"].items())
        print(f"gain {gain}: read as the target {100 * entry['target_rate']:.1f}% (baseline "
              f"{100 * entry['baseline']:.1f}%), mean move {entry['mean_move_px']:.2f} px; {by_target}")
    print(f"Wrote {path}")


if __name__ == "__main__":
    app.run(main)
