"""StarGAN with 3D dense geometry guidance (Bodur et al., WACV 2021): the depth network and its use.

Two models on the shared updates of `legan_tf.gan.base`:

`DepthNetworkGAN`, the depth network's pre-training on RGB-depth pairs (section 3.2, "Pre-training
the Depth Network"): G_depth maps a face to its geometry (depth map, or surface normals), G'_depth
maps the geometry back to the face, D_depth tells real geometry from G_depth's and classifies its
expression. Losses: eq. 5 (adversarial), eq. 6 (classification of G_depth's geometry as the face's
expression), eq. 7 (reconstruction |I - G'_depth(G_depth(I))|), eq. 9 (pixel L1 to the pseudo
ground truth), eq. 10 (perceptual, on features of a frozen CNN) and eq. 11 (confidence penalty).

`DepthGuidedStarGAN`, end-to-end training (section 3.2, the min-max over {G_rgb, G_depth} and
{D_rgb, D_depth} of L_rgb + w_depth * L_depth): StarGAN, plus the pre-trained depth network on
StarGAN's translation I_t: D_depth judges G_depth(I_t) against real depth maps, G_rgb and G_depth
are pushed to make G_depth(I_t) real-looking and classified as the *target* expression (eq. 5-6),
and I_t reconstructible from its geometry (eq. 7).

Choices where the paper is silent (each a flag):
- The adversarial terms are WGAN-GP, as the RGB network's (the StarGAN reference implements its
  eq. 1 that way), so L_rgb and L_depth are on one scale; eq. 5 is written as a log-loss.
- The confidence penalty -beta * H(softmax(D_cls^depth)) is applied where D_depth's classifier is
  trained, on real depth maps with their labels ("a regulariser on the discriminator side"); the
  paper's eq. 11 writes it beside the classification of G_depth(I_s), which in pre-training
  approximates the same maps. beta is not given (set by cross-validation in the paper).
- The loss weights inside L_depth (lambda_adv, lambda_cls, lambda_rec) are StarGAN's (1, 1, 10);
  the paper sets them by cross-validation without giving them. The pixel L1's weight is pix2pix's
  100 for an L1 term beside an adversarial loss: at 10 the depth network learned too slowly on the
  face lab to beat the mean depth map (docs/depth.md).
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from legan_tf import losses
from legan_tf.gan.base import ConditionalGAN, GANHyperparameters, batch_size, critic_on_real_and_fake
from legan_tf.gan.stargan import StarGAN, StarGANHyperparameters
from legan_tf.geometry import GEOMETRIES, geometry_channels, geometry_from_network_depth
from legan_tf.hparams import hparam
from legan_tf.models.depth import DepthGenerator
from legan_tf.models.stargan import StarGANDiscriminator
from legan_tf.random_streams import Stream

DEPTH_GRADIENT_PENALTY_ALPHA = Stream("depth/gradient_penalty_alpha")
EXPRESSION = "expression"
CONFIDENCE_HELP = ("beta of the confidence penalty -beta * H(softmax) on D_depth's expression classifier (eq. 11); "
                   "0 turns it off. The paper sets it by cross-validation and gives no value.")


def depth_discriminator_terms(discriminator, real, fake, labels, alpha, confidence_beta) -> dict:
    """D_depth's per-example terms: WGAN critic, gradient penalty, classification of the real maps as
    their expression, and (beta > 0) the confidence penalty on that classification."""
    real_scores, fake_scores, real_logits = critic_on_real_and_fake(discriminator, real, fake)
    terms = {"adversarial": losses.wasserstein_critic_loss(real_scores, fake_scores),
             "gradient_penalty": losses.gradient_penalty(lambda x: discriminator(x, training=True)[0],
                                                         real, fake, alpha),
             "classification": losses.classification_loss(real_logits[EXPRESSION], labels)}
    if confidence_beta > 0:
        terms["confidence"] = losses.confidence_penalty(real_logits[EXPRESSION], confidence_beta)
    return terms


def depth_generator_terms(discriminator, rgb, geometry, reconstructed, labels) -> dict:
    """The generator side of L_depth for faces `rgb`, their geometry G_depth(rgb) and the way back
    G'_depth(geometry): eq. 5 (adversarial), eq. 6 (geometry classified as `labels`), eq. 7 (|rgb - reconstructed|)."""
    scores, logits = discriminator(geometry, training=False)
    return {"adversarial": losses.wasserstein_generator_loss(scores),
            "classification": losses.classification_loss(logits[EXPRESSION], labels),
            "reconstruction": losses.cycle_loss(rgb, reconstructed)}


def _check_expression_only(owner, label_sizes):
    if tuple(label_sizes) != (EXPRESSION,):
        raise ValueError(f"{owner}: D_depth classifies expressions only; label_sizes must be "
                         f"{{'expression': N}}, got {dict(label_sizes)}.")


def make_depth_discriminator(image_size, geometry, num_expressions, base_filters, num_downsamples,
                             name="depth_discriminator"):
    """D_depth: the StarGAN discriminator on geometry maps, with one expression head."""
    return StarGANDiscriminator(image_size, base_filters=base_filters, num_downsamples=num_downsamples,
                                head_classes={EXPRESSION: num_expressions},
                                input_channels=geometry_channels(geometry), name=name)


@dataclasses.dataclass(frozen=True)
class DepthNetworkHyperparameters(GANHyperparameters):
    geometry: str = hparam("depth", "Geometry the depth network predicts: depth (1 channel) or normals (3, from "
                           "depth by finite differences) (paper, table 1: both).", choices=GEOMETRIES)
    g_filters: int = hparam(64, "G_depth base filters (StarGAN reference: 64).", lower_bound=1)
    g_residual_blocks: int = hparam(6, "G_depth residual blocks (StarGAN reference: 6).", lower_bound=0)
    d_filters: int = hparam(64, "D_depth base filters (StarGAN reference: 64).", lower_bound=1)
    d_downsamples: int = hparam(6, "D_depth stride-2 convs (StarGAN reference: 6).", lower_bound=1)
    lambda_adv: float = hparam(1.0, "Weight of the depth adversarial loss (eq. 5; StarGAN's 1).")
    lambda_cls: float = hparam(1.0, "Weight of the depth expression classification (eq. 6; StarGAN's 1).")
    lambda_rec: float = hparam(10.0, "Weight of the reconstruction |I - G'_depth(G_depth(I))| (eq. 7; StarGAN's 10).")
    lambda_gp: float = hparam(10.0, "Weight of D_depth's WGAN gradient penalty (StarGAN's 10).")
    lambda_pix: float = hparam(100.0, "Weight of the pixel L1 to the pseudo ground truth (eq. 9; not given in the "
                               "paper; pix2pix's weight for an L1 term beside an adversarial one).")
    lambda_per: float = hparam(1.0, "Weight of the perceptual loss (eq. 10; not given in the paper); used when a "
                               "feature network is given.")
    confidence_beta: float = hparam(0.1, CONFIDENCE_HELP, lower_bound=0.0)


@keras.saving.register_keras_serializable(package="legan_tf")
class DepthNetworkGAN(ConditionalGAN):
    """The depth network's pre-training on RGB-depth pairs (batches with "image", "depth" in [-1, 1] as the
    data pipeline gives it, and "expression").

    `feature_network`: a frozen network mapping geometry maps to a list of feature maps, for the
    perceptual loss (eq. 10); None leaves the loss out.
    """

    Hyperparameters = DepthNetworkHyperparameters

    def __init__(self, image_size, label_sizes, global_batch_size, seed=0, feature_network=None, **hyperparameters):
        _check_expression_only("DepthNetworkGAN", label_sizes)
        super().__init__(image_size, label_sizes, global_batch_size, seed, **hyperparameters)
        self.feature_network = feature_network
        if feature_network is not None:
            feature_network.trainable = False

    def make_generator(self, name):
        return DepthGenerator(self.image_size, self.hp.geometry, self.hp.g_filters, self.hp.g_residual_blocks, name=name)

    def make_discriminator(self):
        return make_depth_discriminator(self.image_size, self.hp.geometry, self.label_sizes[EXPRESSION],
                                        self.hp.d_filters, self.hp.d_downsamples)

    def build_networks(self):
        images = ops.zeros((1, self.image_size, self.image_size, 3))
        self.generator(images)
        self.discriminator(ops.zeros((1, self.image_size, self.image_size, geometry_channels(self.hp.geometry))))
        if self.generator_ema is not None:
            self.generator_ema(images)
            self.generator_ema.set_weights(self.generator.get_weights())
            self.generator_ema.trainable = False

    def real_geometry(self, batch):
        """The true geometry of the batch's faces (the pipeline's depth is in [-1, 1] already)."""
        return geometry_from_network_depth(batch["depth"], self.hp.geometry)

    def random_targets(self, batch, step):
        # Pre-training has paired data: the geometry of a face is classified as the face's own expression.
        return self.source_labels(batch)

    def translate(self, images, targets, training):
        return self.generator.to_geometry(images, training=training)

    def reconstruct(self, batch, fakes, training):
        return self.generator.to_rgb(fakes, training=training)

    def discriminator_loss_weights(self):
        hp = self.hp
        weights = {"adversarial": hp.lambda_adv, "gradient_penalty": hp.lambda_gp, "classification": hp.lambda_cls}
        if hp.confidence_beta > 0:
            weights["confidence"] = hp.lambda_cls  # the penalty rides on the classification it regularises
        return weights

    def discriminator_losses(self, batch, fakes, step):
        real = self.real_geometry(batch)
        alpha = self.uniform_per_example(DEPTH_GRADIENT_PENALTY_ALPHA, step, batch_size(real))
        return depth_discriminator_terms(self.discriminator, real, fakes, self.source_labels(batch)[EXPRESSION],
                                         alpha, self.hp.confidence_beta)

    def generator_loss_weights(self):
        hp = self.hp
        weights = {"adversarial": hp.lambda_adv, "classification": hp.lambda_cls, "reconstruction": hp.lambda_rec,
                   "pixel": hp.lambda_pix}
        if self.feature_network is not None and hp.lambda_per > 0:
            weights["perceptual"] = hp.lambda_per
        return weights

    def generator_losses(self, batch, fakes, reconstructed, targets, step):
        real = self.real_geometry(batch)
        terms = depth_generator_terms(self.discriminator, batch["image"], fakes, reconstructed, targets[EXPRESSION])
        terms["pixel"] = losses.l1_loss(real, fakes)
        if "perceptual" in self.generator_loss_weights():
            terms["perceptual"] = losses.perceptual_loss(self.feature_network(real, training=False),
                                                         self.feature_network(fakes, training=False))
        return terms


@dataclasses.dataclass(frozen=True)
class DepthGuidedStarGANHyperparameters(StarGANHyperparameters):
    depth_weight: float = hparam(0.3, "w_depth in L_rgb + w_depth * L_depth (paper's best: 0.3, table 3); 0 is "
                                 "plain StarGAN.", lower_bound=0.0)
    geometry: str = hparam("depth", "Geometry of the depth network: depth or normals (paper, table 1); must be "
                           "what the pre-trained network predicts.", choices=GEOMETRIES)
    lambda_depth_adv: float = hparam(1.0, "Weight of the depth adversarial loss inside L_depth (eq. 5, 8).")
    lambda_depth_cls: float = hparam(1.0, "Weight of the depth classification loss inside L_depth (eq. 6, 8).")
    lambda_depth_rec: float = hparam(10.0, "Weight of the depth reconstruction loss inside L_depth (eq. 7, 8).")
    lambda_depth_gp: float = hparam(10.0, "Weight of D_depth's WGAN gradient penalty.")
    confidence_beta: float = hparam(0.1, CONFIDENCE_HELP, lower_bound=0.0)
    train_depth_generator: bool = hparam(True, "Train G_depth end to end with G_rgb (the paper: min over "
                                         "{G_rgb, G_depth}); off keeps the pre-trained G_depth fixed.")


@keras.saving.register_keras_serializable(package="legan_tf")
class DepthGuidedStarGAN(StarGAN):
    """StarGAN + the depth network (expression labels only). `depth_generator` (a `DepthGenerator`)
    and `depth_discriminator` come from the pre-training; both are needed when depth_weight > 0."""

    Hyperparameters = DepthGuidedStarGANHyperparameters

    def __init__(self, image_size, label_sizes, global_batch_size, seed=0, quality_model=None, depth_generator=None,
                 depth_discriminator=None, **hyperparameters):
        _check_expression_only("DepthGuidedStarGAN", label_sizes)
        super().__init__(image_size, label_sizes, global_batch_size, seed, quality_model, **hyperparameters)
        hp = self.hp
        self.depth_generator = depth_generator
        self.depth_discriminator = depth_discriminator
        self.depth_active = hp.depth_weight > 0
        if self.depth_active and (depth_generator is None or depth_discriminator is None):
            raise ValueError("DepthGuidedStarGAN: depth_weight > 0 needs the pre-trained depth_generator and "
                             "depth_discriminator.")
        if depth_generator is not None:
            if getattr(depth_generator, "geometry", None) != hp.geometry:
                raise ValueError(f"DepthGuidedStarGAN: geometry is {hp.geometry!r}, but the depth generator predicts "
                                 f"{getattr(depth_generator, 'geometry', None)!r}.")
            if depth_generator.image_size != image_size:
                raise ValueError(f"DepthGuidedStarGAN: the depth generator is built for {depth_generator.image_size} px, "
                                 f"the model for {image_size} px.")
            depth_generator.trainable = self.depth_active and hp.train_depth_generator
        if depth_discriminator is not None:
            heads = dict(depth_discriminator.head_classes or {})
            if heads != {EXPRESSION: label_sizes[EXPRESSION]}:
                raise ValueError(f"DepthGuidedStarGAN: the depth discriminator classifies {heads}, the data has "
                                 f"{label_sizes[EXPRESSION]} expressions.")
            if depth_discriminator.input_channels != geometry_channels(hp.geometry):
                raise ValueError(f"DepthGuidedStarGAN: the depth discriminator takes {depth_discriminator.input_channels}"
                                 f"-channel maps, {hp.geometry} has {geometry_channels(hp.geometry)}.")

    def extra_discriminators(self):
        return {"depth_discriminator": self.depth_discriminator} if self.depth_active else {}

    def generator_variables(self):
        variables = super().generator_variables()
        if self.depth_active and self.hp.train_depth_generator:
            variables += self.depth_generator.trainable_variables
        return variables

    def networks(self):
        items = super().networks()
        if self.depth_generator is not None:
            items["depth_generator"] = self.depth_generator
        return items

    def build_networks(self):
        super().build_networks()
        if self.depth_generator is not None:
            self.depth_generator(ops.zeros((1, self.image_size, self.image_size, 3)))
        if self.depth_discriminator is not None:
            channels = geometry_channels(self.hp.geometry)
            self.depth_discriminator(ops.zeros((1, self.image_size, self.image_size, channels)))

    def _depth_weights(self, names):
        hp = self.hp
        lambdas = {"adversarial": hp.lambda_depth_adv, "gradient_penalty": hp.lambda_depth_gp,
                   "classification": hp.lambda_depth_cls, "confidence": hp.lambda_depth_cls,
                   "reconstruction": hp.lambda_depth_rec}
        return {f"depth_{name}": hp.depth_weight * lambdas[name] for name in names}

    def discriminator_loss_weights(self):
        weights = super().discriminator_loss_weights()
        if self.depth_active:
            names = ["adversarial", "gradient_penalty", "classification"]
            weights.update(self._depth_weights(names + (["confidence"] if self.hp.confidence_beta > 0 else [])))
        return weights

    def discriminator_losses(self, batch, fakes, step):
        terms = super().discriminator_losses(batch, fakes, step)
        if self.depth_active:
            real = geometry_from_network_depth(batch["depth"], self.hp.geometry)
            fake = ops.stop_gradient(self.depth_generator.to_geometry(fakes, training=False))
            alpha = self.uniform_per_example(DEPTH_GRADIENT_PENALTY_ALPHA, step, batch_size(real))
            depth_terms = depth_discriminator_terms(self.depth_discriminator, real, fake,
                                                    self.source_labels(batch)[EXPRESSION], alpha,
                                                    self.hp.confidence_beta)
            terms.update({f"depth_{name}": value for name, value in depth_terms.items()})
        return terms

    def generator_loss_weights(self):
        weights = super().generator_loss_weights()
        if self.depth_active:
            weights.update(self._depth_weights(["adversarial", "classification", "reconstruction"]))
        return weights

    def generator_losses(self, batch, fakes, reconstructed, targets, step):
        terms = super().generator_losses(batch, fakes, reconstructed, targets, step)
        if self.depth_active:
            geometry = self.depth_generator.to_geometry(fakes, training=True)
            reconstructed_rgb = self.depth_generator.to_rgb(geometry, training=True)
            depth_terms = depth_generator_terms(self.depth_discriminator, fakes, geometry, reconstructed_rgb,
                                                targets[EXPRESSION])
            terms.update({f"depth_{name}": value for name, value in depth_terms.items()})
        return terms
