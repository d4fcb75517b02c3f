"""Speed measurements of the recipes, which scripts/benchmark.py runs (`suite.run` with `options.BenchmarkOptions`):
training (`training`), inference (`inference`), input pipelines (`inputs`), serving (`serving_latency`), and the
FLOP counts behind the GFLOP/s columns (`flops`); `timing` times calls and formats the table."""
