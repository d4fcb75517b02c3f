"""The depth network's generator (Bodur et al., WACV 2021, section 3.2): RGB -> geometry and back.

The paper trains its depth generator "in a similar way to the multi-domain translation network in
[StarGAN], where the domain is given as a condition", so one network translates RGB to depth
(G_depth) and depth to RGB (G'_depth, for the reconstruction loss of eq. 7). Here that is a
StarGAN generator whose label vector is the one-hot *target domain* (geometry, RGB) instead of an
expression. Both directions share the body, so input and output have 3 channels: a 1-channel
depth map enters repeated to 3 channels, and G_depth's geometry is the first 1 (depth) or 3
(normals) output channels. The depth discriminator D_depth is a `StarGANDiscriminator` with
`input_channels` = the geometry's channels and an expression head.

Geometry maps are at network scale, in [-1, 1] (`legan_tf.geometry`).
"""

import keras

from legan_tf.geometry import GEOMETRIES, geometry_channels
from legan_tf.models.stargan import StarGANGenerator

TO_GEOMETRY, TO_RGB = 0, 1
NUM_DOMAINS = 2


@keras.saving.register_keras_serializable(package="legan_tf")
class DepthGenerator(keras.Model):
    """G_depth and G'_depth in one network: `to_geometry(rgb)` and `to_rgb(geometry)`.

    Calling the model is `to_geometry`: (B, S, S, 3) RGB in [-1, 1] -> (B, S, S, C) geometry in
    [-1, 1], C = 1 (depth) or 3 (normals). That is what an exported depth estimator does.

    Args:
        image_size: square input size, divisible by 4.
        geometry: "depth" or "normals".
        base_filters, num_residual_blocks: the StarGAN generator body's (reference: 64, 6).
    """

    def __init__(self, image_size=128, geometry="depth", base_filters=64, num_residual_blocks=6, **kwargs):
        super().__init__(**kwargs)
        if geometry not in GEOMETRIES:
            raise ValueError(f"DepthGenerator: geometry must be one of {GEOMETRIES}, got {geometry!r}.")
        self.image_size = image_size
        self.geometry = geometry
        self.base_filters = base_filters
        self.num_residual_blocks = num_residual_blocks
        self.geometry_channels = geometry_channels(geometry)
        self.translator = StarGANGenerator(image_size, NUM_DOMAINS, base_filters,
                                           num_residual_blocks=num_residual_blocks, input_channels=3,
                                           output_channels=3, name="translator")

    def build(self, input_shape=None):
        if not self.translator.built:
            self.translator.build()

    def _domain(self, images, domain):
        batch = keras.ops.shape(images)[0]
        return keras.ops.one_hot(keras.ops.full((batch,), domain, dtype="int32"), NUM_DOMAINS)

    def to_geometry(self, rgb, training=False):
        out = self.translator((rgb, self._domain(rgb, TO_GEOMETRY)), training=training)
        return out[..., :self.geometry_channels]

    def to_rgb(self, geometry, training=False):
        channels = geometry.shape[-1]
        if channels != self.geometry_channels:
            raise ValueError(f"DepthGenerator: expected {self.geometry_channels}-channel {self.geometry} maps, "
                             f"got {channels} channels (shape {tuple(geometry.shape)}).")
        if channels == 1:
            geometry = keras.ops.repeat(geometry, 3, axis=-1)
        return self.translator((geometry, self._domain(geometry, TO_RGB)), training=training)

    def call(self, rgb, training=False):
        return self.to_geometry(rgb, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, self.geometry_channels)

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, geometry=self.geometry, base_filters=self.base_filters,
                      num_residual_blocks=self.num_residual_blocks)
        return config
