"""The benchmarks by name, and the run that prints their table (what scripts/benchmark.py does).

Which benchmark is running goes to stderr, the table to stdout. Rows of the benchmarks that count
FLOPs (train, infer, gan) add the achieved GFLOP/s and its share of the fp32 peak, the median of
2048x2048 matmuls timed first in the same run. After train and input_tf at the same size, a line
compares the input pipeline's images/s with what StarGAN training consumes: the input pipeline
should deliver at least 5x what training consumes.
"""

from __future__ import annotations

import os
import platform

from legan_tf.benchmark.app_latency import bench_app
from legan_tf.benchmark.inference import bench_infer
from legan_tf.benchmark.inputs import bench_input, bench_input_tf
from legan_tf.benchmark.options import BenchmarkOptions
from legan_tf.benchmark.serving_latency import bench_serving
from legan_tf.benchmark.timing import Row, bench_peak, format_row, median_seconds, progress
from legan_tf.benchmark.training import bench_classifier, bench_gan, bench_train
from legan_tf.errors import ConfigError

# The input pipeline should deliver at least this many times the images training consumes.
INPUT_HEADROOM = 5
FLOP_BENCHMARKS = ("train", "infer", "gan")


def bench_lab(options):
    """Face-lab rendering, ms per image, at each of --lab_sizes (batches of 64, 32 above 128 px)."""
    import numpy as np

    from legan_tf.data.synthetic import FaceLab

    rows = []
    for size in (int(s) for s in options.lab_sizes):
        batch = 64 if size <= 128 else 32
        lab = FaceLab(image_size=size)
        identities = np.arange(batch) % 8
        expressions = np.arange(batch) % lab.num_expressions
        lightings = np.arange(batch) % lab.num_lightings
        median, low, high = median_seconds(lambda: lab.render(identities, expressions, lightings), options.repeats)
        rows.append((f"lab render {size} px (batch {batch})", f"{1000 * median / batch:.2f} ms/image",
                     f"{1000 * low / batch:.2f}..{1000 * high / batch:.2f}"))
    return rows


BENCHMARKS = {"train": bench_train, "infer": bench_infer, "input_tf": bench_input_tf, "lab": bench_lab,
              "classifier": bench_classifier, "serving": bench_serving, "gan": bench_gan, "input": bench_input,
              "app": bench_app}


def input_to_training_ratio(options, rows):
    """input_tf's images/s over StarGAN training's at --input_size, when both ran; else None."""
    rates = {row.key: row.rate for row in rows if row.key}
    size = options.input_size
    delivered, consumed = rates.get(f"input_tf {size}"), rates.get(f"train StarGAN {size}")
    if delivered is None or consumed is None:
        return None
    return (f"input_tf delivers {delivered / consumed:.1f}x what StarGAN training consumes at {size} px "
            f"({delivered:.0f} / {consumed:.1f} images/s; the input pipeline should deliver at least "
            f"{INPUT_HEADROOM}x what training consumes).")


def run(options: BenchmarkOptions) -> list[Row]:
    """Runs the benchmarks `options` name and prints their table; returns its rows."""
    from legan_tf import precision

    names = options.names
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"--benchmarks: unknown benchmarks {', '.join(unknown)}; choose from "
                          f"{', '.join(sorted(BENCHMARKS))}.")
    precision.set_policy(options.mixed_precision)  # before any network is built
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"median of {options.repeats} repeats after one warm-up\n")
    peak = None
    if any(name in FLOP_BENCHMARKS for name in names):
        progress("running peak (fp32 matmul)")
        peak = bench_peak(options.repeats)
    columns = ["benchmark", "median", "range"] + (["GFLOP/s", "% of peak"] if peak else [])
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    rows = [peak] if peak else []
    for row in rows:
        print(format_row(row, peak), flush=True)
    for name in names:
        progress(f"running {name}")
        for row in BENCHMARKS[name](options):
            rows.append(Row(*row))
            print(format_row(rows[-1], peak), flush=True)
    ratio = input_to_training_ratio(options, rows)
    if ratio:
        print("\n" + ratio)
    return rows
