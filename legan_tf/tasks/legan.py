"""Recipe: LEGAN (Banerjee et al. 2021), joint control of directional lighting and facial expression.

The StarGAN recipe with LEGAN's parts (METHOD.md section 2): the tri-hourglass generator, a
discriminator with a lighting and an expression head, targets shuffled within the batch per
attribute, and two frozen judges in the generator's loss: an identity network f for
L_id = 1 - cos(f(I), f(G(I, c_trg))), and the quality model Q for L_qual on the translation and the
cycle reconstruction.
"""

import os

import keras
import tensorflow as tf
from absl import flags

from legan_tf import losses
from legan_tf.errors import ConfigError
from legan_tf.models import lightcnn
from legan_tf.models.legan import LEGANGenerator
from legan_tf.tasks import register
from legan_tf.tasks.base import replica_index
from legan_tf.tasks.stargan import StarGAN, StarGANTask, define_gan_flags, one_hot_labels

ATTRIBUTES = ("expression", "lighting")
TARGET_SAMPLINGS = ("shuffle", "random")


def define_flags() -> None:
    define_gan_flags("legan_", "LEGAN (each hourglass)", lambda_qual=1.0)
    flags.DEFINE_float("legan_lambda_id", 1.0, "Weight of L_id = 1 - cos(f(I), f(G(I, c_trg))) (LEGAN: 1; 0 turns it off).")
    flags.DEFINE_string("legan_identity_weights", "",
                        "LightCNN-29 v2 weights converted to .npz by scripts/convert_lightcnn.py: the paper's "
                        "identity network f for L_id (128 px grey input).")
    flags.DEFINE_string("legan_identity_model", "",
                        "Instead of --legan_identity_weights: an identity embedding trained by this project "
                        "(identity_model.keras of a --flagfile=configs/identity.flags run).")
    flags.DEFINE_enum("legan_target_sampling", "shuffle", list(TARGET_SAMPLINGS),
                      "Target labels: shuffle each attribute's labels within the global batch (LEGAN), or draw "
                      "a random class different from the source per example (the project's StarGAN).")


@keras.saving.register_keras_serializable(package="legan_tf")
class LEGAN(StarGAN):
    """StarGAN's update maths with LEGAN's generator, targets and identity loss.

    `label_sizes` must be {"expression": N_e, "lighting": N_l} in that order: the generator reads
    its label vector expression first.
    """

    def __init__(self, image_size, label_sizes, global_batch_size, lambda_id=1.0, target_sampling="shuffle",
                 identity_model=None, **kwargs):
        if tuple(label_sizes) != ATTRIBUTES:
            raise ValueError(f"LEGAN: label_sizes must name {ATTRIBUTES} in that order, got {tuple(label_sizes)}.")
        if target_sampling not in TARGET_SAMPLINGS:
            raise ValueError(f"LEGAN: target_sampling must be one of {TARGET_SAMPLINGS}, got {target_sampling!r}.")
        super().__init__(image_size, label_sizes, global_batch_size, **kwargs)
        self.lambda_id = lambda_id
        self.target_sampling = target_sampling
        self.identity_model = identity_model
        if identity_model is not None:
            identity_model.trainable = False

    def make_generator(self, name):
        return LEGANGenerator(self.image_size, self.label_sizes["expression"], self.label_sizes["lighting"],
                              self.g_filters, num_residual_blocks=self.g_residual_blocks, name=name)

    def random_targets(self, batch, step):
        """LEGAN's targets: each attribute's labels permuted within the global batch, independently.

        The permutation is keyed by (seed, step, attribute) and applied to the labels of the whole
        global batch (gathered from every replica), so it does not depend on the replica layout.
        Unlike the "random" sampling, a shuffled target may equal the source class.
        """
        if self.target_sampling == "random":
            return super().random_targets(batch, step)
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        replica = replica_index()
        count = tf.shape(batch["image"])[0]
        targets = {}
        for stream, name in enumerate(self.label_sizes, start=17):
            labels = tf.cast(batch[name], tf.int32)
            everyone = context.all_gather(labels, axis=0) if replicas > 1 else labels
            draws = tf.random.stateless_uniform(tf.shape(everyone), seed=self.stream_seed(step, stream))
            permutation = tf.argsort(draws)
            targets[name] = tf.gather(everyone, tf.gather(permutation, replica * count + tf.range(count)))
        return targets

    def generator_loss_weights(self):
        weights = super().generator_loss_weights()
        if self.identity_model is not None and self.lambda_id > 0:
            weights["identity"] = self.lambda_id
        return weights

    def generator_losses(self, images, fakes, reconstructed, targets, training):
        terms = super().generator_losses(images, fakes, reconstructed, targets, training)
        if "identity" in self.generator_loss_weights():
            terms["identity"] = losses.identity_loss(self.identity_model(images, training=False),
                                                     self.identity_model(fakes, training=False))
        return terms

    def get_config(self):
        config = super().get_config()
        config.update(lambda_id=self.lambda_id, target_sampling=self.target_sampling)
        return config


@register
class LEGANTask(StarGANTask):
    name = "legan"
    flag_prefix = "legan_"
    model_class = LEGAN
    sample_attribute_order = ("lighting", "expression")

    def __init__(self, label_names, image_size, global_batch_size, train_steps, lambda_id=1.0, identity_weights="",
                 identity_model="", target_sampling="shuffle", lambda_qual=1.0, **kwargs):
        missing = [name for name in ATTRIBUTES if name not in label_names]
        if missing:
            raise ConfigError(f"LEGAN needs expression and lighting labels; the dataset has no {' or '.join(missing)} "
                              f"labels (a Multi-PIE-style manifest with --num_lightings or --lighting_names has both).")
        label_names = {name: label_names[name] for name in ATTRIBUTES}
        super().__init__(label_names, image_size, global_batch_size, train_steps, lambda_qual=lambda_qual, **kwargs)
        if identity_weights and identity_model:
            raise ConfigError("Give one of --legan_identity_weights (LightCNN-29 v2) and --legan_identity_model, not both.")
        if lambda_id > 0 and not (identity_weights or identity_model):
            raise ConfigError(f"--legan_lambda_id={lambda_id:g} needs an identity network: give "
                              "--legan_identity_weights=path/lightcnn29v2.npz (LightCNN-29 v2, converted with "
                              "scripts/convert_lightcnn.py) or --legan_identity_model=path/identity_model.keras "
                              "(train one with configs/identity.flags), or set --legan_lambda_id=0.")
        for flag, path in (("identity_weights", identity_weights), ("identity_model", identity_model)):
            if path and not os.path.isfile(path):
                raise ConfigError(f"--legan_{flag}={path}: no such file.")
        self.identity_weights, self.identity_model_path = identity_weights, identity_model
        self.model_args.update(lambda_id=lambda_id, target_sampling=target_sampling)

    def _load_identity_model(self):
        path = self.identity_weights or self.identity_model_path
        return lightcnn.load_identity_embedder(path) if path else None

    def frozen_models(self):
        return {**super().frozen_models(), "identity_model": self._load_identity_model()}

    def extra_sample_columns(self, images, source):
        """The two masks for one joint target per row (the next expression and the light half-way
        round): they show which hourglass changed what."""
        targets = {name: (tf.cast(source[name], tf.int32) + max(1, size // 2 if name == "lighting" else 1)) % size
                   for name, size in self.label_sizes.items()}
        translated, expression_mask, lighting_mask = self.model.sampling_generator.translate_with_masks(
            (images, one_hot_labels(targets, self.label_sizes)))
        return [("joint edit", translated.numpy()), ("mask M_e", expression_mask.numpy()),
                ("mask M_l", lighting_mask.numpy())]
