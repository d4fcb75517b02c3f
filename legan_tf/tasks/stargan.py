"""Recipe: StarGAN (Choi et al. 2018), the baseline of both papers, optionally with LEGAN's L_qual.

Attributes (expression, lighting, ...) are one-hot groups concatenated into StarGAN's label vector;
the discriminator has one classification head per attribute. Targets are drawn per example with
stateless random ops keyed by (seed, step, global example index), so a run gives the same numbers
on one device or split over replicas, and a resumed run draws what the uninterrupted one would.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from legan_tf import losses, visualize
from legan_tf.errors import ConfigError
from legan_tf.models.stargan import StarGANDiscriminator, StarGANGenerator
from legan_tf.tasks import base, register
from legan_tf.training.schedules import LinearDecayAfter


def define_gan_flags(prefix: str, model: str, lambda_qual: float = 0.0) -> None:
    """The flags every StarGAN-style recipe shares, named `<prefix><argument>` (e.g. --stargan_n_critic)."""
    flags.DEFINE_integer(f"{prefix}n_critic", 5, "Discriminator updates per generator update (reference: 5).", lower_bound=1)
    flags.DEFINE_float(f"{prefix}beta_1", 0.5, "Adam beta_1 (reference: 0.5).")
    flags.DEFINE_float(f"{prefix}beta_2", 0.999, "Adam beta_2 (reference: 0.999).")
    flags.DEFINE_float(f"{prefix}d_learning_rate", 0.0, "Discriminator learning rate; 0 means --learning_rate.", lower_bound=0.0)
    flags.DEFINE_integer(f"{prefix}decay_steps", -1,
                         "Decay both learning rates linearly to 0 over the last N training steps (reference: half "
                         "the run, 100k of 200k); -1 means half of --train_steps, 0 no decay.", lower_bound=-1)
    flags.DEFINE_float(f"{prefix}lambda_cls", 1.0, "Weight of the attribute classification losses (reference: 1).")
    flags.DEFINE_float(f"{prefix}lambda_rec", 10.0, "Weight of the cycle reconstruction L1 (reference: 10).")
    flags.DEFINE_float(f"{prefix}lambda_gp", 10.0, "Weight of the WGAN gradient penalty (reference: 10).")
    flags.DEFINE_float(f"{prefix}lambda_qual", lambda_qual,
                       f"Weight of L_qual from a frozen Q on the translation and the cycle reconstruction "
                       f"(LEGAN: 1; 0 turns it off).")
    flags.DEFINE_string(f"{prefix}quality_model", "", f"Path of a trained Q (.keras) for L_qual; needed when --{prefix}lambda_qual > 0.")
    flags.DEFINE_float(f"{prefix}q_target", 10.0, "L_qual target score: relu(q_target - Q(x)) / q_target (LEGAN: 10).")
    flags.DEFINE_integer(f"{prefix}g_filters", 64, f"{model} generator base filters (reference: 64).", lower_bound=1)
    flags.DEFINE_integer(f"{prefix}g_residual_blocks", 6, f"{model} generator residual blocks (reference: 6).", lower_bound=0)
    flags.DEFINE_integer(f"{prefix}d_filters", 64, "Discriminator base filters (reference: 64).", lower_bound=1)
    flags.DEFINE_integer(f"{prefix}d_downsamples", 6, "Discriminator stride-2 convs (reference: 6).", lower_bound=1)
    flags.DEFINE_float(f"{prefix}ema_decay", 0.0, "Exponential moving average of G's weights (e.g. 0.999); 0 keeps no average.")


def define_flags() -> None:
    define_gan_flags("stargan_", "StarGAN")


def one_hot_labels(ids: dict, label_sizes: dict) -> tf.Tensor:
    """StarGAN's label vector: one-hot groups concatenated in the order of `label_sizes`."""
    return tf.concat([tf.one_hot(tf.cast(ids[name], tf.int32), size) for name, size in label_sizes.items()], axis=-1)


@keras.saving.register_keras_serializable(package="legan_tf")
class StarGAN(keras.Model):
    """Generator, discriminator, their optimizers and the per-replica update maths.

    `discriminator_step` and `generator_step` are what the distributed trainer runs under
    `strategy.run`; `train_step` runs the same maths for `model.fit()` users (one D update per
    batch, one G update every `n_critic` batches). Batches are dicts with "image" in [-1, 1] and one
    int id per attribute.
    """

    def __init__(self, image_size, label_sizes, global_batch_size, g_filters=64, g_residual_blocks=6, d_filters=64,
                 d_downsamples=6, lambda_cls=1.0, lambda_rec=10.0, lambda_gp=10.0, lambda_qual=0.0, q_target=10.0,
                 n_critic=5, ema_decay=0.0, seed=0, quality_model=None, **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.label_sizes = dict(label_sizes)
        self.global_batch_size = global_batch_size
        self.lambda_cls, self.lambda_rec, self.lambda_gp = lambda_cls, lambda_rec, lambda_gp
        self.lambda_qual, self.q_target = lambda_qual, q_target
        self.n_critic, self.ema_decay, self.seed = n_critic, ema_decay, seed
        self.g_filters, self.g_residual_blocks = g_filters, g_residual_blocks
        self.generator = self.make_generator("generator")
        self.discriminator = StarGANDiscriminator(image_size, sum(self.label_sizes.values()), d_filters, d_downsamples,
                                                  head_classes=self.label_sizes, name="discriminator")
        self.generator_ema = self.make_generator("generator_ema") if ema_decay > 0 else None
        self.quality_model = quality_model
        if quality_model is not None:
            quality_model.trainable = False
        self.d_optimizer = None
        self.g_optimizer = None

    def make_generator(self, name):
        return StarGANGenerator(self.image_size, sum(self.label_sizes.values()), self.g_filters,
                                num_residual_blocks=self.g_residual_blocks, name=name)

    def build_all(self, d_optimizer, g_optimizer):
        """Creates every variable (networks and optimizer slots) so checkpoints restore before step 1."""
        images = tf.zeros((1, self.image_size, self.image_size, 3))
        labels = tf.zeros((1, sum(self.label_sizes.values())))
        self.generator((images, labels))
        self.discriminator(images)
        if self.generator_ema is not None:
            self.generator_ema((images, labels))
            self.generator_ema.set_weights(self.generator.get_weights())
            self.generator_ema.trainable = False
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        self.built = True

    # -- randomness keyed by example, not by replica layout ---------------------------------------

    def _uniform_per_example(self, step, stream, count):
        """U(0, 1) per example, keyed by (seed, step, stream) and the example's index in the global batch.

        One vector per global batch is drawn and each replica takes its own examples' entries, so
        the numbers do not depend on how the batch is split over replicas.
        """
        replica = base.replica_index()
        # Evaluation batches may be larger than the training batch.
        length = tf.maximum(self.global_batch_size, (replica + 1) * count)
        draws = tf.random.stateless_uniform([length], seed=self.stream_seed(step, stream))
        return tf.gather(draws, replica * count + tf.range(count))

    def stream_seed(self, step, stream):
        """The stateless-RNG seed of one random stream of one training step."""
        return tf.stack([tf.cast(step, tf.int64) * 64 + stream, tf.constant(self.seed, tf.int64)])

    def random_targets(self, batch, step):
        """A random target class per example and attribute, different from the example's own class."""
        count = tf.shape(batch["image"])[0]
        targets = {}
        for stream, (name, size) in enumerate(self.label_sizes.items()):
            draw = self._uniform_per_example(step, stream + 1, count)
            shift = 1 + tf.cast(tf.floor(draw * (size - 1)), tf.int32)  # 1..size-1: never the source class
            targets[name] = (tf.cast(batch[name], tf.int32) + shift) % size
        return targets

    # -- losses -----------------------------------------------------------------------------------

    def _classification(self, logits, ids):
        return tf.add_n([losses.classification_loss(logits[name], ids[name]) for name in self.label_sizes])

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def discriminator_step(self, batch, step):
        images = batch["image"]
        source = {name: tf.cast(batch[name], tf.int32) for name in self.label_sizes}
        targets = self.random_targets(batch, step)
        fakes = self.generator((images, one_hot_labels(targets, self.label_sizes)), training=False)
        alpha = self._uniform_per_example(step, 0, tf.shape(images)[0])
        with tf.GradientTape() as tape:
            real_scores, real_logits = self.discriminator(images, training=True)
            fake_scores, _ = self.discriminator(fakes, training=True)
            adversarial = losses.wasserstein_critic_loss(real_scores, fake_scores)
            penalty = losses.gradient_penalty(lambda x: self.discriminator(x, training=True)[0], images, fakes, alpha)
            classification = self._classification(real_logits, source)
            per_example = adversarial + self.lambda_gp * penalty + self.lambda_cls * classification
            loss = self._average(per_example)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        metrics = {"d/adversarial": adversarial, "d/gradient_penalty": penalty, "d/classification": classification,
                   "d/total": per_example}
        return {name: tf.reduce_mean(value) for name, value in metrics.items()}

    def generator_loss_weights(self):
        """The generator's loss terms and their weights, in the order they are reported."""
        weights = {"adversarial": 1.0, "classification": self.lambda_cls, "reconstruction": self.lambda_rec}
        if self.quality_model is not None and self.lambda_qual > 0:
            weights["quality"] = self.lambda_qual
        return weights

    def generator_losses(self, images, fakes, reconstructed, targets, training):
        """Per-example generator terms, keyed as in `generator_loss_weights()`."""
        fake_scores, fake_logits = self.discriminator(fakes, training=False)
        terms = {"adversarial": losses.wasserstein_generator_loss(fake_scores),
                 "classification": self._classification(fake_logits, targets),
                 "reconstruction": losses.cycle_loss(images, reconstructed)}
        if "quality" in self.generator_loss_weights():
            # LEGAN's L_qual on the translation and on the cycle reconstruction.
            terms["quality"] = (losses.quality_loss(self.quality_model(fakes, training=False), self.q_target)
                                + losses.quality_loss(self.quality_model(reconstructed, training=False), self.q_target))
        return terms

    def generator_step(self, batch, step):
        images = batch["image"]
        source = {name: tf.cast(batch[name], tf.int32) for name in self.label_sizes}
        targets = self.random_targets(batch, step)
        with tf.GradientTape() as tape:
            fakes = self.generator((images, one_hot_labels(targets, self.label_sizes)), training=True)
            reconstructed = self.generator((fakes, one_hot_labels(source, self.label_sizes)), training=True)
            terms = self.generator_losses(images, fakes, reconstructed, targets, training=True)
            per_example = tf.add_n([weight * terms[name] for name, weight in self.generator_loss_weights().items()])
            loss = self._average(per_example)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        metrics = {f"g/{name}": tf.reduce_mean(value) for name, value in terms.items()}
        metrics["g/total"] = tf.reduce_mean(per_example)
        return metrics

    def update_ema(self):
        """Cross-replica: moves the averaged generator toward the trained one.

        The decay warms up as min(ema_decay, (1 + n) / (10 + n)) over the n generator updates so far
        (as tf.train.ExponentialMovingAverage's num_updates does): a fixed 0.999 would keep most of
        the random initial weights for thousands of updates, which short runs never reach.
        """
        updates = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + updates) / (10.0 + updates))
        for average, current in zip(self.generator_ema.weights, self.generator.weights):
            average.assign(decay * average + (1.0 - decay) * current)

    @property
    def sampling_generator(self):
        return self.generator_ema if self.generator_ema is not None else self.generator

    # -- keras.Model API for fit() users ------------------------------------------------------------

    def call(self, inputs, training=False):
        return self.sampling_generator(inputs, training=training)

    def train_step(self, data):
        step = self.d_optimizer.iterations
        metrics = self.discriminator_step(data, step)
        generator_metrics = tf.cond(
            tf.equal(step % self.n_critic, 0),
            lambda: self.generator_step(data, step),
            lambda: {name: tf.constant(0.0) for name in self._generator_metric_names()},
        )
        if self.generator_ema is not None:
            self.update_ema()
        return {**metrics, **generator_metrics}

    def _generator_metric_names(self):
        return [f"g/{name}" for name in self.generator_loss_weights()] + ["g/total"]

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, label_sizes=self.label_sizes, global_batch_size=self.global_batch_size,
                      g_filters=self.g_filters, g_residual_blocks=self.g_residual_blocks,
                      d_filters=self.discriminator.base_filters, d_downsamples=self.discriminator.num_downsamples,
                      lambda_cls=self.lambda_cls, lambda_rec=self.lambda_rec, lambda_gp=self.lambda_gp,
                      lambda_qual=self.lambda_qual, q_target=self.q_target, n_critic=self.n_critic,
                      ema_decay=self.ema_decay, seed=self.seed)
        return config


@register
class StarGANTask(base.Task):
    name = "stargan"
    flag_prefix = "stargan_"
    model_class = StarGAN
    # Sample-grid columns: each target class of each attribute, in this order.
    sample_attribute_order = ("expression", "lighting")

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=1e-4,
                 d_learning_rate=0.0, beta_1=0.5, beta_2=0.999, n_critic=5, decay_steps=-1, lambda_cls=1.0,
                 lambda_rec=10.0, lambda_gp=10.0, lambda_qual=0.0, quality_model="", q_target=10.0, g_filters=64,
                 g_residual_blocks=6, d_filters=64, d_downsamples=6, ema_decay=0.0, seed=0):
        super().__init__(label_names, image_size, global_batch_size, train_steps)
        if not label_names:
            raise ConfigError(f"{self.name} needs labelled data: the dataset has no expression or lighting labels.")
        self.label_sizes = {name: len(names) for name, names in label_names.items()}
        prefix = self.flag_prefix
        if lambda_qual > 0 and not quality_model:
            raise ConfigError(f"--{prefix}lambda_qual={lambda_qual:g} needs a trained Q: give "
                              f"--{prefix}quality_model=path/quality_model.keras (train one with "
                              f"configs/quality.flags), or set --{prefix}lambda_qual=0.")
        if quality_model and not os.path.isfile(quality_model):
            raise ConfigError(f"--{prefix}quality_model={quality_model}: no such file.")
        for owner, downsamples in (("generator", 2), ("discriminator", d_downsamples)):
            if image_size % 2**downsamples:
                raise ConfigError(f"--image_size={image_size}: the {owner} needs a size divisible by {2**downsamples}.")
        self.n_critic = n_critic
        self.decay_steps = train_steps // 2 if decay_steps < 0 else decay_steps
        self.learning_rates = (d_learning_rate or learning_rate, learning_rate)
        self.betas = (beta_1, beta_2)
        self.quality_model_path = quality_model
        self.model_args = dict(image_size=image_size, label_sizes=self.label_sizes, global_batch_size=global_batch_size,
                               g_filters=g_filters, g_residual_blocks=g_residual_blocks, d_filters=d_filters,
                               d_downsamples=d_downsamples, lambda_cls=lambda_cls, lambda_rec=lambda_rec,
                               lambda_gp=lambda_gp, lambda_qual=lambda_qual, q_target=q_target, n_critic=n_critic,
                               ema_decay=ema_decay, seed=seed)

    def _load_quality_model(self):
        if not self.quality_model_path:
            return None
        model = keras.models.load_model(self.quality_model_path)
        if getattr(model, "image_size", self.image_size) != self.image_size:
            raise ConfigError(f"--{self.flag_prefix}quality_model={self.quality_model_path} rates {model.image_size} px images, "
                              f"but --image_size={self.image_size}.")
        return model

    def frozen_models(self):
        """Pretrained networks the recipe's model uses but never trains, by constructor argument."""
        return {"quality_model": self._load_quality_model()}

    def build(self):
        self.model = self.model_class(**self.model_args, **self.frozen_models(), name=self.name)
        d_rate, g_rate = self.learning_rates
        # G is updated once per n_critic D steps, so its own step counter runs n_critic times slower.
        d_schedule = LinearDecayAfter(d_rate, self.train_steps, self.decay_steps)
        g_schedule = LinearDecayAfter(g_rate, self.train_steps // self.n_critic, self.decay_steps // self.n_critic)
        self.model.build_all(keras.optimizers.Adam(d_schedule, *self.betas), keras.optimizers.Adam(g_schedule, *self.betas))

    def checkpoint_items(self):
        items = {"generator": self.model.generator, "discriminator": self.model.discriminator,
                 "d_optimizer": self.model.d_optimizer, "g_optimizer": self.model.g_optimizer}
        if self.model.generator_ema is not None:
            items["generator_ema"] = self.model.generator_ema
        return items

    def step_schedule(self):
        schedule = [base.ScheduledStep("discriminator", self.model.discriminator_step, 1),
                    base.ScheduledStep("generator", self.model.generator_step, self.n_critic)]
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
