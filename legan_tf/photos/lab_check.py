"""The photo pipeline's depth against the face lab's exact depth.

Face-lab faces are rendered (RGB on black with their exact depth), the face mesh is fitted to the
RGB as to any photo, and its dense depth is drawn in the rendered image's own frame (no crop, so
both maps share pixels; the crop is only a resampling of the same surface) in the same units as the
lab's (legan_tf.geometry: both relative to the image width). Per face, over the pixels both maps
call face, the mesh depth is aligned to the exact one by least squares (exact ~ a * mesh + b), and
the mean absolute error is reported in depth units and as a fraction of the face's exact depth range
(max - min over those pixels), beside a baseline: the MAE of a flat map (the best constant) on the
same pixels. `a` is the unit check: 1 when the mesh's z has the lab's scale.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import numpy as np

from legan_tf.photos import depth_maps
from legan_tf.photos.face_mesh import FaceFault, FaceMesh


@dataclasses.dataclass
class FaceCheck:
    identity: int
    expression: int
    lighting: int
    found: bool
    fault: str = ""
    mae: float = float("nan")            # depth units, after the scale/offset fit
    relative_mae: float = float("nan")   # mae / the exact depth range over the compared pixels
    scale: float = float("nan")          # a in exact ~ a * mesh + b
    coverage: float = float("nan")       # share of the lab's face pixels the mesh covers
    spill: float = float("nan")          # share of the mesh's face pixels on the lab's background
    flat_mae: float = float("nan")       # baseline: the MAE of a flat map (the best offset alone) on those pixels


def compare_depth(mesh_depth: np.ndarray, exact_depth: np.ndarray) -> dict:
    """Least-squares scale/offset fit of mesh_depth to exact_depth over the pixels both call face."""
    common = (mesh_depth > 0) & (exact_depth > 0)
    x, y = mesh_depth[common].astype(np.float64), exact_depth[common].astype(np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    (scale, offset), *_ = np.linalg.lstsq(design, y, rcond=None)
    error = np.abs(scale * x + offset - y)
    span = y.max() - y.min()
    return {"mae": float(error.mean()), "relative_mae": float(error.mean() / span), "scale": float(scale),
            "flat_mae": float(np.abs(y - y.mean()).mean()),
            "offset": float(offset), "coverage": float(common.sum() / max(1, (exact_depth > 0).sum())),
            "spill": float(((mesh_depth > 0) & (exact_depth == 0)).sum() / max(1, (mesh_depth > 0).sum()))}


def check_faces(num_faces: int, image_size: int = 128, expression_set: str = "affectnet",
                face_mesh: Optional[FaceMesh] = None, seed: int = 0) -> List[FaceCheck]:
    """Checks `num_faces` lab faces: identity i, expression i mod count, lighting 7 i mod count."""
    from legan_tf.data.synthetic.render import FaceLab

    lab = FaceLab(image_size=image_size, expression_set=expression_set, seed=seed)
    face_mesh = face_mesh or FaceMesh(min_face_size=0)
    identities = np.arange(num_faces)
    expressions = identities % lab.num_expressions
    lightings = (identities * 7) % lab.num_lightings
    rendered = lab.render(identities, expressions, lightings)
    rgb = np.round(rendered["rgb"] * 255).astype(np.uint8)
    results = []
    for index in range(num_faces):
        check = FaceCheck(int(identities[index]), int(expressions[index]), int(lightings[index]), found=False)
        try:
            mesh = face_mesh(rgb[index])
        except FaceFault as fault:
            check.fault = str(fault)
            results.append(check)
            continue
        mesh_depth, _ = depth_maps.depth_from_mesh(mesh.points, image_size, image_size)
        figures = compare_depth(mesh_depth, rendered["depth"][index])
        check.found = True
        for key in ("mae", "relative_mae", "scale", "coverage", "spill", "flat_mae"):
            setattr(check, key, figures[key])
        results.append(check)
    return results


def summarise(results: List[FaceCheck]) -> dict:
    found = [r for r in results if r.found]

    def stats(key):
        values = np.array([getattr(r, key) for r in found])
        if not len(values):
            return None
        return {"mean": float(values.mean()), "min": float(values.min()), "median": float(np.median(values)),
                "p90": float(np.percentile(values, 90)), "max": float(values.max())}

    return {"faces": len(results), "found": len(found),
            "faults": sorted({r.fault for r in results if not r.found}),
            **{key: stats(key) for key in ("mae", "relative_mae", "scale", "coverage", "spill", "flat_mae")}}


def report(summary: dict) -> str:
    lines = [f"face lab check: the face mesh found {summary['found']} of {summary['faces']} faces"]
    for key, label in (("mae", "MAE (depth units)"), ("flat_mae", "baseline: MAE of a flat map"),
                       ("relative_mae", "MAE / face depth range"),
                       ("scale", "fitted scale a"), ("coverage", "lab face pixels covered"),
                       ("spill", "mesh pixels on lab background")):
        if summary[key]:
            s = summary[key]
            lines.append(f"  {label}: mean {s['mean']:.4f}, min {s['min']:.4f}, median {s['median']:.4f}, "
                         f"90th percentile {s['p90']:.4f}, max {s['max']:.4f}")
    for fault in summary["faults"]:
        lines.append(f"  not found: {fault}")
    return "\n".join(lines)
