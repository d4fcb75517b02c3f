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
from legan_tf.gan import diffaugment
from legan_tf.gan.base import ConditionalGAN, GANHyperparameters, batch_size, critic_on_real_and_fake
from legan_tf.errors import ConfigError
from legan_tf.hparams import hparam
from legan_tf.labels import is_multi_label
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
    d_augment: str = hparam("", "Differentiable augmentation of every image D reads, real and fake, in both "
                            "updates (DiffAugment, Zhao et al. 2020): a comma list of translation (shifts of up to "
                            "1/8 of the image) and cutout (a square of half its side set to 0); empty for none. Not "
                            "in the papers: it keeps D's heads from memorising the training faces.")
    lambda_cls_frozen: float = hparam(0.0, "Weight of a classification loss on the translation from a frozen "
                                      "attribute classifier trained apart (--attribute_classifier): the cross-entropy "
                                      "of the target class on each of its heads; 0 turns it off. Not in the papers.",
                                      lower_bound=0.0)


@keras.saving.register_keras_serializable(package="legan_tf")
class StarGAN(ConditionalGAN):
    """StarGAN's networks and losses on the shared updates. `quality_model`: a frozen Q for L_qual."""

    Hyperparameters = StarGANHyperparameters
    # Options of the attention output, with their defaults: set away from them, they need g_output="attention".
    ATTENTION_OPTIONS = (("g_colour", "rgb"), ("g_colour_map", "absolute"))

    def __init__(self, image_size, label_sizes, global_batch_size, seed=0, quality_model=None,
                 attribute_classifier=None, **hyperparameters):
        super().__init__(image_size, label_sizes, global_batch_size, seed, **hyperparameters)
        self.quality_model = quality_model
        if quality_model is not None:
            quality_model.trainable = False
        self.d_transforms = diffaugment.parse_policy(self.hp.d_augment)
        self.attribute_classifier = attribute_classifier
        self.frozen_heads = ()
        if attribute_classifier is not None:
            attribute_classifier.trainable = False
            heads = dict(getattr(attribute_classifier, "head_classes", {}))
            self.frozen_heads = tuple(name for name in self.label_sizes if name in heads)
            wrong = {name: heads[name] for name in self.frozen_heads if heads[name] != self.label_sizes[name]}
            if not self.frozen_heads or wrong:
                raise ValueError(f"{type(self).__name__}: the attribute classifier's heads {heads} do not fit the "
                                 f"generator's labels {self.label_sizes}.")

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
        diffaugment.parse_policy(self.hp.d_augment)

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

    def _classification(self, logits, ids, names=None):
        """Per-example classification loss summed over attributes: softmax cross-entropy of a one-hot group's
        class id, sigmoid cross-entropy summed over a multi-label group's attributes (the reference's CelebA)."""
        terms = [losses.classification_loss(logits[name], ids[name], multi_label=is_multi_label(name))
                 for name in (names or self.label_sizes)]
        return sum(terms[1:], terms[0])

    def discriminator_loss_weights(self):
        return {"adversarial": 1.0, "gradient_penalty": self.hp.lambda_gp, "classification": self.hp.lambda_cls}

    def augment(self, images, role, step):
        """What D reads of `images` (real or fake, in D's update, or fake in G's): DiffAugment's transforms."""
        return diffaugment.augment(images, self.d_transforms, role, self.seed, step, self.global_batch_size)

    def discriminator_losses(self, batch, fakes, step):
        images = self.augment(batch["image"], "real", step)
        fakes = self.augment(fakes, "fake", step)
        alpha = self.uniform_per_example(GRADIENT_PENALTY_ALPHA, step, batch_size(images))
        real_scores, fake_scores, real_logits = critic_on_real_and_fake(self.discriminator, images, fakes)
        return {"adversarial": losses.wasserstein_critic_loss(real_scores, fake_scores),
                "gradient_penalty": losses.gradient_penalty(lambda x: self.discriminator(x, training=True)[0],
                                                            images, fakes, alpha),
                "classification": self._classification(real_logits, self.source_labels(batch))}

    def generator_loss_weights(self):
        weights = {"adversarial": 1.0, "classification": self.hp.lambda_cls, "reconstruction": self.hp.lambda_rec}
        if self.attribute_classifier is not None and self.hp.lambda_cls_frozen > 0:
            weights["frozen_classification"] = self.hp.lambda_cls_frozen
        if self.quality_model is not None and self.hp.lambda_qual > 0:
            weights["quality"] = self.hp.lambda_qual
        if self.attention:
            weights.update(mask=self.hp.lambda_mask, mask_smoothness=self.hp.lambda_mask_tv)
        return weights

    def generator_losses(self, batch, fakes, reconstructed, targets, step):
        fake_scores, fake_logits = self.discriminator(self.augment(fakes, "generator", step), training=False)
        terms = {"adversarial": losses.wasserstein_generator_loss(fake_scores),
                 "classification": self._classification(fake_logits, targets),
                 "reconstruction": losses.cycle_loss(batch["image"], reconstructed)}
        if "frozen_classification" in self.generator_loss_weights():
            terms["frozen_classification"] = self.frozen_classification(fakes, targets)
        if "quality" in self.generator_loss_weights():
            # LEGAN's L_qual on the translation and on the cycle reconstruction.
            terms["quality"] = (losses.quality_loss(self.quality_model(fakes, training=False), self.hp.q_target)
                                + losses.quality_loss(self.quality_model(reconstructed, training=False),
                                                      self.hp.q_target))
        return terms

    def frozen_classification(self, fakes, targets):
        """Per-example cross-entropy of the targets on the frozen classifier's heads, the fakes resized to its
        input (bilinear, antialiased: what the judges do) when its size differs."""
        size = getattr(self.attribute_classifier, "image_size", None)
        if size is not None and size != fakes.shape[1]:
            fakes = ops.image.resize(fakes, (size, size), interpolation="bilinear", antialias=True)
        logits = self.attribute_classifier(fakes, training=False)
        return self._classification({name: logits[name] for name in self.frozen_heads}, targets, self.frozen_heads)
