"""The conditional image-to-image GAN that every StarGAN-style recipe is: read this file first.

One training step of a recipe, per replica, on one batch (a dict: "image" in [-1, 1] and one int
id per attribute):

  discriminator_step(batch, step)        every step
      targets = random_targets(batch, step)                      a new class per attribute
      fakes   = translate(image, targets)                        generator(image, one_hot(targets)); no gradient to G
      terms   = discriminator_losses(batch, fakes, step)         per-example, by name
      loss    = sum(weight * term for discriminator_loss_weights())
      d_optimizer steps on discriminator_variables()             D and any extra discriminators
  generator_step(batch, step)            every `n_critic` steps
      fakes, parts  = translate_with_parts(image, targets)       parts: e.g. an attention mask; none by default
      reconstructed = reconstruct(batch, fakes)                  the cycle back: generator(fakes, one_hot(source))
      terms = generator_losses(batch, fakes, reconstructed, targets, step) + edit_losses(parts)
              + supervised_losses(batch, step)                   edits with known answers; none by default
      loss  = sum(weight * term for generator_loss_weights())
      g_optimizer steps on generator_variables()
  update_ema()                           after each G step, across replicas, if ema_decay > 0

A recipe with supervised terms may start with `warmup_steps()` steps of `supervised_step(batch, step)`
alone (G learns the known answers, with no D step and no adversarial term); the D and G steps above
begin after them.

Losses are averaged over the *global* batch (sum / global batch size), so gradients summed over
tf.distribute replicas equal one device's. Random draws use named streams (`legan_tf.random_streams`).
Everything here is `keras.ops`: the TensorFlow and the JAX trainer run this same code, and only the
gradient mechanics differ (`legan_tf.backend.apply_gradients`).

A subclass supplies the networks (`make_generator`, `make_discriminator`) and the loss terms, and
refuses hyperparameters that do not go together in `check_hyperparameters` (before any network is
built); it adds a term by extending `*_loss_weights()` and `*_losses()` with `super()`, an extra
discriminator by returning it from `extra_discriminators()` (it is then built, trained in the D
step and checkpointed), and a further trained generator-side network through
`generator_variables()` and `networks()`. A generator that is no label-conditioned translator (the
depth network: RGB -> depth and back) overrides `translate` and `reconstruct`.
`StarGAN` (legan_tf.gan.stargan) is the reference subclass; `legan_tf.gan.depth` holds the two
depth recipes' models.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from legan_tf import backend, hparams
from legan_tf.hparams import hparam
from legan_tf.labels import is_multi_label, one_hot_labels
from legan_tf.random_streams import Stream, uniform_per_example

TARGET_STREAM_PREFIX = "gan/target/"


def batch_size(images):
    """The examples in a batch: a Python int under JAX, possibly a tensor in a TensorFlow graph."""
    size = images.shape[0]
    return size if size is not None else ops.shape(images)[0]


def critic_on_real_and_fake(discriminator, real, fake):
    """(real scores, fake scores, real class logits by head) from one discriminator call on both batches.

    The same maths as two calls, since the critics here hold no batch statistics (each example's
    output depends on that example only), and faster: at the small batches GANs train with, the deep
    layers' few pixels leave oneDNN's kernels short of work, and a batch twice as large trained the
    reference-width StarGAN 1.17-1.22x faster at 64 px on a 2-core CPU (docs/benchmarks.md).
    """
    n = batch_size(real)
    scores, logits = discriminator(ops.concatenate([real, ops.cast(fake, real.dtype)], axis=0), training=True)
    return scores[:n], scores[n:], {name: value[:n] for name, value in logits.items()}


@dataclasses.dataclass(frozen=True)
class GANHyperparameters:
    n_critic: int = hparam(5, "Discriminator updates per generator update (reference: 5).", lower_bound=1)
    ema_decay: float = hparam(0.0, "Exponential moving average of G's weights (e.g. 0.999); 0 keeps no average.",
                              lower_bound=0.0, upper_bound=1.0)


class ConditionalGAN(keras.Model):
    """Generator, discriminator(s), their optimizers and the per-replica D and G updates.

    `discriminator_step` and `generator_step` are what the distributed trainer runs under
    `strategy.run`; `train_step` runs the same maths for `model.fit()` users (one D update per
    batch, one G update every `n_critic` batches).
    """

    Hyperparameters = GANHyperparameters
    _KERAS_ARGUMENTS = ("name", "trainable", "dtype")

    def __init__(self, image_size, label_sizes, global_batch_size, seed=0, **hyperparameters):
        super().__init__(**{key: hyperparameters.pop(key) for key in self._KERAS_ARGUMENTS if key in hyperparameters})
        self.image_size = image_size
        self.label_sizes = dict(label_sizes)
        self.num_labels = sum(self.label_sizes.values())
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.hp = hparams.create(self.Hyperparameters, type(self).__name__, hyperparameters)
        self.check_hyperparameters()
        self.target_streams = {name: Stream(TARGET_STREAM_PREFIX + name) for name in self.label_sizes}
        self.generator = self.make_generator("generator")
        self.discriminator = self.make_discriminator()
        self.generator_ema = self.make_generator("generator_ema") if self.hp.ema_decay > 0 else None
        self.d_optimizer = None
        self.g_optimizer = None

    # -- what a subclass supplies -----------------------------------------------------------------

    def check_hyperparameters(self) -> None:
        """Raises ConfigError for hyperparameters that do not go together; runs before any network is built."""

    def make_generator(self, name: str) -> keras.Model:
        """A network called as `generator((images, labels))`."""
        raise NotImplementedError

    def make_discriminator(self) -> keras.Model:
        raise NotImplementedError

    def extra_discriminators(self) -> dict[str, keras.Model]:
        """Further networks trained in the D step, by checkpoint name (e.g. a depth discriminator)."""
        return {}

    def build_networks(self) -> None:
        """Creates the networks' variables by calling each once; extend it for extra networks."""
        images = ops.zeros((1, self.image_size, self.image_size, 3))
        labels = ops.zeros((1, self.num_labels))
        self.generator((images, labels))
        self.discriminator(images)
        if self.generator_ema is not None:
            self.generator_ema((images, labels))
            self.generator_ema.set_weights(self.generator.get_weights())
            self.generator_ema.trainable = False

    def discriminator_loss_weights(self) -> dict[str, float]:
        """The D loss terms and their weights, in the order they are reported."""
        return {}

    def discriminator_losses(self, batch, fakes, step) -> dict:
        """Per-example D terms, keyed as in `discriminator_loss_weights()` (computed inside the differentiated loss)."""
        return {}

    def generator_loss_weights(self) -> dict[str, float]:
        """The G loss terms and their weights, in the order they are reported."""
        return {}

    def generator_losses(self, batch, fakes, reconstructed, targets, step) -> dict:
        """Per-example G terms, keyed as in `generator_loss_weights()` (computed inside the differentiated loss)."""
        return {}

    def supervised_loss_weights(self) -> dict[str, float]:
        """The share of `generator_loss_weights()` that `supervised_losses` computes: the warm-up's terms."""
        return {}

    def warmup_steps(self) -> int:
        """Steps of `supervised_step` alone before the first D and G steps; none by default."""
        return 0

    def warmup_learning_rate(self) -> float:
        """G's learning rate during the warm-up; 0: G's own schedule throughout."""
        return 0.0

    def supervised_losses(self, batch, step) -> dict:
        """Per-example G terms of further edits whose answer is known (a teacher's edit, a face's own copy under
        the target light), keyed as in `generator_loss_weights()`; computed in the G step beside the adversarial
        terms. None by default: the papers' recipes learn from unpaired faces only."""
        return {}

    # -- labels and targets ------------------------------------------------------------------------

    def source_labels(self, batch) -> dict:
        """The batch's own labels: int ids per one-hot attribute, float 0/1 vectors per multi-label group."""
        return {name: ops.cast(batch[name], "float32" if is_multi_label(name) else "int32")
                for name in self.label_sizes}

    def one_hot(self, ids):
        return one_hot_labels(ids, self.label_sizes)

    def uniform_per_example(self, stream: Stream, step, count):
        return uniform_per_example(stream, self.seed, step, count, self.global_batch_size)

    def random_targets(self, batch, step) -> dict:
        """A random target class per example and attribute, different from the example's own class.

        A multi-label group's target is another face's vector of the same batch (a random permutation), as
        StarGAN's reference trains on CelebA: targets are attribute sets real faces have (one hair colour),
        and each differs from the source in the attributes the two faces do not share, possibly none."""
        count = batch_size(batch["image"])
        targets = {}
        for name, size in self.label_sizes.items():
            draw = self.uniform_per_example(self.target_streams[name], step, count)
            if is_multi_label(name):
                targets[name] = ops.take(ops.cast(batch[name], "float32"), ops.argsort(draw), axis=0)
                continue
            shift = 1 + ops.cast(ops.floor(draw * (size - 1)), "int32")  # 1..size-1: never the source class
            targets[name] = (ops.cast(batch[name], "int32") + shift) % size
        return targets

    # -- the updates -------------------------------------------------------------------------------

    def build_all(self, d_optimizer, g_optimizer) -> None:
        """Creates every variable (networks and optimizer slots) so checkpoints restore before step 1."""
        self.build_networks()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        d_optimizer.build(self.discriminator_variables())
        g_optimizer.build(self.generator_variables())
        self.built = True

    def discriminator_variables(self) -> list:
        networks = [self.discriminator, *self.extra_discriminators().values()]
        return [variable for network in networks for variable in network.trainable_variables]

    def generator_variables(self) -> list:
        return list(self.generator.trainable_variables)

    def _update(self, optimizer, variables, side, weights, compute_terms):
        """One optimizer step on the weighted sum of `compute_terms()`; returns the step's mean metrics."""

        def loss_and_metrics():
            terms = compute_terms()
            weighted = [weight * terms[name] for name, weight in weights.items()]
            per_example = sum(weighted[1:], weighted[0])
            loss = ops.sum(per_example) / self.global_batch_size
            values = [*(terms[name] for name in weights), per_example]
            return loss, {name: ops.mean(value) for name, value in zip(self.metric_names(side), values)}

        return backend.apply_gradients(optimizer, variables, loss_and_metrics)

    def metric_names(self, side: str) -> list[str]:
        """The metrics a step reports: `<side>/<term>` per loss term, then `<side>/total`, where the side is d,
        g or warmup (the supervised warm-up's G step)."""
        weights = {"d": self.discriminator_loss_weights, "g": self.generator_loss_weights,
                   "warmup": self.supervised_loss_weights}[side]()
        return [f"{side}/{name}" for name in weights] + [f"{side}/total"]

    def translate(self, images, targets, training):
        """The generator's output for `targets` ({attribute: ids}): the fakes D judges."""
        return self.generator((images, self.one_hot(targets)), training=training)

    def translate_with_parts(self, images, targets):
        """The G step's translation: (fakes, {name: tensor}) where the dict holds the parts of the edit
        that `edit_losses` penalises (e.g. an attention mask); here none."""
        return self.translate(images, targets, training=True), {}

    def edit_losses(self, parts) -> dict:
        """Per-example G terms on `translate_with_parts`' parts, keyed as in `generator_loss_weights()`."""
        return {}

    def reconstruct(self, batch, fakes, training):
        """The way back from the fakes, for the cycle loss: here the translation to the source labels."""
        return self.generator((fakes, self.one_hot(self.source_labels(batch))), training=training)

    def discriminator_step(self, batch, step):
        fakes = self.translate(batch["image"], self.random_targets(batch, step), training=False)
        return self._update(self.d_optimizer, self.discriminator_variables(), "d", self.discriminator_loss_weights(),
                            lambda: self.discriminator_losses(batch, fakes, step))

    def generator_step(self, batch, step):
        targets = self.random_targets(batch, step)

        def terms():
            fakes, parts = self.translate_with_parts(batch["image"], targets)
            reconstructed = self.reconstruct(batch, fakes, training=True)
            return {**self.generator_losses(batch, fakes, reconstructed, targets, step), **self.edit_losses(parts),
                    **self.supervised_losses(batch, step)}

        return self._update(self.g_optimizer, self.generator_variables(), "g", self.generator_loss_weights(), terms)

    def supervised_step(self, batch, step):
        """A warm-up step: one G update on the supervised terms alone (`supervised_loss_weights()`)."""
        return self._update(self.g_optimizer, self.generator_variables(), "warmup", self.supervised_loss_weights(),
                            lambda: self.supervised_losses(batch, step))

    def update_ema(self):
        """Cross-replica: moves the averaged generator toward the trained one.

        The decay warms up as min(ema_decay, (1 + n) / (10 + n)) over the n generator updates so far
        (as tf.train.ExponentialMovingAverage's num_updates does): a fixed 0.999 would keep most of
        the random initial weights for thousands of updates, which short runs never reach.
        """
        updates = ops.cast(self.g_optimizer.iterations, "float32")
        decay = ops.minimum(self.hp.ema_decay, (1.0 + updates) / (10.0 + updates))
        for average, current in zip(self.generator_ema.weights, self.generator.weights):
            average.assign(decay * average + (1.0 - decay) * current)

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator to sample and export: the moving average when one is kept."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def networks(self) -> dict[str, keras.Model]:
        """Everything trained, by checkpoint name."""
        items = {"generator": self.generator, "discriminator": self.discriminator, **self.extra_discriminators()}
        if self.generator_ema is not None:
            items["generator_ema"] = self.generator_ema
        return items

    # -- keras.Model API for fit() users ------------------------------------------------------------

    def call(self, inputs, training=False):
        return self.sampling_generator(inputs, training=training)

    def train_step(self, data):
        if self.warmup_steps():
            raise ValueError(f"{type(self).__name__}: a supervised warm-up ({self.warmup_steps()} steps) runs under "
                             "the project's trainer (scripts/train.py), not Model.fit.")
        # Steps count from 1 as in the trainer, so fit() draws the trainer's random numbers and
        # updates G on the same batches (every n_critic-th).
        step = self.d_optimizer.iterations + 1
        metrics = self.discriminator_step(data, step)

        def generator_update():
            generator_metrics = self.generator_step(data, step)
            if self.generator_ema is not None:  # as the trainer: the average moves after each G update
                self.update_ema()
            return generator_metrics

        generator_metrics = ops.cond(ops.equal(step % self.hp.n_critic, 0), generator_update,
                                     lambda: {name: ops.convert_to_tensor(0.0) for name in self.metric_names("g")})
        return {**metrics, **generator_metrics}

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, label_sizes=self.label_sizes,
                      global_batch_size=self.global_batch_size, seed=self.seed, **dataclasses.asdict(self.hp))
        return config
