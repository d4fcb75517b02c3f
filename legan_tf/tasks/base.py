"""What the trainer needs from a recipe. A task wires networks, losses and optimizers; the trainer
owns the loop, the strategy, checkpoints and summaries."""

import abc
import typing

import numpy as np
import tensorflow as tf

from legan_tf import hparams


class ScheduledStep(typing.NamedTuple):
    """One per-replica update the trainer runs every `every` steps, on that step's batch.

    `fn(batch, step)` returns scalar metrics; `cross_replica_after`, if given, runs after it outside
    the replicas (e.g. an EMA of weights, which must see the synchronised values).
    """

    name: str
    fn: typing.Callable
    every: int = 1
    cross_replica_after: typing.Callable | None = None


class Task(abc.ABC):
    """One training recipe. Subclasses register themselves with `legan_tf.tasks.register`.

    `Hyperparameters` (a dataclass of `legan_tf.hparams.hparam` fields) declares the recipe's own
    settings once: each becomes the flag `--<flag_prefix><field>` and a keyword argument here, and
    the instance holds them as `self.hp`. Constructor arguments beyond the common ones are things the
    trainer takes from the data (e.g. the identity task's `identities`).
    """

    name: str = ""
    flag_prefix: str = ""  # default: name + "_"
    Hyperparameters = hparams.NoHyperparameters
    default_learning_rate: float = 1e-3

    def __init__(self, label_names: dict[str, tuple[str, ...]], image_size: int, global_batch_size: int,
                 train_steps: int, learning_rate: float | None = None, seed: int = 0, **hyperparameters):
        self.label_names = dict(label_names)
        self.image_size = image_size
        self.global_batch_size = global_batch_size
        self.train_steps = train_steps
        self.learning_rate = self.default_learning_rate if learning_rate is None else learning_rate
        self.seed = seed
        self.hp = hparams.create(self.Hyperparameters, f"the {self.name!r} recipe", hyperparameters, self.prefix())

    @classmethod
    def prefix(cls) -> str:
        return cls.flag_prefix or cls.name + "_"

    @abc.abstractmethod
    def build(self) -> None:
        """Creates networks and optimizers (called inside `strategy.scope()`) and builds their variables,
        so checkpoints can be restored before the first step."""

    @abc.abstractmethod
    def checkpoint_items(self) -> dict[str, tf.Module]:
        """Everything stateful that a resume must restore, by name."""

    def step_schedule(self) -> list[ScheduledStep]:
        """The updates of one training step: by default `self.train_step(batch)` every step, which a
        single-network recipe defines (one step on one replica's share of the global batch, returning
        scalar metrics). A GAN overrides this with its D and G updates instead."""
        train_step = getattr(self, "train_step", None)
        if train_step is None:
            raise TypeError(f"{type(self).__name__} defines neither train_step(batch) nor step_schedule()")
        return [ScheduledStep("train", lambda batch, step: train_step(batch))]

    @abc.abstractmethod
    def evaluate(self, dataset: tf.data.Dataset) -> dict[str, float]:
        """Metrics on held-out data (runs on the chief only)."""

    @abc.abstractmethod
    def sample_grid(self, batch: dict[str, tf.Tensor]) -> np.ndarray:
        """A uint8 HxWx3 picture of what the model does on a fixed batch."""

    def export(self, run_dir: str) -> list[str]:
        """Writes the trained models for users (e.g. `.keras` files); returns their paths."""
        return []
