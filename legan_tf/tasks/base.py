"""What the trainer needs from a recipe. A task wires networks, losses and optimizers; the trainer
owns the loop, the strategy, checkpoints and summaries."""

import abc
import dataclasses
import os
import typing

import keras
import numpy as np
from absl import logging

from legan_tf import hparams, optimizers
from legan_tf.errors import ConfigError
from legan_tf.hparams import hparam
from legan_tf.layers import check_image_size
from legan_tf.runs import RunDir, load_label_generator
from legan_tf.optimizers import LinearDecayAfter


class ScheduledStep(typing.NamedTuple):
    """One per-replica update the trainer runs every `every` steps from step `start` to step `stop`
    (inclusive; None: to the end), on that step's batch.

    `fn(batch, step)` returns scalar metrics; `cross_replica_after`, if given, runs after it outside
    the replicas (e.g. an EMA of weights, which must see the synchronised values).
    """

    name: str
    fn: typing.Callable
    every: int = 1
    cross_replica_after: typing.Callable | None = None
    start: int = 1
    stop: int | None = None

    def runs_at(self, step: int) -> bool:
        return step >= self.start and (self.stop is None or step <= self.stop) and step % self.every == 0

    def finished(self, step: int) -> bool:
        """Whether the update ran for the last time before `step`."""
        return self.stop is not None and step > self.stop


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

    def prepare(self) -> None:
        """Checks that need the whole recipe constructed (a file it reads against the networks it makes). The
        trainer calls it before any run directory exists; by default there are none."""

    @abc.abstractmethod
    def build(self) -> None:
        """Creates networks and optimizers (called inside `strategy.scope()`) and builds their variables,
        so checkpoints can be restored before the first step."""

    @abc.abstractmethod
    def checkpoint_items(self) -> dict:
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
    def evaluate(self, dataset) -> dict[str, float]:
        """Metrics on held-out data (runs on the chief only): `dataset` yields batches (a tf.data.Dataset
        under TensorFlow, numpy dicts under JAX)."""

    @abc.abstractmethod
    def sample_grid(self, batch: dict) -> np.ndarray:
        """A uint8 HxWx3 picture of what the model does on a fixed batch."""

    def exported_networks(self) -> dict:
        """The trained networks users get, by their role in the run directory (`legan_tf.runs.MODEL_ROLES`:
        role "generator" is written as generator.keras)."""
        return {}

    def export(self, run_dir: str) -> list[str]:
        """Writes `exported_networks()` into the run directory (float32 copies); returns their paths."""
        run = RunDir(run_dir)
        return [run.save_model(role, network) for role, network in self.exported_networks().items()]


@dataclasses.dataclass(frozen=True)
class GANTrainingHyperparameters:
    """How a GAN recipe trains (beside its model's hyperparameters)."""

    d_learning_rate: float = hparam(0.0, "Discriminator learning rate; 0 means --learning_rate.", lower_bound=0.0)
    beta_1: float = hparam(0.5, "Adam beta_1 (reference: 0.5).")
    beta_2: float = hparam(0.999, "Adam beta_2 (reference: 0.999).")
    decay_steps: int = hparam(-1, "Decay both learning rates linearly to 0 over the last N training steps "
                              "(reference: half the run, 100k of 200k); -1 means half of --train_steps, 0 no decay.",
                              lower_bound=-1)


@dataclasses.dataclass(frozen=True)
class InitGeneratorHyperparameters:
    """For a recipe whose G is label-conditioned (StarGAN, LEGAN): where its weights may start from."""

    init_generator: str = hparam("", "Start G (and its average) from a trained generator of the same recipe and "
                                 "architecture instead of random weights: pretrained:<name>, a run directory or a "
                                 "generator .keras file with its labels.json beside it; its labels must be the "
                                 "data's, in the same order. D and the optimizers start afresh. Fine-tunes a shipped "
                                 "or finished model under other settings; a resumed run restores its own weights.")


class GANTask(Task):
    """A recipe around a `legan_tf.gan` model: Adam for D and G with StarGAN's schedule, the D step every
    step and the G step every `n_critic` steps (plus the EMA), checkpoints of every network, export.

    A subclass sets `model_class`, a `Hyperparameters` dataclass that holds the model's fields and
    `GANTrainingHyperparameters`', and writes `evaluate` and `sample_grid`. `pretrained_models()`
    gives the model's constructor the networks the recipe loads from files.
    """

    model_class = None
    default_learning_rate = 1e-4

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 **hyperparameters):
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        if not label_names:
            raise ConfigError(f"{self.name} needs labelled data: the dataset has no expression or lighting labels.")
        self.label_sizes = {name: len(names) for name, names in label_names.items()}
        for owner, downsamples in self.image_size_constraints():
            try:
                check_image_size(owner, image_size, downsamples)
            except ValueError:
                raise ConfigError(f"--image_size={image_size}: the {owner} needs a size divisible by "
                                  f"{2**downsamples}.") from None
        hp = self.hp
        self.decay_steps = train_steps // 2 if hp.decay_steps < 0 else hp.decay_steps
        self._initial_generator_weights = None

    def prepare(self) -> None:
        """Reads --<prefix>init_generator and checks it against this recipe: its labels must be the data's and its
        weights must fit the generator this recipe makes (a throwaway copy of the model is built to compare).
        The trainer calls it once the recipe is constructed and before any run directory exists, so a mismatch
        is a one-line error that leaves nothing behind; `build` calls it if nobody did."""
        flag, spec = f"--{self.prefix()}init_generator", getattr(self.hp, "init_generator", "")
        if not spec or self._initial_generator_weights is not None:
            return
        generator, names = load_label_generator(spec, flag)
        names = {group: tuple(group_names) for group, group_names in names.items()}
        wanted = {group: tuple(group_names) for group, group_names in self.label_names.items()}
        if names != wanted:
            def listed(groups):
                return "; ".join(f"{group}: {', '.join(members)}" for group, members in groups.items()) or "none"
            raise ConfigError(f"{flag}={spec}: its labels ({listed(names)}) are not the data's ({listed(wanted)}); a "
                              "generator starts only from one that reads the same label vector.")
        if generator.image_size != self.image_size:
            raise ConfigError(f"{flag}={spec}: it edits {generator.image_size} px faces, but --image_size="
                              f"{self.image_size}.")
        probe = self.model_class(self.image_size, self.label_sizes, self.global_batch_size, self.seed,
                                 **self.pretrained_models(), **self.model_hyperparameters(), name=f"{self.name}_probe")
        # Only G's variables are compared: D and the average need not be built for that.
        probe.generator((np.zeros((1, self.image_size, self.image_size, 3), "float32"),
                         np.zeros((1, probe.num_labels), "float32")))
        ours = [tuple(variable.shape) for variable in probe.generator.weights]
        theirs = [tuple(variable.shape) for variable in generator.weights]
        if ours != theirs:
            shared = min(len(ours), len(theirs))
            first = next((index for index in range(shared) if ours[index] != theirs[index]), shared)
            detail = (f"weight {first} is {theirs[first]} there and {ours[first]} here" if first < shared
                      else f"it has {len(theirs)} weights, this recipe's generator {len(ours)}")
            raise ConfigError(f"{flag}={spec}: another architecture than this recipe's generator ({detail}); give the "
                              "same generator flags (widths, blocks, output and upsampling) as the run that made it.")
        self._initial_generator_weights = generator.get_weights()

    def image_size_constraints(self) -> list[tuple[str, int]]:
        """(network, stride-2 stages) pairs: the image size must be divisible by 2**stages for each."""
        return [("generator", 2), ("discriminator", self.hp.d_downsamples)]

    def model_hyperparameters(self) -> dict:
        """The share of the recipe's hyperparameters that the Keras model takes."""
        return hparams.subset(self.hp, self.model_class.Hyperparameters)

    def pretrained_models(self) -> dict:
        """Networks loaded from files, by the model's constructor argument (frozen judges, pre-trained parts)."""
        return {}

    @staticmethod
    def check_file(flag: str, path: str) -> None:
        if path and not os.path.isfile(path):
            raise ConfigError(f"{flag}={path}: no such file.")

    def build(self):
        self.prepare()
        self.model = self.model_class(self.image_size, self.label_sizes, self.global_batch_size, self.seed,
                                      **self.pretrained_models(), **self.model_hyperparameters(), name=self.name)
        hp, n_critic, warmup = self.hp, self.hp.n_critic, self.model.warmup_steps()
        # G is updated once per n_critic D steps, so its own step counter runs n_critic times slower; a
        # supervised warm-up adds one G update per step before the first D step.
        d_schedule = LinearDecayAfter(hp.d_learning_rate or self.learning_rate, self.train_steps - warmup,
                                      self.decay_steps)
        g_schedule = LinearDecayAfter(self.learning_rate, warmup + (self.train_steps - warmup) // n_critic,
                                      self.decay_steps // n_critic)
        if warmup and self.model.warmup_learning_rate():
            g_schedule = optimizers.ConstantFirst(self.model.warmup_learning_rate(), warmup, g_schedule)
        self.model.build_all(optimizers.adam(d_schedule, hp.beta_1, hp.beta_2),
                             optimizers.adam(g_schedule, hp.beta_1, hp.beta_2))
        if self._initial_generator_weights is not None:
            # Before any checkpoint is restored: a resumed run's own weights replace these.
            for generator in (self.model.generator, self.model.generator_ema):
                if generator is not None:
                    generator.set_weights(self._initial_generator_weights)
            logging.info("G starts from --%sinit_generator=%s.", self.prefix(), hp.init_generator)

    def checkpoint_items(self):
        return {**self.model.networks(), "d_optimizer": self.model.d_optimizer, "g_optimizer": self.model.g_optimizer}

    def step_schedule(self):
        warmup, ema = self.model.warmup_steps(), self.model.update_ema if self.model.generator_ema is not None else None
        schedule = [ScheduledStep("discriminator", self.model.discriminator_step, 1, start=warmup + 1),
                    ScheduledStep("generator", self.model.generator_step, self.hp.n_critic, ema, start=warmup + 1)]
        if warmup:
            schedule.insert(0, ScheduledStep("warmup", self.model.supervised_step, 1, ema, stop=warmup))
        return schedule

    def exported_networks(self) -> dict[str, keras.Model]:
        """What `export` writes, by role in the run directory.

        With an EMA, generator.keras is the average and generator_raw.keras the weights the optimizer
        left: the average never feeds back into training, so judging both from one run measures what
        the EMA buys without a second run.
        """
        networks = {"generator": self.model.sampling_generator, "discriminator": self.model.discriminator}
        if self.model.generator_ema is not None:
            networks["generator_raw"] = self.model.generator
        return networks
