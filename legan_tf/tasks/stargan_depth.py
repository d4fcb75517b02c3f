"""Recipe: StarGAN with 3D dense geometry guidance (Bodur et al., WACV 2021), trained end to end.

`--task=stargan_depth` on RGB-depth pairs (`--data_format=rgbd`): StarGAN's recipe with the model
`legan_tf.gan.depth.DepthGuidedStarGAN`, which adds w_depth * L_depth from the depth network that
`--task=depth_pretrain` trained; this module loads that network from its run directory
(`--stargan_depth_pretrained_run`) and adds the predicted geometry to the held-out metrics, the
sample grid and the exported files.
"""

import dataclasses
import json
import os
import zipfile

import keras
import numpy as np
from keras import ops

from legan_tf import visualize
from legan_tf.errors import ConfigError
from legan_tf.gan.depth import EXPRESSION, DepthGuidedStarGAN, DepthGuidedStarGANHyperparameters
from legan_tf.geometry import geometry_from_network_depth, geometry_to_rgb
from legan_tf.hparams import hparam
from legan_tf.labels import one_hot_labels
from legan_tf.runs import RunDir, model_file
from legan_tf.tasks import register
from legan_tf.tasks.depth_pretrain import require_depth_data
from legan_tf.tasks.stargan import StarGANTask, TrainingHyperparameters

# The pre-trained depth network a --task=depth_pretrain run exports, by role in its run directory.
DEPTH_ROLES = ("depth_generator", "depth_discriminator")


@dataclasses.dataclass(frozen=True)
class StarGANDepthRecipe(DepthGuidedStarGANHyperparameters, TrainingHyperparameters):
    """The end-to-end recipe's flags: StarGAN's, the depth guidance's, and where the depth network comes from."""

    pretrained_run: str = hparam("", "Run directory of a --task=depth_pretrain run: its depth_generator.keras and "
                                 "depth_discriminator.keras start the depth network (needed when depth_weight > 0).")


def _saved_config(path: str) -> dict:
    """The constructor arguments stored in a .keras file, read without building the network."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))["config"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ConfigError(f"{path}: not a readable .keras file ({error}).") from None


@register
class StarGANDepthTask(StarGANTask):
    name = "stargan_depth"
    Hyperparameters = StarGANDepthRecipe
    model_class = DepthGuidedStarGAN
    translation_check = "expression_edit"

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 data_features=(), **hyperparameters):
        label_names = require_depth_data(self.name, label_names, data_features)
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        hp, prefix = self.hp, self.prefix()
        if hp.depth_weight > 0 and not hp.pretrained_run:
            raise ConfigError(f"--{prefix}depth_weight={hp.depth_weight:g} needs the pre-trained depth network: give "
                              f"--{prefix}pretrained_run=runs/<a --task=depth_pretrain run> (configs/paper/"
                              f"depth_pretrain.flags), or set --{prefix}depth_weight=0 for plain StarGAN.")
        self.depth_files = {}
        if hp.pretrained_run:
            pretrained = RunDir(hp.pretrained_run)
            self.depth_files = {role: pretrained.model_path(role) for role in DEPTH_ROLES}
            for role, path in self.depth_files.items():
                if not os.path.isfile(path):
                    raise ConfigError(f"--{prefix}pretrained_run={hp.pretrained_run}: no {model_file(role)} there (a "
                                      "--task=depth_pretrain run writes it when it finishes).")
            self._check_pretrained(_saved_config(self.depth_files["depth_generator"]),
                                   _saved_config(self.depth_files["depth_discriminator"]))

    def _check_pretrained(self, generator_config, discriminator_config):
        hp, prefix = self.hp, self.prefix()
        where = f"--{prefix}pretrained_run={hp.pretrained_run}"
        if generator_config.get("geometry") != hp.geometry:
            raise ConfigError(f"{where} predicts {generator_config.get('geometry')}, but --{prefix}geometry="
                              f"{hp.geometry}: pre-train with --depth_pretrain_geometry={hp.geometry}.")
        if generator_config.get("image_size") != self.image_size:
            raise ConfigError(f"{where} was trained at {generator_config.get('image_size')} px, but --image_size="
                              f"{self.image_size}.")
        heads = discriminator_config.get("head_classes") or {}
        if heads != {EXPRESSION: self.label_sizes[EXPRESSION]}:
            raise ConfigError(f"{where}: its D_depth classifies {heads}, the data has "
                              f"{self.label_sizes[EXPRESSION]} expressions.")

    def pretrained_models(self):
        models = super().pretrained_models()
        # Loaded inside the strategy's scope (build() runs there): these networks keep training.
        for role in DEPTH_ROLES:
            models[role] = keras.models.load_model(self.depth_files[role]) if self.depth_files else None
        return models

    def evaluate(self, dataset):
        """StarGAN's held-out figures, plus the depth network's error on the real faces' geometry
        (it trains on with the GAN: a rising error means G_depth drifts from what it learned)."""
        metrics = super().evaluate(dataset)
        depth_generator = self.model.depth_generator
        if depth_generator is None:
            return metrics
        total, count = 0.0, 0
        for batch in dataset:
            truth = geometry_from_network_depth(batch["depth"], self.hp.geometry)
            # float32 under mixed precision
            predicted = ops.cast(depth_generator.to_geometry(batch["image"], training=False), "float32")
            total += float(ops.sum(ops.mean(ops.abs(truth - predicted), axis=[1, 2, 3])))
            count += int(batch["image"].shape[0])
        metrics["eval/depth_network_l1"] = total / count
        return metrics

    def sample_grid(self, batch, max_columns=8):
        """Rows: held-out faces. Columns: the face and its predicted geometry, then per target expression
        (up to `max_columns`, spread over the classes) the translation and the geometry G_depth sees in it."""
        images = batch["image"][:8]
        generator, depth_generator = self.model.sampling_generator, self.model.depth_generator
        size, names = self.label_sizes[EXPRESSION], self.label_names[EXPRESSION]

        def geometry(pictures):
            return ops.convert_to_numpy(geometry_to_rgb(depth_generator.to_geometry(pictures, training=False)))

        columns, titles = [ops.convert_to_numpy(images)], ["input"]
        if depth_generator is not None:
            columns.append(geometry(images))
            titles.append(self.hp.geometry)
        for value in np.unique(np.linspace(0, size - 1, min(size, max_columns)).round().astype(int)):
            targets = {EXPRESSION: ops.full(ops.shape(batch[EXPRESSION][:8]), int(value), dtype="int32")}
            translated = generator((images, one_hot_labels(targets, self.label_sizes)), training=False)
            columns.append(ops.convert_to_numpy(translated))
            titles.append(names[value][:8])
            if depth_generator is not None:
                columns.append(geometry(translated))
                titles.append("  " + self.hp.geometry[:5])
        return visualize.titled_mosaic([visualize.to_uint8(column) for column in columns], titles)

    def exported_networks(self):
        networks = super().exported_networks()
        if self.model.depth_generator is not None:
            networks["depth_generator"] = self.model.depth_generator
        if self.model.depth_discriminator is not None:
            networks["depth_discriminator"] = self.model.depth_discriminator
        return networks
