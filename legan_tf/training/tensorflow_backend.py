"""The training loop's TensorFlow backend: tf.distribute strategies, tf.data input, tf.train checkpoints.

Each update of the task's schedule runs under `strategy.run` in a `tf.function` (with --jit_compile
its loss and gradients as one XLA cluster, legan_tf.backend.apply_gradients); the metrics are the
replicas' means. Checkpoints are tf.train.Checkpoints of every checkpoint item and of each
network's list of weights, kept by a CheckpointManager in the run's checkpoints/ (a non-chief
worker of a cluster writes its own copy beside them, as tf.distribute requires).
"""

from __future__ import annotations

import glob
import os
import shutil

import keras
import tensorflow as tf
from absl import logging

from legan_tf import backend
from legan_tf.errors import ConfigError
from legan_tf.training.config import CheckpointNotWritten
from legan_tf.training.backend_api import Backend, Batches, check_trained_under
from legan_tf.training.strategy import any_worker_function, is_chief


class TensorFlowBackend(Backend):
    name = "tensorflow"

    def __init__(self, task, strategy=None, distribute_fn=None, jit_compile: bool | None = None):
        """`distribute_fn(strategy, source, global_batch_size, training, seed, start_step=0)` returns a
        distributed dataset that starts after `start_step` global batches (default: legan_tf.data's).
        `jit_compile`: compile each update's loss and gradients with XLA (None: as set already)."""
        super().__init__(task)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.distribute_fn = distribute_fn
        self.chief = is_chief(self.strategy)
        # A signal reaches one worker of a cluster; all must stop at the same step (one vote per step).
        self._vote = any_worker_function(self.strategy)
        if jit_compile is not None:
            backend.set_jit_compile(jit_compile)
        self.step = None

    def build(self):
        with self.strategy.scope():
            self.task.build()
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")

    def networks(self) -> dict:
        items = self.task.checkpoint_items()
        return {name: item for name, item in items.items() if isinstance(item, keras.layers.Layer)}

    # -- the compiled updates ----------------------------------------------------------------------

    def compile(self, entry):
        strategy = self.strategy

        @tf.function
        def distributed_update(batch, step):
            per_replica = strategy.run(entry.fn, args=(batch, step))
            metrics = {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                       for name, value in per_replica.items()}
            if entry.cross_replica_after is not None:
                entry.cross_replica_after()
            return metrics

        return lambda batch, step: distributed_update(batch, tf.constant(step, tf.int64))

    def device_batch(self, batch):
        return {key: tf.constant(value) for key, value in batch.items()}

    def read(self, variable):
        return int(variable.value)

    def state_finite(self):
        bad = [tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(weight.value)), tf.int32))
               for network in self.networks().values() for weight in network.weights
               if tf.as_dtype(weight.dtype).is_floating]
        return not bad or int(tf.add_n(bad)) == 0

    def any_worker(self, flag):
        return self._vote(flag)

    # -- checkpoints -------------------------------------------------------------------------------

    def open_checkpoints(self, run, keep):
        self.run = run
        # A Keras 3 model is not a tf.train trackable: a Checkpoint given one writes none of its variables.
        # Trainable weights would still reach the file through the optimizers' references to them, but an
        # EMA generator, which no optimizer updates, would be lost (a resumed run then averaged from random
        # weights). The list of a network's weights is trackable, each by position (the architecture fixes
        # the order).
        weights = {name: list(network.weights) for name, network in self.networks().items()}
        self.checkpoint = tf.train.Checkpoint(step=self.step, **{**self.task.checkpoint_items(), **weights})
        directory = run.checkpoints_dir
        if not self.chief:
            # Multi-worker saving needs every worker to write; only the chief's copy is kept.
            directory = run.worker_checkpoints_dir(self.strategy.cluster_resolver.task_id)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=keep)

    def restore(self):
        latest = self.manager.latest_checkpoint
        if latest is None:
            check_trained_under(self.run, self.name)
            return 0
        saved = {name.split("/")[0] for name, _ in tf.train.list_variables(latest)}
        if self.networks() and not saved.intersection(self.networks()):
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
        step = int(self.step.numpy())
        logging.info("Resumed from %s at step %d.", latest, step)
        return step

    def save(self, step):
        self.step.assign(step)
        try:
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            # CheckpointManager registers a checkpoint as latest only after its files are written, so a
            # failed write leaves the previous one the latest; its partial files are removed if possible.
            for partial in glob.glob(os.path.join(self.manager.directory, f"ckpt-{step}[._]*")):
                shutil.rmtree(partial, ignore_errors=True) if os.path.isdir(partial) else _remove_quietly(partial)
            raise CheckpointNotWritten(error) from None

    # -- input -------------------------------------------------------------------------------------

    def train_batches(self, source, batch_size, seed, start_step):
        # tf.data's distributed iterators are not trackable: the data position is a function of the step.
        distribute_fn = self.distribute_fn
        if distribute_fn is None:
            from legan_tf.data import distribute as distribute_fn
        return Batches(iter(distribute_fn(self.strategy, source, batch_size, True, seed, start_step=start_step)))

    def eval_batches(self, source, batch_size):
        return source.dataset(batch_size=batch_size, training=False, repeat=False)

    def sample_batch(self, source, count, seed):
        """The same spread of held-out examples at every step, not just the first few in file order."""
        examples = source.dataset(batch_size=64, training=False, repeat=False).unbatch()
        examples = examples.shuffle(4096, seed=seed, reshuffle_each_iteration=False)
        return next(iter(examples.batch(count)))


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
