"""The training loop under Keras's JAX backend: the same tasks, run directory and outputs, no TensorFlow.

A task's updates (`Task.step_schedule()`) are the code the TensorFlow trainer runs under
`strategy.run`. Here each runs inside a `keras.StatelessScope` that maps every variable of the run
(networks and optimizer slots) to a value passed in, and collects what the update assigns, so one
update is a pure function `values, batch, step -> new values, metrics` that `jax.jit` compiles once
(`legan_tf.backend.apply_gradients` takes the gradients inside it). The values stay on the
device between steps; the Keras variables are written only to checkpoint, sample, evaluate and
export.

Several devices: `keras.distribution.DataParallel` replicates the variables and the global batch
is sharded over the devices along its first axis; jit then computes the same global-batch update
as one device (the losses are means over the global batch, so no maths changes).

Checkpoints are `checkpoints/jax-ckpt-<step>.npz`: every variable by its checkpoint item and Keras
path, written to a temporary file and renamed, so a checkpoint that exists is complete.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import time

import jax
import keras
import numpy as np
from absl import logging
from tqdm import tqdm

from legan_tf import visualize
from legan_tf.errors import CannotWrite, ConfigError, Interrupted, NonFiniteLoss
from legan_tf.training import run_dir as run_dirs
from legan_tf.training.config import (Deadline, NanGuard, StopSignals, TrainerConfig,  # noqa: F401
                                      after_step, cannot_write_message, non_finite_message)

CHECKPOINT_PATTERN = re.compile(r"^jax-ckpt-(\d+)\.npz$")
TF_CHECKPOINT_INDEX = "checkpoint"  # the file tf.train.CheckpointManager keeps beside its checkpoints


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


class JaxTrainer:
    """Trains `task` on numpy batches from `train_source.batches(...)` (legan_tf.data.numpy_input)."""

    def __init__(self, task, run_dir, train_source, eval_source, config: TrainerConfig, devices=None,
                 input_processes=0):
        self.task, self.run_dir, self.config = task, run_dir, config
        self.input_processes = input_processes
        self.train_source, self.eval_source = train_source, eval_source
        self.devices = list(devices or jax.devices()[:1])
        if task.global_batch_size % len(self.devices):
            raise ConfigError(f"--batch_size={task.global_batch_size} does not split evenly over "
                              f"{len(self.devices)} devices.")
        self.sharding = use_data_parallel(self.devices)
        task.build()
        self.entries = checkpoint_variables(task)
        self.variables = [variable for _, variable in self.entries]
        self.values = [variable.value for variable in self.variables]
        self.checkpoint_dir = os.path.join(run_dir, "checkpoints")
        # Skip counters are read from the device values; the Keras variables are written only to save.
        self.nan_guard = NanGuard(config, task, run_dir, lambda variable: int(self.values[
            next(i for i, known in enumerate(self.variables) if known is variable)]))
        self.scalars_path = os.path.join(run_dir, "logs", "scalars.jsonl")
        self.summary_writer = _event_writer(os.path.join(run_dir, "logs"))

    # -- state -------------------------------------------------------------------------------------

    def _sync_to_variables(self):
        """Writes the device values into the Keras variables (for saving, sampling, evaluating)."""
        for variable, value in zip(self.variables, self.values):
            variable.assign(value)

    def _checkpoints(self) -> list[tuple[int, str]]:
        found = []
        for path in glob.glob(os.path.join(self.checkpoint_dir, "jax-ckpt-*.npz")):
            match = CHECKPOINT_PATTERN.match(os.path.basename(path))
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _check_finite(self, pending):
        """Raises NonFiniteLoss when the steps since the last check call for it (config.NanGuard)."""
        self.nan_guard.check(pending, self.last_saved)

    def save(self, step: int, pending=None) -> str:
        """A checkpoint of `step`, only of finite losses and weights: a NaN is never the run's latest state.
        `pending`: the (step, metrics) not yet checked, emptied here."""
        if pending is not None:
            self._check_finite(pending)
        finite = [jax.numpy.isfinite(value).all() for value in self.values
                  if jax.numpy.issubdtype(value.dtype, jax.numpy.floating)]
        if finite and not bool(jax.numpy.stack(finite).all()):
            raise NonFiniteLoss(non_finite_message(step, "a weight or optimizer slot", "not finite", self.last_saved,
                                                   self.run_dir, self.task.global_batch_size))
        self._sync_to_variables()
        arrays = {key: keras.ops.convert_to_numpy(variable.value) for key, variable in self.entries}
        arrays["__step__"] = np.asarray(step, np.int64)
        path = os.path.join(self.checkpoint_dir, f"jax-ckpt-{step:08d}.npz")
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
            raise CannotWrite(cannot_write_message(step, error, self.last_saved, self.run_dir)) from None
        self.last_saved = step
        for _, old in self._checkpoints()[:-self.config.keep_checkpoints]:
            os.remove(old)
        return path

    def restore(self) -> int:
        """Restores the newest checkpoint of the run directory, if any; returns its step."""
        if os.path.isfile(os.path.join(self.checkpoint_dir, TF_CHECKPOINT_INDEX)):
            raise ConfigError(f"{self.run_dir} was trained under TensorFlow: its checkpoints are TensorFlow "
                              "checkpoints, which the JAX backend cannot read. Resume it with --backend=tensorflow "
                              "(or start a new run under JAX from its exported .keras files).")
        checkpoints = self._checkpoints()
        self.last_saved = 0
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
        self.values = [variable.value for variable in self.variables]
        logging.info("Resumed from %s at step %d.", path, step)
        self.last_saved = step
        return step

    # -- the compiled updates ----------------------------------------------------------------------

    def _compile(self, entry):
        variables = self.variables

        def update(values, batch, step):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
                metrics = entry.fn(batch, step)
                if entry.cross_replica_after is not None:
                    entry.cross_replica_after()
            return [scope.get_current_value(variable) for variable in variables], metrics

        # The old values are dead once the new ones exist: donating them halves peak memory.
        return jax.jit(update, donate_argnums=0)

    def _device_batch(self, batch):
        if self.sharding is None:
            return {key: jax.numpy.asarray(value) for key, value in batch.items()}
        return {key: jax.device_put(value, self.sharding) for key, value in batch.items()}

    # -- outputs -----------------------------------------------------------------------------------

    def _write_scalars(self, step, values):
        with open(self.scalars_path, "a") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")
        if self.summary_writer is not None:
            self.summary_writer.scalars(step, values)

    def _fixed_sample_batch(self):
        """A seeded spread of held-out examples, the same at every step of the run."""
        source = self.eval_source or self.train_source
        pool = []
        for batch in source.batches(64, training=False, repeat=False):
            pool.append(batch)
            if sum(len(b["image"]) for b in pool) >= 256:
                break
        merged = {key: np.concatenate([b[key] for b in pool]) for key in pool[0]}
        order = np.random.default_rng(self.config.seed).permutation(len(merged["image"]))[:self.config.num_samples]
        return {key: value[np.sort(order)] for key, value in merged.items()}

    def _write_samples(self, batch, step):
        self._sync_to_variables()
        grid = self.task.sample_grid(batch)
        visualize.save_png(grid, os.path.join(self.run_dir, "samples", f"step_{step:07d}.png"))

    def _evaluate(self, step):
        if self.eval_source is None:
            return {}
        self._sync_to_variables()
        metrics = self.task.evaluate(self.eval_source.batches(self.config.eval_batch_size, training=False,
                                                              repeat=False))
        metrics = {name: float(value) for name, value in metrics.items()}
        self._write_scalars(step, metrics)
        run_dirs.append_metrics(self.run_dir, step, metrics)
        logging.info("step %d: %s", step, ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        return metrics

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> dict[str, float]:
        config = self.config
        start = self.restore()
        if start >= config.train_steps:
            logging.info("The run already reached step %d of %d; nothing to train.", start, config.train_steps)
            return self._evaluate(start)
        batches = self.train_source.batches(self.task.global_batch_size, training=True, seed=config.seed,
                                            start_step=start, processes=self.input_processes)
        schedule = [(entry, self._compile(entry)) for entry in self.task.step_schedule()]
        sample_batch = self._fixed_sample_batch()
        interactive = config.progress_bar and sys.stderr.isatty()
        progress = tqdm(total=config.train_steps, initial=start, desc=f"{self.task.name} (jax)", unit="step",
                        disable=not config.progress_bar, dynamic_ncols=True)
        with StopSignals() as signals:
            return self._loop(start, batches, schedule, sample_batch, progress, interactive, signals)

    def _loop(self, start, batches, schedule, sample_batch, progress, interactive, signals):
        config = self.config
        window_start, window_steps, metrics = time.perf_counter(), 0, {}
        pending = []  # (step, metrics) not yet checked for NaN and inf
        deadline, final_step = Deadline(config), config.train_steps
        for step in range(start + 1, config.train_steps + 1):
            batch = self._device_batch(next(batches))
            step_value = jax.numpy.asarray(step, jax.numpy.int32)
            this_step = {}
            for entry, update in schedule:
                if step % entry.every == 0:
                    self.values, step_metrics = update(self.values, batch, step_value)
                    this_step.update(step_metrics)
            metrics.update(this_step)
            pending.append((step, this_step))
            window_steps += 1
            progress.update(1)
            if step % config.log_every == 0 or step == config.train_steps:
                self._check_finite(pending)
                values = {name: float(value) for name, value in metrics.items()}
                elapsed = time.perf_counter() - window_start
                values["throughput/images_per_second"] = window_steps * self.task.global_batch_size / elapsed
                window_start, window_steps = time.perf_counter(), 0
                self._write_scalars(step, values)
                progress.set_postfix({name.split("/")[-1]: f"{value:.3f}" for name, value in values.items()
                                      if name.startswith(("d/total", "g/total", "loss"))}, refresh=False)
                if not interactive:  # logs of a run without a terminal still show progress
                    speed = values["throughput/images_per_second"]
                    remaining = (config.train_steps - step) * self.task.global_batch_size / speed
                    logging.info("step %d/%d: %s, about %.0f min left", step, config.train_steps,
                                 ", ".join(f"{name} {value:.4g}" for name, value in values.items()), remaining / 60)
            ending = after_step(self, step, pending, sample_batch, deadline, lambda: signals.received is not None)
            if ending == "interrupt":
                progress.close()
                batches.close() if hasattr(batches, "close") else None
                raise Interrupted(signals.message(step, self.run_dir))
            if ending == "stop":
                final_step = step
                break
        progress.close()
        batches.close() if hasattr(batches, "close") else None

        if final_step % config.checkpoint_every:
            self.save(final_step, pending)
        if final_step % config.sample_every:
            self._write_samples(sample_batch, final_step)
        final_metrics = self._evaluate(final_step)
        self._sync_to_variables()
        for path in self.task.export(self.run_dir):
            logging.info("Exported %s", path)
        if self.summary_writer is not None:
            self.summary_writer.close()
        return final_metrics


class _EventWriter:
    """TensorBoard scalars through the `tensorboard` package's own writer (no TensorFlow needed)."""

    def __init__(self, directory):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._writer = EventFileWriter(directory)

    def scalars(self, step, values):
        summary = self._summary(value=[self._summary.Value(tag=name, simple_value=float(value))
                                       for name, value in values.items()])
        self._writer.add_event(self._event(wall_time=time.time(), step=int(step), summary=summary))
        self._writer.flush()

    def close(self):
        self._writer.close()


def _event_writer(directory):
    try:
        return _EventWriter(directory)
    except ImportError:
        logging.warning("No TensorBoard event files: the tensorboard package is not installed here "
                        "(pip install tensorboard); scalars still go to logs/scalars.jsonl.")
        return None
