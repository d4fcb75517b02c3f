"""legan_tf.evaluation.translation_report and scripts/compare_translations.py: the learning check for people."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from legan_tf.evaluation.translation_metrics import class_names, translation_figures
from legan_tf.evaluation.translation_report import comparison_table, plot_samples
from tests.evaluation.conftest import HELD_OUT, NUM_FACES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPARE_SCRIPT = os.path.join(REPO, "scripts", "compare_translations.py")


def test_sample_figure_has_four_panels_per_mode_and_a_row_per_sample(lookup, tmp_path):
    sizes = {}
    for attributes, rows in ((("expression", "lighting"), 2), (("expression", "lighting"), 4), (("expression",), 2)):
        samples = translation_figures(lookup.oracle, lookup.lab, lookup.classifier(), HELD_OUT, num_faces=NUM_FACES,
                                      attributes=attributes, sample_rows=rows).samples
        path = str(tmp_path / f"samples_{len(attributes)}_{rows}.png")
        plot_samples(samples, class_names(lookup.lab), path)
        with Image.open(path) as figure:
            assert figure.format == "PNG"
            sizes[len(samples.modes), rows] = figure.size
    assert sizes[3, 2][0] > sizes[3, 2][1] > 100
    assert sizes[3, 4][1] > sizes[3, 2][1]  # rows add height
    assert sizes[1, 2][0] < sizes[3, 2][0]  # one mode: a third of the panels


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
