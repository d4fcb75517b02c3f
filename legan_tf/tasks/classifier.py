"""Recipe: train the attribute classifier (expression and lighting heads) on labelled faces.

A one-hot group (expression, lighting) has a softmax head; a multi-label group (`attributes`: CelebA's
binary attributes) a sigmoid per attribute, read as present where its logit is above 0.

It is the smallest complete model in the project, the main job until the GAN recipes land, and the
independent judge of generated images later on.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from legan_tf import adversarial, backend, optimizers, visualize
from legan_tf.errors import ConfigError
from legan_tf.hparams import hparam
from legan_tf.labels import is_multi_label
from legan_tf.losses import classification_loss
from legan_tf.models.classifier import AttributeClassifier
from legan_tf.tasks import base, register


@dataclasses.dataclass(frozen=True)
class ClassifierHyperparameters:
    base_filters: int = hparam(32, "Filters of the classifier's first stage (doubled per stage, up to 8x).", lower_bound=1)
    downsamples: int = hparam(4, "Stride-2 stages of the classifier; image_size must divide by 2**this.", lower_bound=1)
    dropout: float = hparam(0.0, "Dropout before the classifier heads.", lower_bound=0.0, upper_bound=1.0)
    adversarial_epsilon: float = hparam(0.0, "Adversarial training (Madry et al. 2018): train on the faces within "
                                        "this L2 distance (over all pixels and channels, images in [-1, 1]) of each "
                                        "training face that raise its loss most, found by projected gradient "
                                        "ascent (the logged training loss and accuracy are then theirs); 0 trains "
                                        "on the faces as they are. A robust classifier's input gradient points at "
                                        "changes people see, the kind of frozen classifier a generator can be "
                                        "trained against.", lower_bound=0.0)
    adversarial_steps: int = hparam(3, "Gradient-ascent steps of the adversarial-training attack (and of the "
                                    "robust accuracy reported in evaluation).", lower_bound=1)


@register
class ClassifierTask(base.Task):
    name = "classifier"
    Hyperparameters = ClassifierHyperparameters

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 **hyperparameters):
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        self.attributes = tuple(label_names)
        self.model_args = dict(
            image_size=image_size,
            head_classes={name: len(names) for name, names in label_names.items()},
            base_filters=self.hp.base_filters,
            num_downsamples=self.hp.downsamples,
            dropout=self.hp.dropout,
        )
        try:
            AttributeClassifier(**self.model_args)  # checks the size and label counts before training starts
        except ValueError as error:
            raise ConfigError(f"The classifier cannot be built from these flags: {error}") from None

    def build(self):
        self.model = AttributeClassifier(**self.model_args, name="attribute_classifier")
        self.model(ops.zeros((1, self.image_size, self.image_size, 3)))
        # Linear decay to zero: the last steps settle the weights instead of jumping between minima.
        schedule = keras.optimizers.schedules.PolynomialDecay(self.learning_rate, self.train_steps, 0.0)
        self.optimizer = optimizers.adam(schedule)
        self.optimizer.build(self.model.trainable_variables)

    def checkpoint_items(self):
        return {"classifier": self.model, "classifier_optimizer": self.optimizer}

    def _per_example_losses(self, logits, batch):
        return {
            name: classification_loss(logits[name], batch[name], multi_label=is_multi_label(name))
            for name in self.attributes
        }

    def _summed_loss(self, batch):
        def loss_of(images):
            logits = self.model(images, training=False)
            return sum(ops.sum(value) for value in self._per_example_losses(logits, batch).values())
        return loss_of

    def adversarial_images(self, batch):
        """The faces the step trains on: `batch["image"]`, or with adversarial_epsilon > 0 the worst faces
        within that L2 distance of each (`legan_tf.adversarial.pgd_l2`, dropout off while searching)."""
        return adversarial.pgd_l2(self._summed_loss(batch), batch["image"], self.hp.adversarial_epsilon,
                                  self.hp.adversarial_steps)

    def train_step(self, batch):
        images = self.adversarial_images(batch) if self.hp.adversarial_epsilon > 0 else batch["image"]

        def loss_and_metrics():
            logits = self.model(images, training=True)
            losses = self._per_example_losses(logits, batch)
            # Scaled by the global batch so gradients summed over replicas equal one big batch's.
            loss = sum(ops.sum(value) for value in losses.values()) / self.global_batch_size
            metrics = {f"loss/{name}": ops.mean(value) for name, value in losses.items()}
            for name in self.attributes:
                if is_multi_label(name):  # the share of attributes read right
                    right = ops.cast(logits[name] > 0, "float32") == ops.cast(batch[name], "float32")
                else:
                    right = ops.cast(ops.argmax(logits[name], axis=-1), "int32") == ops.cast(batch[name], "int32")
                metrics[f"accuracy/{name}"] = ops.mean(ops.cast(right, "float32"))
            return loss, metrics

        return backend.apply_gradients(self.optimizer, self.model.trainable_variables, loss_and_metrics)

    def predict(self, images):
        """Class ids (B,) per one-hot group; (B, K) 0/1 per multi-label group."""
        logits = self.model(images, training=False)
        return {name: (ops.convert_to_numpy(logits[name]) > 0).astype(np.float32) if is_multi_label(name)
                else np.argmax(ops.convert_to_numpy(logits[name]), axis=-1) for name in self.attributes}

    def evaluate(self, dataset):
        """Accuracy per attribute; with adversarial_epsilon > 0 also the robust accuracy (right on the
        worst face within that distance, the training attack). A multi-label group reports each of its
        attributes (`eval/accuracy/<attribute name>`) and their mean (`eval/accuracy/attributes`)."""
        robust = self.hp.adversarial_epsilon > 0
        correct = {name: 0 for name in self.attributes}
        robust_correct = {name: 0 for name in self.attributes}
        total = 0
        for batch in dataset:
            predicted = self.predict(batch["image"])
            attacked = self.predict(self.adversarial_images(batch)) if robust else {}
            for name in self.attributes:
                truth = np.asarray(batch[name])
                if is_multi_label(name):
                    truth = truth > 0.5
                    # Per attribute (K,) counts of right readings.
                    correct[name] = correct[name] + np.sum((predicted[name] > 0.5) == truth, axis=0)
                    if robust:
                        robust_correct[name] = robust_correct[name] + np.sum((attacked[name] > 0.5) == truth, axis=0)
                    continue
                correct[name] += int(np.sum(predicted[name] == truth))
                if robust:
                    robust_correct[name] += int(np.sum(attacked[name] == truth))
            total += int(batch["image"].shape[0])
        if total == 0:
            raise ValueError("evaluation data is empty")
        metrics = {f"eval/accuracy/{name}": float(np.mean(correct[name])) / total for name in self.attributes}
        for name in filter(is_multi_label, self.attributes):
            metrics.update({f"eval/accuracy/{attribute}": float(count) / total
                            for attribute, count in zip(self.label_names[name], correct[name])})
        if robust:
            metrics.update({f"eval/robust_accuracy/{name}": float(np.mean(robust_correct[name])) / total
                            for name in self.attributes})
        return metrics

    def sample_grid(self, batch):
        predicted = self.predict(batch["image"])
        captions, colours = [], []
        for index in range(len(batch["image"])):
            parts, all_right = [], True
            for name in self.attributes:
                names = self.label_names[name]
                if is_multi_label(name):  # the attributes read as present, a wrong reading marked
                    truth, guess = np.asarray(batch[name][index]) > 0.5, predicted[name][index] > 0.5
                    parts.append(",".join(("" if t == g else "!") + short for short, t, g in
                                          zip((n[:6] for n in names), truth, guess) if t or g) or "none")
                    all_right &= bool(np.all(truth == guess))
                    continue
                truth, guess = int(batch[name][index]), int(predicted[name][index])
                parts.append(names[guess] if guess == truth else f"{names[guess]}≠{names[truth]}")
                all_right &= guess == truth
            captions.append("\n".join(parts))
            colours.append("green" if all_right else "red")
        return visualize.labelled_grid(visualize.to_uint8(batch["image"]), captions, colours)

    def exported_networks(self):
        return {"attribute_classifier": self.model}
