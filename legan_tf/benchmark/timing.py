"""Timing and the table: medians of repeated calls, rates, and the rows scripts/benchmark.py prints."""

from __future__ import annotations

import math
import statistics
import sys
import time
import typing

PEAK_MATRIX_SIZE = 2048


class Row(typing.NamedTuple):
    """One line of the table. `flops_per_second` fills the GFLOP/s columns; `key` and `rate` (per
    second, at the median) name a measurement that the lines after the table compare."""

    benchmark: str
    median: str
    spread: str
    flops_per_second: float | None = None
    key: str = ""
    rate: float | None = None


def progress(message):
    """Which benchmark is running, on stderr (the table goes to stdout)."""
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


def timings(function, repeats):
    """Sorted seconds of `repeats` calls after one warm-up call (caches, tracing)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)


def median_seconds(function, repeats):
    """(median, fastest, slowest) seconds of `repeats` calls after a warm-up."""
    times = timings(function, repeats)
    return statistics.median(times), times[0], times[-1]


def percentiles(function, count):
    """(p50, p99) seconds of `count` calls after a warm-up."""
    times = timings(function, count)
    return statistics.median(times), times[int(round(0.99 * (len(times) - 1)))]


def significant(value):
    """Three significant digits without an exponent: 0.0123, 1.23, 123, 12345."""
    return f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}" if value else "0"


def throughput_row(label, function, repeats, images, digits=0, flops=None, per_call=False, key=""):
    """A row for `function`, each call of which handles `images` images (and does `flops` FLOPs):
    images/s at the median call (and its ms with `per_call`), the range from the slowest to the fastest."""
    median, low, high = median_seconds(function, repeats)
    rate = lambda seconds: f"{images / seconds:.{digits}f}"  # noqa: E731
    value = f"{rate(median)} images/s" + (f", {significant(1000 * median)} ms/call" if per_call else "")
    return Row(label, value, f"{rate(high)}..{rate(low)}", flops / median if flops else None, key, images / median)


def bench_peak(repeats):
    """The fp32 matmul rate that the % of peak column divides by."""
    import numpy as np
    from keras import ops

    size = PEAK_MATRIX_SIZE
    rng = np.random.default_rng(0)
    a, b = (ops.convert_to_tensor(rng.standard_normal((size, size)).astype(np.float32)) for _ in range(2))
    product = lambda: ops.convert_to_numpy(ops.matmul(a, b)[0, 0])  # noqa: E731
    product()
    single = min(timings(product, 1))
    # A fast device finishes one product in well under a millisecond: queue enough of them that a
    # timed call measures the device rather than Python's dispatch.
    count = max(1, math.ceil(0.1 / single))

    def run():
        for _ in range(count):
            result = ops.matmul(a, b)
        ops.convert_to_numpy(result[0, 0])

    median, low, high = median_seconds(run, repeats)
    gflops = lambda seconds: 2 * size**3 * count / seconds / 1e9  # noqa: E731
    return Row(f"fp32 matmul {size}x{size}, the peak the % column divides by", f"{gflops(median):.0f} GFLOP/s",
               f"{gflops(high):.0f}..{gflops(low):.0f}", 1e9 * gflops(median))


def format_row(row: Row, peak: Row | None) -> str:
    """A markdown line of the table; with a peak row, the GFLOP/s and % of peak cells too."""
    cells = list(row[:3])
    if peak is not None:
        rate = row.flops_per_second
        cells += [significant(rate / 1e9), significant(100 * rate / peak.flops_per_second)] if rate else ["", ""]
    return "| " + " | ".join(cells) + " |"
