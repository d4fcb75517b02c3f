#!/usr/bin/env python
"""Speed measurements, kept out of the unit tests. Prints a markdown table; quotes medians.

  python scripts/benchmark.py --benchmarks=lab,classifier --repeats=7

lab:        face-lab rendering, ms per image, at several sizes (batches of 64).
classifier: attribute-classifier training step on the default strategy, images per second.
serving:    a LEGAN generator exported for TF-Serving (random weights: speed does not depend on them):
            latency p50/p99 of one face and images/s at batch 32, through the in-process gRPC and REST
            server against calling the Keras model directly.
"""

import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("benchmarks", ["lab", "classifier"], "Which benchmarks to run: lab, classifier, serving.")
flags.DEFINE_integer("repeats", 7, "Timed repetitions per setting; the median is reported.", lower_bound=1)
flags.DEFINE_list("lab_sizes", ["32", "64", "128", "256"], "Image sizes of the lab benchmark.")
flags.DEFINE_integer("classifier_size", 64, "Image size of the classifier benchmark.")
flags.DEFINE_integer("classifier_batch", 64, "Batch size of the classifier benchmark.")
flags.DEFINE_integer("serving_size", 128, "Face size of the serving benchmark (LEGAN paper: 128).")
flags.DEFINE_integer("serving_filters", 64, "Base filters of each hourglass in the serving benchmark (paper: 64).")
flags.DEFINE_integer("serving_requests", 30, "Single-face requests timed per path for the latency percentiles.")


def _timings(function, repeats):
    """Sorted seconds of `repeats` calls after one warm-up call (caches, tracing)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)


def _median_seconds(function, repeats):
    times = _timings(function, repeats)
    return statistics.median(times), times[0], times[-1]


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


def _percentiles(function, count):
    times = _timings(function, count)
    return statistics.median(times), times[int(round(0.99 * (len(times) - 1)))]


def bench_serving(repeats):
    import io
    import tempfile

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from legan_tf import export
    from legan_tf.models.legan import LEGANGenerator
    from legan_tf.serving.client import GrpcClient, RestClient, edit_faces
    from legan_tf.serving.server import Server

    size, filters = FLAGS.serving_size, FLAGS.serving_filters
    names = {"expression": tuple(f"e{i}" for i in range(6)), "lighting": tuple(f"{i:02d}" for i in range(20))}
    generator = LEGANGenerator(size, 6, 20, base_filters=filters)
    labels = np.zeros((32, 26), np.float32)
    labels[:, [1, 6 + 7]] = 1
    faces = np.random.default_rng(0).uniform(-1, 1, (32, size, size, 3)).astype(np.float32)
    generator((faces[:1], labels[:1]))
    pngs = []
    for pixels in np.round((faces + 1) * 127.5).astype(np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        pngs.append(buffer.getvalue())
    rows = []
    with tempfile.TemporaryDirectory() as root:
        path = export.export_model(generator, "generator", root, "legan", names)
        server = Server(root, grpc_port=0, rest_port=0)
        server.start()
        clients = {"gRPC": GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=600),
                   "REST": RestClient(f"127.0.0.1:{server.rest_port}", timeout=600)}
        serving_default = tf.saved_model.load(path).signatures["serving_default"]
        compiled = tf.function(lambda x, y: generator((x, y), training=False))
        paths = {
            "Keras model eager, float face in and out": lambda n: generator((faces[:n], labels[:n]), training=False).numpy(),
            "Keras model in a tf.function, float face in and out": lambda n: compiled(faces[:n], labels[:n]).numpy(),
            "SavedModel in-process, PNG in and out": lambda n: serving_default(
                images_bytes=tf.constant(pngs[:n]), expression=tf.constant(["e1"] * n), lighting=tf.constant(["07"] * n)),
        }
        for protocol, client in clients.items():
            paths[f"{protocol} to the in-process server, PNG in and out"] = (
                lambda n, client=client: edit_faces(client, "legan", pngs[:n], expression="e1", lighting="07"))
        for label, call in paths.items():
            p50, p99 = _percentiles(lambda: call(1), FLAGS.serving_requests)
            median, low, high = _median_seconds(lambda: call(32), max(1, repeats // 2))
            rows.append((f"{label}: 1 face at {size} px, p50 / p99", f"{1000 * p50:.0f} ms / {1000 * p99:.0f} ms",
                         f"{FLAGS.serving_requests} requests"))
            rows.append((f"{label}: batch 32", f"{32 / median:.1f} images/s", f"{32 / high:.1f}..{32 / low:.1f}"))
        server.stop()
    return rows


def main(argv):
    del argv
    available = {"lab": bench_lab, "classifier": bench_classifier, "serving": bench_serving}
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
