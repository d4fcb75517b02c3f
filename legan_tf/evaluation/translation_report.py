"""The learning check for people: the verdict and kept-breakdown text, the cross-run comparison table
and the sample figure. The figures themselves come from translation_metrics."""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np

from legan_tf import visualize
from legan_tf.evaluation.translation_metrics import TranslationSamples


# --- text -----------------------------------------------------------------------------------------

def format_kept_breakdown(breakdown: Mapping[str, dict], worst: int = 3) -> str:
    """A few lines per kept figure: the rate per source class, the commonest misreadings and the
    edits under which the attribute is lost most often."""
    lines = []
    for key, entry in breakdown.items():
        lines.append(f"{key}:")
        lines.append("  kept by source: " + ", ".join(f"{name} {100 * row['rate']:.0f}%"
                                                      for name, row in entry["by_source"].items()))
        if entry["lost_to"]:
            lines.append("  lost most often: " + ", ".join(f"{row['source']} read as {row['read_as']} "
                                                           f"{row['count']}/{row['of']}"
                                                           for row in entry["lost_to"][:worst]))
        for field, table in entry.items():
            if field.startswith("by_target_"):
                ranked = sorted(table.items(), key=lambda item: (item[1]["rate"], item[0]))[:worst]
                lines.append(f"  worst targets of {field[len('by_target_'):]}: "
                             + ", ".join(f"{name} {row['kept']}/{row['edits']}" for name, row in ranked))
    return "\n".join(lines)


def format_verdict(verdict, reported=()) -> str:
    width = max([len(name) for name, *_ in verdict] + [len(name) for name, _ in reported] + [6])
    lines = [f"{'check':{width}}  {'value':>7}  {'target':>7}  result"]
    lines += [f"{name:{width}}  {value:>7.3f}  {f'>={target:.2f}':>7}  {'pass' if passed else 'FAIL'}"
              for name, value, target, passed in verdict]
    if reported:
        lines += ["", f"{'reported':{width}}  {'value':>7}"]
        lines += [f"{name:{width}}  {value:>7.3f}" for name, value in reported]
    return "\n".join(lines)


# --- comparing runs -------------------------------------------------------------------------------

# The rows of a comparison table: the learning-check targets first, then what explains them.
COMPARISON_ROWS = (
    ("both/accuracy/expression", "target expression recognised (both edited)"),
    ("both/accuracy/lighting", "target lighting recognised (both edited)"),
    ("both/l1_reduction", "L1 to the exact target, reduction against the input"),
    ("both/l1_out", "  L1 to the exact target ([-1, 1] scale)"),
    ("both/l1_in", "  the same for the unedited input"),
    ("both/region_l1_reduction", "L1 in the change region (the pixels the edit should change): reduction"),
    ("lighting_only/kept/expression", "lighting-only edits keep the expression"),
    ("expression_only/kept/lighting", "expression-only edits keep the lighting"),
    ("expression_only/accuracy/expression", "expression-only edits: target recognised"),
    ("lighting_only/accuracy/lighting", "lighting-only edits: target recognised"),
    ("expression_only/region_l1_reduction", "expression-only edits: change-region L1 reduction"),
    ("lighting_only/region_l1_reduction", "lighting-only edits: change-region L1 reduction"),
    # Depth consistency (evaluate_translation.py --depth_judge): L1 values, not rates.
    ("both/geometry_l1_out", "depth consistency: L1 of G_depth(translation) to the target's exact geometry"),
    ("both/geometry_l1_in", "  the same for the unedited input"),
    ("both/geometry_l1_truth", "  the same for the exact target render (the judge's floor)"),
    ("both/geometry_region_l1_reduction", "depth consistency in the geometry change region: reduction vs input"),
)
# Rows whose values are L1 distances, shown as numbers; the others are rates, shown in %.
VALUE_ROWS = ("both/l1_out", "both/l1_in", "both/geometry_l1_out", "both/geometry_l1_in", "both/geometry_l1_truth")


def comparison_table(reports: Mapping[str, Union[Mapping[str, float], Sequence[Mapping[str, float]]]]) -> str:
    """A markdown table of the COMPARISON_ROWS of several runs' metrics, one column per label.

    `reports` maps a label to one run's evaluate_translation metrics, or to a list of them: the same
    setting trained with different seeds. A list shows as "mean (min-max)" so that a difference between
    settings can be read against the spread within one; the header gives the number of runs. A figure
    a run lacks shows as a dash (for a group, it is averaged over the runs that have it).
    """
    groups = {label: [runs] if isinstance(runs, Mapping) else list(runs) for label, runs in reports.items()}
    for label, runs in groups.items():
        if not runs:
            raise ValueError(f"comparison_table: no runs under the label {label!r}")
    headers = [label if len(runs) == 1 else f"{label} ({len(runs)} runs)" for label, runs in groups.items()]
    lines = ["| figure | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for key, description in COMPARISON_ROWS:
        cells = []
        for runs in groups.values():
            scale, unit, digits = (1, "", 3) if key in VALUE_ROWS else (100, "%", 1)
            values = [scale * run[key] for run in runs if key in run]
            if not values:
                cells.append("-")
            elif len(runs) == 1:
                cells.append(f"{values[0]:.{digits}f}{unit}")
            else:
                cells.append(f"{np.mean(values):.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {description} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- the sample figure ----------------------------------------------------------------------------

# The sample figure's faces are at least this many pixels a side (whole faces, nearest neighbour), with
# captions and titles readable beside them.
SAMPLE_CELL_PX = 110
SAMPLE_DPI = 100
CAPTION_PT = 8
TITLE_PT = 9
# The gaps between cells, in cells: across (between panels) and down (between rows, room for the captions).
SAMPLE_WSPACE, SAMPLE_HSPACE = 0.06, 0.38
# The margins of the figure, in inches: above the first row (the panels' two-line titles), below, at the sides.
SAMPLE_TOP_IN, SAMPLE_BOTTOM_IN, SAMPLE_SIDE_IN = 0.5, 0.1, 0.05


def plot_samples(samples: TranslationSamples, names: Mapping[str, Sequence[str]], path: str) -> None:
    """Saves a PNG: one row per sample source; per mode the input, the translation (captioned with the
    classifier's reading, green when every edited attribute is right), the exact target and
    |translation - target|. `samples` come from translation_figures, `names` from class_names. Faces are
    drawn SAMPLE_CELL_PX (>= 96) pixels a side with nearest-neighbour scaling, so small faces stay sharp.
    """
    import matplotlib.pyplot as plt  # visualize has already selected the Agg backend

    attributes = samples.attributes
    rows = len(samples.inputs)

    def caption(labels, index):
        return " ".join(names[name][labels[name][index]] for name in attributes)

    columns = 4 * len(samples.modes)
    cell = SAMPLE_CELL_PX / SAMPLE_DPI  # inches
    wspace, hspace = SAMPLE_WSPACE, SAMPLE_HSPACE
    top, bottom, side = SAMPLE_TOP_IN, SAMPLE_BOTTOM_IN, SAMPLE_SIDE_IN
    width = cell * (columns + (columns - 1) * wspace) + 2 * side
    height = cell * (rows + (rows - 1) * hspace) + top + bottom
    figure, axes = plt.subplots(rows, columns, figsize=(width, height), dpi=SAMPLE_DPI, squeeze=False)
    figure.subplots_adjust(left=side / width, right=1 - side / width, bottom=bottom / height, top=1 - top / height,
                           wspace=wspace, hspace=hspace)
    for mode_index, (mode, shown) in enumerate(samples.modes.items()):
        error = np.abs(shown.translated - shown.truth).mean(axis=-1)  # [-1, 1] scale, as the L1 metrics
        for row in range(rows):
            correct = all(shown.predicted[name][row] == shown.targets[name][row] for name in shown.edited)
            cells = [(visualize.to_uint8(samples.inputs[row]), caption(samples.source, row), "black"),
                     (visualize.to_uint8(shown.translated[row]), caption(shown.predicted, row),
                      "green" if correct else "red"),
                     (visualize.to_uint8(shown.truth[row]), caption(shown.targets, row), "black"),
                     (error[row], f"L1 {error[row].mean():.3f}", "black")]
            for cell_index, (image, text, colour) in enumerate(cells):
                axis = axes[row, 4 * mode_index + cell_index]
                axis.axis("off")
                if image.ndim == 2:
                    axis.imshow(image, cmap="inferno", vmin=0.0, vmax=1.0, interpolation="nearest")
                else:
                    axis.imshow(image, interpolation="nearest")
                axis.text(0.5, -0.03, text, transform=axis.transAxes, ha="center", va="top", fontsize=CAPTION_PT,
                          color=colour)
        for cell_index, title in enumerate(("input", "translated", "exact target", "|diff|")):
            axes[0, 4 * mode_index + cell_index].set_title(f"{mode}\n{title}", fontsize=TITLE_PT)
    visualize.save_png(visualize.figure_to_array(figure), path)
