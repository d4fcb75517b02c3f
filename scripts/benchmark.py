#!/usr/bin/env python
"""Speed measurements, kept out of the unit tests. Prints a markdown table; quotes medians.

  python scripts/benchmark.py --benchmarks=lab,classifier --repeats=7

lab:        face-lab rendering, ms per image, at several sizes (batches of 64).
classifier: attribute-classifier training step on the default strategy, images per second.
serving:    a LEGAN generator exported for TF-Serving (random weights: speed does not depend on them):
            latency p50/p99 of one face and images/s at batch 32, through the in-process gRPC and REST
            server against calling the Keras model directly.
gan:        StarGAN training under the Keras backend this process runs (KERAS_BACKEND=tensorflow|jax):
            images/s of the compiled D and G updates (D every step, G every n_critic-th), the
            trainer's own step functions, on a fixed batch in memory.
input:      the JAX path's reader of prepared shards (legan_tf/data/numpy_input.py, no TensorFlow):
            training batches/s at --input_size from lab faces prepared into shards.

  KERAS_BACKEND=jax python scripts/benchmark.py --benchmarks=gan,input
"""

import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("benchmarks", ["lab", "classifier"], "Which benchmarks to run: lab, classifier, serving, gan, "
                  "input.")
flags.DEFINE_integer("repeats", 7, "Timed repetitions per setting; the median is reported.", lower_bound=1)
flags.DEFINE_list("lab_sizes", ["32", "64", "128", "256"], "Image sizes of the lab benchmark.")
flags.DEFINE_integer("classifier_size", 64, "Image size of the classifier benchmark.")
flags.DEFINE_integer("classifier_batch", 64, "Batch size of the classifier benchmark.")
flags.DEFINE_integer("serving_size", 128, "Face size of the serving benchmark (LEGAN paper: 128).")
flags.DEFINE_integer("serving_filters", 64, "Base filters of each hourglass in the serving benchmark (paper: 64).")
flags.DEFINE_integer("serving_requests", 30, "Single-face requests timed per path for the latency percentiles.")
flags.DEFINE_integer("gan_size", 64, "Image size of the gan benchmark.")
flags.DEFINE_integer("gan_batch", 16, "Batch size of the gan benchmark (StarGAN reference: 16).")
flags.DEFINE_list("gan_widths", ["32:3:5", "64:6:6"], "G/D base filters:G residual blocks:D downsamplings of the gan "
                  "benchmark, one row each (64:6:6 is StarGAN's reference width).")
flags.DEFINE_bool("gan_jit_compile", False, "gan benchmark under TensorFlow: compile each update's loss and gradients "
                  "with XLA, as train.py --jit_compile does.")
flags.DEFINE_integer("input_size", 128, "Image size of the input benchmark.")
flags.DEFINE_integer("input_batch", 64, "Batch size of the input benchmark.")
flags.DEFINE_integer("input_workers", 0, "Decoding threads of the input benchmark (0: one per core).")
flags.DEFINE_integer("input_processes", 0, "Worker processes of the input benchmark instead of threads (0: threads).")
flags.DEFINE_integer("input_source_size", 0, "Size of the stored faces of the input benchmark (0: --input_size, no "
                     "resampling; 48: FER2013's faces, upscaled).")


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


def bench_gan(repeats):
    import numpy as np
    from keras import ops

    from legan_tf import backend
    from legan_tf.tasks.stargan import StarGANTask

    size, batch, rows = FLAGS.gan_size, FLAGS.gan_batch, []
    rng = np.random.default_rng(0)
    data = {"image": rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32),
            "expression": rng.integers(0, 7, batch).astype(np.int32)}
    for width in FLAGS.gan_widths:
        filters, blocks, downsamples = (int(part) for part in width.split(":"))
        task = StarGANTask({"expression": tuple(str(i) for i in range(7))}, size, batch, train_steps=100000,
                           g_filters=filters, g_residual_blocks=blocks, d_filters=filters, d_downsamples=downsamples)
        if backend.name() == "jax":
            import jax

            from legan_tf.training.jax_trainer import JaxTrainer

            trainer = JaxTrainer.__new__(JaxTrainer)  # the trainer's compiled updates, without a run directory
            task.build()
            from legan_tf.training.jax_trainer import checkpoint_variables

            trainer.variables = [variable for _, variable in checkpoint_variables(task)]
            state = {"values": [variable.value for variable in trainer.variables]}
            updates = [(entry, trainer._compile(entry)) for entry in task.step_schedule()]
            device_batch = {key: jax.numpy.asarray(value) for key, value in data.items()}

            def step(number):
                metrics = {}
                for entry, update in updates:
                    if number % entry.every == 0:
                        state["values"], new = update(state["values"], device_batch, jax.numpy.asarray(number, "int32"))
                        metrics.update(new)
                return metrics
        else:
            import tensorflow as tf

            backend.set_jit_compile(FLAGS.gan_jit_compile)
            task.build()
            updates = [(entry, tf.function(entry.fn)) for entry in task.step_schedule()]
            device_batch = {key: tf.constant(value) for key, value in data.items()}

            def step(number):
                metrics = {}
                for entry, update in updates:
                    if number % entry.every == 0:
                        metrics.update(update(device_batch, tf.constant(number, tf.int64)))
                return metrics

        n_critic = task.hp.n_critic

        def run():
            for number in range(1, 2 * n_critic + 1):  # two whole D/G cycles
                metrics = step(number)
            float(ops.convert_to_numpy(metrics["d/total"]))  # wait for the work to finish

        median, low, high = _median_seconds(run, repeats)
        per_second = lambda seconds: 2 * n_critic * batch / seconds  # noqa: E731
        compiled = ", XLA" if backend.name() == "tensorflow" and FLAGS.gan_jit_compile else ""
        rows.append((f"StarGAN train ({backend.name()}{compiled}) {size} px, batch {batch}, {filters} filters, {blocks} blocks, "
                     f"n_critic {n_critic}", f"{per_second(median):.1f} images/s",
                     f"{per_second(high):.1f}..{per_second(low):.1f}"))
    return rows


def bench_input(repeats):
    import tempfile

    from legan_tf.data.config import DataConfig
    from legan_tf.data.numpy_input import open_numpy_source
    from legan_tf.data.synthetic.writer import write_face_lab

    size, batch = FLAGS.input_size, FLAGS.input_batch
    stored = FLAGS.input_source_size or size
    with tempfile.TemporaryDirectory() as root:
        write_face_lab(root, image_size=stored, num_identities=4, seed=0, num_lightings=4, naturalness_variants=1,
                       rgbd_lightings_per_face=1)
        # Preparing needs TensorFlow's writer; reading (what is timed) does not.
        from legan_tf.data import open_source, tfrecord

        lab = DataConfig("multipie", os.path.join(root, "multipie", "manifest.csv"), image_size=size,
                         lighting_names=tuple(f"{i:02d}" for i in range(4)), random_flip=True)
        shards = os.path.join(root, "shards")
        tfrecord.prepare_output_dir(shards, overwrite=False)
        tfrecord.write_tfrecords(open_source(lab), shards, num_shards=4, holdout_fraction=0.0, seed=0)
        source = open_numpy_source(DataConfig("tfrecord", shards, image_size=size, lighting_names=lab.lighting_names,
                                              random_flip=True))
        stream = source.batches(batch, training=True, num_workers=FLAGS.input_workers or None,
                                processes=FLAGS.input_processes)
        batches_per_repeat = 10

        def run():
            for _ in range(batches_per_repeat):
                next(stream)

        median, low, high = _median_seconds(run, repeats)
        stream.close()
    workers = (f"{FLAGS.input_processes} processes" if FLAGS.input_processes
               else f"{FLAGS.input_workers or os.cpu_count()} threads")
    per_second = lambda seconds: batches_per_repeat * batch / seconds  # noqa: E731
    return [(f"numpy input (JAX path) {stored} px PNG to {size} px, batch {batch}, {workers}, flips",
             f"{per_second(median):.0f} images/s", f"{per_second(high):.0f}..{per_second(low):.0f}")]


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
    available = {"lab": bench_lab, "classifier": bench_classifier, "serving": bench_serving, "gan": bench_gan,
                 "input": bench_input}
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
