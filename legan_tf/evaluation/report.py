"""scripts/evaluate.py's files: metrics.json (the evaluation's numbers, `write_metrics`), report.md (the
papers' tables with their own figures beside as reference rows) and the PNG figures (sample grids,
match-score distributions, confusion matrices, the learning check's sample figure). The numbers come from
`evaluate.evaluate`'s content.

Pictures are for people: faces are upscaled by a whole factor (nearest neighbour) to at least 96 px
a cell (`visualize.titled_mosaic`), with 14 px titles and row labels.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from legan_tf import visualize
from legan_tf.evaluation.metric_sets import LAB, REAL
from legan_tf.evaluation.metrics import plot_confusion_matrices, plot_match_scores
from legan_tf.evaluation.metrics.base import MetricResult

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"

# --- the papers' own figures (reference rows) -----------------------------------------------------

POSTER = "LEGAN poster (Banerjee et al., CVPRW 2021)"
POSTER_DATASET = "Multi-PIE, frontal faces"
BODUR = "Bodur et al. (WACV 2021)"
# From the poster's results table (its text extraction interleaves the cells) and Bodur et al.'s tables
# 1-3. Our reading of the poster's last two rows:
# LEGAN 29.964 / 0.120 / 0.649 / 0.649 / 5.853 / 39.3%, real images FID 12.931, match 0.739, Q 5.921
# (docs/evaluation.md). Rates are fractions here.
PAPER_REFERENCES = [
    {"paper": POSTER, "table": "results table", "dataset": POSTER_DATASET, "model": "StarGAN",
     "values": {"fid": 38.745, "lpips": 0.126, "ssim": 0.559, "match_score": 0.635, "quality": 5.200,
                "human_preference": 0.223}},
    {"paper": POSTER, "table": "results table", "dataset": POSTER_DATASET, "model": "StarGAN w/ L_qual",
     "values": {"fid": 34.045, "lpips": 0.123, "ssim": 0.567, "match_score": 0.647, "quality": 5.391,
                "human_preference": 0.347}},
    {"paper": POSTER, "table": "results table", "dataset": POSTER_DATASET, "model": "StarGAN-v2",
     "values": {"fid": 54.842, "lpips": 0.212, "ssim": 0.415, "match_score": 0.202, "quality": 5.172,
                "human_preference": 0.0375}},
    {"paper": POSTER, "table": "results table", "dataset": POSTER_DATASET, "model": "LEGAN",
     "values": {"fid": 29.964, "lpips": 0.120, "ssim": 0.649, "match_score": 0.649, "quality": 5.853,
                "human_preference": 0.393}},
    {"paper": POSTER, "table": "results table", "dataset": POSTER_DATASET, "model": "real images",
     "values": {"fid": 12.931, "match_score": 0.739, "quality": 5.921}},
]
for _method, _setting, _values in (
        ("StarGAN", "no geometry", (0.821, 16.33, 32.96, 0.79)),
        ("Ganimation", "action units", (0.743, 18.86, 32.12, 0.74)),
        ("Gannotation", "landmarks", (0.826, 17.36, 32.54, 0.77)),
        ("StarGAN + depth (ours)", "depth map, no confidence penalty", (0.859, 14.03, 33.88, 0.82)),
        ("StarGAN + depth (ours)", "normal map, confidence penalty", (0.839, 13.29, 33.59, 0.81)),
        ("StarGAN + depth (ours)", "depth map, confidence penalty", (0.872, 13.35, 35.29, 0.84))):
    PAPER_REFERENCES.append({"paper": BODUR, "table": "Table 1", "dataset": "AffectNet",
                             "model": f"{_method}, {_setting}",
                             "values": dict(zip(("expression_rate", "fid", "psnr", "ssim"), _values))})
for _method, _values in (("StarGAN", (0.531, 39.45, 31.19, 0.75)),
                         ("StarGAN + depth (ours), depth map, confidence penalty", (0.62, 35.14, 32.57, 0.79))):
    PAPER_REFERENCES.append({"paper": BODUR, "table": "Table 2", "dataset": "RaFD", "model": _method,
                             "values": dict(zip(("expression_rate", "fid", "psnr", "ssim"), _values))})
for _weight, _rate in ((0.0, 0.821), (0.1, 0.859), (0.2, 0.861), (0.3, 0.863), (0.4, 0.863)):
    PAPER_REFERENCES.append({"paper": BODUR, "table": "Table 3", "dataset": "AffectNet",
                             "model": "StarGAN" if _weight == 0 else f"StarGAN + depth (ours), depth weight {_weight}",
                             "values": {"expression_rate": _rate}})
REFERENCE_NOTES = (
    "Reference rows are the papers' own figures on their datasets and networks (Multi-PIE at 128 px for the poster; "
    "AffectNet and RaFD for Bodur et al.), computed with their Inception, LPIPS, identity and quality networks. They "
    "show the layout and the scale the papers report; they are not comparable with numbers on the synthetic face lab.",
    "Poster: SSIM and LPIPS against the Multi-PIE ground truth of the target; match score from an identity network; "
    "quality score from Q; human preference: the share of raters preferring each model (not computed here).",
    "Bodur et al.: 'accuracy' is the expression generation rate of an independent classifier (AffectNet: 6 "
    "expressions, contempt and disgust left out; RaFD: 8); PSNR and SSIM compare the input with its reconstruction.",
)


# --- reading results ------------------------------------------------------------------------------

def _result(metrics: Mapping, key: str) -> Optional[MetricResult]:
    data = (metrics or {}).get(key)
    return MetricResult.from_json(data) if data else None


class Cells:
    """Formats the cells of one table, collecting footnotes for unavailable figures and marks."""

    def __init__(self):
        self.reasons: Dict[str, int] = {}
        self.marks: Dict[str, str] = {}

    def unavailable(self, metric: str, reason: str) -> str:
        text = f"{metric}: {reason}"
        if text not in self.reasons:
            self.reasons[text] = len(self.reasons) + 1
        return f"n/a [{self.reasons[text]}]"

    def value(self, result: Optional[MetricResult], key: str, fmt: str, metric: str, mark: str = "") -> str:
        if result is None:
            return "-"
        if not result.available:
            return self.unavailable(metric, result.reason)
        value = result.values.get(key)
        if value is None:
            return "-"
        return _format(value, fmt) + (f" {mark}" if mark else "")

    def footnotes(self) -> List[str]:
        lines = [f"{symbol} {text}" for symbol, text in self.marks.items()]
        lines += [f"[{number}] {text}" for text, number in self.reasons.items()]
        return lines


def _format(value, fmt: str) -> str:
    if isinstance(value, str) or value is None:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if fmt == "%":
        return f"{100 * value:.1f}%"
    return format(value, fmt)


def _fid(result: Optional[MetricResult], cells: Cells, label: str) -> str:
    """The FID cell. From no more images than features (rank-deficient covariances) the report prints no
    number: the cell says why (the metric's note as its footnote); the value stays in the metric's JSON for
    comparisons at equal n."""
    if result is not None and result.available and result.protocol.get("covariance_rank_deficient"):
        note = next((note for note in result.notes if "rank-deficient" in note), "the covariances are rank-deficient")
        return cells.unavailable("FID", f"too few images for a meaningful FID: {note}")
    return cells.value(result, "fid", ".2f", "FID")


def _kid(result: Optional[MetricResult], cells: Cells) -> str:
    text = cells.value(result, "kid", ".4f", "KID")
    if result is not None and result.available and "kid_standard_error" in result.values:
        text += f" ± {result.values['kid_standard_error']:.4f}"
    return text


def _psnr(result: Optional[MetricResult], cells: Cells) -> str:
    if result is not None and result.available and not math.isfinite(result.values.get("psnr", 0.0)):
        return _format(result.values.get("psnr_excluding_identical"), ".2f") + " (identical pairs left out)"
    return cells.value(result, "psnr", ".2f", "PSNR")


def _independence_marks(model: Mapping, cells: Cells):
    """(match mark, Q mark): † / ‡ where the judge is the one the generator was trained against."""
    used = model.get("judges_used_in_training", {})
    marks = []
    for name, symbol, what in (("identity", "†", "f (the identity network)"), ("quality", "‡", "Q")):
        entry = used.get(name, {})
        if entry.get("used"):
            cells.marks[f"{symbol} {model['label']}"] = (f"{what} was the generator's own training judge "
                                                         f"({entry['flag']}): not independent")
            marks.append(symbol)
        elif entry.get("used") is None:
            cells.marks[f"{symbol}? {model['label']}"] = (f"{what}: {entry['why']}; independence not checked")
            marks.append(f"{symbol}?")
        else:
            marks.append("")
    return marks


def _model_source(model: Mapping, preferred: Sequence[str]) -> Optional[str]:
    for source in preferred:
        if (model["sources"].get(source) or {}).get("available"):
            return source
    return None


def _attributes(content: Mapping) -> List[str]:
    seen = []
    for model in content["models"]:
        for name in model.get("attributes", []):
            if name not in seen:
                seen.append(name)
    return seen


def _rate_cells(result: Optional[MetricResult], attributes: Sequence[str], cells: Cells) -> List[str]:
    return [cells.value(result, f"accuracy/{name}", "%", f"generation rate ({name})") for name in attributes]


# --- the tables -----------------------------------------------------------------------------------

def poster_table(content: Mapping) -> str:
    """The LEGAN poster's layout: model x FID, KID, LPIPS, SSIM, PSNR, match, Q, generation rates; the
    baselines and the papers' figures as marked rows below. Each model's row is on the lab (exact targets)
    where there is one, else on real faces."""
    attributes = _attributes(content)
    cells = Cells()
    header = (["model", "faces", "FID ↓", "KID ↓", "LPIPS ↓", "SSIM ↑", "PSNR ↑", "match ↑", "Q ↑"]
              + [f"{name} rate ↑" for name in attributes])
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]

    def row(name, faces, metrics, match_mark="", quality_mark=""):
        ssim_paired = "ssim" in metrics
        prefix = "" if ssim_paired else "reconstruction/"
        lpips, ssim, psnr = (_result(metrics, prefix + key) for key in ("lpips", "ssim", "psnr"))
        values = [name, faces, _fid(_result(metrics, "fid"), cells, name.replace("*", "")),
                  _kid(_result(metrics, "kid"), cells),
                  cells.value(lpips, "lpips", ".3f", "LPIPS"), cells.value(ssim, "ssim", ".3f", "SSIM"),
                  _psnr(psnr, cells),
                  cells.value(_result(metrics, "match_score"), "match_score", ".3f", "match score", match_mark),
                  cells.value(_result(metrics, "quality_score"), "quality_outputs", ".3f", "quality score",
                              quality_mark)]
        values += _rate_cells(_result(metrics, "generation_rate"), attributes, cells)
        lines.append("| " + " | ".join(values) + " |")

    shown_sources = set()
    for model in content["models"]:
        source = _model_source(model, (LAB, REAL))
        match_mark, quality_mark = _independence_marks(model, cells)
        if source is None:
            reasons = "; ".join(f"{name}: {entry.get('reason')}" for name, entry in model["sources"].items())
            lines.append(f"| {model['label']} | none | " + " | ".join(
                [cells.unavailable("all figures", reasons)] + ["-"] * (len(header) - 3)) + " |")
            continue
        shown_sources.add(source)
        faces = "lab: exact targets" if source == LAB else "real: unpaired"
        row(f"**{model['label']}**", faces, model["sources"][source]["metrics"], match_mark, quality_mark)
    for baseline in content["baselines"]:
        if baseline["source"] not in shown_sources:
            continue
        faces = "lab" if baseline["source"] == LAB else "real"
        for name, metrics in baseline["rows"].items():
            row(f"*{name}* (baseline)", faces, metrics)
    poster = [reference for reference in content.get("references", []) if reference["paper"] == POSTER]
    for reference in poster:
        values = reference["values"]
        cells_ = [f"*{reference['model']}* (poster's figure)", f"paper: {reference['dataset']}",
                  _format(values.get("fid"), ".3f") if "fid" in values else "-", "-",
                  _format(values.get("lpips"), ".3f") if "lpips" in values else "-",
                  _format(values.get("ssim"), ".3f") if "ssim" in values else "-", "-",
                  _format(values.get("match_score"), ".3f") if "match_score" in values else "-",
                  _format(values.get("quality"), ".3f") if "quality" in values else "-"]
        cells_ += ["-"] * len(attributes)
        lines.append("| " + " | ".join(cells_) + " |")
    notes = ["Rows in bold are the models evaluated here; *baseline* rows put real faces in the outputs' place "
             "(lab: *real faces* = the exact target renders, scored for match with the input, Q and the "
             "classifier; *input unchanged* = the input itself, scored against the exact target: what no edit "
             "gets; real: *real faces* = Q and the classifier on the real faces with their own labels). "
             "LPIPS/SSIM/PSNR: against the exact target on the lab, of the reconstruction on real faces."]
    return "\n".join(lines + [""] + notes + [""] + cells.footnotes())


def bodur_table(content: Mapping) -> str:
    """Real faces in Bodur et al.'s layout (generation rate, FID, PSNR and SSIM of the reconstruction), with
    KID, the match score and Q beside, the real faces' baseline row and their tables 1-3 as reference rows."""
    attributes = _attributes(content)
    cells = Cells()
    header = (["model"] + [f"{name} rate ↑" for name in attributes]
              + ["FID ↓", "KID ↓", "match ↑", "Q ↑", "PSNR (rec.) ↑", "SSIM (rec.) ↑", "LPIPS (rec.) ↓"])
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    any_model = False
    for model in content["models"]:
        source = model["sources"].get(REAL) or {}
        if not source.get("available"):
            lines.append(f"| **{model['label']}** | " + " | ".join(
                [cells.unavailable("real faces", source.get("reason", "not evaluated"))]
                + ["-"] * (len(header) - 2)) + " |")
            continue
        any_model = True
        match_mark, quality_mark = _independence_marks(model, cells)
        metrics = source["metrics"]
        values = [f"**{model['label']}**"] + _rate_cells(_result(metrics, "generation_rate"), attributes, cells)
        values += [_fid(_result(metrics, "fid"), cells, f"{model['label']} (real faces)"),
                   _kid(_result(metrics, "kid"), cells),
                   cells.value(_result(metrics, "match_score"), "match_score", ".3f", "match score", match_mark),
                   cells.value(_result(metrics, "quality_score"), "quality_outputs", ".3f", "quality score",
                               quality_mark),
                   _psnr(_result(metrics, "reconstruction/psnr"), cells),
                   cells.value(_result(metrics, "reconstruction/ssim"), "ssim", ".3f", "SSIM"),
                   cells.value(_result(metrics, "reconstruction/lpips"), "lpips", ".3f", "LPIPS")]
        lines.append("| " + " | ".join(values) + " |")
    if any_model:
        for baseline in content["baselines"]:
            if baseline["source"] != REAL:
                continue
            for name, metrics in baseline["rows"].items():
                values = [f"*{name}* (baseline)"] + _rate_cells(_result(metrics, "generation_rate"), attributes, cells)
                values += ["-", "-", "-",
                           cells.value(_result(metrics, "quality_score"), "quality_outputs", ".3f", "quality score"),
                           "-", "-", "-"]
                lines.append("| " + " | ".join(values) + " |")
    for reference in content.get("references", []):
        if reference["paper"] != BODUR:
            continue
        values = reference["values"]
        row = [f"*{reference['model']}* (Bodur {reference['table']}, {reference['dataset']}: paper's figure)"]
        row += [_format(values["expression_rate"], "%") if name == "expression" and "expression_rate" in values
                else "-" for name in attributes]
        row += [_format(values["fid"], ".2f") if "fid" in values else "-", "-", "-", "-"]
        row += [_format(values[key], ".2f") if key in values else "-" for key in ("psnr", "ssim")] + ["-"]
        lines.append("| " + " | ".join(row) + " |")
    notes = ["*real faces* (baseline): the classifier on the real faces with their own labels, and Q of the real "
             "faces: the scale to read the outputs' Q against (the poster's 'real images' row)."]
    return "\n".join(lines + [""] + notes + [""] + cells.footnotes())


def learning_check_table(content: Mapping) -> Optional[str]:
    """The learning-check figures of the lab (translation_report.comparison_table) and each verdict."""
    from legan_tf.evaluation.translation_report import comparison_table

    reports, verdicts = {}, []
    for model in content["models"]:
        translation = (model["sources"].get(LAB) or {}).get("translation")
        if translation:
            reports[model["label"]] = translation["metrics"]
            failed = [row["name"] for row in translation["verdict"] if not row["passed"]]
            verdicts.append(f"- {model['label']} ({translation['kind']} check): "
                            + ("every target passed" if not failed else "NOT passed: " + ", ".join(failed)))
    if not reports:
        return None
    return comparison_table(reports) + "\n\n" + "\n".join(verdicts)


def judges_table(content: Mapping) -> str:
    names = {"classifier": "attribute classifier (generation rate)", "identity": "identity network f (match score)",
             "quality": "quality model Q (quality score)", "inception": "Inception-v3 (FID, KID)",
             "lpips": "LPIPS network", "depth": "depth network (depth consistency)"}
    questions = [f"used in training {model['label']}?" for model in content["models"]]
    lines = ["| judge | given | file | " + " | ".join(questions) + " |",
             "|---|---|---|" + "---|" * len(content["models"])]
    for name, record in content["judges"].items():
        cells = [names.get(name, name), record["flag"] + ("" if record["given"] else " (not given)"),
                 f"`{record['path']}`" if record["path"] else "-"]
        for model in content["models"]:
            entry = model["judges_used_in_training"].get(name, {})
            answer = {True: "**yes**", False: "no", None: "unknown"}[entry.get("used")]
            cells.append(f"{answer}: {entry.get('why', '')}" if record["given"] or entry.get("flag") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _notes(content: Mapping) -> List[str]:
    notes = []
    for model in content["models"]:
        for source, entry in model["sources"].items():
            for key, data in (entry.get("metrics") or {}).items():
                for note in data.get("notes", []):
                    line = f"{model['label']}, {key} ({source}): {note}"
                    if line not in notes:
                        notes.append(line)
    return notes


def _protocols(content: Mapping) -> List[str]:
    """Each metric's stored protocol, once (from the first model with the metric available)."""
    lines, seen = [], set()
    for model in content["models"]:
        for source, entry in model["sources"].items():
            for key, data in (entry.get("metrics") or {}).items():
                if key in seen or not data.get("available"):
                    continue
                seen.add(key)
                protocol = {name: value for name, value in data["protocol"].items()
                            if name not in ("model", "source", "class_names")}
                lines.append(f"- `{key}`: " + "; ".join(f"{name}: {value}" for name, value in protocol.items()))
    return lines


def write_metrics(content: Mapping, output_dir: str) -> str:
    """Writes metrics.json: the evaluation's content (every number with its protocol); returns its path."""
    path = os.path.join(output_dir, METRICS_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=1, allow_nan=False)
    return path


def write_report(content: Mapping, figures: Mapping[str, str], output_dir: str) -> str:
    """Writes report.md from metrics.json's content and the figure files; returns its path."""
    labels = ", ".join(model["label"] for model in content["models"])
    lines = [f"# Evaluation: {labels}", ""]
    if content.get("command"):
        lines += ["```bash", content["command"], "```", ""]
    lines += [f"Seed {content['seed']}. Every number is in `{METRICS_FILE}` with its protocol; the same "
              "checkpoints, judges and seed give the same numbers.", ""]
    lines += ["## The papers' table (LEGAN poster layout)", "", poster_table(content), ""]
    lines += ["## Real faces (Bodur et al.'s layout)", "", bodur_table(content), ""]
    lines += ["Reference rows:", ""] + [f"- {note}" for note in REFERENCE_NOTES] + [""]
    check = learning_check_table(content)
    if check:
        lines += ["## Learning check on the face lab (evaluate_translation.py's figures)", "", check, ""]
    lines += ["## Judges", "", judges_table(content), ""]
    lines += ["## Faces and protocol", ""]
    for name, text in content["protocol"].items():
        lines.append(f"- {name}: {text}")
    for model in content["models"]:
        for source, entry in model["sources"].items():
            if entry.get("available"):
                description = "; ".join(f"{key}: {value}" for key, value in entry["description"].items())
                lines.append(f"- {model['label']}, {source}: {description}")
            else:
                lines.append(f"- {model['label']}, {source}: unavailable — {entry['reason']}")
    lines += [""] + _protocols(content) + [""]
    notes = _notes(content)
    if notes:
        lines += ["## Notes from the metrics", ""] + [f"- {note}" for note in notes] + [""]
    if figures:
        lines += ["## Figures", ""]
        for title, name in figures.items():
            lines += [f"### {title}", "", f"![{title}]({name})", ""]
    path = os.path.join(output_dir, REPORT_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return path


# --- figures --------------------------------------------------------------------------------------

def _caption(labels: Mapping[str, np.ndarray], names: Mapping[str, Sequence[str]], row: int) -> str:
    return " ".join(names[name][int(values[row])] for name, values in labels.items() if name in names)


def _lab_grid(group, path: str) -> None:
    first = group[0]
    samples = first.lab.figures.samples
    shown = samples.modes["both"]
    names = first.lab_setup.names
    columns = [visualize.to_uint8(samples.inputs), visualize.to_uint8(shown.truth)]
    titles = ["input", "exact target"]
    for evaluation in group:
        columns.append(visualize.to_uint8(evaluation.lab.figures.samples.modes["both"].translated))
        titles.append(evaluation.run.label)
    source = {name: samples.source[name] for name in shown.edited}
    labels = [f"{_caption(source, names, row)}\n-> {_caption({n: shown.targets[n] for n in shown.edited}, names, row)}"
              for row in range(len(samples.inputs))]
    visualize.save_png(visualize.row_labelled_mosaic(columns, titles, labels), path)


def _real_grid(group, path: str) -> None:
    first = group[0]
    samples = first.real.samples
    names = first.real.names
    columns, titles = [visualize.to_uint8(samples["inputs"])], ["input"]
    for evaluation in group:
        columns.append(visualize.to_uint8(evaluation.real.samples["outputs"]))
        titles.append(evaluation.run.label)
        if evaluation.real.samples["reconstruction"] is not None:
            columns.append(visualize.to_uint8(evaluation.real.samples["reconstruction"]))
            titles.append("back to own labels")
    labels = [(f"{_caption(samples['source'], names, row)}\n" if samples["source"] else "")
              + f"-> {_caption(samples['targets'], names, row)}" for row in range(len(samples["inputs"]))]
    visualize.save_png(visualize.row_labelled_mosaic(columns, titles, labels), path)


def _groups(evaluations, source: str):
    """Models whose source is the same faces and draw (identical description), in order."""
    groups: Dict[str, list] = {}
    for evaluation in evaluations:
        entry = evaluation.record["sources"].get(source) or {}
        passed = evaluation.lab if source == LAB else evaluation.real
        if not entry.get("available") or passed is None:
            continue
        if source == LAB and passed.figures.samples is None:
            continue
        key = json.dumps(entry["description"], sort_keys=True, default=str)
        groups.setdefault(key, []).append(evaluation)
    return list(groups.values())


def safe_name(label: str) -> str:
    """A label as a file-name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"


def write_figures(evaluations, output_dir: str) -> Dict[str, str]:
    """Writes the PNGs of an evaluation (evaluate.ModelEvaluation list); returns {title: file name}."""
    from legan_tf.evaluation.translation_report import plot_samples

    figures: Dict[str, str] = {}
    for source, draw in ((LAB, _lab_grid), (REAL, _real_grid)):
        groups = _groups(evaluations, source)
        for index, group in enumerate(groups):
            name = f"samples_{source}.png" if len(groups) == 1 else f"samples_{source}_{index + 1}.png"
            draw(group, os.path.join(output_dir, name))
            what = "lab faces: input, exact target, each model's output" if source == LAB else \
                "real faces: input, each model's output and its reconstruction"
            figures[f"Samples, {what}" + ("" if len(groups) == 1 else f" ({index + 1})")] = name
    for source in (LAB, REAL):
        match = {}
        for evaluation in evaluations:
            metrics = (evaluation.record["sources"].get(source) or {}).get("metrics") or {}
            if "match_score" in metrics:
                match[evaluation.run.label] = MetricResult.from_json(metrics["match_score"])
        if any(result.available for result in match.values()):
            name = f"match_scores_{source}.png"
            plot_match_scores(match, os.path.join(output_dir, name),
                              title=f"Match score per model ({source} faces): identity kept from input to output")
            figures[f"Match-score distribution per model, {source} faces"] = name
    for evaluation in evaluations:
        label = evaluation.run.label
        for source in (LAB, REAL):
            metrics = (evaluation.record["sources"].get(source) or {}).get("metrics") or {}
            if "generation_rate" not in metrics:
                continue
            result = MetricResult.from_json(metrics["generation_rate"])
            if not result.available:
                continue
            name = f"confusion_{safe_name(label)}_{source}.png"
            plot_confusion_matrices(result, os.path.join(output_dir, name),
                                    title=f"{label}: the classifier's reading of the outputs ({source} faces)")
            figures[f"Confusion matrices, {label}, {source} faces"] = name
        if evaluation.lab is not None and evaluation.lab.classifier_given and evaluation.lab.figures.samples:
            name = f"translation_samples_{safe_name(label)}.png"
            plot_samples(evaluation.lab.figures.samples, evaluation.lab_setup.names, os.path.join(output_dir, name))
            figures[f"Learning check, {label}: every edit mode (input, translation, exact target, |diff|)"] = name
    return figures
