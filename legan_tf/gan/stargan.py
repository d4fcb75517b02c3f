"""StarGAN (Choi et al. 2018), the baseline of both papers, optionally with LEGAN's L_qual.

Attributes (expression, lighting, ...) are one-hot groups concatenated into StarGAN's label vector;
the discriminator has one classification head per attribute. The losses are the reference's:
WGAN-GP for D, classification of real faces (D) and of translations (G), the cycle L1 (G).
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from legan_tf import losses
from legan_tf.gan.base import ConditionalGAN, GANHyperparameters, batch_size, critic_on_real_and_fake
from legan_tf.errors import ConfigError
from legan_tf.hparams import hparam
from legan_tf.models.stargan import StarGANDiscriminator, StarGANGenerator
from legan_tf.random_streams import Stream

GRADIENT_PENALTY_ALPHA = Stream("gan/gradient_penalty_alpha")


@dataclasses.dataclass(frozen=True)
class StarGANHyperparameters(GANHyperparameters):
    g_filters: int = hparam(64, "Generator base filters (reference: 64).", lower_bound=1)
    g_residual_blocks: int = hparam(6, "Generator residual blocks (reference: 6).", lower_bound=0)
    d_filters: int = hparam(64, "Discriminator base filters (reference: 64).", lower_bound=1)
    d_downsamples: int = hparam(6, "Discriminator stride-2 convs (reference: 6).", lower_bound=1)
    lambda_cls: float = hparam(1.0, "Weight of the attribute classification losses (reference: 1).")
    lambda_rec: float = hparam(10.0, "Weight of the cycle reconstruction L1 (reference: 10).")
    lambda_gp: float = hparam(10.0, "Weight of the WGAN gradient penalty (reference: 10).")
    lambda_qual: float = hparam(0.0, "Weight of L_qual from a frozen Q on the translation and the cycle "
                                "reconstruction (LEGAN: 1; 0 turns it off).")
    q_target: float = hparam(10.0, "L_qual target score: relu(q_target - Q(x)) / q_target (LEGAN: 10).")
    g_upsampling: str = hparam("transpose", "Generator upsampling: transpose (the reference's 4x4 stride-2 "
                               "transposed convs) or resize (nearest 2x resize then a 3x3 conv: no checkerboard).",
                               choices=StarGANGenerator.UPSAMPLINGS)
    g_output: str = hparam("image", "Generator output: image (the reference) or attention (GANimation: a colour map "
                           "and a mask, edit = mask * colour + (1 - mask) * input).", choices=StarGANGenerator.OUTPUTS)
    g_colour: str = hparam("rgb", "With --g_output=attention: the colour map's channels: rgb (three, the default) or "
                           "grey (one, repeated on every image channel: edits of grey faces such as FER2013's stay "
                           "grey).", choices=("rgb", "grey"))
    g_colour_map: str = hparam("absolute", "With --g_output=attention: absolute (the colour map is painted, "
                               "GANimation's) or residual (it is the input plus a change, clipped: under the mask "
                               "the face's own texture is shifted, not repainted).",
                               choices=StarGANGenerator.COLOUR_MAPS)
    lambda_mask: float = hparam(0.1, "With --g_output=attention: weight of the mask's mean (pixels the edit does not "
                                "need are copied from the input; GANimation: 0.1).", lower_bound=0.0)
    lambda_mask_tv: float = hparam(1.0, "With --g_output=attention: weight of the mask's total variation (mean "
                                   "absolute difference of neighbouring mask pixels, both axes).", lower_bound=0.0)


@keras.saving.register_keras_serializable(package="legan_tf")
class StarGAN(ConditionalGAN):
    """StarGAN's networks and losses on the shared updates. `quality_model`: a frozen Q for L_qual."""

    Hyperparameters = StarGANHyperparameters
    # Options of the attention output, with their defaults: set away from them, they need g_output="attention".
    ATTENTION_OPTIONS = (("g_colour", "rgb"), ("g_colour_map", "absolute"))

    def __init__(self, image_size, label_sizes, global_batch_size, seed=0, quality_model=None, **hyperparameters):
        super().__init__(image_size, label_sizes, global_batch_size, seed, **hyperparameters)
        self.quality_model = quality_model
        if quality_model is not None:
            quality_model.trainable = False

    @classmethod
    def attention_options_without_attention(cls, hp) -> list[tuple[str, object]]:
        """(name, value) of each attention-output option set away from its default while g_output is not
        attention. `hp`: these hyperparameters, or a recipe's that holds them (its task checks them too)."""
        if hp.g_output == "attention":
            return []
        return [(name, getattr(hp, name)) for name, default in cls.ATTENTION_OPTIONS if getattr(hp, name) != default]

    def check_hyperparameters(self):
        for name, value in self.attention_options_without_attention(self.hp):
            raise ConfigError(f"{name}={value!r} is an option of the attention output; it needs "
                              f"g_output='attention' (got {self.hp.g_output!r}).")

    def make_generator(self, name):
        return StarGANGenerator(self.image_size, self.num_labels, self.hp.g_filters,
                                num_residual_blocks=self.hp.g_residual_blocks, upsampling=self.hp.g_upsampling,
                                output_mode=self.hp.g_output, grey_colour=self.hp.g_colour == "grey",
                                colour_map=self.hp.g_colour_map, name=name)

    @property
    def attention(self) -> bool:
        return self.hp.g_output == "attention"

    def translate_with_parts(self, images, targets):
        if not self.attention:
            return super().translate_with_parts(images, targets)
        inputs = (images, self.one_hot(targets))
        color, mask = self.generator.edit_parts(inputs, training=True)
        return mask * color + (1.0 - mask) * ops.cast(images, color.dtype), {"mask": mask}

    def edit_losses(self, parts):
        if not self.attention:
            return super().edit_losses(parts)
        return {"mask": losses.mask_size(parts["mask"]), "mask_smoothness": losses.total_variation(parts["mask"])}

    def make_discriminator(self):
        return StarGANDiscriminator(self.image_size, self.num_labels, self.hp.d_filters, self.hp.d_downsamples,
                                    head_classes=self.label_sizes, name="discriminator")

    def _classification(self, logits, ids):
        terms = [losses.classification_loss(logits[name], ids[name]) for name in self.label_sizes]
        return sum(terms[1:], terms[0])

    def discriminator_loss_weights(self):
        return {"adversarial": 1.0, "gradient_penalty": self.hp.lambda_gp, "classification": self.hp.lambda_cls}

    def discriminator_losses(self, batch, fakes, step):
        images = batch["image"]
        alpha = self.uniform_per_example(GRADIENT_PENALTY_ALPHA, step, batch_size(images))
        real_scores, fake_scores, real_logits = critic_on_real_and_fake(self.discriminator, images, fakes)
        return {"adversarial": losses.wasserstein_critic_loss(real_scores, fake_scores),
                "gradient_penalty": losses.gradient_penalty(lambda x: self.discriminator(x, training=True)[0],
                                                            images, fakes, alpha),
                "classification": self._classification(real_logits, self.source_labels(batch))}

    def generator_loss_weights(self):
        weights = {"adversarial": 1.0, "classification": self.hp.lambda_cls, "reconstruction": self.hp.lambda_rec}
        if self.quality_model is not None and self.hp.lambda_qual > 0:
            weights["quality"] = self.hp.lambda_qual
        if self.attention:
            weights.update(mask=self.hp.lambda_mask, mask_smoothness=self.hp.lambda_mask_tv)
        return weights

    def generator_losses(self, batch, fakes, reconstructed, targets, step):
        fake_scores, fake_logits = self.discriminator(fakes, training=False)
        terms = {"adversarial": losses.wasserstein_generator_loss(fake_scores),
                 "classification": self._classification(fake_logits, targets),
                 "reconstruction": losses.cycle_loss(batch["image"], reconstructed)}
        if "quality" in self.generator_loss_weights():
            # LEGAN's L_qual on the translation and on the cycle reconstruction.
            terms["quality"] = (losses.quality_loss(self.quality_model(fakes, training=False), self.hp.q_target)
                                + losses.quality_loss(self.quality_model(reconstructed, training=False),
                                                      self.hp.q_target))
        return terms
