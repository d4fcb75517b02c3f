"""What the training loop (legan_tf/training/loop.py) needs from a Keras backend: the `Backend` hooks that
tensorflow_backend.py and jax_backend.py implement, and `Batches`, a closable iterator of training batches."""

from __future__ import annotations

import abc

from legan_tf.errors import ConfigError
from legan_tf.runs import RunDir

# Why a run cannot be resumed under the other backend, by the backend that trained it.
_OTHER_BACKENDS_RUN = {
    "jax": "{run} was trained under JAX: its checkpoints are the JAX trainer's .npz files, which this TensorFlow "
           "trainer does not read. Resume it with --backend=jax (or start a new run from its exported .keras files).",
    "tensorflow": "{run} was trained under TensorFlow: its checkpoints are TensorFlow checkpoints, which the JAX "
                  "backend cannot read. Resume it with --backend=tensorflow (or start a new run under JAX from its "
                  "exported .keras files).",
}


def check_trained_under(run: RunDir, running: str) -> None:
    """A ConfigError when the run's checkpoints are another Keras backend's than `running`."""
    trained = run.checkpoints_backend()
    if trained is not None and trained != running:
        raise ConfigError(_OTHER_BACKENDS_RUN[trained].format(run=run.path))


class Batches:
    """An iterator of training batches (each passed through `convert`) that can be closed, once or more:
    the worker processes or threads behind it stop."""

    def __init__(self, iterator, convert=None):
        self._iterator, self._convert, self._closed = iterator, convert, False

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._iterator)
        return batch if self._convert is None else self._convert(batch)

    def close(self):
        close = getattr(self._iterator, "close", None)
        if not self._closed and close is not None:
            close()
        self._closed = True


class Backend(abc.ABC):
    """What the loop needs from a Keras backend. `compile` is public beyond the loop: the benchmarks and
    the tests compile a task's updates exactly as a run does."""

    name = ""
    chief = True  # only the chief of a cluster writes samples, summaries, evaluations and exports
    state_description = "a weight"  # what `state_finite` checks, for the message when it is not

    def __init__(self, task):
        self.task = task

    @abc.abstractmethod
    def build(self) -> None:
        """Builds the task's networks and optimizers where this backend keeps them."""

    @abc.abstractmethod
    def compile(self, entry):
        """`update(batch, step: int) -> {name: scalar}`: one ScheduledStep of the task compiled as a run
        compiles it (it changes the task's state as it runs)."""

    def device_batch(self, batch: dict) -> dict:
        """A numpy batch placed where the compiled updates read it."""
        return batch

    def sync(self) -> None:
        """Makes the Keras variables hold the current state (before sampling, evaluating, exporting)."""

    @abc.abstractmethod
    def read(self, variable) -> int:
        """The current value of a scalar variable (an optimizer's skip counter)."""

    @abc.abstractmethod
    def state_finite(self) -> bool:
        """Whether every floating-point value of the state a checkpoint would hold is finite."""

    @abc.abstractmethod
    def open_checkpoints(self, run: RunDir, keep: int) -> None:
        """Where `restore` reads and `save` writes: the run directory's checkpoints, `keep` of them kept."""

    @abc.abstractmethod
    def restore(self) -> int:
        """Restores the latest checkpoint, if any; returns its step (0: none). Another backend's
        checkpoints, an old format or another architecture are a ConfigError."""

    @abc.abstractmethod
    def save(self, step: int) -> None:
        """Writes the checkpoint of `step`, complete or not at all; CheckpointNotWritten when it cannot."""

    @abc.abstractmethod
    def train_batches(self, source, batch_size: int, seed: int, start_step: int) -> Batches:
        """The training batches after `start_step` of them, in the run's data order."""

    @abc.abstractmethod
    def eval_batches(self, source, batch_size: int):
        """The held-out batches, once through, in what the task's `evaluate` takes."""

    @abc.abstractmethod
    def sample_batch(self, source, count: int, seed: int) -> dict:
        """A seeded spread of `count` held-out examples, the same at every step of the run."""

    def any_worker(self, flag: bool) -> bool:
        """Whether any worker of the cluster passed True (one vote per step); `flag` outside a cluster."""
        return bool(flag)
