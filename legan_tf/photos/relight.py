"""Relighting real faces under known directional lights: what `scripts/relight_faces.py` does (docs/relight_faces.md).

The method is the ratio-image relighting that DPR (Zhou et al., "Deep Single-Image Portrait Relighting",
ICCV 2019) used to build its training set, on the normals that `scripts/make_depth.py` writes:

1. The normals are smoothed a little (`smooth_normals`: the face mesh gives one normal per triangle).
2. The photo's lighting is fitted as 2nd-order real spherical harmonics (9 coefficients) over the face's
   normals (`fit_lighting`): least squares of the face's linear luminance against the SH basis of each
   pixel's normal, assuming a constant albedo (so the albedo folds into the coefficients). Pixels whose
   residual is far from the rest (eyes, brows, lips, nostrils, beard, specular spots: albedo the model
   does not have) are dropped and the fit repeated, twice.
3. A target light is a direction; its shading is the SH expansion of a Lambertian (clamped-cosine)
   response to that direction plus an ambient term (`directional_light_sh`), scaled so that its mean over
   the face equals the fitted source shading's mean (the light changes direction, not exposure).
4. Every channel of the linear image is multiplied by target / source shading (`ratio_image`: the source
   floored so shadowed pixels are not amplified without bound, the log-ratio median-filtered against
   pixel-sized mesh faults and capped), blended out across the mask's edge and a little beyond it so no
   seam shows; the result is clipped to [0, 1] and re-encoded as sRGB (`relight`).

Conventions are the project's (legan_tf/geometry.py, legan_tf/data/synthetic/lighting.py): unit vectors
in camera space, x to the image's right, y up, z toward the camera; background normals are 0. Light
names speak of the image: `left_60` comes from the viewer's left (the subject's right cheek is lit).

The check of a relit face (`recovered_direction`): its lighting is fitted again (same fit, on the face
inside the blended edge), the direction of the one light that best explains that fitted shading is read
off (`light_of`) and compared with the target's (`angular_error_degrees`). It measures how much of the
intended direction survives the ratio, the floor, the cap, clipping, rounding and the face's own albedo;
it is not a measurement against real photos under those lights (`lab_check` is, on the face lab).

No TensorFlow here: numpy and scipy (the folder job, with its PIL and data-layer helpers, is
legan_tf.photos.relight_faces; the face lab is imported only by `lab_check`).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

# --- spherical harmonics ----------------------------------------------------------------------------

# Real SH basis constants (Ramamoorthi & Hanrahan, "An Efficient Representation for Irradiance
# Environment Maps", SIGGRAPH 2001), terms in the order (l, m) = (0,0), (1,-1), (1,0), (1,1), (2,-2),
# (2,-1), (2,0), (2,1), (2,2).
SH_C0 = 0.282095   # 1 / (2 sqrt(pi))
SH_C1 = 0.488603   # sqrt(3 / (4 pi))
SH_C2 = 1.092548   # sqrt(15 / (4 pi))
SH_C20 = 0.315392  # sqrt(5 / (16 pi))
SH_C22 = 0.546274  # sqrt(15 / (16 pi))
SH_TERMS = ("1", "y", "z", "x", "xy", "yz", "3z^2-1", "xz", "x^2-y^2")
# Convolution of each band with the clamped cosine max(0, cos): A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4.
LAMBERT_BANDS = np.array([np.pi, 2 * np.pi / 3, 2 * np.pi / 3, 2 * np.pi / 3,
                          np.pi / 4, np.pi / 4, np.pi / 4, np.pi / 4, np.pi / 4])
# Indices of the first-order band's x, y and z terms in the basis.
LINEAR_XYZ = (3, 1, 2)


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """The 9 real SH basis functions (..., 9) of unit normals (..., 3) (order: SH_TERMS)."""
    normals = np.asarray(normals, np.float64)
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    return np.stack([np.full_like(x, SH_C0), SH_C1 * y, SH_C1 * z, SH_C1 * x, SH_C2 * x * y, SH_C2 * y * z,
                     SH_C20 * (3 * z * z - 1), SH_C2 * x * z, SH_C22 * (x * x - y * y)], axis=-1)


def directional_light_sh(direction: Sequence[float], ambient: float = 0.0) -> np.ndarray:
    """SH coefficients (9,) of the shading ambient + (1 - ambient) * max(0, n . d) of a distant light d.

    A unit light from the direction d has the radiance coefficients Y_lm(d); a Lambertian surface
    convolves band l with A_l (pi, 2 pi / 3, pi / 4), so the irradiance of a normal n is
    sum_lm A_l Y_lm(d) Y_lm(n) = 1/4 + t/2 + 5 (3 t^2 - 1) / 32 with t = n . d (by the addition
    theorem): the order-2 approximation of max(0, t), 1.0625 facing the light, 3/32 at grazing (t = 0),
    at least -0.04 behind it (t = -0.53) and 1/16 opposite it; the cut-off of attached shadows is soft.
    The constant `ambient` sits in the first coefficient (ambient / SH_C0).
    """
    direction = _unit(direction)
    coefficients = (1.0 - ambient) * LAMBERT_BANDS * sh_basis(direction)
    coefficients[0] += ambient / SH_C0
    return coefficients


def shading(normals: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """The shading (...) of normals (..., 3) under SH coefficients (9,)."""
    return _dot(sh_basis(normals), coefficients)


def _dot(array: np.ndarray, vector: Sequence[float]) -> np.ndarray:
    """array (..., k) . vector (k,) with numpy's own loops: BLAS is no faster on these small products, and a
    multithreaded OpenBLAS on a busy machine makes each call take up to a second (measured 0.65 s for a
    2,300 x 9 least-squares solve, 20x slower than single-threaded)."""
    return np.einsum("...i,i->...", array, np.asarray(vector, np.float64))


def linear_direction(coefficients: np.ndarray) -> np.ndarray:
    """The unit direction of the first-order band (x, y, z terms) of SH coefficients; 0 if it is 0."""
    vector = np.asarray(coefficients, np.float64)[list(LINEAR_XYZ)]
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def angular_error_degrees(a: Sequence[float], b: Sequence[float]) -> float:
    """The angle in degrees between two directions (nan when either is the zero vector)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:
        return float("nan")
    # atan2 of |a x b| and a . b: accurate at small angles, where acos of the cosine is not.
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), float(np.dot(a, b)))))


def _unit(direction: Sequence[float]) -> np.ndarray:
    direction = np.asarray(direction, np.float64)
    norm = np.linalg.norm(direction)
    if direction.shape != (3,) or not np.isfinite(norm) or norm == 0:
        raise ValueError(f"a light direction is a non-zero 3-vector, got {direction.tolist()}")
    return direction / norm


# --- the light grid ---------------------------------------------------------------------------------

ORIGINAL = "original"
# Elevation of the upper lights, as the face lab's elevated flashes (legan_tf/data/synthetic/lighting.py).
ELEVATION_DEGREES = 35.0
# (azimuth, elevation) in degrees: azimuth from the camera axis toward the image's right (x), elevation
# up (y). Seven lights on a horizontal ring at head height from the viewer's far left to far right,
# three above; ordered by azimuth (ring first on a tie), so neighbouring ids are neighbouring lights, as
# the face lab orders Multi-PIE's flashes.
GRID = {
    "left_90": (-90.0, 0.0),
    "left_60": (-60.0, 0.0),
    "above_left_45": (-45.0, ELEVATION_DEGREES),
    "left_30": (-30.0, 0.0),
    "front": (0.0, 0.0),
    "above": (0.0, ELEVATION_DEGREES),
    "right_30": (30.0, 0.0),
    "above_right_45": (45.0, ELEVATION_DEGREES),
    "right_60": (60.0, 0.0),
    "right_90": (90.0, 0.0),
}
# Lighting class names in label-id order: `original` (the photo's own light, as Multi-PIE's 00 is its
# own "no flash" condition) first, then the grid.
LIGHT_NAMES = (ORIGINAL, *GRID)


def direction_of(azimuth_degrees: float, elevation_degrees: float) -> np.ndarray:
    """Unit vector of a light at this azimuth (toward +x) and elevation (toward +y)."""
    azimuth, elevation = np.radians(azimuth_degrees), np.radians(elevation_degrees)
    return np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation), np.cos(azimuth) * np.cos(elevation)])


def light_direction(name: str) -> np.ndarray:
    """The unit vector of a named grid light."""
    if name not in GRID:
        raise ValueError(f"unknown light {name!r}; the grid's lights are {', '.join(GRID)}")
    return direction_of(*GRID[name])


# --- images and normal maps -------------------------------------------------------------------------

LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 weights, for linear RGB


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear intensity."""
    values = np.asarray(values, np.float64)
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Linear intensity in [0, 1] to sRGB-encoded values."""
    values = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def _as_unit_range(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def linear_luminance(image: np.ndarray) -> np.ndarray:
    """(H, W) linear luminance of an sRGB image (uint8, or float in [0, 1])."""
    return _dot(srgb_to_linear(_as_unit_range(image)), LUMINANCE)


def decode_normals(normal_map: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """A make_depth normal map, 8-bit (n + 1) * 127.5 with 0 vectors on the background, to (unit normals
    (H, W, 3) float64, face mask (H, W) bool). Face pixels decode to length ~1, the background's 128s
    to ~0.007; the mask is length > 0.5."""
    normal_map = np.asarray(normal_map)
    if normal_map.ndim != 3 or normal_map.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) normal map, got shape {normal_map.shape}")
    vectors = normal_map.astype(np.float64) / 127.5 - 1.0 if normal_map.dtype == np.uint8 else \
        normal_map.astype(np.float64)
    length = np.linalg.norm(vectors, axis=-1)
    mask = length > 0.5
    normals = np.where(mask[..., None], vectors / np.maximum(length, 1e-12)[..., None], 0.0)
    return normals, mask


# --- fitting the photo's lighting -------------------------------------------------------------------

MIN_PIXELS = 64          # face pixels a fit needs (9 unknowns; fewer is too little face to trust)
MAX_CONDITION = 1000.0   # the normals of a face give about 45; a flat or thin region gives far more
TRIM_SIGMAS = 2.5        # residuals beyond this many robust standard deviations are dropped
TRIM_ROUNDS = 2


class DegenerateFit(ValueError):
    """The lighting cannot be fitted: too few face pixels, normals that do not span the basis, a black face."""


@dataclasses.dataclass(frozen=True)
class LightingFit:
    coefficients: np.ndarray   # (9,) SH coefficients of the face's linear luminance (albedo folded in)
    pixels: int                # face pixels in the mask
    used: int                  # pixels left after the outlier rounds
    condition: float           # condition number of the basis over the used normals
    rms: float                 # RMS residual over the used pixels / their mean luminance

    @property
    def linear_direction(self) -> np.ndarray:
        """Unit direction of the fitted first-order band (the x, y, z terms). On a whole sphere of normals it
        points at the light; on a face it is ill-posed (see `light_of`), so read the light with `light_of`."""
        return linear_direction(self.coefficients)


def fit_lighting(intensity: np.ndarray, normals: np.ndarray, mask: np.ndarray, min_pixels: int = MIN_PIXELS,
                 trim_sigmas: float = TRIM_SIGMAS, rounds: int = TRIM_ROUNDS) -> LightingFit:
    """Least-squares SH lighting of a face: intensity ~ sh_basis(normal) @ c over the mask.

    The constant-albedo assumption of ratio-image relighting: the face's reflectance is one number,
    folded into c, so all the variation of intensity over the face is read as shading. What breaks it
    (eyes, brows, lips, beard, highlights) is handled cheaply: after each fit, pixels whose residual is
    beyond `trim_sigmas` robust standard deviations (1.4826 * the median absolute deviation) are
    dropped and the fit repeated (`rounds` times).

    Raises DegenerateFit when the mask has fewer than `min_pixels` pixels (before or after trimming),
    when the normals do not span the 9 basis functions (condition number above MAX_CONDITION: e.g. a
    flat patch, all normals alike), or when the face is black.
    """
    intensity = np.asarray(intensity, np.float64)
    mask = np.asarray(mask, bool)
    if intensity.shape != mask.shape or normals.shape[:2] != mask.shape:
        raise ValueError(f"intensity {intensity.shape}, normals {normals.shape} and mask {mask.shape} differ in size")
    pixels = int(mask.sum())
    if pixels < min_pixels:
        raise DegenerateFit(f"too few face pixels to fit the lighting: {pixels} in the mask, need {min_pixels}")
    basis = sh_basis(normals[mask])
    values = intensity[mask]
    if values.mean() <= 1e-4:
        raise DegenerateFit(f"the face is black (mean linear luminance {values.mean():.2g}): no lighting to fit")
    keep = np.ones(pixels, bool)
    for round_index in range(rounds + 1):
        if keep.sum() < min_pixels:
            raise DegenerateFit(f"too few face pixels left after dropping outliers: {int(keep.sum())} of {pixels}, "
                                f"need {min_pixels}")
        # Normal equations on the 9 x 9 Gram matrix (einsum, not BLAS: see _dot); the basis's condition number
        # is the square root of the Gram matrix's, so float64 keeps ~12 digits at the largest allowed.
        gram = np.einsum("pi,pj->ij", basis[keep], basis[keep])
        eigenvalues = np.linalg.eigvalsh(gram)
        condition = float(np.sqrt(eigenvalues[-1] / eigenvalues[0])) if eigenvalues[0] > 0 else float("inf")
        if not condition <= MAX_CONDITION:
            raise DegenerateFit(f"the face's normals do not span the 9 SH terms (condition number {condition:.3g} > "
                                f"{MAX_CONDITION:g}): too flat or too small a face")
        coefficients = np.linalg.solve(gram, np.einsum("pi,p->i", basis[keep], values[keep]))
        residual = values - _dot(basis, coefficients)
        if round_index == rounds:
            break
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        if spread <= 1e-9 * abs(values.mean()):
            break   # an exact fit, up to rounding: nothing is an outlier
        keep = np.abs(residual - np.median(residual[keep])) <= trim_sigmas * spread
    used = residual[keep]
    rms = float(np.sqrt(np.mean(used ** 2)) / max(values[keep].mean(), 1e-12))
    return LightingFit(coefficients, pixels, int(keep.sum()), condition, rms)


# --- reading a light's direction off a fitted shading ----------------------------------------------

# Directions searched by `light_of`: a 5-degree grid (those not too far behind the face: BEHIND_DEGREES), then
# four rounds of 5 x 5 steps around the best one, each about a third as wide, the last 0.08 degree.
_SEARCH_DEGREES = 5.0
_REFINE_DEGREES = (2.0, 0.7, 0.25, 0.08)
# The SH (order 2) clamped cosine lambert(t) = 1/4 + t/2 + 5 (3 t^2 - 1) / 32 = 3/32 + t/2 + 15 t^2 / 32.
_LAMBERT_LINEAR, _LAMBERT_SQUARE = 0.5, 15.0 / 32.0
# Lights are searched up to this far behind the face's plane (z >= -sin 15 degrees), not all round: a light
# from further back lights only the rim, and over a face's normals (most facing the camera, z in 0.5..1) the
# order-2 response of a light from behind, 3/32 - z/2 + 15 z^2 / 32, rises toward the centre as the frontal
# light's does, so with a free ambient and strength it can stand in for the light from the front.
BEHIND_DEGREES = 15.0
_GRIDS: Dict[float, np.ndarray] = {}


def _sphere_grid(step_degrees: float) -> np.ndarray:
    if step_degrees not in _GRIDS:
        directions = []
        for elevation in np.arange(-90.0, 90.0 + 1e-9, step_degrees):
            count = max(1, int(round(360.0 * np.cos(np.radians(elevation)) / step_degrees)))
            directions.extend(direction_of(azimuth, elevation)
                              for azimuth in np.arange(count) * 360.0 / count - 180.0)
        directions = np.array(directions)
        _GRIDS[step_degrees] = directions[_searched(directions)]
    return _GRIDS[step_degrees]


def _searched(directions: np.ndarray) -> np.ndarray:
    return directions[:, 2] >= -np.sin(np.radians(BEHIND_DEGREES)) - 1e-12


def _moments(normals: np.ndarray, values: np.ndarray) -> tuple:
    """The means over the pixels that the one-light residual of any direction needs: of n, n n, n n n, n n n n,
    v, v^2, v n and v n n. With them each direction costs 3^4 products instead of a pass over the pixels."""
    n, count = normals, len(normals)
    pairs = np.einsum("pa,pb->pab", n, n).reshape(count, 9)
    return (n.mean(0), pairs.mean(0).reshape(3, 3), np.einsum("pi,pc->ic", pairs, n).reshape(3, 3, 3) / count,
            np.einsum("pi,pj->ij", pairs, pairs).reshape(3, 3, 3, 3) / count, values.mean(), (values ** 2).mean(),
            np.einsum("p,pa->a", values, n) / count, np.einsum("p,pi->i", values, pairs).reshape(3, 3) / count)


def _one_light_residuals(moments: tuple, directions: np.ndarray) -> np.ndarray:
    """Per direction d (K, 3), the mean squared residual of values ~ a + s * lambert(n . d) at the best a and
    s > 0 (inf where the best s is not positive: a dark spot, not a light)."""
    m1, m2, m3, m4, v_mean, v_square, vm1, vm2 = moments
    d = directions
    pairs = np.einsum("ka,kb->kab", d, d).reshape(len(d), 9)   # the means of (n . d)^k are these contractions
    t1 = _dot(d, m1)
    t2 = _dot(pairs, m2.reshape(9))
    t3 = (np.einsum("ki,ic->kc", pairs, m3.reshape(9, 3)) * d).sum(1)
    t4 = (np.einsum("ki,ij->kj", pairs, m4.reshape(9, 9)) * pairs).sum(1)
    linear, square = _LAMBERT_LINEAR, _LAMBERT_SQUARE
    response_mean = linear * t1 + square * t2   # the response's constant 3/32 is absorbed by a
    response_variance = linear ** 2 * t2 + 2 * linear * square * t3 + square ** 2 * t4 - response_mean ** 2
    covariance = (linear * _dot(d, vm1) + square * _dot(pairs, vm2.reshape(9))
                  - response_mean * v_mean)
    usable = (covariance > 0) & (response_variance > 1e-12)
    variance = np.where(usable, response_variance, 1.0)
    residual = (v_square - v_mean ** 2) - covariance ** 2 / variance
    return np.where(usable & _searched(directions), residual, np.inf)


def light_of(fit: LightingFit, normals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The direction of the one distant light (plus ambient) whose SH shading best matches the fitted shading
    over the face's normals: argmin_d min_{a, s > 0} sum (fit's shading - a - s * lambert(n . d))^2.

    Why not the fitted first-order band itself: over a face's normals (one hemisphere, most of them facing the
    camera) the terms 1, z and 3z^2 - 1 are nearly collinear (condition number of the basis ~40-70), so what
    albedo and geometry the model lacks moves weight between them and swings the band's z component (tens of
    degrees on real faces). The shading on the face is well determined all the same, and a single light ties
    band 2 to band 1, so matching the shading pins the direction down. For a shading made by one light plus
    ambient it returns that light (up to the search's 0.1 degree). Directions more than BEHIND_DEGREES behind
    the face's plane are not searched.
    """
    picked = normals[np.asarray(mask, bool)]
    moments = _moments(picked, _dot(sh_basis(picked), fit.coefficients))
    grid = _sphere_grid(_SEARCH_DEGREES)
    best = grid[np.argmin(_one_light_residuals(moments, grid))]
    steps = np.arange(-2, 3)
    for step in _REFINE_DEGREES:
        helper = np.array([0.0, 1.0, 0.0]) if abs(best[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        across = np.cross(best, helper)
        across /= np.linalg.norm(across)
        up = np.cross(best, across)
        offsets = np.radians(step) * steps
        candidates = np.array([best + a * across + b * up for a in offsets for b in offsets])
        candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
        best = candidates[np.argmin(_one_light_residuals(moments, candidates))]
    return best


# --- relighting -------------------------------------------------------------------------------------

AMBIENT = 0.25          # share of the target light that reaches every pixel (the face lab's value)
SHADING_FLOOR = 0.25    # the source shading is floored at this fraction of its mean over the face
FEATHER = 0.05          # the ratio fades to 1 over this fraction of the image's side inside the mask (>= 2 px)
SPILL = 0.12            # and beyond the mask it fades to 1 over this fraction (0: the ratio is 1 off the face)
MAX_RATIO = 4.0         # the factor stays within [1 / MAX_RATIO, MAX_RATIO]
MAX_CLIPPED = 0.1       # relight_faces skips a face whose depth is clipped at 1 on more of it than this
NORMAL_BLUR = 0.015     # Gaussian sigma, as a fraction of the image's side, that smooths the mesh's facets

Target = Union[str, Sequence[float], np.ndarray]


def smooth_normals(normals: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Normals blurred by a Gaussian of `sigma` pixels within the mask (normalised convolution: background
    pixels do not pull the edge toward 0) and renormalised. make_depth's normals come from a depth that is
    linear over each triangle of the face mesh, so they are constant per triangle; unsmoothed, the
    relit face shows the facets."""
    mask = np.asarray(mask, bool)
    if sigma <= 0:
        return np.asarray(normals, np.float64)
    weight = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    blurred = np.stack([ndimage.gaussian_filter(normals[..., axis] * mask, sigma) for axis in range(3)], axis=-1)
    blurred /= np.maximum(weight, 1e-12)[..., None]
    blurred /= np.maximum(np.linalg.norm(blurred, axis=-1, keepdims=True), 1e-12)
    return np.where(mask[..., None], blurred, 0.0)


def _pixels(fraction: float, size: int, least: float) -> float:
    return max(least, fraction * size) if fraction > 0 else 0.0


def feather_weights(mask: np.ndarray, width: float) -> np.ndarray:
    """(H, W) weights: 0 off the mask, rising linearly with the distance from its edge to 1 at `width` pixels
    inside (a mask pixel next to the background has distance 1)."""
    mask = np.asarray(mask, bool)
    if width <= 0:
        return mask.astype(np.float64)
    return np.clip(ndimage.distance_transform_edt(mask) / width, 0.0, 1.0)


def target_coefficients(target: Target, fit: LightingFit, normals: np.ndarray, mask: np.ndarray,
                        ambient: float = AMBIENT) -> np.ndarray:
    """SH coefficients of the target shading, on the scale of the fitted source: `original` is the fit
    itself; a light (a grid name or a direction) is scaled so its mean shading over the mask equals the
    fitted source's, so the light changes direction, not exposure."""
    if isinstance(target, str) and target == ORIGINAL:
        return np.asarray(fit.coefficients, np.float64)
    direction = light_direction(target) if isinstance(target, str) else _unit(target)
    coefficients = directional_light_sh(direction, ambient)
    basis = sh_basis(normals[np.asarray(mask, bool)])
    source_mean = float(np.mean(_dot(basis, fit.coefficients)))
    target_mean = float(np.mean(_dot(basis, coefficients)))
    if source_mean <= 0 or target_mean <= 0:
        raise DegenerateFit(f"the fitted shading's mean over the face is not positive (source {source_mean:.3g}, "
                            f"target {target_mean:.3g})")
    return coefficients * (source_mean / target_mean)


def ratio_image(normals: np.ndarray, mask: np.ndarray, fit: LightingFit, target: Target, ambient: float = AMBIENT,
                floor: float = SHADING_FLOOR, feather: Optional[float] = None, spill: Optional[float] = None,
                max_ratio: float = MAX_RATIO) -> np.ndarray:
    """(H, W) factor that relights the linear image: target / source shading inside the mask, both floored at
    `floor` times the source's mean there, so a pixel the source fit calls dark is not amplified without
    bound (the target's shading never falls that low, so the floor only ever limits the denominator).

    The log of the factor is then median-filtered (3 x 3) over the face: the mesh's normals have pixel-sized
    faults (folded triangles where a turned face's far cheek meets the silhouette) that would otherwise
    relight single pixels white or black; a smooth factor is unchanged by it. It is kept within
    [1 / max_ratio, max_ratio].

    At the edge the factor is blended geometrically (in log space) across `feather` pixels inside the mask,
    toward 1 when `spill` is 0; with `spill` pixels, toward the factor of the nearest pixel beyond that band
    (blurred), which also continues beyond the mask and fades to 1 `spill` pixels off it, so hair, forehead
    and neck next to a lit cheek brighten a little instead of stopping at the mask's line. Defaults: FEATHER
    and SPILL of the image's side.
    """
    mask = np.asarray(mask, bool)
    side = max(mask.shape)
    feather = _pixels(FEATHER, side, 2.0) if feather is None else feather
    spill = _pixels(SPILL, side, 2.0) if spill is None else spill
    coefficients = target_coefficients(target, fit, normals, mask, ambient)
    basis = sh_basis(normals[mask])
    source = _dot(basis, fit.coefficients)
    lowest = floor * max(float(source.mean()), 1e-12)
    log_ratio = np.zeros(mask.shape)
    log_ratio[mask] = np.log(np.maximum(_dot(basis, coefficients), lowest) / np.maximum(source, lowest))
    log_ratio = np.where(mask, ndimage.median_filter(log_ratio, size=3, mode="nearest"), 0.0)
    log_ratio = np.clip(log_ratio, -np.log(max_ratio), np.log(max_ratio))
    weights = feather_weights(mask, feather)
    blended = weights * log_ratio
    if spill > 0 and not mask.all():
        # The factor of the nearest fully weighted face pixel (the rim's own normals are the least reliable and
        # the most extreme: grazing), continued outward, blurred, and faded to 0 at `spill` pixels off the mask.
        inner = weights >= 1.0
        inner = inner if inner.any() else mask
        _, (rows, cols) = ndimage.distance_transform_edt(~inner, return_indices=True)
        continued = ndimage.gaussian_filter(log_ratio[rows, cols], max(1.0, feather))
        fade = np.clip(1.0 - ndimage.distance_transform_edt(~mask) / spill, 0.0, 1.0) ** 2
        blended = blended + (1.0 - weights) * fade * continued
    return np.exp(blended)


def relight(image: np.ndarray, normals: np.ndarray, mask: np.ndarray, target: Target,
            fit: Optional[LightingFit] = None, ambient: float = AMBIENT, floor: float = SHADING_FLOOR,
            feather: Optional[float] = None, spill: Optional[float] = None, max_ratio: float = MAX_RATIO
            ) -> np.ndarray:
    """The face of `image` (H, W, 3 sRGB: uint8, or float in [0, 1]; grey faces as 3 equal channels) under
    `target`: a grid light's name, a direction (3,), or `original` (the photo's own fitted light, which
    returns the image unchanged up to float rounding).

    The lighting is fitted on the image unless `fit` (from fit_lighting on this image and these normals) is
    given. Every channel of the linear image is multiplied by ratio_image(...), clipped to [0, 1] and
    re-encoded; the result has the input's dtype. Raises DegenerateFit when the lighting cannot be fitted.
    """
    image = np.asarray(image)
    unit = _as_unit_range(image)
    normals = np.asarray(normals, np.float64)
    mask = np.asarray(mask, bool)
    if unit.shape[:2] != mask.shape or normals.shape != unit.shape:
        raise ValueError(f"image {image.shape}, normals {normals.shape} and mask {mask.shape} differ in size")
    linear = srgb_to_linear(unit)
    if fit is None:
        fit = fit_lighting(_dot(linear, LUMINANCE), normals, mask)
    ratio = ratio_image(normals, mask, fit, target, ambient, floor, feather, spill, max_ratio)
    relit = linear_to_srgb(linear * ratio[..., None])
    # Pixels whose factor is 1 keep their values exactly (encode(decode(x)) is x only up to rounding).
    relit = np.where((ratio == 1.0)[..., None], unit, relit)
    if image.dtype == np.uint8:
        return np.round(relit * 255.0).astype(np.uint8)
    return relit.astype(image.dtype if np.issubdtype(image.dtype, np.floating) else np.float64)


def interior(mask: np.ndarray, feather: Optional[float] = None) -> np.ndarray:
    """The mask's pixels at full weight (beyond the blended edge): where a relit face is wholly relit."""
    mask = np.asarray(mask, bool)
    width = _pixels(FEATHER, max(mask.shape), 2.0) if feather is None else feather
    return feather_weights(mask, width) >= 1.0


def recovered_direction(image: np.ndarray, normals: np.ndarray, mask: np.ndarray,
                        feather: Optional[float] = None) -> np.ndarray:
    """The check of a relit face: its lighting fitted again (fit_lighting, over the mask's `interior`), and
    the direction of the one light that best explains that fitted shading (`light_of`)."""
    inner = interior(mask, feather)
    return light_of(fit_lighting(linear_luminance(image), normals, inner), normals, inner)


# --- the check against the face lab ----------------------------------------------------------------

def lab_check(count: int = 200, image_size: int = 128, seed: int = 0) -> dict:
    """The method on face-lab faces, whose light, normals and render under any other light are exact.

    Face i: identity i, expression i mod count, lit by the lab's flash s = 1 + (7 i mod 19) and relit toward
    flash t = 1 + ((s - 1 + 1 + 3 i mod 18) mod 19) (never s), with the lab's exact normals and mask. The lab
    renders linear albedo * (0.25 + 0.75 max(0, n . l)) (the exact clamped cosine, not its SH approximation)
    with darker eyes, brows and lips; its images are encoded as sRGB and rounded to 8 bits first, like a
    photo. Per face: the angle between the source light fitted on the image (light_of) and the true one; the
    check's angle (recovered_direction of the relit face against t); and the relit face against the lab's own
    render under t, as the mean absolute difference over the face in linear intensity relative to the
    render's mean, after the best gain (the relighting keeps the source's exposure), beside the same
    figure for the unrelit source (how far apart the two lights' renders are). Returns per-face lists and
    their medians.
    """
    from legan_tf.data.synthetic.render import FaceLab

    lab = FaceLab(image_size=image_size, expression_set="affectnet", seed=seed)
    flashes = lab.num_lightings - 1
    faces = np.arange(count)
    sources = 1 + (7 * faces) % flashes
    targets = 1 + (sources - 1 + 1 + (3 * faces) % (flashes - 1)) % flashes
    expressions = faces % lab.num_expressions
    figures: Dict[str, List[float]] = {"fit": [], "check": [], "relit_error": [], "unrelit_error": []}
    for start in range(0, count, 32):
        part = slice(start, min(count, start + 32))
        source = lab.render(faces[part], expressions[part], sources[part])
        target = lab.render(faces[part], expressions[part], targets[part])
        for index in range(len(source["rgb"])):
            face = start + index
            mask = source["mask"][index] > 0.5
            normals = source["normals"][index].astype(np.float64)
            photo = np.round(linear_to_srgb(source["rgb"][index]) * 255).astype(np.uint8)
            fit = fit_lighting(linear_luminance(photo), normals, mask)
            figures["fit"].append(angular_error_degrees(light_of(fit, normals, mask),
                                                        lab.light_directions[sources[face]]))
            direction = lab.light_directions[targets[face]]
            relit = relight(photo, normals, mask, direction, fit=fit)
            figures["check"].append(angular_error_degrees(recovered_direction(relit, normals, mask), direction))
            truth = target["rgb"][index][mask].astype(np.float64)
            for key, candidate in (("relit_error", relit), ("unrelit_error", photo)):
                values = srgb_to_linear(candidate[mask] / 255.0)
                gain = float((values * truth).sum() / max((truth * truth).sum(), 1e-12))
                figures[key].append(float(np.abs(values - gain * truth).mean() / max(gain * truth.mean(), 1e-12)))
    summary = {key: {"median": _median(values, 4), "p90": _percentile(values, 90, 4)}
               for key, values in figures.items()}
    return {"faces": count, "image_size": image_size, "per_face": figures, "summary": summary}


def lab_report(outcome: dict) -> str:
    summary = outcome["summary"]
    return "\n".join([
        f"face lab, {outcome['faces']} faces at {outcome['image_size']} px (median, 90th percentile):",
        f"  source light fitted on the photo vs the true light: {summary['fit']['median']:.1f}, "
        f"{summary['fit']['p90']:.1f} degrees",
        f"  check (light fitted on the relit face vs the target light): {summary['check']['median']:.1f}, "
        f"{summary['check']['p90']:.1f} degrees",
        f"  relit face vs the lab's render under the target light: {summary['relit_error']['median']:.1%}, "
        f"{summary['relit_error']['p90']:.1%} mean absolute difference (linear, after the best gain)",
        f"  the unrelit photo vs that render: {summary['unrelit_error']['median']:.1%}, "
        f"{summary['unrelit_error']['p90']:.1%}",
    ])

def _median(values: List[float], digits: int = 2) -> Optional[float]:
    values = [v for v in values if np.isfinite(v)]
    return round(float(np.median(values)), digits) if values else None


def _percentile(values: List[float], q: float, digits: int = 2) -> Optional[float]:
    values = [v for v in values if np.isfinite(v)]
    return round(float(np.percentile(values, q)), digits) if values else None
