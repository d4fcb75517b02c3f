"""scripts/benchmark.py at tiny sizes: the suites run end to end and print a complete, plausible table.

Speed itself is never asserted (docs/benchmarks.md): only that every expected row is there with
finite positive numbers.
"""

import math
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "benchmark.py")
RECIPES = ("StarGAN", "LEGAN", "Q", "StarGAN-depth")
NUMBER = r"\d+(?:\.\d+)?"


def _run(*arguments, timeout=120):
    return subprocess.run([sys.executable, SCRIPT, *arguments], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _table(stdout):
    """{benchmark: [the other cells]} of the markdown table's body."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert len(lines) > 2 and not lines[1].replace("|", "").replace("-", "")  # header, then the separator
    return {cells[0]: cells[1:] for cells in ([cell.strip() for cell in line.strip("|").split("|")]
                                              for line in lines[2:])}


def _positive(text):
    numbers = [float(number) for number in re.findall(NUMBER, text)]
    return bool(numbers) and all(math.isfinite(number) and number > 0 for number in numbers)


@pytest.mark.slow
def test_suite_all_prints_every_row_with_finite_positive_numbers():
    # --benchmarks is given too: the suite overrides it.
    done = _run("--suite=all", "--benchmarks=lab", "--suite_sizes=32", "--suite_widths=reduced", "--gan_batch=2",
                "--input_size=32", "--input_batch=8", "--repeats=1")
    assert done.returncode == 0, done.stderr[-3000:]
    table = _table(done.stdout)
    expected = ["fp32 matmul 2048x2048, the peak the % column divides by"]
    expected += [f"{name} train (tensorflow) 32 px, batch 2, reduced widths" + (", n_critic 5" if name != "Q" else "")
                 for name in RECIPES]
    expected += [f"{name} inference (tensorflow) 32 px, batch {batch}, reduced widths"
                 for name in RECIPES for batch in (1, 32)]
    expected += ["tf.data input (TensorFlow trainer) 32 px PNG to 32 px, batch 8, flips"]
    assert sorted(table) == sorted(expected)
    for label, (median, spread, gflops, percent) in table.items():
        assert _positive(median) and _positive(spread), label
        if label.startswith("tf.data"):
            assert (gflops, percent) == ("", ""), label
        else:
            assert _positive(gflops) and _positive(percent), label
    assert table[expected[0]][3] == "100"
    for label in expected[5:13]:
        assert re.fullmatch(f"{NUMBER} images/s, {NUMBER} ms/call", table[label][0]), label
    [ratio] = re.findall(rf"input_tf delivers ({NUMBER})x what StarGAN training consumes at 32 px", done.stdout)
    assert float(ratio) > 0
    for benchmark in ("peak", "train", "infer", "input_tf"):
        assert f"[benchmark] running {benchmark}" in done.stderr


def test_benchmarks_without_flop_counts_keep_the_three_column_table():
    done = _run("--benchmarks=lab", "--lab_sizes=32", "--repeats=1")
    assert done.returncode == 0, done.stderr[-3000:]
    [(label, cells)] = _table(done.stdout).items()
    assert label == "lab render 32 px (batch 64)" and len(cells) == 2 and _positive(cells[0])


def test_gan_rows_per_width_and_generator_variant_and_a_bad_variant_is_one_line():
    done = _run("--benchmarks=gan", "--gan_widths=4:0:1", "--gan_size=16", "--gan_batch=2", "--repeats=1",
                "--gan_generators=transpose:image,resize:attention")
    assert done.returncode == 0, done.stderr[-3000:]
    table = _table(done.stdout)
    rows = [label for label in table if label.startswith("StarGAN train")]
    assert rows == ["StarGAN train (tensorflow) 16 px, batch 2, 4 filters, 0 blocks, n_critic 5",
                    "StarGAN train (tensorflow) 16 px, batch 2, 4 filters, 0 blocks, resize + attention, n_critic 5"]
    assert all(_positive(table[label][0]) for label in rows)
    bad = _run("--benchmarks=gan", "--gan_generators=resize:mask")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: --gan_generators: 'resize:mask' is not")


def test_help_names_the_suites():
    done = _run("--help")  # absl prints the usage to stdout and exits with 1
    for text in ("--suite:", "train|infer|all", "--suite_sizes", "--suite_widths", "input_tf"):
        assert text in done.stdout, text


@pytest.mark.slow
def test_app_rows_give_p50_and_p90_of_each_stage_and_a_baseline_its_ratio():
    """The app benchmark with this checkout as its own baseline: both served, every stage's row gives p50 / p90
    of each and their ratio."""
    done = _run("--benchmarks=app", "--app_requests=2", f"--app_baseline={REPO}", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table = _table(done.stdout)
    stages = ("read", "detect", "align", "edit", "paste", "encode", "total")
    assert list(table) == ["app: upload to edited photo, 922x1080 JPEG, one face, p50 / p90"] + \
        [f"app: {stage} (server's seconds), p50 / p90" for stage in stages]
    for label, (figures, baseline) in table.items():
        assert re.fullmatch(f"{NUMBER} ms / {NUMBER} ms", figures), (label, figures)
        assert re.fullmatch(f"baseline {NUMBER} ms / {NUMBER} ms: {NUMBER}x the time", baseline), (label, baseline)
