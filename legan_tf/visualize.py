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
            axis.imshow(images[index], interpolation="nearest")  # small faces stay sharp, not smeared
            axis.set_title(captions[index], fontsize=9, color=(colours[index] if colours else "black"))
    return figure_to_array(figure)


def save_png(array: np.ndarray, path: str) -> None:
    Image.fromarray(array).save(path)


# Small faces are shown at least this large on screen (whole-pixel nearest-neighbour upscaling): a 32 px
# face at 1:1 is too small to judge.
MIN_CELL_PX = 96
TITLE_FONT_PX = 14


def _title_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # a Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def upscale(images: np.ndarray, min_size: int = MIN_CELL_PX) -> np.ndarray:
    """[N, H, W, C] images repeated by a whole factor so that H is at least `min_size` (nearest neighbour)."""
    factor = max(1, -(-min_size // images.shape[1]))
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2) if factor > 1 else images


def titled_mosaic(columns: list[np.ndarray], titles: list[str], gap: int = 2, min_cell: int = MIN_CELL_PX,
                  font_px: int = TITLE_FONT_PX) -> np.ndarray:
    """Columns of equally sized uint8 images ([rows, H, W, 3] each) side by side, a title above each.

    Cells are upscaled by a whole factor to at least `min_cell` pixels (nearest neighbour, so every
    generated pixel stays visible as it is), and titles are drawn at `font_px`.
    """
    from PIL import ImageDraw

    columns = [upscale(np.asarray(column), min_cell) for column in columns]
    rows, height, width = columns[0].shape[:3]
    font = _title_font(font_px)
    title_widths = [ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=font) for title in titles]
    title_height = font_px + 6
    # Titles longer than a cell would overlap the next one; widen the cells' pitch to fit them.
    pitch = int(max(width, max(title_widths) + 4)) + gap
    canvas = np.full((title_height + rows * (height + gap), len(columns) * pitch, 3), 255, np.uint8)
    for index, column in enumerate(columns):
        for row in range(rows):
            top = title_height + row * (height + gap)
            canvas[top:top + height, index * pitch:index * pitch + width] = column[row]
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for index, title in enumerate(titles):
        draw.text((index * pitch + 1, 2), title, fill=(0, 0, 0), font=font)
    return np.asarray(picture)


def row_labelled_mosaic(columns: list[np.ndarray], titles: list[str], row_labels: list[str], gap: int = 2,
                        min_cell: int = MIN_CELL_PX) -> np.ndarray:
    """`titled_mosaic` with a label left of each row (a label may hold several lines)."""
    from PIL import ImageDraw

    mosaic = titled_mosaic([np.asarray(column) for column in columns], list(titles), gap=gap, min_cell=min_cell)
    height = upscale(np.asarray(columns[0][:1]), min_cell).shape[1]
    title_height = TITLE_FONT_PX + 6
    font = _title_font(TITLE_FONT_PX)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = int(max([measure.textlength(line, font=font) for label in row_labels for line in label.split("\n")]
                    + [0])) + 10
    panel = Image.fromarray(np.full((mosaic.shape[0], width, 3), 255, np.uint8))
    draw = ImageDraw.Draw(panel)
    for row, label in enumerate(row_labels):
        lines = label.split("\n")
        top = title_height + row * (height + gap) + (height - len(lines) * (TITLE_FONT_PX + 4)) // 2
        for index, line in enumerate(lines):
            draw.text((4, top + index * (TITLE_FONT_PX + 4)), line, fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(panel), mosaic], axis=1)
