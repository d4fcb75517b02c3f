"""Recipe: pre-training the depth network of Bodur et al. (WACV 2021) on RGB-depth pairs.

`--task=depth_pretrain` on `--data_format=rgbd` (AffectNet-D / RaFD-D layout, the face lab's rgbd
part, or `scripts/make_depth.py` output). The model is `legan_tf.gan.depth.DepthNetworkGAN`; this
module loads the perceptual loss's feature network, measures the held-out depth error and draws
the sample grid. The end-to-end recipe (`--task=stargan_depth`) loads the two networks it exports,
`depth_generator.keras` and `depth_discriminator.keras`, from the run directory.
"""

import dataclasses

import numpy as np
from keras import ops

from legan_tf import visualize
from legan_tf.errors import ConfigError
from legan_tf.gan.depth import EXPRESSION, DepthNetworkGAN, DepthNetworkHyperparameters
from legan_tf.geometry import depth_from_network, geometry_channels, geometry_from_network_depth, geometry_to_rgb
from legan_tf.hparams import hparam
from legan_tf.losses import l2_normalize
from legan_tf.tasks import base, register

PERCEPTUAL_NETS = "none, vgg19, or the path of a .keras feature network"


@dataclasses.dataclass(frozen=True)
class DepthPretrainRecipe(DepthNetworkHyperparameters, base.GANTrainingHyperparameters):
    """The depth network's pre-training flags: the model's hyperparameters, how it trains, and its feature network."""

    perceptual_net: str = hparam("vgg19", f"Feature network of the perceptual loss (eq. 10): {PERCEPTUAL_NETS} "
                                 "(its outputs are the features). The paper: vgg19.")
    perceptual_weights: str = hparam("imagenet", "VGG19 weights for --depth_pretrain_perceptual_net=vgg19: "
                                     "imagenet (downloaded by Keras where the machine can) or a local weights file "
                                     "(vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5).")


def require_depth_data(task_name: str, label_names, data_features) -> dict:
    """The expression labels of RGB-depth data, or a ConfigError saying what the recipe needs."""
    if EXPRESSION not in label_names or (data_features and "depth" not in data_features):
        raise ConfigError(f"--task={task_name} trains on RGB-depth pairs with expression labels: use "
                          "--data_format=rgbd (CSV image,depth,expression; docs/data_formats.md), or TFRecord "
                          "shards written from such a manifest.")
    return {EXPRESSION: label_names[EXPRESSION]}


@register
class DepthPretrainTask(base.GANTask):
    name = "depth_pretrain"
    Hyperparameters = DepthPretrainRecipe
    model_class = DepthNetworkGAN

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 data_features=(), **hyperparameters):
        label_names = require_depth_data(self.name, label_names, data_features)
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        # Loaded here, before the run directory exists: a missing weights file stops the run at start-up.
        self.feature_network = self._load_feature_network()

    def _load_feature_network(self):
        hp, prefix = self.hp, self.prefix()
        if hp.perceptual_net == "none" or hp.lambda_per == 0:
            return None
        from legan_tf.models.perceptual import build_feature_network

        return build_feature_network(hp.perceptual_net, hp.perceptual_weights, self.image_size,
                                     geometry_channels(hp.geometry),
                                     flag_names=(f"--{prefix}perceptual_net", f"--{prefix}perceptual_weights"))

    def pretrained_models(self):
        return {"feature_network": self.feature_network}

    def evaluate(self, dataset):
        """Held-out error of the predicted geometry (depth in [0, 1] units; normals in degrees), the
        RGB -> geometry -> RGB cycle, and D_depth's expression accuracy on the true maps."""
        model, geometry = self.model, self.hp.geometry
        generator = model.sampling_generator
        sums, face_pixels, pixels, count, correct = {}, 0.0, 0.0, 0, 0

        def add(name, value):
            sums[name] = sums.get(name, 0.0) + float(value)

        for batch in dataset:
            truth = geometry_from_network_depth(batch["depth"], geometry)
            # Under --mixed_precision the network answers in bfloat16 / float16; the figures are float32.
            predicted = ops.cast(generator.to_geometry(batch["image"], training=False), "float32")
            depth = depth_from_network(batch["depth"])  # [0, 1], 0 on the background
            face = ops.cast(depth > 0, "float32")
            add("geometry_l1", ops.sum(ops.mean(ops.abs(truth - predicted), axis=[1, 2, 3])))
            rebuilt = ops.cast(generator.to_rgb(predicted), "float32")
            add("cycle_l1", ops.sum(ops.mean(ops.abs(batch["image"] - rebuilt), axis=[1, 2, 3])))
            if geometry == "depth":
                error = ops.abs(depth_from_network(predicted) - depth)
                add("depth_mae", ops.sum(error))
                add("depth_mae_face", ops.sum(error * face))
            else:
                cosine = ops.clip(ops.sum(l2_normalize(predicted, -1) * truth, -1), -1.0, 1.0)
                add("normal_angle_deg", ops.sum(ops.arccos(cosine) * 180.0 / np.pi * face[..., 0]))
            face_pixels += float(ops.sum(face))
            pixels += float(np.prod(face.shape))
            _, logits = model.discriminator(truth, training=False)
            predicted_class = np.argmax(ops.convert_to_numpy(logits[EXPRESSION]), -1)
            correct += int(np.sum(predicted_class == np.asarray(batch[EXPRESSION])))
            count += int(batch["image"].shape[0])
        metrics = {"eval/geometry_l1": sums["geometry_l1"] / count, "eval/cycle_l1": sums["cycle_l1"] / count,
                   "eval/d_accuracy/expression": correct / count}
        if geometry == "depth":
            metrics["eval/depth_mae"] = sums["depth_mae"] / pixels
            metrics["eval/depth_mae_face"] = sums["depth_mae_face"] / max(face_pixels, 1.0)
        else:
            metrics["eval/normal_angle_deg"] = sums["normal_angle_deg"] / max(face_pixels, 1.0)
        return metrics

    def sample_grid(self, batch):
        """Rows: held-out faces. Columns: the face, its true geometry, G_depth's, and G'_depth back to RGB."""
        images = batch["image"][:8]
        generator = self.model.sampling_generator
        truth = geometry_from_network_depth(batch["depth"][:8], self.hp.geometry)
        predicted = generator.to_geometry(images, training=False)
        columns = [images, geometry_to_rgb(truth), geometry_to_rgb(predicted), generator.to_rgb(predicted)]
        titles = ["input", f"true {self.hp.geometry}", "G_depth", "G'_depth back"]
        return visualize.titled_mosaic([visualize.to_uint8(ops.convert_to_numpy(column)) for column in columns], titles)

    def exported_networks(self):
        return {"depth_generator": self.model.sampling_generator, "depth_discriminator": self.model.discriminator}
