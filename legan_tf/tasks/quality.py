"""Recipe: train Q, the perceptual quality model, on naturalness ratings (mean and std of raters)."""

import dataclasses

import keras
import numpy as np
from keras import ops

from legan_tf import backend, losses, optimizers, visualize
from legan_tf.errors import ConfigError
from legan_tf.statistics import quality_metrics
from legan_tf.hparams import hparam
from legan_tf.models.quality import QualityModel
from legan_tf.tasks import base, register


@dataclasses.dataclass(frozen=True)
class QualityHyperparameters:
    base_filters: int = hparam(64, "Filters of Q's first conv (paper: 64), doubled per conv.", lower_bound=1)
    downsamples: int = hparam(6, "Q's 4x4 stride-2 convs (paper: 6); image_size must divide by 2**this.", lower_bound=1)
    dense_units: int = hparam(256, "Q's hidden dense width (paper: 256).", lower_bound=1)
    squared_loss: bool = hparam(False, "Squared-hinge variant of the margin loss instead of L1 outside the band.")


@register
class QualityTask(base.Task):
    name = "quality"
    Hyperparameters = QualityHyperparameters
    default_learning_rate = 1e-4

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 **hyperparameters):
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        hp = self.hp
        self.squared_loss = hp.squared_loss
        self.model_args = dict(image_size=image_size, base_filters=hp.base_filters, num_downsamples=hp.downsamples,
                               dense_units=hp.dense_units)
        try:
            QualityModel(**self.model_args)  # validates the size now
        except ValueError as error:
            raise ConfigError(f"--image_size={image_size}: {error}") from None

    def build(self):
        self.model = QualityModel(**self.model_args, name="quality_model")
        self.model(ops.zeros((1, self.image_size, self.image_size, 3)))
        schedule = keras.optimizers.schedules.PolynomialDecay(self.learning_rate, self.train_steps, 0.0)
        self.optimizer = optimizers.adam(schedule)
        self.optimizer.build(self.model.trainable_variables)

    def checkpoint_items(self):
        return {"quality_model": self.model, "quality_optimizer": self.optimizer}

    def train_step(self, batch):
        def loss_and_metrics():
            # Under --mixed_precision Q answers in bfloat16 / float16; scores and their errors are float32.
            predicted = ops.cast(self.model(batch["image"], training=True), "float32")
            per_example = losses.margin_loss(predicted, batch["mean"], batch["std"], squared=self.squared_loss)
            loss = ops.sum(per_example) / self.global_batch_size
            return loss, {"loss/margin": ops.mean(per_example),
                          "train/mae": ops.mean(ops.abs(ops.reshape(predicted, [-1]) - batch["mean"]))}

        return backend.apply_gradients(self.optimizer, self.model.trainable_variables, loss_and_metrics)

    def evaluate(self, dataset):
        predicted, mean, std = [], [], []
        for batch in dataset:
            predicted.append(ops.convert_to_numpy(self.model(batch["image"], training=False)).reshape(-1)
                             .astype(np.float32))
            mean.append(np.asarray(batch["mean"]))
            std.append(np.asarray(batch["std"]))
        if sum(len(values) for values in predicted) < 2:
            from legan_tf.data import DataError

            raise DataError("the held-out split has fewer than two rated images, and Q's held-out figures "
                            "(Spearman, MAE) need two or more: raise --holdout_fraction or rate more images")
        metrics = quality_metrics(np.concatenate(predicted), np.concatenate(mean), np.concatenate(std))
        return {f"eval/{name}": value for name, value in metrics.items()}

    def sample_grid(self, batch):
        predicted = ops.convert_to_numpy(self.model(batch["image"], training=False)).reshape(-1).astype(np.float32)
        mean, std = np.asarray(batch["mean"]), np.asarray(batch["std"])
        captions = [f"Q {q:.1f}\nm {m:.1f}±{s:.1f}" for q, m, s in zip(predicted, mean, std)]
        colours = ["green" if abs(q - m) <= s + 0.5 else "red" for q, m, s in zip(predicted, mean, std)]
        return visualize.labelled_grid(visualize.to_uint8(batch["image"]), captions, colours)

    def exported_networks(self):
        return {"quality_model": self.model}
