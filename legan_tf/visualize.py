"""Pictures for people: image grids and labelled figures as uint8 arrays or PNG files."""

import io

import matplotlib

matplotlib.use("Agg")  # no screen on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats -> uint8."""
    return np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def figure_to_array(figure) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, bbox_inches="tight")
    plt.close(figure)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def labelled_grid(images: np.ndarray, captions: list[str], colours: list[str] | None = None, columns: int = 8):
    """A grid of uint8 images, each with a caption underneath; returns a uint8 HxWx3 array."""
    count = len(images)
    rows = max(1, -(-count // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6), dpi=100, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < count:
            axis.imshow(images[index])
            axis.set_title(captions[index], fontsize=6, color=(colours[index] if colours else "black"))
    return figure_to_array(figure)


def save_png(array: np.ndarray, path: str) -> None:
    Image.fromarray(array).save(path)


def titled_mosaic(columns: list[np.ndarray], titles: list[str], gap: int = 2, title_height: int = 14) -> np.ndarray:
    """Columns of equally sized uint8 images ([rows, H, W, 3] each) side by side, a title above each.

    Pixel-exact (no resampling), so small images stay readable when zoomed.
    """
    from PIL import ImageDraw

    rows, height, width = columns[0].shape[:3]
    # Titles longer than a cell would overlap the next one; widen the cells' pitch to fit them.
    pitch = max(width, 6 * max(len(title) for title in titles) + 2) + gap
    canvas = np.full((title_height + rows * (height + gap), len(columns) * pitch, 3), 255, np.uint8)
    for index, column in enumerate(columns):
        for row in range(rows):
            top = title_height + row * (height + gap)
            canvas[top:top + height, index * pitch:index * pitch + width] = column[row]
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for index, title in enumerate(titles):
        draw.text((index * pitch + 1, 1), title, fill=(0, 0, 0))
    return np.asarray(picture)
