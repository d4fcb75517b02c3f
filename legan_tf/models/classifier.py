"""Attribute classifier: recognises expression and lighting from a face image.

It is independent of every GAN discriminator, so it can judge generated images (the papers'
expression / lighting generation rate), and it proves the face lab's labels are visible in the pixels.
"""

import math

import keras

from legan_tf.layers import check_image_size


# Each stage: a conv, a group norm, an activation, a stride-2 conv, an activation.
LAYERS_PER_STAGE = 5


@keras.saving.register_keras_serializable(package="legan_tf")
class AttributeClassifier(keras.Model):
    """A small CNN with one softmax head per attribute.

    Args:
        image_size: square input size in pixels; must be divisible by 2**num_downsamples.
        head_classes: attribute name -> number of classes, e.g. {"expression": 6, "lighting": 20}.
        base_filters: filters of the first stage; each downsampling doubles them, up to 8x.
        num_downsamples: stride-2 stages; the last feature map is image_size / 2**num_downsamples wide.
        dropout: dropout rate before the heads.
    """

    def __init__(self, image_size=64, head_classes=None, base_filters=32, num_downsamples=4, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        head_classes = dict(head_classes or {"expression": 6, "lighting": 20})
        check_image_size("AttributeClassifier", image_size, num_downsamples)
        if not head_classes or any(count < 2 for count in head_classes.values()):
            raise ValueError(f"AttributeClassifier: every head needs at least 2 classes, got {head_classes}.")
        self.image_size = image_size
        self.head_classes = head_classes
        self.base_filters = base_filters
        self.num_downsamples = num_downsamples
        self.dropout = dropout

        self.trunk = []
        for stage in range(num_downsamples):
            filters = base_filters * min(2**stage, 8)
            # Group norm rather than batch norm: statistics stay per-example, so a mirrored run
            # computes exactly what a single-device run does.
            self.trunk += [
                keras.layers.Conv2D(filters, 3, padding="same", name=f"stage{stage}_conv"),
                keras.layers.GroupNormalization(groups=math.gcd(8, filters), name=f"stage{stage}_norm"),
                keras.layers.LeakyReLU(0.2),
                keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"stage{stage}_down"),
                keras.layers.LeakyReLU(0.2),
            ]
        self.flatten = keras.layers.Flatten()
        self.drop = keras.layers.Dropout(dropout)
        self.heads = {name: keras.layers.Dense(count, name=f"{name}_logits") for name, count in head_classes.items()}

    def call(self, images, training=False):
        features = images
        for layer in self.trunk:
            features = layer(features, training=training)
        features = self.drop(self.flatten(features), training=training)
        return {name: head(features) for name, head in self.heads.items()}

    def stage_features(self, images):
        """The feature map after each stride-2 stage (a list, finest first): what a perceptual loss compares."""
        features, maps = images, []
        for index, layer in enumerate(self.trunk):
            features = layer(features, training=False)
            if index % LAYERS_PER_STAGE == LAYERS_PER_STAGE - 1:  # the stage's last activation
                maps.append(features)
        return maps

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            head_classes=self.head_classes,
            base_filters=self.base_filters,
            num_downsamples=self.num_downsamples,
            dropout=self.dropout,
        )
        return config
