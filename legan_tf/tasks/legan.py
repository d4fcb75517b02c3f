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
from legan_tf.tasks import register
from legan_tf.tasks.stargan import StarGANTask, TrainingHyperparameters


@dataclasses.dataclass(frozen=True)
class LEGANRecipe(LEGANHyperparameters, TrainingHyperparameters):
    """The LEGAN recipe's flags: the model's hyperparameters, how it trains, and where f comes from."""

    identity_weights: str = hparam("", "LightCNN-29 v2 weights converted to .npz by tools/convert_lightcnn.py: the "
                                   "paper's identity network f for L_id (128 px grey input).")
    identity_model: str = hparam("", "Instead of --legan_identity_weights: an identity embedding trained by this "
                                 "project (identity_model.keras of a --flagfile=configs/lab/identity.flags run).")


@register
class LEGANTask(StarGANTask):
    name = "legan"
    Hyperparameters = LEGANRecipe
    model_class = LEGAN
    sample_attribute_order = ("lighting", "expression")
    translation_check = "legan"  # adds the disentanglement targets

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 **hyperparameters):
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
        for flag in ("identity_weights", "identity_model"):
            self.check_file(f"--legan_{flag}", getattr(hp, flag))

    def _load_identity_model(self):
        path = self.hp.identity_weights or self.hp.identity_model
        return lightcnn.load_identity_embedder(path) if path else None

    def pretrained_models(self):
        return {**super().pretrained_models(), "identity_model": self._load_identity_model()}

    def extra_sample_columns(self, images, source):
        """The two masks for one joint target per row (the next expression and the light half-way
        round): they show which hourglass changed what."""
        targets = {name: (ops.cast(source[name], "int32") + max(1, size // 2 if name == "lighting" else 1)) % size
                   for name, size in self.label_sizes.items()}
        translated, expression_mask, lighting_mask = self.model.sampling_generator.translate_with_masks(
            (images, one_hot_labels(targets, self.label_sizes)))
        return [("joint edit", ops.convert_to_numpy(translated)), ("mask M_e", ops.convert_to_numpy(expression_mask)),
                ("mask M_l", ops.convert_to_numpy(lighting_mask))]
