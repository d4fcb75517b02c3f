"""Recipe: LEGAN (Banerjee et al. 2021), joint control of directional lighting and facial expression.

The StarGAN recipe with LEGAN's model (`legan_tf.gan.legan`): the tri-hourglass generator, shuffled
targets, and two frozen judges loaded here from files: the identity network f for L_id and the
quality model Q for L_qual.
"""

import dataclasses

from keras import ops

from legan_tf.errors import ConfigError
from legan_tf.gan.legan import ATTRIBUTES, LEGAN, LEGANHyperparameters
from legan_tf.hparams import hparam
from legan_tf.labels import one_hot_labels
from legan_tf.models import lightcnn
from legan_tf.runs import load_attribute_classifier, load_label_generator
from legan_tf.tasks import register
from legan_tf.tasks.base import InitGeneratorHyperparameters
from legan_tf.tasks.stargan import StarGANTask, TrainingHyperparameters


@dataclasses.dataclass(frozen=True)
class LEGANRecipe(LEGANHyperparameters, TrainingHyperparameters, InitGeneratorHyperparameters):
    """The LEGAN recipe's flags: the model's hyperparameters, how it trains, and where f comes from."""

    identity_weights: str = hparam("", "LightCNN-29 v2 weights converted to .npz by tools/convert_lightcnn.py: the "
                                   "paper's identity network f for L_id (128 px grey input).")
    identity_model: str = hparam("", "Instead of --legan_identity_weights: an identity embedding trained by this "
                                 "project (identity_model.keras of a --flagfile=configs/lab/identity.flags run).")
    expression_teacher: str = hparam("", "A trained expression editor that G's expression-only edits learn toward "
                                     "(--legan_teacher_pixel_weight, --legan_teacher_feature_weight): "
                                     "pretrained:<name>, a StarGAN run directory or a generator .keras file with "
                                     "its labels.json; its expression names must cover the data's. Not in the "
                                     "paper.")
    teacher_feature_classifier: str = hparam("", "The frozen attribute classifier (.keras of a "
                                             "configs/*/classifier*.flags run) whose stage feature maps "
                                             "--legan_teacher_feature_weight compares.")


@register
class LEGANTask(StarGANTask):
    name = "legan"
    Hyperparameters = LEGANRecipe
    model_class = LEGAN
    sample_attribute_order = ("lighting", "expression")
    translation_check = "legan"  # adds the disentanglement targets

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 data_features=("image",), **hyperparameters):
        missing = [name for name in ATTRIBUTES if name not in label_names]
        if missing:
            raise ConfigError(f"LEGAN needs expression and lighting labels; the dataset has no {' or '.join(missing)} "
                              f"labels (a Multi-PIE-style manifest with --num_lightings or --lighting_names has both).")
        label_names = {name: label_names[name] for name in ATTRIBUTES}
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        hp = self.hp
        if hp.identity_weights and hp.identity_model:
            raise ConfigError("Give one of --legan_identity_weights (LightCNN-29 v2) and --legan_identity_model, "
                              "not both.")
        if hp.lambda_id > 0 and not (hp.identity_weights or hp.identity_model):
            raise ConfigError(f"--legan_lambda_id={hp.lambda_id:g} needs an identity network: give "
                              "--legan_identity_weights=path/lightcnn29v2.npz (LightCNN-29 v2, converted with "
                              "tools/convert_lightcnn.py) or --legan_identity_model=path/identity_model.keras "
                              "(train one with configs/lab/identity.flags), or set --legan_lambda_id=0.")
        for flag in ("identity_weights", "identity_model", "teacher_feature_classifier"):
            self.check_file(f"--legan_{flag}", getattr(hp, flag))
        teaching = hp.teacher_pixel_weight > 0 or hp.teacher_feature_weight > 0
        if teaching and not hp.expression_teacher:
            raise ConfigError("--legan_teacher_pixel_weight and --legan_teacher_feature_weight need a teacher: give "
                              "--legan_expression_teacher=pretrained:<name> (or a StarGAN run directory), or set "
                              "both weights to 0.")
        if hp.expression_teacher and not teaching:
            raise ConfigError("--legan_expression_teacher is read only with --legan_teacher_pixel_weight or "
                              "--legan_teacher_feature_weight above 0.")
        if (hp.teacher_feature_weight > 0) != bool(hp.teacher_feature_classifier):
            raise ConfigError("--legan_teacher_feature_weight above 0 and --legan_teacher_feature_classifier go "
                              "together: give both or neither.")
        for flag in ("paired_lighting_weight", "teacher_joint_share"):
            # Both read each face's relit copies, which only a subject per face names.
            if getattr(hp, flag) > 0 and "identity" not in data_features:
                raise ConfigError(f"--legan_{flag}={getattr(hp, flag):g} needs data that names each face's subject "
                                  "(the relit layout's subject column, written by scripts/relight_faces.py and "
                                  "prepare_data.py --data_format=multipie), so that its copies under other lights "
                                  "are known; this data has none.")
        if hp.supervised_warmup_learning_rate and not hp.supervised_warmup_steps:
            raise ConfigError(f"--legan_supervised_warmup_learning_rate={hp.supervised_warmup_learning_rate:g} is G's "
                              "learning rate during the supervised warm-up, and there is none: set "
                              "--legan_supervised_warmup_steps above 0.")
        if hp.teacher_change_focus and not hp.teacher_pixel_weight:
            raise ConfigError(f"--legan_teacher_change_focus={hp.teacher_change_focus:g} weights the teacher's pixel "
                              "term, which is off: set --legan_teacher_pixel_weight above 0.")
        if hp.paired_lighting_focus and not hp.paired_lighting_weight:
            raise ConfigError(f"--legan_paired_lighting_focus={hp.paired_lighting_focus:g} weights the relit copies' "
                              "term, which is off: set --legan_paired_lighting_weight above 0.")
        if hp.teacher_joint_share > 0 and not teaching:
            raise ConfigError(f"--legan_teacher_joint_share={hp.teacher_joint_share:g} shares out the teacher's "
                              "edits, and there is no teacher term: set --legan_teacher_pixel_weight or "
                              "--legan_teacher_feature_weight above 0.")
        if hp.supervised_warmup_steps:
            if not (teaching or hp.paired_lighting_weight > 0):
                raise ConfigError(f"--legan_supervised_warmup_steps={hp.supervised_warmup_steps} trains G on the "
                                  "supervised terms alone, and none is on: set --legan_teacher_pixel_weight, "
                                  "--legan_teacher_feature_weight or --legan_paired_lighting_weight above 0.")
            if hp.supervised_warmup_steps >= train_steps:
                raise ConfigError(f"--legan_supervised_warmup_steps={hp.supervised_warmup_steps} leaves no adversarial "
                                  f"step of --train_steps={train_steps}: give fewer warm-up steps.")
        if hp.expression_teacher:
            # Checked here, before any run directory or training step: a teacher that does not fit is a one-line
            # error. build() loads it again inside the strategy's scope, as it does every frozen network.
            self._load_teacher()

    def _load_identity_model(self):
        path = self.hp.identity_weights or self.hp.identity_model
        return lightcnn.load_identity_embedder(path) if path else None

    @property
    def needs_lighting_copies(self) -> bool:
        return self.hp.paired_lighting_weight > 0 or self.hp.teacher_joint_share > 0

    def _load_teacher(self):
        """(teacher generator, its label map for the model) checked against the data: the same image size and
        channels, an expression group naming every data expression, and any lighting group naming every
        data lighting."""
        flag, spec = "--legan_expression_teacher", self.hp.expression_teacher
        teacher, names = load_label_generator(spec, flag)
        if teacher.image_size != self.image_size:
            raise ConfigError(f"{flag}={spec}: it edits {teacher.image_size} px faces, but --image_size="
                              f"{self.image_size}.")
        channels = getattr(teacher, "input_channels", 3)
        if channels != 3:
            raise ConfigError(f"{flag}={spec}: it reads {channels}-channel images; LEGAN's faces have 3.")
        if set(names) - set(ATTRIBUTES) or "expression" not in names:
            raise ConfigError(f"{flag}={spec}: its labels ({', '.join(names) or 'none'}) are not an expression group "
                              "(and optionally a lighting group).")
        offsets, start = {}, 0
        for group, group_names in names.items():
            missing = [name for name in self.label_names[group] if name not in group_names]
            if missing:
                raise ConfigError(f"{flag}={spec}: its {group} labels ({', '.join(group_names)}) lack "
                                  f"{', '.join(missing)} of the data's.")
            offsets[group] = tuple(start + group_names.index(name) for name in self.label_names[group])
            start += len(group_names)
        if start != teacher.num_labels:
            raise ConfigError(f"{flag}={spec}: its labels.json names {start} labels, the generator reads "
                              f"{teacher.num_labels}.")
        return teacher, {"size": start, "expression": offsets["expression"], "lighting": offsets.get("lighting")}

    def _load_teacher_features(self):
        path = self.hp.teacher_feature_classifier
        if not path:
            return None
        model, _ = load_attribute_classifier(path, "--legan_teacher_feature_classifier",
                                             " (train one with configs/*/classifier*.flags)")
        return model

    def pretrained_models(self):
        teacher, labels = self._load_teacher() if self.hp.expression_teacher else (None, None)
        return {**super().pretrained_models(), "identity_model": self._load_identity_model(),
                "expression_teacher": teacher, "teacher_labels": labels,
                "teacher_features": self._load_teacher_features()}

    def extra_sample_columns(self, images, source):
        """The two masks for one joint target per row (the next expression and the light half-way
        round): they show which hourglass changed what."""
        targets = {name: (ops.cast(source[name], "int32") + max(1, size // 2 if name == "lighting" else 1)) % size
                   for name, size in self.label_sizes.items()}
        translated, expression_mask, lighting_mask = self.model.sampling_generator.translate_with_masks(
            (images, one_hot_labels(targets, self.label_sizes)))
        return [("joint edit", ops.convert_to_numpy(translated)), ("mask M_e", ops.convert_to_numpy(expression_mask)),
                ("mask M_l", ops.convert_to_numpy(lighting_mask))]
