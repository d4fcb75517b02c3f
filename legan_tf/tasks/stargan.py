"""Recipe: StarGAN (Choi et al. 2018), the baseline of both papers, optionally with LEGAN's L_qual.

The task wires a `legan_tf.gan` model to the trainer: optimizers and their schedules, frozen
judges loaded from files, held-out metrics, sample grids and the exported networks. The maths of a
step lives in `legan_tf/gan/base.py`. Other GAN recipes (LEGAN) subclass this task.
"""

import dataclasses

import numpy as np
from keras import ops

from legan_tf import losses, visualize
from legan_tf.errors import ConfigError
from legan_tf.gan import diffaugment
from legan_tf.gan.stargan import StarGAN, StarGANHyperparameters
from legan_tf.hparams import hparam
from legan_tf.labels import flip_attribute, is_multi_label, one_hot_labels
from legan_tf.models.quality import QualityModel
from legan_tf.runs import load_attribute_classifier, load_model
from legan_tf.tasks import base, register


@dataclasses.dataclass(frozen=True)
class TrainingHyperparameters(base.GANTrainingHyperparameters):
    """How a StarGAN-style recipe trains, and where its optional Q comes from."""

    quality_model: str = hparam("", "Path of a trained Q (.keras) for L_qual; needed when lambda_qual > 0.")
    attribute_classifier: str = hparam("", "Path of an attribute classifier (.keras, a configs/*/classifier*.flags "
                                       "run's attribute_classifier.keras, its labels.json beside it) trained on the "
                                       "training split: the frozen judge of lambda_cls_frozen.")


@dataclasses.dataclass(frozen=True)
class StarGANRecipe(StarGANHyperparameters, TrainingHyperparameters, base.InitGeneratorHyperparameters):
    """The StarGAN recipe's flags: the model's hyperparameters and how it trains."""


@register
class StarGANTask(base.GANTask):
    name = "stargan"
    Hyperparameters = StarGANRecipe
    model_class = StarGAN
    # Sample-grid columns: each target class of each attribute, in this order.
    sample_attribute_order = ("expression", "lighting")
    # Which targets scripts/evaluate_translation.py holds this recipe's generators to by default.
    translation_check = "stargan"

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 **hyperparameters):
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        prefix, hp = self.prefix(), self.hp
        if hp.lambda_qual > 0 and not hp.quality_model:
            raise ConfigError(f"--{prefix}lambda_qual={hp.lambda_qual:g} needs a trained Q: give "
                              f"--{prefix}quality_model=path/quality_model.keras (train one with "
                              f"configs/paper/quality.flags), or set --{prefix}lambda_qual=0.")
        self.check_file(f"--{prefix}quality_model", hp.quality_model)
        if hp.lambda_cls_frozen > 0 and not hp.attribute_classifier:
            raise ConfigError(f"--{prefix}lambda_cls_frozen={hp.lambda_cls_frozen:g} needs a frozen classifier: give "
                              f"--{prefix}attribute_classifier=path/attribute_classifier.keras (train one with "
                              f"configs/*/classifier*.flags on the training split), or set "
                              f"--{prefix}lambda_cls_frozen=0.")
        if hp.attribute_classifier and hp.lambda_cls_frozen <= 0:
            raise ConfigError(f"--{prefix}attribute_classifier is read only with --{prefix}lambda_cls_frozen > 0.")
        self.check_file(f"--{prefix}attribute_classifier", hp.attribute_classifier)
        try:
            diffaugment.parse_policy(hp.d_augment)
        except ConfigError as error:
            raise ConfigError(f"--{prefix}{error}") from None
        for name, value in self.model_class.attention_options_without_attention(hp):
            raise ConfigError(f"--{prefix}{name}={value} is an option of the attention output; it needs "
                              f"--{prefix}g_output=attention (got {hp.g_output}).")

    def _load_quality_model(self):
        path = self.hp.quality_model
        if not path:
            return None
        model = load_model(path, "quality model", f"--{self.prefix()}quality_model", QualityModel,
                           " (train one with configs/*/quality*.flags)")
        if getattr(model, "image_size", self.image_size) != self.image_size:
            raise ConfigError(f"--{self.prefix()}quality_model={path} rates {model.image_size} px images, "
                              f"but --image_size={self.image_size}.")
        return model

    def _load_attribute_classifier(self):
        """The frozen classifier of lambda_cls_frozen, checked against the data: its heads that the generator
        shares must name the same classes in the same order (labels.json beside it), and one must be shared."""
        path, flag = self.hp.attribute_classifier, f"--{self.prefix()}attribute_classifier"
        if not path:
            return None
        model, names = load_attribute_classifier(path, flag, " (train one with configs/*/classifier*.flags)")
        heads = dict(model.head_classes)
        shared = [name for name in self.label_names if name in heads]
        if not shared:
            raise ConfigError(f"{flag}={path}: it has no head for the data's attributes "
                              f"({', '.join(self.label_names)}; its heads: {', '.join(heads) or 'none'}).")
        for name in shared:
            if tuple(names.get(name, ())) != tuple(self.label_names[name]):
                raise ConfigError(f"{flag}={path}: its {name} classes {list(names.get(name, ()))} are not the data's "
                                  f"{list(self.label_names[name])} (same names, same order).")
        return model

    def pretrained_models(self):
        return {"quality_model": self._load_quality_model(), "attribute_classifier": self._load_attribute_classifier()}

    def evaluate(self, dataset):
        """Cycle L1 and D's classification accuracy on held-out real faces (cheap health signals;
        the learning check proper is scripts/evaluate_translation.py). A multi-label group's accuracy is the
        share of its attributes D reads right, averaged over faces and attributes."""
        model, cycle, correct, total = self.model, [], {name: 0 for name in self.label_sizes}, 0
        for step, batch in enumerate(dataset):
            source = {name: batch[name] for name in self.label_sizes}
            targets = model.random_targets(batch, step)
            generator = model.sampling_generator
            fakes = generator((batch["image"], one_hot_labels(targets, self.label_sizes)), training=False)
            rebuilt = generator((fakes, one_hot_labels(source, self.label_sizes)), training=False)
            cycle.append(ops.convert_to_numpy(losses.cycle_loss(batch["image"], rebuilt)))
            _, logits = model.discriminator(batch["image"], training=False)
            for name in self.label_sizes:
                values = ops.convert_to_numpy(logits[name])
                if is_multi_label(name):  # each attribute read right (logit > 0 for a 1), averaged over attributes
                    correct[name] += float(np.sum(np.mean((values > 0) == (np.asarray(batch[name]) > 0.5), -1)))
                    continue
                read = np.argmax(values, -1)
                correct[name] += int(np.sum(read == np.asarray(batch[name])))
            total += int(batch["image"].shape[0])
        metrics = {"eval/cycle_l1": float(np.mean(np.concatenate(cycle)))}
        metrics.update({f"eval/d_accuracy/{name}": correct[name] / total for name in self.label_sizes})
        return metrics

    def sample_grid(self, batch, max_columns_per_attribute=8):
        """Rows: inputs. Columns: the input, then each target class of each attribute (the other attributes
        kept), up to `max_columns_per_attribute` classes spread over each attribute; for a multi-label group,
        each of its attributes edited as the reference's test does (`labels.flip_attribute`)."""
        images = batch["image"][:8]
        source = {name: batch[name][:8] for name in self.label_sizes}
        generator = self.model.sampling_generator
        columns, titles = [ops.convert_to_numpy(images)], ["input"]
        attributes = [name for name in self.sample_attribute_order if name in self.label_sizes]
        attributes += [name for name in self.label_sizes if name not in attributes]
        for name in attributes:
            size, names = self.label_sizes[name], self.label_names[name]
            if is_multi_label(name):
                for index in range(min(size, max_columns_per_attribute)):
                    targets = {**source, name: flip_attribute(ops.convert_to_numpy(source[name]), names, index)}
                    columns.append(ops.convert_to_numpy(generator((images, one_hot_labels(targets, self.label_sizes)),
                                                                 training=False)))
                    titles.append(names[index][:10])
                continue
            for value in np.unique(np.linspace(0, size - 1, min(size, max_columns_per_attribute)).round().astype(int)):
                targets = dict(source)
                targets[name] = ops.full(ops.shape(source[name]), int(value), dtype="int32")
                columns.append(ops.convert_to_numpy(generator((images, one_hot_labels(targets, self.label_sizes)),
                                                             training=False)))
                titles.append(f"{name[:4]}={names[value]}")
        for title, column in self.extra_sample_columns(images, source):
            columns.append(column)
            titles.append(title)
        return visualize.titled_mosaic([visualize.to_uint8(column) for column in columns], titles)

    def extra_sample_columns(self, images, source):
        """(title, images in [-1, 1]) columns a recipe adds after the target columns."""
        return []
