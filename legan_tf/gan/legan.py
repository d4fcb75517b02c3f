"""LEGAN (Banerjee et al. 2021): StarGAN's updates with LEGAN's generator, targets and identity loss.

The paper's recipe: the tri-hourglass generator, a discriminator with a lighting and an expression
head, targets shuffled within the batch per attribute, and two frozen judges in the generator's
loss: an identity network f for L_id = 1 - cos(f(I), f(G(I, c_trg))), and the quality model Q for
L_qual on the translation and the cycle reconstruction (StarGAN's term, on by default here).

Two supervised terms that the paper does not have, off by default (`supervised_losses`):
- an expression teacher T, a trained expression editor (a StarGAN generator): for an expression-only
  edit of each training face to a random other expression, G(x, e, l_x) learns toward T(x, e), as a
  pixel L1 and as the L1 of a frozen classifier's feature maps. With a joint share, some of those
  edits also ask for the light of the face's relit copy, and learn toward T(copy, e), the teacher's
  expression edit of the relit face: a target for both changes at once;
- the face's own relit copy: where the data holds the training face under another light l (the relit
  layout), the lighting-only edit G(x, e_x, l) learns toward that copy (pixel L1); a face with no copy
  adds 0.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from legan_tf import backend, losses
from legan_tf.data import lighting_copies
from legan_tf.errors import ConfigError
from legan_tf.gan.stargan import StarGAN, StarGANHyperparameters
from legan_tf.hparams import hparam
from legan_tf.models.legan import LEGANGenerator
from legan_tf.gan.base import batch_size
from legan_tf.random_streams import Stream

ATTRIBUTES = ("expression", "lighting")
TARGET_SAMPLINGS = ("shuffle", "random")
SHUFFLE_STREAMS = {name: Stream(f"legan/shuffle/{name}") for name in ATTRIBUTES}
TEACHER_TARGET_STREAM = Stream("legan/teacher/expression")
TEACHER_JOINT_STREAM = Stream("legan/teacher/joint")
SUPERVISED_TERMS = ("teacher_pixel", "teacher_feature", "paired_lighting")


@dataclasses.dataclass(frozen=True)
class LEGANHyperparameters(StarGANHyperparameters):
    g_filters: int = hparam(64, "Base filters of each of LEGAN's hourglasses (paper: 64).", lower_bound=1)
    g_residual_blocks: int = hparam(6, "Residual blocks of each hourglass (paper: 6).", lower_bound=0)
    lambda_qual: float = hparam(1.0, "Weight of L_qual from a frozen Q on the translation and the cycle "
                                "reconstruction (LEGAN: 1; 0 turns it off).")
    lambda_id: float = hparam(1.0, "Weight of L_id = 1 - cos(f(I), f(G(I, c_trg))) (LEGAN: 1; 0 turns it off).")
    g_lighting: str = hparam("mask", "LEGAN's lighting mask: mask (the paper: an input of the final hourglass) or "
                             "ratio (needs --g_output=attention: the mask is also a smooth shading ratio that "
                             "multiplies the photo, and the attention composite copies from the shaded photo, as "
                             "relit training faces are made; not in the paper).",
                             choices=LEGANGenerator.LIGHTING_OUTPUTS)
    g_expression: str = hparam("mask", "LEGAN's expression mask: mask (the paper: an input of the final hourglass) "
                               "or warp (needs --g_output=attention: two of its channels are also a smooth "
                               "displacement field of at most 1/10 of the face, the photo is resampled along it "
                               "and the attention composite copies from the moved photo; not in the paper).",
                               choices=LEGANGenerator.EXPRESSION_OUTPUTS)
    warp_grid: int = hparam(16, "With --g_expression=warp: the field is averaged over warp_grid x warp_grid cells and "
                            "resized back bilinearly (a divisor of the image size; fewer cells, a smoother field).",
                            lower_bound=1)
    max_shift: float = hparam(0.1, "With --g_expression=warp: the largest move along each axis, as a fraction of the "
                              "image side. The moved photo cannot fold over itself when max_shift x warp_grid < "
                              "0.25 (the field's slope is at most 2 x max_shift x warp_grid, so the Jacobian of the "
                              "move is at least 1 - 4 x max_shift x warp_grid), e.g. 0.06 with a grid of 4.",
                              lower_bound=0.0, upper_bound=0.5)
    teacher_pixel_weight: float = hparam(0.0, "Weight of the pixel L1 between G's expression-only edit of a training "
                                         "face and the expression teacher's edit of it to the same expression "
                                         "(--expression_teacher); 0 turns it off. Not in the paper.", lower_bound=0.0)
    teacher_feature_weight: float = hparam(0.0, "Weight of the L1 between the feature maps of a frozen classifier "
                                           "(--teacher_feature_classifier) of G's expression-only edit and of the "
                                           "teacher's; 0 turns it off. Not in the paper.", lower_bound=0.0)
    paired_lighting_weight: float = hparam(0.0, "Weight of the pixel L1 between G's lighting-only edit of a training "
                                           "face and the data's own copy of that face under the target light "
                                           "(relit data: each subject under several lights); a face with no copy "
                                           "adds 0; 0 turns it off. Not in the paper.", lower_bound=0.0)
    supervised_warmup_steps: int = hparam(0, "Train G on the supervised terms alone (the teacher's and the relit "
                                          "copies' weights) for the first N steps, one G update per step with no "
                                          "D step, before the adversarial recipe starts; 0: no warm-up. Not in "
                                          "the paper.", lower_bound=0)
    supervised_warmup_learning_rate: float = hparam(0.0, "G's learning rate during the supervised warm-up; 0 means "
                                                    "G's learning rate. Not in the paper.", lower_bound=0.0)
    teacher_change_focus: float = hparam(0.0, "Weights the teacher's pixel L1 toward the pixels the teacher changes: "
                                         "each pixel counts 1 + focus x (the teacher's change there, |T(x) - x|, "
                                         "over its mean on that face), the sum divided by the weights' sum; 0 is "
                                         "the plain L1. The teacher's expression edit moves a few percent of the "
                                         "pixels, so the plain L1 is mostly the pixels that must stay. Not in the "
                                         "paper.", lower_bound=0.0)
    paired_lighting_focus: float = hparam(0.0, "Weights the relit copies' pixel L1 toward the pixels the relighting "
                                          "changes, as --teacher_change_focus does the teacher's: each pixel counts "
                                          "1 + focus x |copy - face| over its mean on that face; 0 is the plain L1. "
                                          "A change of light moves most pixels a little and the side it turns "
                                          "toward or away from a lot, so the plain L1 is mostly pixels that "
                                          "barely move. Not in the paper.",
                                          lower_bound=0.0)
    teacher_joint_share: float = hparam(0.0, "The share of the teacher's edits made jointly: the teacher edits the "
                                        "face's relit copy (the paired data's) to the expression, and G's edit of "
                                        "the face asks for the expression and the copy's light, so a change of "
                                        "light and of expression together has a target; a face with no copy gets "
                                        "the expression-only edit. 0: every teacher edit is expression-only. Not "
                                        "in the paper.", lower_bound=0.0, upper_bound=1.0)
    target_sampling: str = hparam("shuffle", "Target labels: shuffle each attribute's labels within the global "
                                  "batch (LEGAN), or draw a random class different from the source per example "
                                  "(the project's StarGAN).", choices=TARGET_SAMPLINGS)


@keras.saving.register_keras_serializable(package="legan_tf")
class LEGAN(StarGAN):
    """`label_sizes` must be {"expression": N_e, "lighting": N_l} in that order: the generator reads its
    label vector expression first. `identity_model`: the frozen f for L_id."""

    Hyperparameters = LEGANHyperparameters
    # g_lighting="ratio" shades the photo that the attention composite copies from.
    # g_expression="warp" moves the photo it copies from.
    ATTENTION_OPTIONS = StarGAN.ATTENTION_OPTIONS + (("g_lighting", "mask"), ("g_expression", "mask"))

    def __init__(self, image_size, label_sizes, global_batch_size, seed=0, quality_model=None, identity_model=None,
                 attribute_classifier=None, expression_teacher=None, teacher_labels=None, teacher_features=None,
                 **hyperparameters):
        if tuple(label_sizes) != ATTRIBUTES:
            raise ValueError(f"LEGAN: label_sizes must name {ATTRIBUTES} in that order, got {tuple(label_sizes)}.")
        if hyperparameters.get("target_sampling", "shuffle") not in TARGET_SAMPLINGS:
            raise ValueError(f"LEGAN: target_sampling must be one of {TARGET_SAMPLINGS}, "
                             f"got {hyperparameters['target_sampling']!r}.")
        super().__init__(image_size, label_sizes, global_batch_size, seed, quality_model, attribute_classifier,
                         **hyperparameters)
        self.identity_model = identity_model
        if identity_model is not None:
            identity_model.trainable = False
        # The teacher reads a label vector of its own: `teacher_labels` = {"size": its length, "expression": the
        # teacher's index for each of G's expression ids, "lighting": the same for G's lightings, or None}.
        self.expression_teacher, self.teacher_labels, self.teacher_features = (expression_teacher, teacher_labels,
                                                                               teacher_features)
        for frozen in (expression_teacher, teacher_features):
            if frozen is not None:
                frozen.trainable = False
        teaching = self.hp.teacher_pixel_weight > 0 or self.hp.teacher_feature_weight > 0
        if teaching and (expression_teacher is None or not teacher_labels):
            raise ValueError("LEGAN: teacher_pixel_weight and teacher_feature_weight need an expression_teacher and "
                             "its teacher_labels.")
        if self.hp.teacher_feature_weight > 0 and teacher_features is None:
            raise ValueError("LEGAN: teacher_feature_weight needs teacher_features (a frozen attribute classifier).")
        if self.hp.supervised_warmup_steps > 0 and not self.supervised_loss_weights():
            raise ValueError("LEGAN: supervised_warmup_steps needs a supervised term (teacher_pixel_weight, "
                             "teacher_feature_weight or paired_lighting_weight above 0).")

    def make_generator(self, name):
        # --legan_g_output=attention: the final hourglass outputs a colour map and a mask over the input
        # (LEGANGenerator's output_mode), so what neither attribute needs is copied from the photo.
        return LEGANGenerator(self.image_size, self.label_sizes["expression"], self.label_sizes["lighting"],
                              self.hp.g_filters, num_residual_blocks=self.hp.g_residual_blocks,
                              upsampling=self.hp.g_upsampling, output_mode=self.hp.g_output,
                              grey_colour=self.hp.g_colour == "grey", lighting_output=self.hp.g_lighting,
                              expression_output=self.hp.g_expression, warp_grid=self.hp.warp_grid,
                              max_shift=self.hp.max_shift, name=name)

    def check_hyperparameters(self):
        super().check_hyperparameters()
        defaults = {field.name: field.default for field in dataclasses.fields(LEGANHyperparameters)}
        if self.hp.g_expression != "warp":
            for name in ("warp_grid", "max_shift"):
                if getattr(self.hp, name) != defaults[name]:
                    raise ConfigError(f"{name}={getattr(self.hp, name)!r} is an option of the warp; it needs "
                                      f"g_expression='warp' (got {self.hp.g_expression!r}).")
        elif self.image_size % self.hp.warp_grid:
            raise ConfigError(f"warp_grid={self.hp.warp_grid} must divide the image size {self.image_size}.")
        elif self.hp.max_shift <= 0.0:
            raise ConfigError(f"max_shift={self.hp.max_shift!r} must be above 0.")

    def translate_with_parts(self, images, targets):
        if not self.attention:
            return super().translate_with_parts(images, targets)
        output, _, mask = self.generator.attention_edit((images, self.one_hot(targets)), training=True)
        return output, {"mask": mask}

    def random_targets(self, batch, step):
        """LEGAN's targets: each attribute's labels permuted within the global batch, independently.

        The permutation is drawn for the labels of the whole global batch (gathered from every
        replica), so it does not depend on the replica layout. Unlike the "random" sampling, a
        shuffled target may equal the source class.
        """
        if self.hp.target_sampling == "random":
            return super().random_targets(batch, step)
        count = batch_size(batch["image"])
        targets = {}
        for name in self.label_sizes:
            everyone = backend.all_gather(ops.cast(batch[name], "int32"))
            draws = SHUFFLE_STREAMS[name].uniform(ops.shape(everyone), self.seed, step)
            order = ops.argsort(draws)
            if backend.num_replicas() > 1:
                order = ops.take(order, backend.replica_index() * count + ops.arange(count))
            targets[name] = ops.take(everyone, order)
        return targets

    def generator_loss_weights(self):
        weights = super().generator_loss_weights()
        if self.identity_model is not None and self.hp.lambda_id > 0:
            weights["identity"] = self.hp.lambda_id
        return {**weights, **self.supervised_loss_weights()}

    def supervised_loss_weights(self):
        return {name: getattr(self.hp, f"{name}_weight") for name in SUPERVISED_TERMS
                if getattr(self.hp, f"{name}_weight") > 0}

    def warmup_learning_rate(self):
        return self.hp.supervised_warmup_learning_rate

    def warmup_steps(self):
        return self.hp.supervised_warmup_steps

    def teacher_label_vector(self, expression, lighting):
        """The teacher's label vector for G's expression ids (and G's lighting ids where it reads lightings)."""
        size, vector = self.teacher_labels["size"], None
        for name, ids in (("expression", expression), ("lighting", lighting)):
            if self.teacher_labels.get(name) is not None:
                slots = ops.take(ops.convert_to_tensor(self.teacher_labels[name], "int32"), ids)
                hot = ops.one_hot(slots, size)
                vector = hot if vector is None else vector + hot
        return vector

    def _teacher_feature_maps(self, images):
        network = self.teacher_features
        size = getattr(network, "image_size", None)
        if size is not None and size != images.shape[1]:
            images = ops.image.resize(images, (size, size), interpolation="bilinear", antialias=True)
        return network.stage_features(images)

    def supervised_losses(self, batch, step):
        """The teacher's terms on an expression-only edit of every face to a random other expression (a joint
        one toward the teacher's edit of the relit copy for a `teacher_joint_share` of them), and the
        paired-lighting term on a lighting-only edit of every face to the light of its copy in the batch."""
        weights, terms = self.generator_loss_weights(), {}
        images, source = batch["image"], self.source_labels(batch)
        if "teacher_pixel" in weights or "teacher_feature" in weights:
            size, count = self.label_sizes["expression"], batch_size(images)
            draw = self.uniform_per_example(TEACHER_TARGET_STREAM, step, count)
            expression = (source["expression"] + 1 + ops.cast(ops.floor(draw * (size - 1)), "int32")) % size
            lighting, base = source["lighting"], images
            if self.hp.teacher_joint_share > 0:
                # Joint edits: the teacher re-expresses the relit copy; G relights and re-expresses the face.
                copy_light = ops.cast(batch[lighting_copies.COPY_LABEL], "int32")
                joint = ops.logical_and(self.uniform_per_example(TEACHER_JOINT_STREAM, step, count)
                                        < self.hp.teacher_joint_share, copy_light >= 0)
                lighting = ops.where(joint, copy_light, lighting)
                base = ops.where(ops.reshape(joint, (-1, 1, 1, 1)), batch[lighting_copies.COPY], images)
            edit = self.translate(images, {"expression": expression, "lighting": lighting}, training=True)
            taught = ops.stop_gradient(self.expression_teacher(
                (base, self.teacher_label_vector(expression, lighting)), training=False))
            if "teacher_pixel" in weights:
                # The focus weighs the teacher's own change (of the copy, for a joint edit), not the relighting.
                terms["teacher_pixel"] = losses.change_weighted_l1_loss(taught, edit, base,
                                                                        self.hp.teacher_change_focus)
            if "teacher_feature" in weights:
                terms["teacher_feature"] = losses.perceptual_loss(self._teacher_feature_maps(taught),
                                                                  self._teacher_feature_maps(edit))
        if "paired_lighting" in weights:
            light = ops.cast(batch[lighting_copies.COPY_LABEL], "int32")
            edit = self.translate(images, {"expression": source["expression"], "lighting": ops.maximum(light, 0)},
                                  training=True)
            copies = batch[lighting_copies.COPY]
            terms["paired_lighting"] = ops.where(
                light >= 0, losses.change_weighted_l1_loss(copies, edit, images, self.hp.paired_lighting_focus), 0.0)
        return terms

    def generator_losses(self, batch, fakes, reconstructed, targets, step):
        terms = super().generator_losses(batch, fakes, reconstructed, targets, step)
        if "identity" in self.generator_loss_weights():
            terms["identity"] = losses.identity_loss(self.identity_model(batch["image"], training=False),
                                                     self.identity_model(fakes, training=False))
        return terms
