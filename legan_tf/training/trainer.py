"""The one training loop: a custom loop over `strategy.run`, for every recipe and every strategy.

A custom loop rather than `fit()` because `fit()` does not drive a GAN under
MultiWorkerMirroredStrategy, and one loop for all recipes keeps checkpoints, summaries and resume
behaving the same everywhere.
"""

import glob
import os
import shutil
import sys
import time

import keras
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from legan_tf import visualize
from legan_tf.errors import CannotWrite, ConfigError, Interrupted, NonFiniteLoss
from legan_tf.profiling import StepProfiler
from legan_tf.training import run_dir as run_dirs
from legan_tf.training.config import (Deadline, NanGuard, StopSignals, TrainerConfig,  # noqa: F401
                                      after_step, cannot_write_message, non_finite_message)
from legan_tf.training.strategy import any_worker_function, is_chief


class Trainer:
    def __init__(self, task, strategy, run_dir, train_source, eval_source, config: TrainerConfig, distribute_fn):
        """`distribute_fn(strategy, source, global_batch_size, training, seed, start_step=0)` returns a
        distributed dataset that starts after `start_step` global batches."""
        self.task = task
        self.strategy = strategy
        self.run_dir = run_dir
        self.train_source = train_source
        self.eval_source = eval_source
        self.config = config
        self.distribute_fn = distribute_fn
        self.chief = is_chief(strategy)
        self.nan_guard = NanGuard(config, task, run_dir, lambda variable: int(variable.value))
        # A signal reaches one worker of a cluster; all must stop at the same step (one vote per step).
        self.any_worker = any_worker_function(strategy)

        with strategy.scope():
            task.build()
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        items = task.checkpoint_items()
        # A Keras 3 model is not a tf.train trackable: a Checkpoint given one writes none of its variables.
        # Trainable weights would still reach the file through the optimizers' references to them, but an
        # EMA generator, which no optimizer updates, would be lost (a resumed run then averaged from random
        # weights). The list of a network's weights is trackable, each by position (the architecture fixes
        # the order).
        self.networks = {name: item for name, item in items.items() if isinstance(item, keras.layers.Layer)}
        self.checkpoint = tf.train.Checkpoint(step=self.step, **{
            **items, **{name: list(network.weights) for name, network in self.networks.items()}})
        checkpoint_dir = os.path.join(run_dir, "checkpoints")
        if not self.chief:
            # Multi-worker saving needs every worker to write; only the chief's copy is kept.
            checkpoint_dir = os.path.join(checkpoint_dir, f"worker-tmp-{strategy.cluster_resolver.task_id}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, checkpoint_dir, max_to_keep=config.keep_checkpoints)
        self.writer = (
            tf.summary.create_file_writer(os.path.join(run_dir, "logs")) if self.chief else tf.summary.create_noop_writer()
        )

    def _weights_finite(self) -> bool:
        bad = [tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(weight.value)), tf.int32))
               for network in self.networks.values() for weight in network.weights
               if tf.as_dtype(weight.dtype).is_floating]
        return not bad or int(tf.add_n(bad)) == 0

    def _check_finite(self, pending, step):
        """Raises NonFiniteLoss when the steps since the last check call for it (config.NanGuard)."""
        self.nan_guard.check(pending, self.last_saved)

    def save(self, step, pending):
        """A checkpoint of `step`, only of finite losses and weights: a NaN is never the run's latest state."""
        self._check_finite(pending, step)
        if not self._weights_finite():
            raise NonFiniteLoss(non_finite_message(step, "a weight", "not finite", self.last_saved, self.run_dir,
                                                   self.task.global_batch_size))
        try:
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            # CheckpointManager registers a checkpoint as latest only after its files are written, so a
            # failed write leaves the previous one the latest; its partial files are removed if possible.
            for partial in glob.glob(os.path.join(self.manager.directory, f"ckpt-{step}[._]*")):
                shutil.rmtree(partial, ignore_errors=True) if os.path.isdir(partial) else _remove_quietly(partial)
            raise CannotWrite(cannot_write_message(step, error, self.last_saved, self.run_dir)) from None
        self.last_saved = step

    def restore(self) -> int:
        """Restores the latest checkpoint of the run directory, if any; returns the step reached."""
        latest = self.manager.latest_checkpoint
        self.last_saved = 0
        if latest is None:
            if glob.glob(os.path.join(self.run_dir, "checkpoints", "jax-ckpt-*.npz")):
                raise ConfigError(f"{self.run_dir} was trained under JAX: its checkpoints are the JAX trainer's .npz "
                                  "files, which this TensorFlow trainer does not read. Resume it with --backend=jax "
                                  "(or start a new run from its exported .keras files).")
            return 0
        saved = {name.split("/")[0] for name, _ in tf.train.list_variables(latest)}
        if self.networks and not saved.intersection(self.networks):
            raise ConfigError(
                f"Checkpoint {latest} was written by an earlier legan-tf, which saved the networks' weights "
                "only through the optimizers that update them (an EMA generator not at all), so it cannot be "
                "resumed. Start a new run; the run's exported .keras files are unaffected.")
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(
                f"Checkpoint {latest} does not fit the {self.task.name!r} model built from these flags "
                f"(another architecture, size or label count?): {first_line}"
            ) from None
        logging.info("Resumed from %s at step %d.", latest, int(self.step.numpy()))
        self.last_saved = int(self.step.numpy())
        return self.last_saved

    def _distributed_fn(self, scheduled):
        strategy = self.strategy

        @tf.function
        def distributed_update(batch, step):
            per_replica = strategy.run(scheduled.fn, args=(batch, step))
            metrics = {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                       for name, value in per_replica.items()}
            if scheduled.cross_replica_after is not None:
                scheduled.cross_replica_after()
            return metrics

        return distributed_update

    def _fixed_sample_batch(self):
        """The same spread of held-out examples at every step, not just the first few in file order."""
        source = self.eval_source or self.train_source
        examples = source.dataset(batch_size=64, training=False, repeat=False).unbatch()
        examples = examples.shuffle(4096, seed=self.config.seed, reshuffle_each_iteration=False)
        return next(iter(examples.batch(self.config.num_samples)))

    def _write_samples(self, batch, step):
        if not self.chief:
            return
        grid = self.task.sample_grid(batch)
        visualize.save_png(grid, os.path.join(self.run_dir, "samples", f"step_{step:07d}.png"))
        with self.writer.as_default(step=step):
            tf.summary.image("samples", grid[None], max_outputs=1)

    def _evaluate(self, step):
        if self.eval_source is None or not self.chief:
            return {}
        dataset = self.eval_source.dataset(batch_size=self.config.eval_batch_size, training=False, repeat=False)
        metrics = self.task.evaluate(dataset)
        with self.writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        run_dirs.append_metrics(self.run_dir, step, metrics)
        logging.info("step %d: %s", step, ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        return metrics

    def run(self) -> dict[str, float]:
        config = self.config
        start = self.restore()
        if start >= config.train_steps:
            logging.info("The run already reached step %d of %d; nothing to train.", start, config.train_steps)
            metrics = self._evaluate(start)
            self._export()  # so a finished run can be exported again, e.g. after a crash in its export
            return metrics
        # The data position is a function of the step: a resumed run reads the batches an
        # uninterrupted run would have read next (tf.data's distributed iterators are not trackable).
        dataset = self.distribute_fn(self.strategy, self.train_source, self.task.global_batch_size, True, config.seed,
                                     start_step=start)
        iterator = iter(dataset)
        schedule = [(entry, self._distributed_fn(entry)) for entry in self.task.step_schedule()]
        sample_batch = self._fixed_sample_batch()

        progress = tqdm(total=config.train_steps, initial=start, desc=self.task.name, unit="step",
                        disable=not (config.progress_bar and self.chief), dynamic_ncols=True)
        profiler = StepProfiler(config.profile_steps, os.path.join(self.run_dir, "logs"), enabled=self.chief)
        with StopSignals() as signals:
            try:
                return self._loop(start, iterator, schedule, sample_batch, progress, signals, profiler)
            finally:
                profiler.stop()  # a run that ends inside the window still leaves its trace

    def _loop(self, start, iterator, schedule, sample_batch, progress, signals, profiler):
        config = self.config
        window_start, window_steps = time.perf_counter(), 0
        metrics, pending = {}, []  # pending: (step, metrics) not yet checked for NaN and inf
        deadline, final_step = Deadline(config), config.train_steps
        for step in range(start + 1, config.train_steps + 1):
            # One batch per step, shared by every update of the step (D and G see the same faces).
            profiler.before(step)
            batch = next(iterator)
            step_tensor = tf.constant(step, tf.int64)
            this_step = {}
            for entry, update in schedule:
                if step % entry.every == 0:
                    this_step.update(update(batch, step_tensor))
            metrics.update(this_step)
            pending.append((step, this_step))
            self.step.assign(step)
            summary = profiler.after(step)
            if summary:
                logging.info("Profiled steps %d-%d (%s):\n%s", profiler.first, profiler.last,
                             os.path.join(self.run_dir, "logs", "profile_summary.md"), summary)
            window_steps += 1
            progress.update(1)
            if step % config.log_every == 0 or step == config.train_steps:
                self._check_finite(pending, step)
                values = {name: float(value) for name, value in metrics.items()}
                images_per_second = window_steps * self.task.global_batch_size / (time.perf_counter() - window_start)
                window_start, window_steps = time.perf_counter(), 0
                with self.writer.as_default(step=step):
                    for name, value in values.items():
                        tf.summary.scalar(name, value)
                    tf.summary.scalar("throughput/images_per_second", images_per_second)
                progress.set_postfix({name.split("/")[-1] if name.startswith("loss") else name: f"{value:.3f}"
                                      for name, value in values.items()}, refresh=False)
                if self.chief and not (config.progress_bar and sys.stderr.isatty()):
                    # A run without a terminal (a cluster job, nohup) still logs its progress.
                    remaining = (config.train_steps - step) * self.task.global_batch_size / images_per_second
                    logging.info("step %d/%d: %s, %.1f images/s, about %.0f min left", step, config.train_steps,
                                 ", ".join(f"{name} {value:.4g}" for name, value in values.items()),
                                 images_per_second, remaining / 60)
            ending = after_step(self, step, pending, sample_batch, deadline,
                                lambda: self.any_worker(signals.received is not None))
            if ending == "interrupt":
                progress.close()
                self.writer.flush()
                raise Interrupted(signals.message(step, self.run_dir))
            if ending == "stop":
                final_step = step
                break
        progress.close()

        if final_step % config.checkpoint_every:
            self.save(final_step, pending)
        if final_step % config.sample_every:
            self._write_samples(sample_batch, final_step)
        final_metrics = self._evaluate(final_step)
        self._export()
        self.writer.flush()
        return final_metrics

    def _export(self):
        if self.chief:
            for path in self.task.export(self.run_dir):
                logging.info("Exported %s", path)



def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
