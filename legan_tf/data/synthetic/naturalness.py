"""Naturalness data for the quality model Q: artifacts of known kind and severity, simulated raters.

Each clean render is degraded by an artifact typical of generated faces (blur, JPEG-like
blockiness, noise, colour blotches, warps, checkerboard upsampling). Three simulated raters score
it 1-10 from a base that falls with severity, plus their own bias and noise, so severity is the
dominant, learnable driver of the mean rating. Artifact sizes scale with the image size, so the
same severity looks equally bad at every resolution.
"""

from __future__ import annotations

import numpy as np

ARTIFACT_KINDS = ("clean", "blur", "blockiness", "noise", "colour_blotches", "warp", "checkerboard")

# How strongly each kind lowers the base score at full severity (multiplies SEVERITY_PENALTY).
KIND_WEIGHTS = {
    "clean": 0.0,
    "blur": 1.0,
    "blockiness": 0.9,
    "noise": 1.0,
    "colour_blotches": 0.85,
    "warp": 0.9,
    "checkerboard": 0.85,
}
SEVERITY_PENALTY = 8.5
RATER_BIASES = (-0.35, 0.0, 0.3)
RATER_NOISE = 0.35
MIN_SCORE, MAX_SCORE = 1.0, 10.0


def _severity_per_image(severity, batch: int) -> np.ndarray:
    severity = np.broadcast_to(np.asarray(severity, dtype=np.float32), (batch,))
    if np.any((severity < 0.0) | (severity > 1.0)):
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    return severity


def _upsample_bilinear(low: np.ndarray, size: int) -> np.ndarray:
    """[B, h, w, C] -> [B, size, size, C], corners aligned; smooth random fields from few values."""
    def weights(cells):
        position = np.linspace(0.0, cells - 1.0, size)
        lower = np.minimum(position.astype(int), cells - 2)
        return lower, (position - lower).astype(np.float32)

    rows, row_frac = weights(low.shape[1])
    cols, col_frac = weights(low.shape[2])
    row_frac, col_frac = row_frac[None, :, None, None], col_frac[None, None, :, None]
    top = low[:, rows] * (1 - row_frac) + low[:, rows + 1] * row_frac
    return top[:, :, cols] * (1 - col_frac) + top[:, :, cols + 1] * col_frac


def _blur(rgb, severity, rng):
    size = rgb.shape[1]
    sigma = severity * size / 24.0
    radius = max(1, int(np.ceil(3.0 * sigma.max())))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernels = np.exp(-0.5 * (offsets[None] / np.maximum(sigma[:, None], 1e-3)) ** 2)
    kernels /= kernels.sum(axis=1, keepdims=True)
    # Separable per-image Gaussian: a weighted sum of shifted copies along each axis.
    for axis in (1, 2):
        padded = np.pad(rgb, [(0, 0)] + [(radius, radius) if a == axis else (0, 0) for a in (1, 2)]
                        + [(0, 0)], mode="edge")
        blurred = np.zeros_like(rgb)
        for index in range(len(offsets)):
            shifted = np.take(padded, np.arange(index, index + size), axis=axis)
            blurred += kernels[:, index, None, None, None] * shifted
        rgb = blurred
    return rgb


def _blockiness(rgb, severity, rng):
    # JPEG-like: 8x8 blocks (at 64 px) lose their detail and colours are quantised.
    batch, size = rgb.shape[:2]
    block = max(2, size // 8)
    cells = size // block
    tiles = rgb[:, :cells * block, :cells * block].reshape(batch, cells, block, cells, block, 3)
    means = tiles.mean(axis=(2, 4), keepdims=True)
    keep = (1.0 - 0.95 * severity**0.7)[:, None, None, None, None, None]
    tiles = means + (tiles - means) * keep
    levels = (64.0 * (6.0 / 64.0) ** severity)[:, None, None, None, None, None]
    # Severity 0 must leave the image as it is, so quantisation starts only above it.
    tiles = np.where(levels < 64.0, np.round(tiles * levels) / levels, tiles)
    out = rgb.copy()
    out[:, :cells * block, :cells * block] = tiles.reshape(batch, cells * block, cells * block, 3)
    return out


def _noise(rgb, severity, rng):
    return rgb + rng.normal(0.0, 1.0, rgb.shape).astype(np.float32) * (0.22 * severity)[:, None, None, None]


def _colour_blotches(rgb, severity, rng):
    field = _upsample_bilinear(rng.normal(0.0, 1.0, (len(rgb), 5, 5, 3)).astype(np.float32), rgb.shape[1])
    return rgb + field * (0.3 * severity)[:, None, None, None]


def _warp(rgb, severity, rng):
    batch, size = rgb.shape[:2]
    # An 8x8 field bends lines within a part (a wavy mouth, jagged brows), which reads as an
    # artifact; a smoother field would only look like a different face shape.
    displacement = _upsample_bilinear(rng.normal(0.0, 1.0, (batch, 8, 8, 2)).astype(np.float32), size)
    displacement *= (0.04 * size * severity)[:, None, None, None]
    rows, cols = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32),
                             indexing="ij")
    source_rows = np.clip(rows + displacement[..., 0], 0, size - 1)
    source_cols = np.clip(cols + displacement[..., 1], 0, size - 1)
    row0 = np.minimum(source_rows.astype(int), size - 2)
    col0 = np.minimum(source_cols.astype(int), size - 2)
    row_frac = (source_rows - row0)[..., None]
    col_frac = (source_cols - col0)[..., None]
    b = np.arange(batch)[:, None, None]

    def at(r, c):
        return rgb[b, r, c]

    top = at(row0, col0) * (1 - col_frac) + at(row0, col0 + 1) * col_frac
    bottom = at(row0 + 1, col0) * (1 - col_frac) + at(row0 + 1, col0 + 1) * col_frac
    return top * (1 - row_frac) + bottom * row_frac


def _checkerboard(rgb, severity, rng):
    # Transposed-convolution upsampling: half-resolution content with a periodic 2x2 pattern.
    batch, size = rgb.shape[:2]
    half = rgb[:, : size // 2 * 2, : size // 2 * 2].reshape(batch, size // 2, 2, size // 2, 2, 3)
    nearest = np.repeat(np.repeat(half.mean(axis=(2, 4)), 2, axis=1), 2, axis=2)
    blocky = rgb.copy()
    blocky[:, : size // 2 * 2, : size // 2 * 2] = nearest
    s = severity[:, None, None, None]
    out = rgb * (1 - s) + blocky * s
    phase = rng.normal(0.0, 1.0, (batch, 2, 2, 3)).astype(np.float32)
    phase -= phase.mean(axis=(1, 2), keepdims=True)
    pattern = np.tile(phase, (1, (size + 1) // 2, (size + 1) // 2, 1))[:, :size, :size]
    return out * (1.0 + 0.45 * s * pattern)


_ARTIFACTS = {
    "clean": lambda rgb, severity, rng: rgb.copy(),
    "blur": _blur,
    "blockiness": _blockiness,
    "noise": _noise,
    "colour_blotches": _colour_blotches,
    "warp": _warp,
    "checkerboard": _checkerboard,
}


def apply_artifact(rgb_batch: np.ndarray, kind: str, severity, rng: np.random.Generator) -> np.ndarray:
    """Degrades rgb_batch [B,S,S,3] in [0,1] by `kind` at severity (scalar or [B], in [0,1]).

    Returns float32 [B,S,S,3] in [0,1]. Severity 0 leaves the image (almost) unchanged for every
    kind; "clean" ignores severity.
    """
    if kind not in _ARTIFACTS:
        raise ValueError(f"unknown artifact kind {kind!r}; known: {ARTIFACT_KINDS}")
    rgb_batch = np.asarray(rgb_batch, dtype=np.float32)
    if rgb_batch.ndim != 4 or rgb_batch.shape[-1] != 3:
        raise ValueError(f"rgb_batch must be [B,S,S,3], got shape {rgb_batch.shape}")
    severity = _severity_per_image(severity, len(rgb_batch))
    return np.clip(_ARTIFACTS[kind](rgb_batch, severity, rng), 0.0, 1.0).astype(np.float32)


def base_score(kind, severity) -> np.ndarray:
    """The score an unbiased, noiseless rater gives: 10 - 8.5 * weight(kind) * severity."""
    kinds = np.atleast_1d(np.asarray(kind))
    weights = np.array([KIND_WEIGHTS[k] for k in kinds.ravel()]).reshape(kinds.shape)
    return MAX_SCORE - SEVERITY_PENALTY * weights * np.asarray(severity, dtype=np.float64)


def simulate_ratings(kind, severity, rng: np.random.Generator) -> np.ndarray:
    """Scores [B, 3] of the three simulated raters: base + rater bias + noise, clipped to [1, 10]."""
    base = np.atleast_1d(base_score(kind, severity))
    noise = rng.normal(0.0, RATER_NOISE, (len(base), len(RATER_BIASES)))
    return np.clip(base[:, None] + np.asarray(RATER_BIASES) + noise, MIN_SCORE, MAX_SCORE)


def summarise_ratings(ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std (ddof=0: raters who agree give 0) of ratings [B, R], as float32."""
    ratings = np.asarray(ratings, dtype=np.float64)
    return ratings.mean(axis=1).astype(np.float32), ratings.std(axis=1).astype(np.float32)


def make_naturalness_set(lab, identities, variants_per_source: int = 8, rng_seed: int = 0) -> dict:
    """Rated faces for Q: per identity one clean source render and its degraded variants.

    The first variant of every source is the clean render itself; the others are random
    non-clean kinds at uniform severities. Returns numpy arrays: rgb [N,S,S,3], mean, std,
    ratings [N,3], source (int32 index of the clean render, one per identity, in order),
    kind (artifact name), severity.
    """
    if variants_per_source < 1:
        raise ValueError(f"variants_per_source must be >= 1, got {variants_per_source}")
    identities = np.atleast_1d(np.asarray(identities))
    rng = np.random.default_rng(rng_seed)
    sources = lab.render(identities, rng.integers(lab.num_expressions, size=len(identities)),
                         rng.integers(lab.num_lightings, size=len(identities)))["rgb"]

    count = len(identities) * variants_per_source
    source = np.repeat(np.arange(len(identities), dtype=np.int32), variants_per_source)
    degraded_kinds = np.array(ARTIFACT_KINDS[1:])
    kind = degraded_kinds[rng.integers(len(degraded_kinds), size=count)]
    severity = rng.uniform(0.0, 1.0, count).astype(np.float32)
    first = np.arange(count) % variants_per_source == 0
    kind = np.where(first, "clean", kind)
    severity[first] = 0.0

    rgb = np.empty((count,) + sources.shape[1:], dtype=np.float32)
    for name in ARTIFACT_KINDS:
        chosen = np.flatnonzero(kind == name)
        if len(chosen):
            rgb[chosen] = apply_artifact(sources[source[chosen]], name, severity[chosen], rng)
    ratings = simulate_ratings(kind, severity, rng)
    mean, std = summarise_ratings(ratings)
    return {"rgb": rgb, "mean": mean, "std": std, "ratings": ratings.astype(np.float32),
            "source": source, "kind": kind, "severity": severity}
