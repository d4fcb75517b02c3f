"""Writes the face lab to disk in the layouts of docs/data_formats.md, and draws contact sheets.

OUT/multipie/  images/*.png, masks/*.png, manifest.csv     (2a, Multi-PIE-style manifest)
OUT/quality/   images/*.png, ratings.csv                   (1, naturalness ratings)
OUT/rgbd/      rgb/<expression>/*.png (also a 2b folder-per-class root), depth/<expression>/*.png
               (16-bit), normals/<expression>/*.png, manifest.csv   (3, RGB-depth pairs)
OUT/lab.json   every setting and count
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

from legan_tf.data.synthetic.naturalness import (ARTIFACT_KINDS, KIND_WEIGHTS, RATER_BIASES, RATER_NOISE,
                                                 make_naturalness_set)
from legan_tf.data.synthetic.render import FaceLab

PARTS = ("multipie", "quality", "rgbd")
SETTINGS_FILE = "lab.json"
# Images rendered (or degraded) together, in pixels: large batches, bounded memory at 256 px.
CHUNK_PIXELS = 1 << 22
# Bytes of images queued ahead of the disk; beyond it rendering waits, so memory stays bounded.
MAX_PENDING_BYTES = 1 << 26
# PNG compression level 1: files a little larger, writing several times faster than the default.
PNG_COMPRESSION = 1


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0,1] floats to 8-bit, rounding to nearest."""
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def depth_to_uint16(depth: np.ndarray) -> np.ndarray:
    """Depth in [0,1] to 16 bits; every face pixel stays > 0 because the lab's face depth is >= 0.05."""
    return np.round(np.clip(depth, 0.0, 1.0) * 65535.0).astype(np.uint16)


def normals_to_uint8(normals: np.ndarray) -> np.ndarray:
    """Normals in [-1,1] to 8-bit RGB as (n + 1) * 127.5; readers invert it with pixel / 127.5 - 1."""
    return np.round(np.clip((normals + 1.0) * 127.5, 0.0, 255.0)).astype(np.uint8)


class _PngWriter:
    """Saves PNGs on worker threads (zlib releases the GIL) while the next batch renders."""

    def __init__(self, progress: tqdm):
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._pending = deque()  # (future, bytes) in submission order
        self._pending_bytes = 0
        self._progress = progress

    def save(self, path: Path, array: np.ndarray, counts_as_image: bool = True) -> None:
        while self._pending and self._pending_bytes + array.nbytes > MAX_PENDING_BYTES:
            future, size = self._pending.popleft()
            future.result()
            self._pending_bytes -= size
        # A copy, so the queue never keeps a whole rendered batch alive through a view.
        array = np.array(array)
        self._pending.append((self._pool.submit(self._save, path, array, counts_as_image), array.nbytes))
        self._pending_bytes += array.nbytes

    def _save(self, path: Path, array: np.ndarray, counts_as_image: bool) -> None:
        Image.fromarray(array).save(path, compress_level=PNG_COMPRESSION)
        if counts_as_image:
            self._progress.update(1)

    def close(self) -> None:
        for future, _ in self._pending:
            future.result()  # re-raises the first failed save
        self._pool.shutdown()


def _prepare_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"output_dir {output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"output_dir {output_dir} is not empty; pass --overwrite to replace "
                                  "the face lab in it")
        # Only what this writer creates is removed; anything else in the folder is left alone.
        for part in PARTS:
            shutil.rmtree(output_dir / part, ignore_errors=True)
        (output_dir / SETTINGS_FILE).unlink(missing_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)


def _identity_chunks(count: int, images_per_identity: int, image_size: int):
    step = max(1, CHUNK_PIXELS // (images_per_identity * image_size**2))
    for start in range(0, count, step):
        yield np.arange(start, min(count, start + step))


def _pick_lightings(rng: np.random.Generator, num_lightings: int, per_face: int | None) -> np.ndarray:
    if per_face is None or per_face >= num_lightings:
        return np.arange(num_lightings)
    return np.sort(rng.choice(num_lightings, size=per_face, replace=False))


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _write_multipie(root: Path, lab: FaceLab, num_identities: int, lightings_per_face: int | None,
                    seed: int, pngs: _PngWriter) -> int:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng([seed, 1])
    rows = []
    per_identity = lab.num_expressions * min(lightings_per_face or lab.num_lightings, lab.num_lightings)
    for identities in _identity_chunks(num_identities, per_identity, lab.image_size):
        combos = [(i, e, l) for i in identities for e in range(lab.num_expressions)
                  for l in _pick_lightings(rng, lab.num_lightings, lightings_per_face)]
        out = lab.render(*np.array(combos).T)
        rgb, mask = to_uint8(out["rgb"]), to_uint8(out["mask"])
        for index, (identity, expression, lighting) in enumerate(combos):
            name = f"id{identity:04d}_{lab.expression_names[expression]}_l{lighting:02d}.png"
            pngs.save(root / "images" / name, rgb[index])
            pngs.save(root / "masks" / name, mask[index], counts_as_image=False)
            rows.append([f"images/{name}", int(identity), 1, int(lighting), int(expression),
                         f"masks/{name}"])
    _write_csv(root / "manifest.csv", ["image", "subject", "session", "lighting", "expression", "mask"],
               rows)
    return len(rows)


def _write_quality(root: Path, lab: FaceLab, num_identities: int, variants: int, seed: int,
                   pngs: _PngWriter) -> int:
    (root / "images").mkdir(parents=True)
    rows = []
    chunks = _identity_chunks(num_identities, variants, lab.image_size)
    for chunk_index, identities in enumerate(chunks):
        rated = make_naturalness_set(lab, identities, variants, rng_seed=[seed, 2, chunk_index])
        for index in range(len(rated["rgb"])):
            identity = identities[rated["source"][index]]
            name = f"id{identity:04d}_v{index % variants:02d}_{rated['kind'][index]}.png"
            pngs.save(root / "images" / name, to_uint8(rated["rgb"][index]))
            rows.append([f"images/{name}", f"{rated['mean'][index]:.4f}", f"{rated['std'][index]:.4f}",
                         f"id{identity:04d}", rated["kind"][index]])
    _write_csv(root / "ratings.csv", ["image", "mean", "std", "source", "generator"], rows)
    return len(rows)


def _write_rgbd(root: Path, lab: FaceLab, num_identities: int, lightings_per_face: int, seed: int,
                pngs: _PngWriter) -> int:
    for folder in ("rgb", "depth", "normals"):
        for expression in lab.expression_names:
            (root / folder / expression).mkdir(parents=True)
    rng = np.random.default_rng([seed, 3])
    rows = []
    per_identity = lab.num_expressions * min(lightings_per_face, lab.num_lightings)
    for identities in _identity_chunks(num_identities, per_identity, lab.image_size):
        combos = [(i, e, l) for i in identities for e in range(lab.num_expressions)
                  for l in _pick_lightings(rng, lab.num_lightings, lightings_per_face)]
        out = lab.render(*np.array(combos).T)
        rgb, depth = to_uint8(out["rgb"]), depth_to_uint16(out["depth"])
        normals = normals_to_uint8(out["normals"])
        for index, (identity, expression, lighting) in enumerate(combos):
            expression_name = lab.expression_names[expression]
            relative = f"{expression_name}/id{identity:04d}_l{lighting:02d}.png"
            pngs.save(root / "rgb" / relative, rgb[index])
            pngs.save(root / "depth" / relative, depth[index], counts_as_image=False)
            pngs.save(root / "normals" / relative, normals[index], counts_as_image=False)
            rows.append([f"rgb/{relative}", f"depth/{relative}", f"normals/{relative}", expression_name,
                         int(identity)])
    _write_csv(root / "manifest.csv", ["image", "depth", "normals", "expression", "subject"], rows)
    return len(rows)


def write_face_lab(output_dir, *, image_size: int = 64, num_identities: int = 50, seed: int = 0,
                   num_lightings: int = 20, expression_set: str = "multipie",
                   rgbd_expression_set: str = "affectnet", lightings_per_face: int | None = None,
                   rgbd_lightings_per_face: int = 1, naturalness_variants: int = 8,
                   ambient: float = 0.25, overwrite: bool = False, contact_sheet_path=None,
                   progress: bool = True, parts=PARTS) -> dict:
    """Renders and writes the requested parts (default all three) plus lab.json; returns the
    settings and counts written.

    Raises FileExistsError when output_dir is not empty and overwrite is False.
    """
    parts = tuple(parts)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {', '.join(PARTS)}; got {', '.join(parts) or 'none'}")
    if num_identities < 1:
        raise ValueError(f"num_identities must be >= 1, got {num_identities}")
    for name, value in (("lightings_per_face", lightings_per_face),
                        ("rgbd_lightings_per_face", rgbd_lightings_per_face)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    started = time.perf_counter()
    attribute_lab = FaceLab(image_size, expression_set, num_lightings, seed, ambient)
    rgbd_lab = FaceLab(image_size, rgbd_expression_set, num_lightings, seed, ambient)
    output_dir = Path(output_dir)
    _prepare_output_dir(output_dir, overwrite)

    per_face = min(lightings_per_face or num_lightings, num_lightings)
    rgbd_per_face = min(rgbd_lightings_per_face, num_lightings)
    per_identity = {"multipie": attribute_lab.num_expressions * per_face, "quality": naturalness_variants,
                    "rgbd": rgbd_lab.num_expressions * rgbd_per_face}
    planned = num_identities * sum(per_identity[part] for part in parts)
    with tqdm(total=planned, unit="img", desc="face lab", disable=not progress) as bar:
        pngs = _PngWriter(bar)
        try:
            writers = {
                "multipie": lambda: _write_multipie(output_dir / "multipie", attribute_lab, num_identities,
                                                    lightings_per_face, seed, pngs),
                "quality": lambda: _write_quality(output_dir / "quality", attribute_lab, num_identities,
                                                  naturalness_variants, seed, pngs),
                "rgbd": lambda: _write_rgbd(output_dir / "rgbd", rgbd_lab, num_identities,
                                            rgbd_lightings_per_face, seed, pngs),
            }
            counts = {part: writers[part]() if part in parts else 0 for part in PARTS}
        finally:
            pngs.close()

    settings = {
        "image_size": attribute_lab.image_size,
        "seed": seed,
        "ambient": ambient,
        "num_identities": num_identities,
        "subjects": list(range(num_identities)),
        "lighting_names": list(attribute_lab.lighting_names),
        "light_directions": attribute_lab.light_directions.round(6).tolist(),
        "multipie": {
            "manifest": "multipie/manifest.csv",
            "expression_set": expression_set,
            "expression_names": list(attribute_lab.expression_names),
            "lightings_per_face": per_face,
            "count": counts["multipie"],
        },
        "quality": {
            "ratings": "quality/ratings.csv",
            "expression_names": list(attribute_lab.expression_names),
            "variants_per_source": naturalness_variants,
            "artifact_kinds": list(ARTIFACT_KINDS),
            "kind_weights": KIND_WEIGHTS,
            "rater_biases": list(RATER_BIASES),
            "rater_noise": RATER_NOISE,
            "count": counts["quality"],
        },
        "rgbd": {
            "manifest": "rgbd/manifest.csv",
            "folder_root": "rgbd/rgb",
            "expression_set": rgbd_expression_set,
            "expression_names": list(rgbd_lab.expression_names),
            "lightings_per_face": rgbd_per_face,
            "depth_bits": 16,
            "count": counts["rgbd"],
        },
        "counts": counts,
    }
    for part in set(PARTS) - set(parts):
        del settings[part]
    (output_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    if contact_sheet_path:
        contact_sheet(attribute_lab, identities=range(min(3, num_identities)),
                      expressions=range(attribute_lab.num_expressions),
                      lightings=_spread(attribute_lab.num_lightings, 6), path=contact_sheet_path)
    settings["seconds"] = time.perf_counter() - started
    return settings


def _spread(count: int, wanted: int) -> list[int]:
    """Up to `wanted` ids spread evenly over range(count), always including 0 (no flash)."""
    return sorted(set(np.linspace(0, count - 1, min(wanted, count)).round().astype(int).tolist()))


def contact_sheet(lab: FaceLab, identities, expressions, lightings, path, gap: int = 2):
    """Saves a labelled sheet: rows identity x expression, columns the lightings plus depth."""
    identities, expressions, lightings = (list(np.atleast_1d(values))
                                          for values in (identities, expressions, lightings))
    out = lab.render_grid(identities, expressions, lightings)
    size = lab.image_size
    rows, columns = len(identities) * len(expressions), len(lightings) + 1
    rgb = out["rgb"].reshape(rows, len(lightings), size, size, 3)
    depth = out["depth"].reshape(rows, len(lightings), size, size)[:, 0]

    pitch = size + gap
    sheet = np.ones((rows * pitch - gap, columns * pitch - gap, 3), dtype=np.float32)
    for row in range(rows):
        for column in range(columns):
            cell = rgb[row, column] if column < len(lightings) else np.repeat(depth[row][..., None], 3, -1)
            sheet[row * pitch:row * pitch + size, column * pitch:column * pitch + size] = cell

    # One figure pixel per sheet pixel, plus margins for the row labels and the column titles.
    left_margin, top_margin, dpi = 150, 60, 100
    width, height = sheet.shape[1] + left_margin, sheet.shape[0] + top_margin
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)  # no pyplot: no global backend
    axes = figure.add_axes([left_margin / width, 0.0, sheet.shape[1] / width, sheet.shape[0] / height])
    axes.imshow(sheet, interpolation="nearest")
    axes.set_xticks([column * pitch + size / 2 for column in range(columns)])
    axes.set_xticklabels([f"light {lab.lighting_names[l]}" + (" (no flash)" if l == 0 else "")
                          for l in lightings] + ["depth"], fontsize=8)
    axes.xaxis.tick_top()
    axes.set_yticks([row * pitch + size / 2 for row in range(rows)])
    axes.set_yticklabels([f"id {identity} · {lab.expression_names[expression]}"
                          for identity in identities for expression in expressions], fontsize=8)
    axes.tick_params(length=0)
    for edge in axes.spines.values():
        edge.set_visible(False)
    figure.suptitle(f"face lab: {lab.expression_set} expressions, {lab.num_lightings} lights, "
                    f"{size} px, seed {lab.seed}", fontsize=10, y=1.0 - 8 / height)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
