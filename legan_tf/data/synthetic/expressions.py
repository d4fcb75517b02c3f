"""Expression classes of the face lab and the deformations that realise them.

Each class is a small set of facial controls (brow raise and tilt, eye opening, mouth curve,
opening, width and asymmetry, cheek raise, nose wrinkle, brow furrow, upper-lip raise, lip press).
`apply_expression` turns them into changes of an identity's layout, which move both geometry and
albedo; `expression_wrinkles` adds the creases (forehead lines, brow furrow, nose wrinkles,
nasolabial folds) that only exist under an expression.

The classes are deliberately far apart in control space, each with at least two cues a small CNN
can see at 64 px under any light, so labels are learnable from the pixels.
"""

from __future__ import annotations

import numpy as np

from legan_tf.data.synthetic.geometry import Grid, coverage, gaussian

EXPRESSION_SETS = {
    "multipie": ("neutral", "smile", "surprise", "squint", "disgust", "scream"),
    "affectnet": ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sadness", "surprise"),
}

NEUTRAL = {
    "brow_raise": 0.0,  # + raises both brows
    "brow_tilt": 0.0,  # + lifts the inner ends (sadness, fear), - pulls them down (anger)
    "eye_open": 1.0,  # multiplies the eye opening
    "mouth_curve": 0.0,  # + corners up, - corners down
    "mouth_open": 0.0,  # 0 closed .. 1 fully open (drops the jaw)
    "mouth_width": 1.0,  # multiplies the mouth width
    "mouth_asym": 0.0,  # + lifts only the right mouth corner (contempt)
    "cheek_raise": 0.0,
    "nose_wrinkle": 0.0,
    "brow_furrow": 0.0,
    "upper_lip_raise": 0.0,
    "lip_press": 0.0,  # thins the lips
    "chin_raise": 0.0,  # pushes the chin boss up and out
}

_SMILE = {"eye_open": 0.75, "mouth_curve": 1.0, "mouth_open": 0.25, "mouth_width": 1.2,
          "cheek_raise": 1.0}
_SURPRISE = {"brow_raise": 1.0, "brow_tilt": 0.1, "eye_open": 1.6, "mouth_open": 0.9,
             "mouth_width": 0.72}
_DISGUST = {"brow_raise": -0.5, "brow_tilt": -0.3, "eye_open": 0.6, "mouth_curve": -0.6,
            "mouth_open": 0.12, "mouth_width": 0.95, "cheek_raise": 0.4, "nose_wrinkle": 1.0,
            "brow_furrow": 0.5, "upper_lip_raise": 1.0, "chin_raise": 0.3}

EXPRESSION_CONTROLS = {
    "neutral": {},
    "smile": _SMILE,
    "happy": _SMILE,
    "surprise": _SURPRISE,
    "squint": {"brow_raise": -0.35, "eye_open": 0.22, "cheek_raise": 0.5, "nose_wrinkle": 0.3,
               "brow_furrow": 0.3},
    "disgust": _DISGUST,
    "scream": {"brow_raise": -0.4, "brow_tilt": -0.5, "eye_open": 0.35, "mouth_curve": -0.2,
               "mouth_open": 1.0, "mouth_width": 1.3, "cheek_raise": 0.5, "nose_wrinkle": 0.6,
               "brow_furrow": 0.7, "upper_lip_raise": 0.5},
    "anger": {"brow_raise": -0.7, "brow_tilt": -1.0, "eye_open": 0.8, "mouth_curve": -0.35,
              "mouth_width": 0.85, "nose_wrinkle": 0.3, "brow_furrow": 1.0, "lip_press": 1.0,
              "chin_raise": 0.7},
    "contempt": {"eye_open": 0.9, "mouth_asym": 1.0, "mouth_width": 1.05},
    "fear": {"brow_raise": 0.8, "brow_tilt": 1.0, "eye_open": 1.5, "mouth_curve": -0.45,
             "mouth_open": 0.4, "mouth_width": 1.3, "brow_furrow": 0.3, "upper_lip_raise": 0.3},
    "sadness": {"brow_raise": 0.1, "brow_tilt": 1.1, "eye_open": 0.75, "mouth_curve": -1.0,
                "mouth_width": 0.95, "brow_furrow": 0.3, "chin_raise": 1.0},
}


def expression_controls(name: str, expressiveness: float = 1.0) -> dict[str, float]:
    """Controls of one class, with every deviation from neutral scaled by `expressiveness`."""
    if name not in EXPRESSION_CONTROLS:
        raise ValueError(f"unknown expression {name!r}; known: {sorted(EXPRESSION_CONTROLS)}")
    return {key: neutral + expressiveness * (EXPRESSION_CONTROLS[name].get(key, neutral) - neutral)
            for key, neutral in NEUTRAL.items()}


def apply_expression(layout: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """A copy of one identity's neutral layout deformed into expression `name`."""
    c = expression_controls(name, float(layout["expressiveness"]))
    deformed = dict(layout)
    deformed["brow_gap"] = layout["brow_gap"] + 0.07 * c["brow_raise"]
    deformed["brow_tilt"] = c["brow_tilt"]
    deformed["eye_open"] = c["eye_open"]
    deformed["mouth_curve"] = c["mouth_curve"]
    deformed["mouth_open"] = c["mouth_open"]
    deformed["mouth_w"] = layout["mouth_w"] * c["mouth_width"]
    deformed["mouth_asym"] = c["mouth_asym"]
    deformed["jaw_drop"] = 0.11 * c["mouth_open"]
    deformed["upper_lip_raise"] = c["upper_lip_raise"]
    deformed["lip_press"] = c["lip_press"]
    deformed["chin_raise"] = c["chin_raise"]
    deformed["nostril_flare"] = 0.8 * c["nose_wrinkle"]
    # A one-sided smile lifts its own cheek only.
    deformed["cheek_raise_left"] = c["cheek_raise"]
    deformed["cheek_raise_right"] = c["cheek_raise"] + 0.8 * c["mouth_asym"]
    deformed["forehead_lines"] = max(c["brow_raise"], 0.0)
    deformed["brow_furrow"] = c["brow_furrow"]
    deformed["nose_wrinkle"] = c["nose_wrinkle"]
    return {key: np.asarray(value, dtype=np.float64) for key, value in deformed.items()}


def expression_wrinkles(grid: Grid, p: dict[str, np.ndarray]):
    """Height change [B,S,S] and crease darkness [B,S,S] (0 none .. 1 black) of a batch layout."""
    x, y, pixel = grid.x, grid.y, grid.pixel
    brow_y = p["eye_y"] + p["brow_gap"]
    height = np.zeros(np.broadcast_shapes(x.shape, p["eye_y"].shape), dtype=np.float32)
    crease = np.zeros_like(height)

    # Forehead lines: horizontal ripples above raised brows.
    ripple = np.cos(2.0 * np.pi * (y - brow_y) / 0.1)
    window = gaussian(x, y, 0.0, brow_y + 0.2, 0.3, 0.07)
    height -= 0.012 * p["forehead_lines"] * window * np.clip(ripple, 0.0, None)
    crease += 0.5 * p["forehead_lines"] * window * np.clip(ripple, 0.0, None) ** 6

    # Brow furrow: two vertical creases between the brows.
    span = coverage(np.abs(y - (brow_y - 0.02)) - 0.08, pixel)
    for side in (-1.0, 1.0):
        line = coverage(np.abs(x - side * 0.045) - 0.5 * pixel, pixel) * span
        height -= 0.02 * p["brow_furrow"] * np.exp(-0.5 * ((x - side * 0.045) / 0.02) ** 2) * span
        crease += 0.45 * p["brow_furrow"] * line

    # Nose wrinkles: horizontal ripples across the upper bridge.
    bridge = gaussian(x, y, 0.0, p["eye_y"] - 0.07, 1.3 * p["nose_w"], 0.05)
    nose_ripple = np.clip(np.cos(2.0 * np.pi * (y - p["eye_y"]) / 0.06), 0.0, None)
    height += 0.015 * p["nose_wrinkle"] * bridge * nose_ripple
    crease += 0.5 * p["nose_wrinkle"] * bridge * nose_ripple**6

    # Nasolabial folds: from beside the nose to the mouth corners, deepened by a raised cheek.
    corner_y = p["mouth_y"] - 0.055 * p["mouth_open"]
    along = np.clip((p["nose_y"] - y) / (p["nose_y"] - corner_y), 0.0, 1.0)
    in_span = coverage(np.abs(y - (p["nose_y"] + corner_y) / 2) - (p["nose_y"] - corner_y) / 2, pixel)
    for side, cheek_raise in ((-1.0, p["cheek_raise_left"]), (1.0, p["cheek_raise_right"])):
        strength = np.clip(cheek_raise + 0.5 * p["nose_wrinkle"], 0.0, 1.5)
        fold_x = side * (1.4 * p["nose_w"] + (1.1 * p["mouth_w"] - 1.4 * p["nose_w"]) * along
                         + 0.04 * np.sin(np.pi * along))
        line = coverage(np.abs(x - fold_x) - 0.5 * pixel, pixel) * in_span
        crease += 0.4 * strength * line
        height += 0.02 * strength * np.exp(-0.5 * ((x - fold_x - side * 0.04) / 0.03) ** 2) * in_span
    return height, np.clip(crease, 0.0, 0.8)
