"""Q, LEGAN's perceptual quality model: rates the naturalness of one face image on the raters' 1-10 scale.

Paper architecture (Banerjee et al. 2021) at 128x128: six 4x4 stride-2 convs with 64, 128, 256,
512, 1024, 2048 filters, each followed by LeakyReLU(0.01) (the StarGAN discriminator trunk);
flatten (2x2x2048 = 8192); dense 256 + LeakyReLU(0.01); dense 1, linear.
"""

import keras

from legan_tf.layers import check_image_size


@keras.saving.register_keras_serializable(package="legan_tf")
class QualityModel(keras.Model):
    """Naturalness regressor. Input: NHWC images in [-1, 1]; output: (batch, 1) scores.

    Args:
        image_size: square input size; must be divisible by 2**num_downsamples.
        base_filters: filters of the first conv (64 in the paper); each later conv doubles them.
        num_downsamples: number of 4x4 stride-2 convs (6 in the paper).
        dense_units: width of the hidden dense layer (256 in the paper).
        leaky_slope: LeakyReLU negative slope (0.01 in the paper).
    """

    def __init__(self, image_size=128, base_filters=64, num_downsamples=6, dense_units=256, leaky_slope=0.01, **kwargs):
        super().__init__(**kwargs)
        check_image_size("QualityModel", image_size, num_downsamples)
        self.image_size = image_size
        self.base_filters = base_filters
        self.num_downsamples = num_downsamples
        self.dense_units = dense_units
        self.leaky_slope = leaky_slope
        self.trunk = []
        for index in range(num_downsamples):
            self.trunk += [
                keras.layers.Conv2D(base_filters * 2**index, 4, strides=2, padding="same", name=f"conv{index + 1}"),
                keras.layers.LeakyReLU(leaky_slope),
            ]
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(dense_units, name="hidden")
        self.hidden_activation = keras.layers.LeakyReLU(leaky_slope)
        self.score = keras.layers.Dense(1, name="score")

    def call(self, images, training=False):
        features = images
        for layer in self.trunk:
            features = layer(features)
        return self.score(self.hidden_activation(self.hidden(self.flatten(features))))

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            base_filters=self.base_filters,
            num_downsamples=self.num_downsamples,
            dense_units=self.dense_units,
            leaky_slope=self.leaky_slope,
        )
        return config
