"""Inference speed: each recipe's generator (Q: its scoring network) at batch 1 and 32, compiled as a
deployment runs it (a tf.function, or jax.jit under JAX), inputs on the device and outputs read back."""

from __future__ import annotations

import functools

from legan_tf.benchmark.timing import progress, throughput_row
from legan_tf.benchmark.training import suite_tasks, training_batch

INFER_BATCHES = (1, 32)


def inference_function(network):
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


def bench_infer(options):
    import keras
    from keras import ops

    from legan_tf import backend
    from legan_tf.benchmark.flops import count_flops
    from legan_tf.tasks.base import GANTask

    for size in (int(s) for s in options.suite_sizes):
        for name, make_task in suite_tasks(options, size, max(INFER_BATCHES)).items():
            progress(f"infer: {name} at {size} px")
            task = make_task()
            task.build()
            data = training_batch(task, max(INFER_BATCHES))
            if isinstance(task, GANTask):
                network = task.model.sampling_generator
                ids = {attribute: data[attribute] for attribute in task.label_sizes}
                labels = ops.convert_to_numpy(task.model.one_hot(ids))
                inputs = lambda count: (data["image"][:count], labels[:count])  # noqa: E731
            else:
                network = task.model
                inputs = lambda count: data["image"][:count]  # noqa: E731
            per_image = count_flops(lambda: network(inputs(1), training=False))
            call = inference_function(network)
            for count in INFER_BATCHES:
                on_device = keras.tree.map_structure(ops.convert_to_tensor, inputs(count))
                yield throughput_row(
                    f"{name} inference ({backend.name()}{options.precision_label}) {size} px, batch {count}, "
                    f"{options.suite_widths} widths", lambda: ops.convert_to_numpy(call(on_device)), options.repeats,
                    count, digits=1, flops=count * per_image, per_call=True)
