"""One training step of a task under whichever Keras backend this process runs (a test helper).

    KERAS_BACKEND=<tensorflow|jax> [BACKEND_STEP_DEVICES=2] python tests/training/backend_step.py <folder> <task> ...

For each task: builds it at a tiny size, loads the weights in <folder>/<task>-weights.npz when the
file exists (else writes its own initial weights there), runs every update of the task's step schedule once
on a fixed batch with plain SGD (so an update is -lr * gradient, linear in the gradient) and fixed random
draws, and writes the step's metrics and the updated weights to <folder>/<task>-<backend>.npz. The test
compares the TensorFlow and the JAX output (tests/training/test_backends.py). Under JAX the updates are
compiled as a training run compiles them (legan_tf.training.jax_backend.JaxBackend.compile).

The file also records the dtypes the step computed in (`compute_dtypes`: the outputs of every convolution
and dense layer the step called) and its weights' dtypes, which the --mixed_precision tests check
(tests/training/test_precision.py).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
from keras import ops  # noqa: E402

from legan_tf import backend, precision, tasks  # noqa: E402

SIZE, BATCH, LEARNING_RATE = 32, 4, 0.01
EXPRESSIONS, LIGHTINGS = ("neutral", "smile", "surprise"), ("l0", "l1")


def _fixed_uniform(shape, run_seed, stream_key, step):
    """The same U(0, 1) draws under both backends: numpy's, keyed by the stream (one step per run)."""
    shape = [int(d) for d in (shape if not hasattr(shape, "numpy") else shape.numpy())]
    return ops.convert_to_tensor(np.random.default_rng(stream_key).uniform(size=shape).astype("float32"))


def _fixed_normal(shape, run_seed, stream_key, step):
    shape = [int(d) for d in (shape if not hasattr(shape, "numpy") else shape.numpy())]
    return ops.convert_to_tensor(np.random.default_rng(stream_key).standard_normal(size=shape).astype("float32"))


def _batch(task_name):
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype("float32"),
             "expression": np.array([0, 1, 2, 1], np.int32), "lighting": np.array([0, 1, 1, 0], np.int32)}
    if task_name == "quality":
        batch.update(mean=np.array([2.0, 5.0, 8.0, 9.5], np.float32), std=np.array([0.5, 1.0, 0.2, 0.0], np.float32))
    if task_name == "identity":
        batch["identity"] = np.array([0, 1, 2, 0], np.int32)
    if task_name in ("depth_pretrain", "stargan_depth"):
        batch["depth"] = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 1)).astype("float32")
    return batch


def _task(task_name):
    common = dict(image_size=SIZE, global_batch_size=BATCH, train_steps=10, learning_rate=LEARNING_RATE, seed=0)
    expression = {"expression": EXPRESSIONS}
    gan = dict(g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=3, n_critic=1, decay_steps=0)
    if task_name == "stargan":
        return tasks.get_task_class("stargan")(label_names=expression, **common, **gan)
    if task_name == "legan":
        return tasks.get_task_class("legan")(label_names={**expression, "lighting": LIGHTINGS}, **common, **gan,
                                             lambda_id=0.0, lambda_qual=0.0)
    if task_name == "depth_pretrain":
        return tasks.get_task_class("depth_pretrain")(label_names=expression, **common, **gan, perceptual_net="none",
                                                      data_features=("image", "depth", "expression"))
    if task_name == "stargan_depth":
        # The depth network a depth_pretrain run would have exported, written once and read by both
        # backends' processes (its weights are then replaced by the shared initial weights).
        pretrained = os.path.join(os.environ["BACKEND_STEP_FOLDER"], "depth-pretrained")
        if not os.path.isdir(pretrained):
            depth = _task("depth_pretrain")
            depth.build()
            os.makedirs(pretrained)
            depth.export(pretrained)
        return tasks.get_task_class("stargan_depth")(label_names=expression, **common, **gan,
                                                     pretrained_run=pretrained,
                                                     data_features=("image", "depth", "expression"))
    if task_name == "classifier":
        return tasks.get_task_class("classifier")(label_names=expression, **common, base_filters=4, downsamples=2)
    if task_name == "quality":
        return tasks.get_task_class("quality")(label_names={}, **common, base_filters=4, downsamples=3,
                                               dense_units=8)
    if task_name == "identity":
        return tasks.get_task_class("identity")(label_names={}, **common, identities=(0, 1, 2), degrade=True,
                                                channels=(4, 8, 8, 8, 8), blocks=(1, 1, 1, 1), embedding_dim=8,
                                                dropout=0.0, input_size=32)
    raise SystemExit(f"unknown task {task_name}")


def _sgd():
    """Plain SGD; under mixed_float16 inside the loss scaling the recipes' optimizers get."""
    sgd = keras.optimizers.SGD(LEARNING_RATE)
    return keras.optimizers.LossScaleOptimizer(sgd) if precision.needs_loss_scaling() else sgd


def _use_sgd(task):
    """Plain SGD in place of the recipe's Adam: its update is linear in the gradient, so the bound on
    the two backends' gradients carries over to the weights unchanged."""
    if hasattr(task, "model") and hasattr(task.model, "build_all"):
        task.model.build_all(_sgd(), _sgd())
        return [task.model.d_optimizer, task.model.g_optimizer]
    network = getattr(task, "network", None) or task.model
    task.optimizer = _sgd()
    task.optimizer.build(network.trainable_variables)
    return [task.optimizer]


# JAX only: split the batch over this many devices (keras.distribution.DataParallel).
DEVICES = int(os.environ.get("BACKEND_STEP_DEVICES", "1"))
# TensorFlow only: compile each update's loss and gradients with XLA (--jit_compile).
JIT = os.environ.get("BACKEND_STEP_JIT") == "1"
# The networks' compute dtype (--mixed_precision); the weights file stays the float32 run's.
PRECISION = os.environ.get("BACKEND_STEP_PRECISION", "float32")


def main(folder, *task_names):
    os.environ["BACKEND_STEP_FOLDER"] = folder
    backend.stateless_uniform, backend.stateless_normal = _fixed_uniform, _fixed_normal
    suffix = f"-{DEVICES}dev" if DEVICES > 1 else ""
    if JIT:
        backend.set_jit_compile(True)
        suffix += "-jit"
    if PRECISION != "float32":
        precision.set_policy(PRECISION)
        suffix += f"-{PRECISION}"
    if backend.name() == "tensorflow" and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0":
        suffix += "-onednn"  # TensorFlow's oneDNN kernels (its default) rather than Eigen's
    for task_name in task_names:
        one_step(task_name, os.path.join(folder, f"{task_name}-weights.npz"),
                 os.path.join(folder, f"{task_name}-{backend.name()}{suffix}.npz"))


def one_step(task_name, weights_path, out_path):
    keras.utils.set_random_seed(0)
    task = _task(task_name)
    steps = None
    if backend.name() == "jax":
        import jax

        from legan_tf.training.jax_backend import JaxBackend

        steps = JaxBackend(task, jax.devices()[:DEVICES])  # before the networks are built: DataParallel
    task.build()
    _use_sgd(task)
    items = {name: item for name, item in task.checkpoint_items().items()
             if not isinstance(item, keras.optimizers.Optimizer)}
    weights = {f"{name}/{i}": variable for name, item in items.items() for i, variable in enumerate(item.weights)}
    if os.path.exists(weights_path):
        stored = np.load(weights_path)
        for key, variable in weights.items():
            variable.assign(stored[key])
    else:
        np.savez(weights_path, **{key: ops.convert_to_numpy(v.value) for key, v in weights.items()})
    batch = _batch(task_name)
    metrics = {}
    with ComputeDtypes() as computed:
        if steps is not None:
            # The task's updates compiled as a JAX run compiles them (its optimizers are now the SGD ones).
            batch = steps.device_batch(batch)
            for entry in task.step_schedule():
                metrics.update(steps.compile(entry)(batch, 1))
            steps.sync()
        else:
            for entry in task.step_schedule():
                metrics.update(entry.fn(batch, ops.convert_to_tensor(1, "int64")))
                if entry.cross_replica_after is not None:
                    entry.cross_replica_after()
    out = {f"metric:{name}": float(value) for name, value in metrics.items()}
    out["devices"] = len(batch["image"].sharding.device_set) if backend.name() == "jax" else 1
    out["compute_dtypes"] = np.array(sorted(computed.dtypes))
    out["weight_dtypes"] = np.array(sorted({keras.backend.standardize_dtype(v.dtype) for v in weights.values()}))
    out.update({key: ops.convert_to_numpy(variable.value) for key, variable in weights.items()})
    np.savez(out_path, **out)


class ComputeDtypes:
    """Records the dtype of every output of the convolutions and dense layers called inside the block: the
    dtype the networks really computed in (a layer's `call` runs after Keras cast its inputs and weights to
    the layer's compute dtype)."""

    def __enter__(self):
        from legan_tf.benchmark.flops import observe_calls

        self.dtypes = set()
        self._observing = observe_calls(
            lambda layer, inputs, outputs: self.dtypes.add(keras.backend.standardize_dtype(outputs.dtype)))
        self._observing.__enter__()
        return self

    def __exit__(self, *exc):
        return self._observing.__exit__(*exc)


if __name__ == "__main__":
    main(*sys.argv[1:])
