"""Recipe: StarGAN (Choi et al. 2018), the baseline of both papers, optionally with LEGAN's L_qual.

The task wires a `legan_tf.gan` model to the trainer: optimizers and their schedules, frozen
judges loaded from files, held-out metrics, sample grids and the exported networks. The maths of a
step lives in `legan_tf/gan/base.py`. Other GAN recipes (LEGAN) subclass this task.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from legan_tf import hparams, losses, visualize
from legan_tf.errors import ConfigError
from legan_tf.gan.stargan import StarGAN, StarGANHyperparameters
from legan_tf.hparams import hparam
from legan_tf.labels import one_hot_labels
from legan_tf.layers import check_image_size
from legan_tf.tasks import base, register
from legan_tf.training.schedules import LinearDecayAfter


@dataclasses.dataclass(frozen=True)
class TrainingHyperparameters:
    """How a GAN recipe trains (beside its model's hyperparameters)."""

    d_learning_rate: float = hparam(0.0, "Discriminator learning rate; 0 means --learning_rate.", lower_bound=0.0)
    beta_1: float = hparam(0.5, "Adam beta_1 (reference: 0.5).")
    beta_2: float = hparam(0.999, "Adam beta_2 (reference: 0.999).")
    decay_steps: int = hparam(-1, "Decay both learning rates linearly to 0 over the last N training steps "
                              "(reference: half the run, 100k of 200k); -1 means half of --train_steps, 0 no decay.",
                              lower_bound=-1)
    quality_model: str = hparam("", "Path of a trained Q (.keras) for L_qual; needed when lambda_qual > 0.")


@dataclasses.dataclass(frozen=True)
class StarGANRecipe(StarGANHyperparameters, TrainingHyperparameters):
    """The StarGAN recipe's flags: the model's hyperparameters and how it trains."""


@register
class StarGANTask(base.Task):
    name = "stargan"
    Hyperparameters = StarGANRecipe
    default_learning_rate = 1e-4
    model_class = StarGAN
    # Sample-grid columns: each target class of each attribute, in this order.
    sample_attribute_order = ("expression", "lighting")
    # Which targets scripts/evaluate_translation.py holds this recipe's generators to by default.
    translation_check = "stargan"

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 **hyperparameters):
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        if not label_names:
            raise ConfigError(f"{self.name} needs labelled data: the dataset has no expression or lighting labels.")
        self.label_sizes = {name: len(names) for name, names in label_names.items()}
        prefix, hp = self.prefix(), self.hp
        if hp.lambda_qual > 0 and not hp.quality_model:
            raise ConfigError(f"--{prefix}lambda_qual={hp.lambda_qual:g} needs a trained Q: give "
                              f"--{prefix}quality_model=path/quality_model.keras (train one with "
                              f"configs/quality.flags), or set --{prefix}lambda_qual=0.")
        if hp.quality_model and not os.path.isfile(hp.quality_model):
            raise ConfigError(f"--{prefix}quality_model={hp.quality_model}: no such file.")
        for owner, downsamples in (("generator", 2), ("discriminator", hp.d_downsamples)):
            try:
                check_image_size(owner, image_size, downsamples)
            except ValueError:
                raise ConfigError(f"--image_size={image_size}: the {owner} needs a size divisible by "
                                  f"{2**downsamples}.") from None
        self.decay_steps = train_steps // 2 if hp.decay_steps < 0 else hp.decay_steps

    def model_hyperparameters(self) -> dict:
        """The share of the recipe's hyperparameters that the Keras model takes."""
        return hparams.subset(self.hp, self.model_class.Hyperparameters)

    def _load_quality_model(self):
        path = self.hp.quality_model
        if not path:
            return None
        model = keras.models.load_model(path)
        if getattr(model, "image_size", self.image_size) != self.image_size:
            raise ConfigError(f"--{self.prefix()}quality_model={path} rates {model.image_size} px images, "
                              f"but --image_size={self.image_size}.")
        return model

    def frozen_models(self):
        """Pretrained networks the recipe's model uses but never trains, by constructor argument."""
        return {"quality_model": self._load_quality_model()}

    def build(self):
        self.model = self.model_class(self.image_size, self.label_sizes, self.global_batch_size, self.seed,
                                      **self.frozen_models(), **self.model_hyperparameters(), name=self.name)
        hp, n_critic = self.hp, self.hp.n_critic
        # G is updated once per n_critic D steps, so its own step counter runs n_critic times slower.
        d_schedule = LinearDecayAfter(hp.d_learning_rate or self.learning_rate, self.train_steps, self.decay_steps)
        g_schedule = LinearDecayAfter(self.learning_rate, self.train_steps // n_critic, self.decay_steps // n_critic)
        self.model.build_all(keras.optimizers.Adam(d_schedule, hp.beta_1, hp.beta_2),
                             keras.optimizers.Adam(g_schedule, hp.beta_1, hp.beta_2))

    def checkpoint_items(self):
        return {**self.model.networks(), "d_optimizer": self.model.d_optimizer, "g_optimizer": self.model.g_optimizer}

    def step_schedule(self):
        schedule = [base.ScheduledStep("discriminator", self.model.discriminator_step, 1),
                    base.ScheduledStep("generator", self.model.generator_step, self.hp.n_critic)]
        if self.model.generator_ema is not None:
            schedule[1] = schedule[1]._replace(cross_replica_after=self.model.update_ema)
        return schedule

    def evaluate(self, dataset):
        """Cycle L1 and D's classification accuracy on held-out real faces (cheap health signals;
        the learning check proper is scripts/evaluate_translation.py)."""
        model, cycle, correct, total = self.model, [], {name: 0 for name in self.label_sizes}, 0
        for step, batch in enumerate(dataset):
            source = {name: batch[name] for name in self.label_sizes}
            targets = model.random_targets(batch, step)
            generator = model.sampling_generator
            fakes = generator((batch["image"], one_hot_labels(targets, self.label_sizes)), training=False)
            rebuilt = generator((fakes, one_hot_labels(source, self.label_sizes)), training=False)
            cycle.append(losses.cycle_loss(batch["image"], rebuilt).numpy())
            _, logits = model.discriminator(batch["image"], training=False)
            for name in self.label_sizes:
                correct[name] += int(np.sum(np.argmax(logits[name], -1) == batch[name].numpy()))
            total += int(batch["image"].shape[0])
        metrics = {"eval/cycle_l1": float(np.mean(np.concatenate(cycle)))}
        metrics.update({f"eval/d_accuracy/{name}": correct[name] / total for name in self.label_sizes})
        return metrics

    def sample_grid(self, batch, max_columns_per_attribute=8):
        """Rows: inputs. Columns: the input, then each target class of each attribute (the other attributes
        kept), up to `max_columns_per_attribute` classes spread over each attribute."""
        images = batch["image"][:8]
        source = {name: batch[name][:8] for name in self.label_sizes}
        generator = self.model.sampling_generator
        columns, titles = [images.numpy()], ["input"]
        attributes = [name for name in self.sample_attribute_order if name in self.label_sizes]
        attributes += [name for name in self.label_sizes if name not in attributes]
        for name in attributes:
            size, names = self.label_sizes[name], self.label_names[name]
            for value in np.unique(np.linspace(0, size - 1, min(size, max_columns_per_attribute)).round().astype(int)):
                targets = dict(source)
                targets[name] = tf.fill(tf.shape(source[name]), int(value))
                columns.append(generator((images, one_hot_labels(targets, self.label_sizes)), training=False).numpy())
                titles.append(f"{name[:4]}={names[value]}")
        for title, column in self.extra_sample_columns(images, source):
            columns.append(column)
            titles.append(title)
        return visualize.titled_mosaic([visualize.to_uint8(column) for column in columns], titles)

    def extra_sample_columns(self, images, source):
        """(title, images in [-1, 1]) columns a recipe adds after the target columns."""
        return []

    def export(self, run_dir):
        paths = {"generator.keras": self.model.sampling_generator, "discriminator.keras": self.model.discriminator}
        for filename, network in paths.items():
            network.save(os.path.join(run_dir, filename))
        return [os.path.join(run_dir, filename) for filename in paths]
