"""legan_tf.evaluation.translation_report and scripts/compare_translations.py: the learning check for people."""

import json
import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from PIL import Image

from legan_tf import visualize
from legan_tf.evaluation import translation_metrics
from legan_tf.evaluation.translation_metrics import ATTRIBUTES
from legan_tf.evaluation.translation_report import (SAMPLE_CELL_PX, SAMPLE_DPI, SAMPLE_HSPACE, SAMPLE_WSPACE,
                                                    comparison_table, plot_samples)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPARE_SCRIPT = os.path.join(REPO, "scripts", "compare_translations.py")


PANELS = ("input", "translated", "exact target", "|diff|")  # per edit mode, left to right
NAMES = {"expression": ["neutral", "smile", "scream"], "lighting": ["l00", "l01"]}


def _face(rgb):
    """An 8 px face of one colour, in [-1, 1] (its uint8 levels are exactly `rgb`)."""
    return np.full((8, 8, 3), np.asarray(rgb, np.float32) / 127.5 - 1.0, np.float32)


def _samples(attributes, rows):
    """Sample rows whose every face has its own colour (so a cell shows which face it holds); in each mode the
    classifier reads the targets of row 0 and misses those of the other rows."""
    modes = translation_metrics.edit_modes(attributes)
    ids = {name: np.arange(rows) % len(NAMES[name]) for name in ATTRIBUTES}
    shown = {}
    for index, (mode, edited) in enumerate(modes.items()):
        targets = {name: (ids[name] + 1) % len(NAMES[name]) for name in ATTRIBUTES}
        predicted = {name: np.where(np.arange(rows) == 0, targets[name], ids[name]) for name in attributes}
        shown[mode] = translation_metrics.ModeSamples(
            edited, targets, truth=np.stack([_face((40 + 30 * index, 20 * row, 200)) for row in range(rows)]),
            translated=np.stack([_face((230, 40 + 30 * index, 20 * row)) for row in range(rows)]),
            predicted=predicted)
    inputs = np.stack([_face((20 * row, 180, 60)) for row in range(rows)])
    return translation_metrics.TranslationSamples(tuple(attributes), inputs, ids, shown)


def _draw(samples, path):
    plot_samples(samples, NAMES, str(path))
    with Image.open(path) as figure:
        assert figure.format == "PNG"
        return np.asarray(figure.convert("RGB"))


def _cell_colours(samples):
    """{(row, column): the uint8 colour the cell must show}: the faces passed in, and the |diff| panel's colour of
    mean |translated - truth| (one value per cell: the faces are flat) on inferno's scale from 0 to 1."""
    colours = {}
    for index, shown in enumerate(samples.modes.values()):
        for row in range(len(samples.inputs)):
            error = float(np.abs(shown.translated[row] - shown.truth[row]).mean())
            faces = [visualize.to_uint8(face)[0, 0] for face in
                     (samples.inputs[row], shown.translated[row], shown.truth[row])]
            for panel, colour in enumerate([*faces, matplotlib.colormaps["inferno"](error, bytes=True)[:3]]):
                colours[row, len(PANELS) * index + panel] = np.asarray(colour, np.uint8)
    return colours


def test_sample_figure_shows_each_face_passed_in_four_panels_per_mode_and_a_row_per_sample(tmp_path):
    cell, dpi = SAMPLE_CELL_PX, SAMPLE_DPI
    pitch_x, pitch_y = cell * (1 + SAMPLE_WSPACE), cell * (1 + SAMPLE_HSPACE)
    pad = matplotlib.rcParams["savefig.pad_inches"] * dpi  # the tight crop's margin around what is drawn
    heights = {}
    for attributes, rows in ((ATTRIBUTES, 2), (ATTRIBUTES, 3), (("expression",), 2)):
        samples = _samples(attributes, rows)
        picture = _draw(samples, tmp_path / f"samples_{len(attributes)}_{rows}.png")
        columns = len(PANELS) * len(samples.modes)
        # Across, the crop holds the cells and the gaps between them (titles and captions are narrower than a
        # cell), and the pad each side; it is rounded to whole pixels, hence one pixel either way.
        assert abs(picture.shape[1] - (columns * cell + (columns - 1) * SAMPLE_WSPACE * cell + 2 * pad)) <= 1
        heights[len(samples.modes), rows] = picture.shape[0]

        # The first cell (row 0, the first mode's input) is the top-left run of its face's colour.
        colours = _cell_colours(samples)
        ys, xs = np.nonzero((picture == colours[0, 0]).all(axis=-1))
        top, left = ys.min(), xs.min()
        assert top > 0 and left == round(pad)  # titles above it; nothing but the pad to its left
        inset = 3  # cells sit at fractional pixels (a gap is 6.6 px): their edges may blend, their insides not
        for (row, column), colour in colours.items():
            y, x = round(top + row * pitch_y), round(left + column * pitch_x)
            inside = picture[y + inset:y + cell - inset, x + inset:x + cell - inset]
            # Nearest-neighbour upscaling of a flat face copies its colour to every pixel of the cell.
            assert inside.shape[:2] == (cell - 2 * inset,) * 2 and (inside == colour).all(), (row, column)
            caption = picture[y + cell:round(y + pitch_y), x:x + cell].astype(int)
            red, green, blue = caption[..., 0], caption[..., 1], caption[..., 2]
            if column % len(PANELS) == 1:
                # The translation's caption: green where the classifier reads every edited target (row 0 only).
                greens, reds = (green - np.maximum(red, blue) > 60).sum(), (red - np.maximum(green, blue) > 60).sum()
                assert (greens > 0, reds > 0) == ((True, False) if row == 0 else (False, True)), (row, column)
            else:
                assert (caption.max(axis=-1) < 100).any(), (row, column)  # a black caption under the cell
            if row == 0:
                assert (picture[:top - inset, x:x + cell].max(axis=-1) < 100).any(), column  # the panel's title
    # Each row adds a cell and the gap under it; each picture is rounded to whole pixels.
    assert abs(heights[3, 3] - heights[3, 2] - pitch_y) <= 1
    assert heights[1, 2] == heights[3, 2]  # the rows, titles and captions are those of every mode


def test_comparison_table_puts_runs_side_by_side_and_marks_missing_figures(tmp_path):
    stargan = {"both/accuracy/expression": 0.84, "both/l1_reduction": 0.538}
    legan = {"both/accuracy/expression": 0.943, "both/l1_reduction": 0.534, "lighting_only/kept/expression": 0.923}
    table = comparison_table({"StarGAN": stargan, "LEGAN": legan}).splitlines()
    assert table[0] == "| figure | StarGAN | LEGAN |"
    assert "| target expression recognised (both edited) | 84.0% | 94.3% |" in table
    assert "| lighting-only edits keep the expression | - | 92.3% |" in table
    assert not any("lighting recognised" in line for line in table)  # no run has it

    run = tmp_path / "legan-run"
    (run / "evaluation").mkdir(parents=True)
    (run / "evaluation" / "translation_metrics.json").write_text(json.dumps({"metrics": legan}))
    done = subprocess.run([sys.executable, COMPARE_SCRIPT, f"--runs=LEGAN={run},{run}"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| figure | LEGAN | legan-run |" in done.stdout
    missing = subprocess.run([sys.executable, COMPARE_SCRIPT, f"--runs={tmp_path}"], capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 1 and "run scripts/evaluate_translation.py first" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_comparison_table_shows_seed_groups_as_mean_and_range(tmp_path):
    seeds = [{"lighting_only/kept/expression": value, "both/l1_reduction": 0.66} for value in (0.85, 0.91, 0.88)]
    seeds[2].pop("both/l1_reduction")
    table = comparison_table({"LEGAN": seeds, "StarGAN": {"lighting_only/kept/expression": 0.877}}).splitlines()
    assert table[0] == "| figure | LEGAN (3 runs) | StarGAN |"
    assert "| lighting-only edits keep the expression | 88.0% (85.0-91.0) | 87.7% |" in table
    assert "| L1 to the exact target, reduction against the input | 66.0% (66.0-66.0) | - |" in table
    with pytest.raises(ValueError, match="no runs"):
        comparison_table({"LEGAN": []})

    runs = []
    for seed, metrics in enumerate(seeds[:2]):
        run = tmp_path / f"seed{seed}"
        (run / "evaluation").mkdir(parents=True)
        (run / "evaluation" / "translation_metrics.json").write_text(json.dumps({"metrics": metrics}))
        runs.append(run)
    done = subprocess.run([sys.executable, COMPARE_SCRIPT, f"--runs=LEGAN={runs[0]},LEGAN={runs[1]}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| lighting-only edits keep the expression | 88.0% (85.0-91.0) |" in done.stdout
    twice = subprocess.run([sys.executable, COMPARE_SCRIPT, f"--runs=LEGAN={runs[0]},LEGAN={runs[0]}"],
                           capture_output=True, text=True, timeout=120)
    assert twice.returncode == 1 and "given twice under the label 'LEGAN'" in twice.stderr
    assert "Traceback" not in twice.stderr
