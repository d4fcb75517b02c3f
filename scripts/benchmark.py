#!/usr/bin/env python
"""Speed measurements, kept out of the unit tests. Prints a markdown table; quotes medians.

  python scripts/benchmark.py --benchmarks=lab,classifier --repeats=7
  python scripts/benchmark.py --suite=all --repeats=5                 # issue 18: train, infer, input_tf

Which benchmark is running goes to stderr, the table to stdout. Rows of the benchmarks that count
FLOPs (train, infer, gan) add the achieved GFLOP/s and its share of the fp32 peak: the median of
2048x2048 matmuls (keras.ops.matmul, i.e. tf.matmul under TensorFlow) timed first in the same run.
The FLOP conventions (forward convolutions and dense layers; training = 3x forward, the gradient
penalty 9x) are in legan_tf/flops.py.

--suite=train|infer|all runs a set of benchmarks instead of --benchmarks: train or infer alone,
or all three of train, infer and input_tf, after which the input pipeline's images/s over
StarGAN training's at --input_size is printed (issue 18 asks for at least 5x). At tiny sizes:

  python scripts/benchmark.py --suite=all --suite_sizes=32 --suite_widths=reduced --gan_batch=2 \
      --input_size=32 --input_batch=8 --repeats=1

train:      training images/s of StarGAN, LEGAN (with its frozen Q and identity network f), Q and the
            depth-guided StarGAN (with its depth network) at each of --suite_sizes, batch --gan_batch,
            the papers' widths or --suite_widths=reduced. The trainer's compiled update functions on a
            fixed batch in memory, two whole D/G cycles (n_critic D updates, one G update) per timed
            call, reported as images per D iteration per second; the networks a recipe loads from
            files (Q, f, the pre-trained depth network) are written with random weights first.
infer:      inference of each recipe's generator (Q: its scoring network) at batch 1 and 32 at each of
            --suite_sizes: images/s and ms per call (inputs on the device, outputs read back), in a
            tf.function (jax.jit under JAX).
input_tf:   the TensorFlow trainer's tf.data pipeline (Source.dataset(training=True)) delivering
            training batches of --input_batch at --input_size from lab faces prepared into shards, images/s.
lab:        face-lab rendering, ms per image, at several sizes (batches of 64).
classifier: attribute-classifier training step on the default strategy, images per second.
serving:    a LEGAN generator exported for TF-Serving (random weights: speed does not depend on them):
            latency p50/p99 of one face and images/s at batch 32, through the in-process gRPC and REST
            server against calling the Keras model directly.
gan:        StarGAN training at --gan_widths, measured as the train benchmark measures it.
input:      the JAX path's reader of prepared shards (legan_tf/data/numpy_input.py, no TensorFlow):
            training images/s at --input_size from lab faces prepared into shards.

Both Keras backends run train, infer and gan (KERAS_BACKEND=tensorflow|jax):

  KERAS_BACKEND=jax python scripts/benchmark.py --benchmarks=gan,input
"""

import functools
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import typing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
SUITES = {"train": ["train"], "infer": ["infer"], "all": ["train", "infer", "input_tf"]}
flags.DEFINE_enum("suite", None, list(SUITES), "A set of benchmarks to run instead of --benchmarks: train, infer, "
                  "or all (train, infer, input_tf).")
flags.DEFINE_list("benchmarks", ["lab", "classifier"], "Which benchmarks to run when no --suite is given: train, "
                  "infer, input_tf, lab, classifier, serving, gan, input.")
flags.DEFINE_integer("repeats", 7, "Timed repetitions per setting; the median is reported.", lower_bound=1)
flags.DEFINE_list("suite_sizes", ["64", "128"], "Image sizes of the train and infer benchmarks.")
flags.DEFINE_enum("suite_widths", "paper", ["paper", "reduced"], "Network widths of the train and infer benchmarks: "
                  "paper (each recipe's paper or reference widths: G and D 64 filters, 6 residual blocks, 6 D "
                  "downsamplings; Q 64 filters, 6 convs, 256 units; LightCNN-29 v2 at 128 px) or reduced (8 filters, "
                  "1 residual block, 3 downsamplings, a narrow LightCNN at 32 px: for smoke tests, not comparisons).")
flags.DEFINE_list("lab_sizes", ["32", "64", "128", "256"], "Image sizes of the lab benchmark.")
flags.DEFINE_integer("classifier_size", 64, "Image size of the classifier benchmark.")
flags.DEFINE_integer("classifier_batch", 64, "Batch size of the classifier benchmark.")
flags.DEFINE_integer("serving_size", 128, "Face size of the serving benchmark (LEGAN paper: 128).")
flags.DEFINE_integer("serving_filters", 64, "Base filters of each hourglass in the serving benchmark (paper: 64).")
flags.DEFINE_integer("serving_requests", 30, "Single-face requests timed per path for the latency percentiles.")
flags.DEFINE_integer("gan_size", 64, "Image size of the gan benchmark.")
flags.DEFINE_integer("gan_batch", 16, "Batch size of the gan and train benchmarks (StarGAN reference: 16).")
flags.DEFINE_list("gan_widths", ["32:3:5", "64:6:6"], "G/D base filters:G residual blocks:D downsamplings of the gan "
                  "benchmark, one row each (64:6:6 is StarGAN's reference width).")
flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "gan, train and infer benchmarks: the networks' compute dtype (train.py's --mixed_precision).")
flags.DEFINE_bool("gan_jit_compile", False, "gan and train benchmarks under TensorFlow: compile each update's loss and "
                  "gradients with XLA, as train.py --jit_compile does.")
flags.DEFINE_integer("input_size", 128, "Image size of the input and input_tf benchmarks.")
flags.DEFINE_integer("input_batch", 64, "Batch size of the input and input_tf benchmarks.")
flags.DEFINE_integer("input_workers", 0, "Decoding threads of the input benchmark (0: one per core).")
flags.DEFINE_integer("input_processes", 0, "Worker processes of the input benchmark instead of threads (0: threads).")
flags.DEFINE_integer("input_source_size", 0, "Size of the stored faces of the input and input_tf benchmarks (0: "
                     "--input_size, no resampling; 48: FER2013's faces, upscaled).")

PEAK_MATRIX_SIZE = 2048
INFER_BATCHES = (1, 32)
# The LEGAN paper's data (Multi-PIE: 6 expressions, 20 lightings) for StarGAN, LEGAN and Q; the
# depth paper's (RaFD / AffectNet-D: 8 expressions) for the depth-guided StarGAN.
MULTIPIE_LABELS = {"expression": tuple(f"e{i}" for i in range(6)), "lighting": tuple(f"{i:02d}" for i in range(20))}
DEPTH_LABELS = {"expression": tuple(f"e{i}" for i in range(8))}
WIDTHS = {
    "paper": {"gan": dict(g_filters=64, g_residual_blocks=6, d_filters=64, d_downsamples=6),
              "quality": dict(base_filters=64, downsamples=6, dense_units=256),
              "identity": dict(input_size=128)},
    "reduced": {"gan": dict(g_filters=8, g_residual_blocks=1, d_filters=8, d_downsamples=3),
                "quality": dict(base_filters=8, downsamples=3, dense_units=16),
                "identity": dict(input_size=32, channels=(8, 8, 8, 8, 8), embedding_dim=16, num_blocks=(1, 1, 1, 1))},
}


class Row(typing.NamedTuple):
    """One line of the table. `flops_per_second` fills the GFLOP/s columns; `key` and `rate` (per
    second, at the median) name a measurement that the lines after the table compare."""

    benchmark: str
    median: str
    spread: str
    flops_per_second: float | None = None
    key: str = ""
    rate: float | None = None


def _progress(message):
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


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


def _significant(value):
    """Three significant digits without an exponent: 0.0123, 1.23, 123, 12345."""
    return f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}" if value else "0"


def _throughput_row(label, function, repeats, images, digits=0, flops=None, per_call=False, key=""):
    """A row for `function`, each call of which handles `images` images (and does `flops` FLOPs):
    images/s at the median call (and its ms with `per_call`), the range from the slowest to the fastest."""
    median, low, high = _median_seconds(function, repeats)
    rate = lambda seconds: f"{images / seconds:.{digits}f}"  # noqa: E731
    value = f"{rate(median)} images/s" + (f", {_significant(1000 * median)} ms/call" if per_call else "")
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
    single = min(_timings(product, 1))
    # A fast device finishes one product in well under a millisecond: queue enough of them that a
    # timed call measures the device rather than Python's dispatch.
    count = max(1, math.ceil(0.1 / single))

    def run():
        for _ in range(count):
            result = ops.matmul(a, b)
        ops.convert_to_numpy(result[0, 0])

    median, low, high = _median_seconds(run, repeats)
    gflops = lambda seconds: 2 * size**3 * count / seconds / 1e9  # noqa: E731
    return Row(f"fp32 matmul {size}x{size}, the peak the % column divides by", f"{gflops(median):.0f} GFLOP/s",
               f"{gflops(high):.0f}..{gflops(low):.0f}", 1e9 * gflops(median))


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

    return [_throughput_row(f"classifier train step {size} px, batch {batch}, 16 filters", run, repeats,
                            steps_per_repeat * batch)]


# -- training: the trainer's own updates, on a fixed batch in memory --------------------------------

def _training_batch(task, batch):
    """Random data shaped as the task's training batches: faces and labels, and what else it reads."""
    import numpy as np

    from legan_tf.tasks.quality import QualityTask
    from legan_tf.tasks.stargan_depth import StarGANDepthTask

    size, rng = task.image_size, np.random.default_rng(0)
    pixels = lambda channels: rng.uniform(-1, 1, (batch, size, size, channels)).astype(np.float32)  # noqa: E731
    data = {"image": pixels(3)}
    for name, count in getattr(task, "label_sizes", {}).items():
        data[name] = rng.integers(0, count, batch).astype(np.int32)
    if isinstance(task, StarGANDepthTask):
        data["depth"] = pixels(1)
    if isinstance(task, QualityTask):
        data["mean"] = rng.uniform(1, 10, batch).astype(np.float32)
        data["std"] = rng.uniform(0.5, 2, batch).astype(np.float32)
    return data


def _gan_cycle_flops(model):
    """Estimated FLOPs per example of one D/G cycle (n_critic D updates, one G update) of a
    `legan_tf.gan` model, by the conventions of legan_tf/flops.py."""
    import numpy as np

    from legan_tf.flops import GRADIENT_PENALTY_FACTOR, TRAINING_FACTOR, count_flops
    from legan_tf.geometry import geometry_channels

    size = model.image_size
    images = np.zeros((1, size, size, 3), np.float32)
    generator = count_flops(lambda: model.generator((images, np.zeros((1, model.num_labels), np.float32))))
    critic = count_flops(lambda: model.discriminator(images))
    # D update: G translates without gradients; D judges the real and the fake faces, and the
    # gradient penalty the points between them.
    d_update = generator + (2 * TRAINING_FACTOR + GRADIENT_PENALTY_FACTOR) * critic
    # G update: the translation and the cycle back, judged by D; all differentiated back into G.
    g_update = TRAINING_FACTOR * (2 * generator + critic)
    weights = model.generator_loss_weights()
    if "quality" in weights:  # Q rates the translation and the reconstruction
        g_update += 2 * TRAINING_FACTOR * count_flops(lambda: model.quality_model(images))
    if "identity" in weights:  # f embeds the real face (a constant) and the translation
        g_update += (1 + TRAINING_FACTOR) * count_flops(lambda: model.identity_model(images))
    if getattr(model, "depth_active", False):
        geometry = np.zeros((1, size, size, geometry_channels(model.hp.geometry)), np.float32)
        to_geometry = count_flops(lambda: model.depth_generator.to_geometry(images))
        depth_critic = count_flops(lambda: model.depth_discriminator(geometry))
        # D_depth's update rides on D's: G_depth maps the fakes, D_depth judges as D does.
        d_update += to_geometry + (2 * TRAINING_FACTOR + GRADIENT_PENALTY_FACTOR) * depth_critic
        # G'_depth is G_depth's network run the other way, so the way back costs the way there.
        g_update += TRAINING_FACTOR * (2 * to_geometry + depth_critic)
    return model.hp.n_critic * d_update + g_update


def _cycle_flops(task):
    """Estimated FLOPs per example of one cycle of the task's schedule (a GAN's D/G cycle, Q's step)."""
    import numpy as np

    from legan_tf.flops import TRAINING_FACTOR, count_flops
    from legan_tf.tasks.base import GANTask

    if isinstance(task, GANTask):
        return _gan_cycle_flops(task.model)
    images = np.zeros((1, task.image_size, task.image_size, 3), np.float32)
    return TRAINING_FACTOR * count_flops(lambda: task.model(images))


def _compiled_step(task, data):
    """`step(number) -> metrics`: the built task's updates that fall on step `number`, compiled as
    the trainer of this process's Keras backend compiles them, on `data` held on the device."""
    from legan_tf import backend

    if backend.name() == "jax":
        import jax

        from legan_tf.training.jax_trainer import JaxTrainer, checkpoint_variables

        trainer = JaxTrainer.__new__(JaxTrainer)  # the trainer's compiled updates, without a run directory
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

        return step

    import tensorflow as tf

    backend.set_jit_compile(FLAGS.gan_jit_compile)
    updates = [(entry, tf.function(entry.fn)) for entry in task.step_schedule()]
    device_batch = {key: tf.constant(value) for key, value in data.items()}

    def step(number):
        metrics = {}
        for entry, update in updates:
            if number % entry.every == 0:
                metrics.update(update(device_batch, tf.constant(number, tf.int64)))
        return metrics

    return step


def _train_row(label, task, repeats, details="", key=""):
    """Builds the task and times two whole cycles of its schedule per call (a GAN: n_critic D
    updates and one G update each) as images per D iteration per second, with the FLOPs they take."""
    from keras import ops

    from legan_tf import backend

    batch = task.global_batch_size
    task.build()
    flops = 2 * batch * _cycle_flops(task)  # counted first: the JAX updates donate the variables' buffers
    step = _compiled_step(task, _training_batch(task, batch))
    cycle = max(entry.every for entry in task.step_schedule())

    def run():
        for number in range(1, 2 * cycle + 1):
            metrics = step(number)
        ops.convert_to_numpy(next(iter(metrics.values())))  # wait for the work to finish

    compiled = ", XLA" if backend.name() == "tensorflow" and FLAGS.gan_jit_compile else ""
    compiled += _precision_label()
    schedule = f", n_critic {cycle}" if cycle > 1 else ""
    return _throughput_row(f"{label} train ({backend.name()}{compiled}) {task.image_size} px, batch {batch}{details}"
                           f"{schedule}", run, repeats, 2 * cycle * batch, digits=1, flops=flops, key=key)


def bench_gan(repeats):
    from legan_tf.tasks.stargan import StarGANTask

    rows = []
    for width in FLAGS.gan_widths:
        filters, blocks, downsamples = (int(part) for part in width.split(":"))
        _progress(f"gan: StarGAN at {width}")
        task = StarGANTask({"expression": tuple(str(i) for i in range(7))}, FLAGS.gan_size, FLAGS.gan_batch,
                           train_steps=100000, g_filters=filters, g_residual_blocks=blocks, d_filters=filters,
                           d_downsamples=downsamples)
        rows.append(_train_row("StarGAN", task, repeats, details=f", {filters} filters, {blocks} blocks"))
    return rows


@functools.cache
def _scratch_dir():
    """A directory for the files the benchmarks write, removed when the process exits (the cache
    holds the object until then; dropping it would remove the directory at once)."""
    return tempfile.TemporaryDirectory(prefix="legan_benchmark_")


@functools.cache
def _pretrained_files(size):
    """The networks the recipes load from files, written at `size` px and --suite_widths with random
    weights (speed does not depend on them): Q, the identity network f, a depth_pretrain run."""
    import numpy as np

    from legan_tf.gan.depth import make_depth_discriminator
    from legan_tf.models.depth import DepthGenerator
    from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
    from legan_tf.models.quality import QualityModel
    from legan_tf.tasks.depth_pretrain import DEPTH_DISCRIMINATOR_FILE, DEPTH_GENERATOR_FILE
    from legan_tf.tasks.quality import QualityTask

    widths, gan = WIDTHS[FLAGS.suite_widths], WIDTHS[FLAGS.suite_widths]["gan"]
    root = os.path.join(_scratch_dir().name, f"{size}px")
    depth_run = os.path.join(root, "depth_pretrain_run")
    os.makedirs(depth_run)
    images = np.zeros((1, size, size, 3), np.float32)
    quality = QualityModel(**QualityTask({}, size, 1, train_steps=1, **widths["quality"]).model_args)
    identity = IdentityEmbedder(LightCNN29v2(**widths["identity"]))
    depth_generator = DepthGenerator(size, "depth", gan["g_filters"], gan["g_residual_blocks"])
    depth_discriminator = make_depth_discriminator(size, "depth", len(DEPTH_LABELS["expression"]), gan["d_filters"],
                                                   gan["d_downsamples"])
    files = {"quality_model": os.path.join(root, "quality_model.keras"),
             "identity_model": os.path.join(root, "identity_model.keras"), "pretrained_run": depth_run}
    depth_files = [os.path.join(depth_run, name) for name in (DEPTH_GENERATOR_FILE, DEPTH_DISCRIMINATOR_FILE)]
    for network, path, inputs in ((quality, files["quality_model"], images),
                                  (identity, files["identity_model"], images),
                                  (depth_generator, depth_files[0], images),
                                  (depth_discriminator, depth_files[1], images[..., :1])):
        network(inputs)
        network.save(path)
    return files


def _suite_tasks(size, batch):
    """The four recipes of the train and infer benchmarks at `size` px, by the name their rows show."""
    from legan_tf.tasks.legan import LEGANTask
    from legan_tf.tasks.quality import QualityTask
    from legan_tf.tasks.stargan import StarGANTask
    from legan_tf.tasks.stargan_depth import StarGANDepthTask

    widths, files = WIDTHS[FLAGS.suite_widths], _pretrained_files(size)
    common = dict(image_size=size, global_batch_size=batch, train_steps=100000)
    return {
        "StarGAN": lambda: StarGANTask(MULTIPIE_LABELS, **common, **widths["gan"]),
        "LEGAN": lambda: LEGANTask(MULTIPIE_LABELS, **common, **widths["gan"], quality_model=files["quality_model"],
                                   identity_model=files["identity_model"]),
        "Q": lambda: QualityTask({}, **common, **widths["quality"]),
        "StarGAN-depth": lambda: StarGANDepthTask(DEPTH_LABELS, **common, **widths["gan"],
                                                  pretrained_run=files["pretrained_run"]),
    }


def bench_train(repeats):
    for size in (int(s) for s in FLAGS.suite_sizes):
        for name, make_task in _suite_tasks(size, FLAGS.gan_batch).items():
            _progress(f"train: {name} at {size} px")
            yield _train_row(name, make_task(), repeats, details=f", {FLAGS.suite_widths} widths",
                             key=f"train {name} {size}")


def _inference_function(network):
    """`network(inputs, training=False)` compiled as a deployment runs it: tf.function, or jax.jit."""
    from legan_tf import backend

    if backend.name() == "jax":
        import jax

        weights = ([v.value for v in network.trainable_variables], [v.value for v in network.non_trainable_variables])
        compiled = jax.jit(lambda weights, inputs: network.stateless_call(*weights, inputs, training=False)[0])
        return lambda inputs: compiled(weights, inputs)
    import tensorflow as tf

    # A partial, not a lambda: tf.function keys its retracing warning on the code object, which
    # every network's lambda would share.
    return tf.function(functools.partial(network, training=False))


def bench_infer(repeats):
    import keras
    from keras import ops

    from legan_tf import backend
    from legan_tf.flops import count_flops
    from legan_tf.tasks.base import GANTask

    for size in (int(s) for s in FLAGS.suite_sizes):
        for name, make_task in _suite_tasks(size, max(INFER_BATCHES)).items():
            _progress(f"infer: {name} at {size} px")
            task = make_task()
            task.build()
            data = _training_batch(task, max(INFER_BATCHES))
            if isinstance(task, GANTask):
                network = task.model.sampling_generator
                ids = {attribute: data[attribute] for attribute in task.label_sizes}
                labels = ops.convert_to_numpy(task.model.one_hot(ids))
                inputs = lambda count: (data["image"][:count], labels[:count])  # noqa: E731
            else:
                network = task.model
                inputs = lambda count: data["image"][:count]  # noqa: E731
            per_image = count_flops(lambda: network(inputs(1), training=False))
            call = _inference_function(network)
            for count in INFER_BATCHES:
                on_device = keras.tree.map_structure(ops.convert_to_tensor, inputs(count))
                yield _throughput_row(
                    f"{name} inference ({backend.name()}{_precision_label()}) {size} px, batch {count}, {FLAGS.suite_widths} widths",
                    lambda: ops.convert_to_numpy(call(on_device)), repeats, count, digits=1,
                    flops=count * per_image, per_call=True)


# -- input pipelines ----------------------------------------------------------------------------------

def _prepared_lab_shards(root, size):
    """Lab faces (stored at --input_source_size, else `size`) prepared into 4 TFRecord shards under
    `root`, as prepare_data.py writes them; returns the DataConfig that reads them for training."""
    from legan_tf.data import open_source, tfrecord
    from legan_tf.data.config import DataConfig
    from legan_tf.data.synthetic.writer import write_face_lab

    write_face_lab(root, image_size=FLAGS.input_source_size or size, num_identities=4, seed=0, num_lightings=4,
                   naturalness_variants=1, rgbd_lightings_per_face=1, parts=("multipie",), progress=False)
    lab = DataConfig("multipie", os.path.join(root, "multipie", "manifest.csv"), image_size=size,
                     lighting_names=tuple(f"{i:02d}" for i in range(4)), random_flip=True)
    shards = os.path.join(root, "shards")
    tfrecord.prepare_output_dir(shards, overwrite=False)
    tfrecord.write_tfrecords(open_source(lab), shards, num_shards=4, holdout_fraction=0.0, seed=0)
    return DataConfig("tfrecord", shards, image_size=size, lighting_names=lab.lighting_names, random_flip=True)


def _input_row(label, next_batch, repeats, details="", key=""):
    """Images/s of `next_batch()` over 10 training batches of --input_batch per timed call."""
    batches_per_repeat = 10

    def run():
        for _ in range(batches_per_repeat):
            next_batch()

    stored = FLAGS.input_source_size or FLAGS.input_size
    return _throughput_row(f"{label} {stored} px PNG to {FLAGS.input_size} px, batch {FLAGS.input_batch}{details}, "
                           "flips", run, repeats, batches_per_repeat * FLAGS.input_batch, key=key)


def bench_input(repeats):
    from legan_tf.data.numpy_input import open_numpy_source

    with tempfile.TemporaryDirectory() as root:
        # Preparing needs TensorFlow's writer; reading (what is timed) does not.
        source = open_numpy_source(_prepared_lab_shards(root, FLAGS.input_size))
        stream = source.batches(FLAGS.input_batch, training=True, num_workers=FLAGS.input_workers or None,
                                processes=FLAGS.input_processes)
        workers = (f"{FLAGS.input_processes} processes" if FLAGS.input_processes
                   else f"{FLAGS.input_workers or os.cpu_count()} threads")
        row = _input_row("numpy input (JAX path)", lambda: next(stream), repeats, details=f", {workers}")
        stream.close()
    return [row]


def bench_input_tf(repeats):
    from legan_tf.data import open_source

    with tempfile.TemporaryDirectory() as root:
        source = open_source(_prepared_lab_shards(root, FLAGS.input_size))
        batches = iter(source.dataset(batch_size=FLAGS.input_batch, training=True))
        return [_input_row("tf.data input (TensorFlow trainer)", lambda: next(batches), repeats,
                           key=f"input_tf {FLAGS.input_size}")]


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
            rows.append((f"{label}: 1 face at {size} px, p50 / p99", f"{1000 * p50:.0f} ms / {1000 * p99:.0f} ms",
                         f"{FLAGS.serving_requests} requests"))
            rows.append(_throughput_row(f"{label}: batch 32", lambda: call(32), max(1, repeats // 2), 32, digits=1))
        server.stop()
    return rows


def _input_to_training_ratio(rows):
    """The issue 18 line: input_tf's images/s over StarGAN training's at --input_size, when both ran."""
    rates = {row.key: row.rate for row in rows if row.key}
    size = FLAGS.input_size
    delivered, consumed = rates.get(f"input_tf {size}"), rates.get(f"train StarGAN {size}")
    if delivered is None or consumed is None:
        return None
    return (f"input_tf delivers {delivered / consumed:.1f}x what StarGAN training consumes at {size} px "
            f"({delivered:.0f} / {consumed:.1f} images/s; issue 18 asks for at least 5x).")


def _print_row(row, peak):
    cells = list(row[:3])
    if peak is not None:
        rate = row.flops_per_second
        cells += [_significant(rate / 1e9), _significant(100 * rate / peak.flops_per_second)] if rate else ["", ""]
    print("| " + " | ".join(cells) + " |", flush=True)


def _precision_label():
    return "" if FLAGS.mixed_precision == "float32" else f", {FLAGS.mixed_precision}"


def main(argv):
    del argv
    from legan_tf import precision

    precision.set_policy(FLAGS.mixed_precision)  # before any network is built
    available = {"train": bench_train, "infer": bench_infer, "input_tf": bench_input_tf, "lab": bench_lab,
                 "classifier": bench_classifier, "serving": bench_serving, "gan": bench_gan, "input": bench_input}
    names = SUITES[FLAGS.suite] if FLAGS.suite else FLAGS.benchmarks
    unknown = [name for name in names if name not in available]
    if unknown:
        raise app.UsageError(f"unknown benchmarks {unknown}; choose from {sorted(available)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"median of {FLAGS.repeats} repeats after one warm-up\n")
    peak = None
    if any(name in ("train", "infer", "gan") for name in names):
        _progress("running peak (fp32 matmul)")
        peak = bench_peak(FLAGS.repeats)
    columns = ["benchmark", "median", "range"] + (["GFLOP/s", "% of peak"] if peak else [])
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    rows = [peak] if peak else []
    for row in rows:
        _print_row(row, peak)
    for name in names:
        _progress(f"running {name}")
        for row in available[name](FLAGS.repeats):
            rows.append(Row(*row))
            _print_row(rows[-1], peak)
    ratio = _input_to_training_ratio(rows)
    if ratio:
        print("\n" + ratio)


if __name__ == "__main__":
    app.run(main)
