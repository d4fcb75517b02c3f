"""Light layout of the face lab (after Multi-PIE's flashes) and Lambertian shading.

Directions are unit vectors in camera space: x right, y up, z toward the camera.
"""

from __future__ import annotations

import numpy as np

RING_FRACTION = 2.0 / 3.0  # share of the flashes on the horizontal ring, the rest are elevated
ELEVATION_DEGREES = 35.0
# Index 0 is "no flash": only the room's ambient light plus a weak frontal fill, so the face
# stays visible, as in Multi-PIE's frame 00.
NO_FLASH_FILL = 0.25


def _direction(azimuth_degrees: np.ndarray, elevation_degrees: np.ndarray) -> np.ndarray:
    azimuth = np.radians(azimuth_degrees)
    elevation = np.radians(elevation_degrees)
    return np.stack([np.sin(azimuth) * np.cos(elevation),
                     np.sin(elevation),
                     np.cos(azimuth) * np.cos(elevation)], axis=-1)


def light_directions(num_lightings: int = 20) -> np.ndarray:
    """float32 [num_lightings, 3]: row 0 is the zero vector (no flash), the rest unit vectors.

    Two thirds of the flashes sit on a horizontal ring from azimuth -90 to +90 degrees, the rest
    at 35 degrees elevation at azimuths interleaved between them; flashes are ordered by azimuth
    (ring before elevated on a tie), so neighbouring ids are neighbouring lights.
    """
    if int(num_lightings) != num_lightings or num_lightings < 2:
        raise ValueError(f"num_lightings must be an integer >= 2, got {num_lightings!r}")
    flashes = int(num_lightings) - 1
    ring_count = max(1, int(round(flashes * RING_FRACTION)))
    elevated_count = flashes - ring_count
    ring = np.linspace(-90.0, 90.0, ring_count) if ring_count > 1 else np.zeros(1)
    elevated = np.linspace(-90.0, 90.0, elevated_count + 2)[1:-1]
    azimuths = np.concatenate([ring, elevated])
    elevations = np.concatenate([np.zeros(ring_count), np.full(elevated_count, ELEVATION_DEGREES)])
    order = np.lexsort((elevations, azimuths))
    flash_directions = _direction(azimuths[order], elevations[order])
    return np.concatenate([np.zeros((1, 3)), flash_directions]).astype(np.float32)


def effective_lights(directions: np.ndarray) -> np.ndarray:
    """Per-sample light vectors [B, 3]; the no-flash zero vector becomes the weak frontal fill."""
    directions = np.asarray(directions, dtype=np.float32)
    no_flash = np.linalg.norm(directions, axis=-1, keepdims=True) == 0.0
    return np.where(no_flash, np.array([0.0, 0.0, NO_FLASH_FILL], dtype=np.float32), directions)


def lambertian(normals: np.ndarray, lights: np.ndarray, ambient: float) -> np.ndarray:
    """Shading [B,S,S] = ambient + (1 - ambient) * max(0, n . l) for normals [B,S,S,3], lights [B,3]."""
    cosine = np.einsum("bhwc,bc->bhw", normals, lights)
    return ambient + (1.0 - ambient) * np.clip(cosine, 0.0, None)
