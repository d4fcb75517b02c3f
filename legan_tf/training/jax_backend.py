"""The training loop's JAX backend: the same tasks, run directory and outputs, no TensorFlow.

A task's updates (`Task.step_schedule()`) are the code the TensorFlow backend runs under
`strategy.run`. Here each runs inside a `keras.StatelessScope` that maps every variable of the run
(networks and optimizer slots) to a value passed in, and collects what the update assigns, so one
update is a pure function `values, batch, step -> new values, metrics` that `jax.jit` compiles once
(`legan_tf.backend.apply_gradients` takes the gradients inside it). The values stay on the
device between steps; the Keras variables are written only to checkpoint, sample, evaluate and
export (`sync`).

Several devices: `keras.distribution.DataParallel` replicates the variables and the global batch
is sharded over the devices along its first axis; jit then computes the same global-batch update
as one device (the losses are means over the global batch, so no maths changes).

Checkpoints are `checkpoints/jax-ckpt-<step>.npz`: every variable by its checkpoint item and Keras
path, written to a temporary file and renamed, so a checkpoint that exists is complete.
"""

from __future__ import annotations

import os

import jax
import keras
import numpy as np
from absl import logging

from legan_tf.errors import ConfigError
from legan_tf.training.config import CheckpointNotWritten
from legan_tf.training.backend_api import Backend, Batches, check_trained_under


def checkpoint_variables(task) -> list[tuple[str, object]]:
    """(key, variable) for everything a resume restores, in a fixed order, each variable once."""
    seen, entries = set(), []
    for item_name, item in task.checkpoint_items().items():
        variables = item.variables if isinstance(item, keras.optimizers.Optimizer) else item.weights
        for index, variable in enumerate(variables):
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            entries.append((f"{item_name}/{index:04d}/{variable.path}", variable))
    return entries


def data_parallel_devices(count: int) -> list:
    """The first `count` local devices (0: all of them)."""
    devices = jax.devices()
    if count > len(devices):
        raise ConfigError(f"--devices={count}: JAX sees {len(devices)} device(s) here ({devices[0].platform}).")
    return devices[:count] if count else devices


def use_data_parallel(devices):
    """With several devices: keras.distribution.DataParallel for the variables built from now on, and
    the sharding that splits a batch over the devices along its first axis. None for one device."""
    if len(devices) < 2:
        return None
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=list(devices)))
    mesh = jax.sharding.Mesh(np.asarray(devices), ("batch",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))


def compile_update(variables, entry):
    """`update(values, batch, step) -> (new values, metrics)`: one ScheduledStep as a pure function of
    the values of `variables`, compiled by jax.jit (the old values are donated to the new ones)."""

    def update(values, batch, step):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            metrics = entry.fn(batch, step)
            if entry.cross_replica_after is not None:
                entry.cross_replica_after()
        return [scope.get_current_value(variable) for variable in variables], metrics

    # The old values are dead once the new ones exist: donating them halves peak memory.
    return jax.jit(update, donate_argnums=0)


class JaxBackend(Backend):
    """Trains on numpy batches from `source.batches(...)` (legan_tf.data.numpy_input), on `devices`.
    Made before the task builds its networks: with several devices the variables are made replicated."""

    name = "jax"
    state_description = "a weight or optimizer slot"

    def __init__(self, task, devices=None, input_processes: int = 0):
        super().__init__(task)
        self.devices = list(devices or jax.devices()[:1])
        if task.global_batch_size % len(self.devices):
            raise ConfigError(f"--batch_size={task.global_batch_size} does not split evenly over "
                              f"{len(self.devices)} devices.")
        self.sharding = use_data_parallel(self.devices)
        self.input_processes = input_processes
        self._entries, self._values = None, None

    def build(self):
        self.task.build()

    # -- state: the variables' values, on the device -------------------------------------------------

    @property
    def entries(self) -> list[tuple[str, object]]:
        """(checkpoint key, variable) of the built task, found once (after the task's optimizers are set)."""
        if self._entries is None:
            self._entries = checkpoint_variables(self.task)
        return self._entries

    @property
    def variables(self) -> list:
        return [variable for _, variable in self.entries]

    @property
    def values(self) -> list:
        if self._values is None:
            self._values = [variable.value for variable in self.variables]
        return self._values

    def sync(self):
        if self._values is not None:
            for variable, value in zip(self.variables, self._values):
                variable.assign(value)

    def read(self, variable):
        return int(self.values[next(i for i, known in enumerate(self.variables) if known is variable)])

    def state_finite(self):
        finite = [jax.numpy.isfinite(value).all() for value in self.values
                  if jax.numpy.issubdtype(value.dtype, jax.numpy.floating)]
        return not finite or bool(jax.numpy.stack(finite).all())

    # -- the compiled updates ------------------------------------------------------------------------

    def compile(self, entry):
        pure = compile_update(self.variables, entry)

        def update(batch, step):
            self._values, metrics = pure(self.values, batch, jax.numpy.asarray(step, jax.numpy.int32))
            return metrics

        return update

    def device_batch(self, batch):
        if self.sharding is None:
            return {key: jax.numpy.asarray(value) for key, value in batch.items()}
        return {key: jax.device_put(value, self.sharding) for key, value in batch.items()}

    # -- checkpoints ---------------------------------------------------------------------------------

    def open_checkpoints(self, run, keep):
        self.run, self.keep = run, keep

    def restore(self):
        check_trained_under(self.run, self.name)
        checkpoints = self.run.jax_checkpoints()
        if not checkpoints:
            return 0
        step, path = checkpoints[-1]
        with np.load(path, allow_pickle=False) as stored:
            missing = [key for key, _ in self.entries if key not in stored.files]
            wrong = [key for key, variable in self.entries
                     if key in stored.files and tuple(stored[key].shape) != tuple(variable.shape)]
            if missing or wrong:
                detail = f"missing {missing[0]}" if missing else f"shape of {wrong[0]} differs"
                raise ConfigError(f"Checkpoint {path} does not fit the {self.task.name!r} model built from these "
                                  f"flags (another architecture, size or label count?): {detail}.")
            for key, variable in self.entries:
                variable.assign(stored[key])
        self._values = [variable.value for variable in self.variables]
        logging.info("Resumed from %s at step %d.", path, step)
        return step

    def save(self, step):
        self.sync()
        arrays = {key: keras.ops.convert_to_numpy(variable.value) for key, variable in self.entries}
        arrays["__step__"] = np.asarray(step, np.int64)
        path = self.run.jax_checkpoint_path(step)
        partial = path + ".partial"
        try:
            with open(partial, "wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)  # a checkpoint under its final name is always complete
        except OSError as error:
            try:
                os.remove(partial)
            except OSError:
                pass
            raise CheckpointNotWritten(error) from None
        for _, old in self.run.jax_checkpoints()[:-self.keep]:
            os.remove(old)

    # -- input ---------------------------------------------------------------------------------------

    def train_batches(self, source, batch_size, seed, start_step):
        return Batches(source.batches(batch_size, training=True, seed=seed, start_step=start_step,
                                      processes=self.input_processes), convert=self.device_batch)

    def eval_batches(self, source, batch_size):
        return source.batches(batch_size, training=False, repeat=False)

    def sample_batch(self, source, count, seed):
        """A seeded spread of held-out examples, the same at every step of the run."""
        pool = []
        for batch in source.batches(64, training=False, repeat=False):
            pool.append(batch)
            if sum(len(b["image"]) for b in pool) >= 256:
                break
        merged = {key: np.concatenate([b[key] for b in pool]) for key in pool[0]}
        order = np.random.default_rng(seed).permutation(len(merged["image"]))[:count]
        return {key: value[np.sort(order)] for key, value in merged.items()}
