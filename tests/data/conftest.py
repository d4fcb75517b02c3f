"""Tiny datasets written with PIL into tmp_path, one per layout of docs/data_formats.md."""

import csv
import dataclasses
import os
from typing import List, Optional

import numpy as np
import pytest
from PIL import Image

from legan_tf.data import DataConfig, MULTIPIE_EXPRESSIONS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_WIDTH, IMAGE_HEIGHT = 20, 16   # not square, so the centre crop matters
IMAGE_SIZE = 8
LIGHTINGS = ("00", "01", "02")
RGBD_EXPRESSIONS = ("happy", "neutral", "sadness")
DEPTH_LEVEL = 0.6                    # the face's depth in every fixture depth map, as a fraction


def save_rgb(path, seed, width=IMAGE_WIDTH, height=IMAGE_HEIGHT, fmt=None):
    """A left-right asymmetric colour image (red rises with x), distinct per seed."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    pixels = np.stack([x, rng.uniform(0, 255, (height, width)),
                       np.full((height, width), (seed * 37) % 256)], -1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)


def save_depth(path, bits, width=IMAGE_WIDTH, height=IMAGE_HEIGHT):
    """Depth 0 (background) on the left quarter, DEPTH_LEVEL of the dtype maximum elsewhere."""
    dtype, top = (np.uint8, 255) if bits == 8 else (np.uint16, 65535)
    depth = np.full((height, width), round(DEPTH_LEVEL * top), dtype)
    depth[:, : width // 4] = 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(depth).save(path)


def save_normals(path, width=IMAGE_WIDTH, height=IMAGE_HEIGHT):
    """Every normal points along +x (pixel 255, 128, 128)."""
    normals = np.zeros((height, width, 3), np.uint8) + np.array([255, 128, 128], np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(normals).save(path)


def save_mask(path, width=IMAGE_WIDTH, height=IMAGE_HEIGHT):
    """Face on the right three quarters, like the depth maps."""
    mask = np.full((height, width), 255, np.uint8)
    mask[:, : width // 4] = 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(mask).save(path)


def truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


@dataclasses.dataclass
class Layout:
    """One fixture dataset: its config, manifest rows (None for folders) and where faults point."""

    data_format: str
    data_path: str
    origin: str                   # how fault messages name the manifest / folder
    config_kwargs: dict
    header: Optional[List[str]] = None
    rows: Optional[List[dict]] = None

    @property
    def base(self):
        return self.data_path if self.data_format == "folder" else os.path.dirname(self.data_path)

    @property
    def count(self):
        return len(self.rows) if self.rows is not None else len(self.folder_files())

    def folder_files(self):
        return sorted(f"{d}/{f}" for d in os.listdir(self.data_path)
                      for f in os.listdir(os.path.join(self.data_path, d)))

    def config(self, **overrides):
        kwargs = dict(data_format=self.data_format, data_path=self.data_path,
                      image_size=IMAGE_SIZE, **self.config_kwargs)
        kwargs.update(overrides)
        return DataConfig(**kwargs)

    def write_manifest(self):
        with open(self.data_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.header)
            writer.writeheader()
            writer.writerows(self.rows)

    def set_cell(self, row, column, value):
        """Changes data row `row` (1-based) and rewrites the manifest."""
        self.rows[row - 1][column] = value
        self.write_manifest()

    def file(self, relative):
        return os.path.join(self.base, relative)

    def image_of(self, row):
        """The image path as the fault message names it: manifest cell, or folder-relative path."""
        return self.rows[row - 1]["image"] if self.rows is not None else self.folder_files()[row - 1]


def make_ratings(root):
    rows = []
    for index in range(12):
        image = f"images/r{index:02d}.png"
        save_rgb(os.path.join(root, image), seed=index)
        rows.append({"image": image, "mean": f"{1 + index * 9 / 11:.3f}", "std": f"{index / 10:.2f}",
                     "source": f"src{index // 2}", "generator": "stylegan" if index < 6 else "progan"})
    layout = Layout("ratings", os.path.join(root, "ratings.csv"), "ratings.csv", {},
                    ["image", "mean", "std", "source", "generator"], rows)
    layout.write_manifest()
    return layout


def make_multipie(root):
    rows = []
    for subject in range(3):
        for expression in range(len(MULTIPIE_EXPRESSIONS) - 1):   # no "scream": a zero count
            index = subject * 10 + expression
            image, mask = f"images/s{subject}_e{expression}.png", f"masks/s{subject}_e{expression}.png"
            save_rgb(os.path.join(root, image), seed=index)
            save_mask(os.path.join(root, mask))
            # Labels given both ways: names for even subjects, ids for odd ones.
            rows.append({"image": image, "subject": f"{subject:03d}", "session": "1",
                         "lighting": str(expression % 3) if subject % 2 else LIGHTINGS[expression % 3],
                         "expression": (str(expression) if subject % 2
                                        else MULTIPIE_EXPRESSIONS[expression]),
                         "mask": mask})
    layout = Layout("multipie", os.path.join(root, "manifest.csv"), "manifest.csv",
                    {"lighting_names": LIGHTINGS},
                    ["image", "subject", "session", "lighting", "expression", "mask"], rows)
    layout.write_manifest()
    return layout


def make_folder(root):
    folder = os.path.join(root, "faces")
    for expression in range(4):                     # squint/disgust/scream have no folder
        name = MULTIPIE_EXPRESSIONS[expression]
        for index in range(2):
            save_rgb(os.path.join(folder, name, f"{index}.png"), seed=expression * 2 + index)
        save_rgb(os.path.join(folder, name, "2.jpg"), seed=50 + expression, fmt="JPEG")
    return Layout("folder", folder, "folder faces", {})


def make_csv(root):
    rows = []
    for index in range(8):
        image = f"pics/{index}.jpg"
        save_rgb(os.path.join(root, image), seed=index, fmt="JPEG")
        rows.append({"image": image, "expression": MULTIPIE_EXPRESSIONS[index % 3],
                     "subject": f"p{index % 4}"})
    layout = Layout("csv", os.path.join(root, "labels.csv"), "labels.csv",
                    {"label_columns": ("expression",), "lighting_names": ()},
                    ["image", "expression", "subject"], rows)
    layout.write_manifest()
    return layout


def make_rgbd(root):
    rows = []
    for index in range(8):
        bits = 8 if index % 2 == 0 else 16
        image, depth, normals = f"rgb/{index}.png", f"depth/{index}.png", f"normals/{index}.png"
        save_rgb(os.path.join(root, image), seed=index)
        save_depth(os.path.join(root, depth), bits)
        save_normals(os.path.join(root, normals))
        rows.append({"image": image, "depth": depth, "normals": normals,
                     "expression": RGBD_EXPRESSIONS[index % 3], "subject": f"id{index // 2}"})
    layout = Layout("rgbd", os.path.join(root, "pairs.csv"), "pairs.csv",
                    {"expression_names": RGBD_EXPRESSIONS, "lighting_names": ()},
                    ["image", "depth", "normals", "expression", "subject"], rows)
    layout.write_manifest()
    return layout


MAKERS = {"ratings": make_ratings, "multipie": make_multipie, "folder": make_folder,
          "csv": make_csv, "rgbd": make_rgbd}


@pytest.fixture
def make_layout(tmp_path):
    """make_layout(name) writes a fresh fixture dataset of that layout under tmp_path."""
    def make(name):
        root = tmp_path / name
        root.mkdir()
        return MAKERS[name](str(root))
    return make
