#!/usr/bin/env python
"""Speed measurements, kept out of the unit tests. Prints a markdown table; quotes medians.

  python scripts/benchmark.py --benchmarks=lab,classifier --repeats=7

lab:        face-lab rendering, ms per image, at several sizes (batches of 64).
classifier: attribute-classifier training step on the default strategy, images per second.
"""

import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("benchmarks", ["lab", "classifier"], "Which benchmarks to run: lab, classifier.")
flags.DEFINE_integer("repeats", 7, "Timed repetitions per setting; the median is reported.", lower_bound=1)
flags.DEFINE_list("lab_sizes", ["32", "64", "128", "256"], "Image sizes of the lab benchmark.")
flags.DEFINE_integer("classifier_size", 64, "Image size of the classifier benchmark.")
flags.DEFINE_integer("classifier_batch", 64, "Batch size of the classifier benchmark.")


def _median_seconds(function, repeats):
    function()  # warm-up: caches, tracing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def bench_lab(repeats):
    import numpy as np

    from legan_tf.data.synthetic import FaceLab

    rows = []
    for size in (int(s) for s in FLAGS.lab_sizes):
        batch = 64 if size <= 128 else 32
        lab = FaceLab(image_size=size)
        identities = np.arange(batch) % 8
        expressions = np.arange(batch) % lab.num_expressions
        lightings = np.arange(batch) % lab.num_lightings
        median, low, high = _median_seconds(lambda: lab.render(identities, expressions, lightings), repeats)
        rows.append((f"lab render {size} px (batch {batch})", f"{1000 * median / batch:.2f} ms/image",
                     f"{1000 * low / batch:.2f}..{1000 * high / batch:.2f}"))
    return rows


def bench_classifier(repeats):
    import numpy as np
    import tensorflow as tf

    from legan_tf.tasks.classifier import ClassifierTask

    size, batch = FLAGS.classifier_size, FLAGS.classifier_batch
    labels = {"expression": tuple(str(i) for i in range(6)), "lighting": tuple(str(i) for i in range(20))}
    task = ClassifierTask(labels, size, batch, train_steps=1000, base_filters=16, downsamples=4)
    task.build()
    rng = np.random.default_rng(0)
    data = {"image": tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)),
            "expression": tf.constant(rng.integers(0, 6, batch), tf.int32),
            "lighting": tf.constant(rng.integers(0, 20, batch), tf.int32)}
    step = tf.function(task.train_step)
    steps_per_repeat = 10

    def run():
        for _ in range(steps_per_repeat):
            result = step(data)
        float(result["loss/expression"])  # wait for the work to finish

    median, low, high = _median_seconds(run, repeats)
    per_second = lambda seconds: steps_per_repeat * batch / seconds  # noqa: E731
    return [(f"classifier train step {size} px, batch {batch}, 16 filters", f"{per_second(median):.0f} images/s",
             f"{per_second(high):.0f}..{per_second(low):.0f}")]


def main(argv):
    del argv
    available = {"lab": bench_lab, "classifier": bench_classifier}
    unknown = [name for name in FLAGS.benchmarks if name not in available]
    if unknown:
        raise app.UsageError(f"unknown benchmarks {unknown}; choose from {sorted(available)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"median of {FLAGS.repeats} repeats after one warm-up\n")
    print("| benchmark | median | range |\n|---|---|---|")
    for name in FLAGS.benchmarks:
        for row in available[name](FLAGS.repeats):
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    app.run(main)
