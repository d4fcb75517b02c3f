"""Photos of real faces that ship inside installed packages, for tests and the docs' contact sheet.

- "astronaut": Eileen Collins, NASA portrait (public domain), `skimage.data.astronaut()`, 512x512.
- "grace_hopper": Grace Hopper, US Navy photo (public domain), matplotlib's sample data, 512x600.

scikit-image is in requirements.lock (the `test` extra), not a dependency of the library.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def astronaut() -> np.ndarray:
    import skimage.data

    return np.asarray(skimage.data.astronaut())


def grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


def sample_faces() -> dict:
    """{name: (H, W, 3) uint8 RGB} of every shipped face photo."""
    return {"astronaut": astronaut(), "grace_hopper": grace_hopper()}
