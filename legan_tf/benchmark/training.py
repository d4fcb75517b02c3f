"""Training speed: the trainer's own compiled updates of each recipe on a fixed batch in memory.

train: StarGAN, LEGAN (with its frozen Q and identity network f), Q and the depth-guided StarGAN
(with its depth network) at each of --suite_sizes, two whole D/G cycles (n_critic D updates, one G
update) per timed call, reported as images per D iteration per second with the FLOPs they take; the
networks a recipe loads from files are written with random weights first (speed does not depend on
them). gan: StarGAN at --gan_widths, measured the same way. classifier: the attribute classifier's
training step on the default strategy.
"""

from __future__ import annotations

import functools
import os
import tempfile

from legan_tf.benchmark.timing import progress, throughput_row

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


def training_batch(task, batch):
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


def gan_cycle_flops(model):
    """Estimated FLOPs per example of one D/G cycle (n_critic D updates, one G update) of a
    `legan_tf.gan` model, by the conventions of legan_tf/benchmark/flops.py."""
    import numpy as np

    from legan_tf.benchmark.flops import GRADIENT_PENALTY_FACTOR, TRAINING_FACTOR, count_flops
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


def cycle_flops(task):
    """Estimated FLOPs per example of one cycle of the task's schedule (a GAN's D/G cycle, Q's step)."""
    import numpy as np

    from legan_tf.benchmark.flops import TRAINING_FACTOR, count_flops
    from legan_tf.tasks.base import GANTask

    if isinstance(task, GANTask):
        return gan_cycle_flops(task.model)
    images = np.zeros((1, task.image_size, task.image_size, 3), np.float32)
    return TRAINING_FACTOR * count_flops(lambda: task.model(images))


def compiled_step(task, data, jit_compile=False):
    """`step(number) -> metrics`: the built task's updates that fall on step `number`, compiled as a
    training run of this process's Keras backend compiles them (legan_tf.training.loop), on `data`
    held on the device."""
    from legan_tf import backend
    from legan_tf.training.loop import backend_for

    steps = backend_for(task, **({"jit_compile": jit_compile} if backend.name() == "tensorflow" else {}))
    updates = [(entry, steps.compile(entry)) for entry in task.step_schedule()]
    device_batch = steps.device_batch(data)

    def step(number):
        metrics = {}
        for entry, update in updates:
            if number % entry.every == 0:
                metrics.update(update(device_batch, number))
        return metrics

    return step


def train_row(options, label, task, repeats, details="", key=""):
    """Builds the task and times two whole cycles of its schedule per call (a GAN: n_critic D
    updates and one G update each) as images per D iteration per second, with the FLOPs they take."""
    from keras import ops

    from legan_tf import backend

    batch = task.global_batch_size
    task.build()
    flops = 2 * batch * cycle_flops(task)  # counted first: the JAX updates donate the variables' buffers
    step = compiled_step(task, training_batch(task, batch), options.gan_jit_compile)
    cycle = max(entry.every for entry in task.step_schedule())

    def run():
        for number in range(1, 2 * cycle + 1):
            metrics = step(number)
        ops.convert_to_numpy(next(iter(metrics.values())))  # wait for the work to finish

    compiled = ", XLA" if backend.name() == "tensorflow" and options.gan_jit_compile else ""
    compiled += options.precision_label
    schedule = f", n_critic {cycle}" if cycle > 1 else ""
    return throughput_row(f"{label} train ({backend.name()}{compiled}) {task.image_size} px, batch {batch}{details}"
                          f"{schedule}", run, repeats, 2 * cycle * batch, digits=1, flops=flops, key=key)


def bench_gan(options):
    from legan_tf.tasks.stargan import StarGANTask

    variants = [gan_variant(text) for text in options.gan_generators]
    rows = []
    for width in options.gan_widths:
        filters, blocks, downsamples = (int(part) for part in width.split(":"))
        for upsampling, output in variants:
            variant = "" if (upsampling, output) == ("transpose", "image") else f", {upsampling} + {output}"
            progress(f"gan: StarGAN at {width}{variant}")
            task = StarGANTask({"expression": tuple(str(i) for i in range(7))}, options.gan_size, options.gan_batch,
                               train_steps=100000, g_filters=filters, g_residual_blocks=blocks, d_filters=filters,
                               d_downsamples=downsamples, g_upsampling=upsampling, g_output=output)
            rows.append(train_row(options, "StarGAN", task, options.repeats,
                                  details=f", {filters} filters, {blocks} blocks{variant}"))
    return rows


def gan_variant(text):
    """'upsampling:output' of --gan_generators as a pair, checked against the generator's choices."""
    from legan_tf.errors import ConfigError
    from legan_tf.models.stargan import StarGANGenerator

    parts = text.split(":")
    if len(parts) != 2 or parts[0] not in StarGANGenerator.UPSAMPLINGS or parts[1] not in StarGANGenerator.OUTPUTS:
        raise ConfigError(f"--gan_generators: {text!r} is not upsampling:output with upsampling one of "
                         f"{', '.join(StarGANGenerator.UPSAMPLINGS)} and output one of "
                         f"{', '.join(StarGANGenerator.OUTPUTS)}")
    return parts[0], parts[1]


def bench_classifier(options):
    import numpy as np
    import tensorflow as tf

    from legan_tf.tasks.classifier import ClassifierTask

    size, batch = options.classifier_size, options.classifier_batch
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

    return [throughput_row(f"classifier train step {size} px, batch {batch}, 16 filters", run, options.repeats,
                           steps_per_repeat * batch)]


@functools.cache
def scratch_dir():
    """A directory for the files the benchmarks write, removed when the process exits (the cache
    holds the object until then; dropping it would remove the directory at once)."""
    return tempfile.TemporaryDirectory(prefix="legan_benchmark_")


@functools.cache
def pretrained_files(size, widths_name):
    """The networks the recipes load from files, written at `size` px and `widths_name` widths with random
    weights (speed does not depend on them): Q, the identity network f, a depth_pretrain run."""
    import numpy as np

    from legan_tf.gan.depth import make_depth_discriminator
    from legan_tf.models.depth import DepthGenerator
    from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
    from legan_tf.models.quality import QualityModel
    from legan_tf.runs import RunDir
    from legan_tf.tasks.quality import QualityTask

    widths, gan = WIDTHS[widths_name], WIDTHS[widths_name]["gan"]
    root = os.path.join(scratch_dir().name, f"{size}px-{widths_name}")
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
    depth_files = [RunDir(depth_run).model_path(role) for role in ("depth_generator", "depth_discriminator")]
    for network, path, inputs in ((quality, files["quality_model"], images),
                                  (identity, files["identity_model"], images),
                                  (depth_generator, depth_files[0], images),
                                  (depth_discriminator, depth_files[1], images[..., :1])):
        network(inputs)
        network.save(path)
    return files


def suite_tasks(options, size, batch):
    """The four recipes of the train and infer benchmarks at `size` px, by the name their rows show."""
    from legan_tf.tasks.legan import LEGANTask
    from legan_tf.tasks.quality import QualityTask
    from legan_tf.tasks.stargan import StarGANTask
    from legan_tf.tasks.stargan_depth import StarGANDepthTask

    widths, files = WIDTHS[options.suite_widths], pretrained_files(size, options.suite_widths)
    common = dict(image_size=size, global_batch_size=batch, train_steps=100000)
    return {
        "StarGAN": lambda: StarGANTask(MULTIPIE_LABELS, **common, **widths["gan"]),
        "LEGAN": lambda: LEGANTask(MULTIPIE_LABELS, **common, **widths["gan"], quality_model=files["quality_model"],
                                   identity_model=files["identity_model"]),
        "Q": lambda: QualityTask({}, **common, **widths["quality"]),
        "StarGAN-depth": lambda: StarGANDepthTask(DEPTH_LABELS, **common, **widths["gan"],
                                                  pretrained_run=files["pretrained_run"]),
    }


def bench_train(options):
    for size in (int(s) for s in options.suite_sizes):
        for name, make_task in suite_tasks(options, size, options.gan_batch).items():
            progress(f"train: {name} at {size} px")
            yield train_row(options, name, make_task(), options.repeats, details=f", {options.suite_widths} widths",
                            key=f"train {name} {size}")
