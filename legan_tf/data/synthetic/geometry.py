"""Identity geometry of the face lab: a parametric height field and an albedo map.

A face is described by a *layout*: a dict of named part parameters (positions, sizes, depths,
colours). `sample_identity` draws the layout of one identity from its own seeded generator;
`expressions.apply_expression` deforms it; `draw_face` turns a batch of layouts into a height
field, an albedo map and a mask on an image grid.

Coordinates are normalised: x points right, y points up, both in [-1, 1] over the image, and
heights are in the same units, so a face looks the same at every image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Colours of the parts that do not vary between identities.
SCLERA_RGB = (0.93, 0.92, 0.89)
PUPIL_RGB = (0.04, 0.03, 0.03)
MOUTH_INTERIOR_RGB = (0.22, 0.05, 0.06)
TEETH_RGB = (0.95, 0.93, 0.86)

_LIGHT_SKIN = np.array([0.94, 0.78, 0.66])
_DARK_SKIN = np.array([0.62, 0.44, 0.33])
_IRIS_PALETTE = np.array([
    [0.36, 0.22, 0.11],  # brown
    [0.16, 0.10, 0.07],  # dark brown
    [0.22, 0.38, 0.58],  # blue
    [0.30, 0.42, 0.26],  # green
    [0.42, 0.44, 0.47],  # grey
])
_LIP_TINT = np.array([0.72, 0.26, 0.30])

# Expression controls default to these values; `expressions.apply_expression` overrides them.
NEUTRAL_CONTROLS = {
    "jaw_drop": 0.0,
    "eye_open": 1.0,
    "brow_tilt": 0.0,
    "mouth_curve": 0.0,
    "mouth_open": 0.0,
    "mouth_asym": 0.0,
    "upper_lip_raise": 0.0,
    "lip_press": 0.0,
    "nostril_flare": 0.0,
    "chin_raise": 0.0,
    "cheek_raise_left": 0.0,
    "cheek_raise_right": 0.0,
    "forehead_lines": 0.0,
    "brow_furrow": 0.0,
    "nose_wrinkle": 0.0,
}


@dataclass(frozen=True)
class Grid:
    """Pixel-centre coordinates of a square image, shaped [1, S, S] to broadcast over a batch."""

    size: int
    x: np.ndarray
    y: np.ndarray
    pixel: float  # width of one pixel in normalised units, the width of every anti-aliased edge


def make_grid(size: int) -> Grid:
    pixel = 2.0 / size
    centres = np.linspace(-1.0 + pixel / 2, 1.0 - pixel / 2, size)
    x, y = np.meshgrid(centres, -centres)  # row 0 is the top of the image, so y decreases down
    # float32 halves the cost of every per-pixel operation; the faces need no more precision.
    return Grid(size=size, x=x[None].astype(np.float32), y=y[None].astype(np.float32), pixel=pixel)


def sample_identity(seed: int, identity: int) -> dict[str, np.ndarray]:
    """Layout of one neutral face, a pure function of (seed, identity).

    Variation is moderate on purpose: identities must differ, but not so much that a part of one
    face lands where another face keeps a different part (expression cues must stay readable).
    """
    rng = np.random.default_rng([seed, identity])

    def jitter(mean, spread):
        return float(mean + spread * rng.uniform(-1.0, 1.0))

    skin = (_LIGHT_SKIN + (_DARK_SKIN - _LIGHT_SKIN) * rng.uniform()) * rng.uniform(0.96, 1.04, 3)
    skin = np.clip(skin, 0.0, 1.0)
    iris = _IRIS_PALETTE[rng.integers(len(_IRIS_PALETTE))] * rng.uniform(0.9, 1.1, 3)
    lips = skin + (_LIP_TINT - skin) * rng.uniform(0.35, 0.6)
    brows = skin * rng.uniform(0.22, 0.4)

    layout = {
        "head_a": jitter(0.74, 0.04),
        "head_b": jitter(0.90, 0.04),
        "jaw_taper": jitter(0.22, 0.06),
        "head_depth": jitter(0.62, 0.05),
        "eye_x": jitter(0.30, 0.025),
        "eye_y": jitter(0.12, 0.025),
        "eye_w": jitter(0.14, 0.012),
        "eye_h": jitter(0.058, 0.006),
        "iris_r": jitter(0.052, 0.005),
        "socket_depth": jitter(0.07, 0.015),
        "brow_gap": jitter(0.15, 0.015),
        "brow_w": jitter(0.17, 0.015),
        "brow_thick": jitter(0.048, 0.008),
        "brow_arch": jitter(0.025, 0.01),
        "brow_ridge": jitter(0.04, 0.01),
        "nose_y": jitter(-0.13, 0.03),
        "nose_w": jitter(0.095, 0.012),
        "nose_depth": jitter(0.22, 0.04),
        "mouth_y": jitter(-0.43, 0.025),
        "mouth_w": jitter(0.27, 0.025),
        "lip_thick": jitter(0.038, 0.006),
        "cheek_x": jitter(0.37, 0.03),
        "cheek_y": jitter(-0.17, 0.03),
        "cheek_depth": jitter(0.05, 0.015),
        "chin_y": jitter(-0.72, 0.03),
        "chin_depth": jitter(0.05, 0.015),
        "expressiveness": jitter(1.0, 0.1),
        "skin_rgb": skin,
        "iris_rgb": np.clip(iris, 0.0, 1.0),
        "lip_rgb": lips,
        "brow_rgb": brows,
    }
    layout.update(NEUTRAL_CONTROLS)
    return {name: np.asarray(value, dtype=np.float64) for name, value in layout.items()}


def stack_layouts(layouts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stacks per-sample layouts so scalars become [B, 1, 1] and colours [B, 1, 1, 3] (float32)."""
    stacked = {}
    for name in layouts[0]:
        values = np.stack([layout[name] for layout in layouts]).astype(np.float32)
        stacked[name] = values.reshape(len(layouts), 1, 1, *values.shape[1:])
    return stacked


def coverage(signed_distance: np.ndarray, pixel: float) -> np.ndarray:
    """Anti-aliased inside test: 1 well inside (negative distance), 0 outside, a 1-pixel ramp."""
    return np.clip(0.5 - signed_distance / pixel, 0.0, 1.0)


def gaussian(x, y, centre_x, centre_y, sigma_x, sigma_y):
    return np.exp(-0.5 * (((x - centre_x) / sigma_x) ** 2 + ((y - centre_y) / sigma_y) ** 2))


def paint(albedo: np.ndarray, amount: np.ndarray, rgb) -> None:
    """Blends a colour ([3] or [B,1,1,3]) over the albedo, in place, where amount ([B,S,S]) is 1."""
    albedo += amount[..., None] * (np.asarray(rgb, dtype=albedo.dtype) - albedo)


def draw_face(grid: Grid, layout: dict[str, np.ndarray]):
    """Height field [B,S,S], albedo [B,S,S,3] and binary mask [B,S,S] of a batch of layouts."""
    x, y, pixel = grid.x, grid.y, grid.pixel
    p = layout
    batch_shape = np.broadcast_shapes(x.shape, p["head_a"].shape)

    # Head: an egg-shaped ellipsoid, narrower at the jaw; an open mouth drops the jaw.
    head_b = np.where(y > 0, p["head_b"], p["head_b"] + p["jaw_drop"])
    below = np.clip(-y / head_b, 0.0, 1.0)
    head_a = p["head_a"] * (1.0 - p["jaw_taper"] * below**2)
    radius2 = (x / head_a) ** 2 + (y / head_b) ** 2
    mask = (radius2 < 1.0).astype(np.float32)
    height = p["head_depth"] * np.sqrt(np.clip(1.0 - radius2, 0.0, None))
    albedo = np.broadcast_to(p["skin_rgb"], batch_shape + (3,)).copy()

    chin_y = p["chin_y"] - 0.8 * p["jaw_drop"] + 0.04 * p["chin_raise"]
    height += (p["chin_depth"] + 0.05 * p["chin_raise"]) * gaussian(x, y, 0.0, chin_y, 0.15, 0.07)

    for side, cheek_raise in ((-1.0, p["cheek_raise_left"]), (1.0, p["cheek_raise_right"])):
        height += (p["cheek_depth"] + 0.04 * cheek_raise) * gaussian(
            x, y, side * p["cheek_x"], p["cheek_y"] + 0.06 * cheek_raise, 0.13, 0.12)

    # The parts add to the height field and paint the albedo in place.
    _draw_nose(x, y, pixel, p, height, albedo)
    _draw_mouth(x, y, pixel, p, height, albedo)
    _draw_eyes_and_brows(x, y, pixel, p, height, albedo)
    return height, albedo, mask


def _draw_nose(x, y, pixel, p, height, albedo):
    # The bridge rises from eye level to the tip and fades just below it.
    rise = np.clip((p["eye_y"] - y) / (p["eye_y"] - p["nose_y"]), 0.0, 1.0) ** 1.2
    fade_below = np.exp(-0.5 * (np.clip(p["nose_y"] - y, 0.0, None) / 0.03) ** 2)
    bridge = np.exp(-0.5 * (x / (0.45 * p["nose_w"])) ** 2)
    height += 0.7 * p["nose_depth"] * rise * fade_below * bridge
    height += 0.3 * p["nose_depth"] * gaussian(x, y, 0.0, p["nose_y"], 0.05, 0.05)
    nostril_y = p["nose_y"] - 0.035
    nostrils = 0.0
    for side in (-1.0, 1.0):
        height += 0.05 * gaussian(x, y, side * p["nose_w"], p["nose_y"] + 0.01, 0.035, 0.035)
        # Nostrils: dark ellipses that widen when the nose flares.
        half_width = 0.024 * (1.0 + 0.6 * p["nostril_flare"])
        ellipse = np.hypot((x - side * 0.5 * p["nose_w"]) / half_width, (y - nostril_y) / 0.014)
        nostrils = nostrils + coverage((ellipse - 1.0) * 0.014, pixel)
    paint(albedo, nostrils, p["skin_rgb"] * 0.3)


def _draw_mouth(x, y, pixel, p, height, albedo):
    # Mouth frame: u runs along the mouth (-1 left corner, +1 right corner).
    u = np.clip(x / p["mouth_w"], -1.3, 1.3)
    inside_span = coverage((np.abs(x) - p["mouth_w"]), pixel)
    envelope = np.sqrt(np.clip(1.0 - u**2, 0.0, None))
    half_open = 0.5 * 0.22 * p["mouth_open"] * envelope
    # The jaw, not the upper lip, moves when the mouth opens, so the centre line drops with it.
    centre = (p["mouth_y"] - 0.5 * 0.22 * p["mouth_open"]
              + 0.09 * p["mouth_curve"] * u**2
              + 0.11 * p["mouth_asym"] * np.clip(u, 0.0, None) ** 2)
    v = y - centre

    thickness = p["lip_thick"] * (1.0 - 0.55 * p["lip_press"]) * envelope
    upper_lift = 0.035 * p["upper_lip_raise"] * envelope
    upper_lip = coverage(np.abs(v - (half_open + upper_lift + thickness / 2)) - thickness / 2, pixel)
    lower_lip = coverage(np.abs(v + half_open + 0.6 * thickness) - 0.6 * thickness, pixel)
    opening = coverage(np.abs(v - upper_lift / 2) - half_open - upper_lift / 2, pixel) * inside_span
    # A closed mouth still shows a dark line; an open one gets teeth under the upper lip.
    teeth = coverage((half_open + upper_lift - 0.035) - v, pixel) * opening
    teeth *= np.clip(p["mouth_open"] * 4.0, 0.0, 1.0)

    lips = np.maximum(upper_lip, lower_lip) * inside_span
    height += 0.03 * lips
    # Muscles that lift or pull down a mouth corner bulge or hollow the skin around it.
    for side, corner_lift in ((-1.0, p["mouth_curve"]), (1.0, p["mouth_curve"] + p["mouth_asym"])):
        corner_y = p["mouth_y"] + 0.09 * corner_lift
        height += 0.05 * corner_lift * gaussian(x, y, side * 1.1 * p["mouth_w"], corner_y, 0.07, 0.07)
    height -= 0.12 * opening * np.clip(half_open / 0.02, 0.0, 1.0)
    paint(albedo, lips, p["lip_rgb"])
    paint(albedo, opening, MOUTH_INTERIOR_RGB)
    paint(albedo, teeth, TEETH_RGB)


def _draw_eyes_and_brows(x, y, pixel, p, height, albedo):
    brow_y = p["eye_y"] + p["brow_gap"]
    height += p["brow_ridge"] * np.exp(-0.5 * ((y - brow_y + 0.02) / 0.05) ** 2) * np.exp(
        -0.5 * (x / 0.35) ** 2)
    # Lifting the inner brows bunches the middle of the forehead; lowering them, the skin
    # between the brows.
    height += 0.05 * np.clip(p["brow_tilt"], 0.0, None) * gaussian(x, y, 0.0, brow_y + 0.1, 0.13, 0.08)
    height += 0.05 * np.clip(-p["brow_tilt"], 0.0, None) * gaussian(x, y, 0.0, brow_y - 0.03, 0.08, 0.05)
    # The two sides never overlap, so their coverages add up and each layer is painted once.
    sclera = iris = pupil = lash = brow = 0.0
    v = y - p["eye_y"]
    for side in (-1.0, 1.0):
        centre_x = side * p["eye_x"]
        u = (x - centre_x) / p["eye_w"]
        height -= p["socket_depth"] * gaussian(x, y, centre_x, p["eye_y"], 0.9 * p["eye_w"], 0.08)

        # Almond-shaped opening whose height follows the expression's eye_open.
        half_open = p["eye_h"] * p["eye_open"] * np.clip(1.0 - u**2, 0.0, None) ** 0.6
        opening = coverage(np.abs(v) - half_open, pixel) * coverage(np.abs(u) - 1.0, pixel / p["eye_w"])
        iris_distance = np.hypot(x - centre_x, v)
        in_iris = coverage(iris_distance - p["iris_r"], pixel)
        in_pupil = coverage(iris_distance - 0.4 * p["iris_r"], pixel)
        sclera = sclera + opening * (1.0 - in_iris)
        iris = iris + opening * (in_iris - in_pupil)
        pupil = pupil + opening * in_pupil
        height += 0.02 * opening
        lash = lash + (coverage(np.abs(v - half_open - 0.009) - 0.009, pixel)
                       * coverage(np.abs(u) - 1.05, pixel / p["eye_w"]))

        # Brow: a tapered band; tilt moves its inner end (toward the nose) up or down.
        brow_u = np.clip((x - centre_x) / p["brow_w"], -1.2, 1.2)
        inner = np.clip((1.0 - side * brow_u) / 2.0, 0.0, 1.0)
        brow_centre = (brow_y + 0.07 * p["brow_tilt"] * (inner - 0.3)
                       + p["brow_arch"] * (1.0 - brow_u**2))
        half_thickness = 0.5 * p["brow_thick"] * (0.6 + 0.4 * (1.0 - np.abs(brow_u)))
        brow = brow + (coverage(np.abs(y - brow_centre) - half_thickness, pixel)
                       * coverage(np.abs(x - centre_x) - p["brow_w"], pixel))
    paint(albedo, sclera, SCLERA_RGB)
    paint(albedo, iris, p["iris_rgb"])
    paint(albedo, pupil, PUPIL_RGB)
    paint(albedo, lash, p["brow_rgb"] * 0.6)
    paint(albedo, brow, p["brow_rgb"])
    height += 0.015 * brow
