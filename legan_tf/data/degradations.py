"""Random image degradations for training a face recogniser that a generator's output cannot fool.

LEGAN's L_id compares f(I) with f(G(I, c)). An f trained only on clean renders reads the slight
blur and colour error of any generator as another person (measured in docs/identity.md), so L_id
sits near 1 whatever G does and its gradient says nothing about identity. Training f on faces
degraded the way generated ones are (blur, sub-pixel misalignment, contrast, colour noise and
blotches, the speckle seen in a young GAN's output) makes the
embedding follow the person instead, as a recogniser trained on real photos does.

Stateless: the same seed gives the same degradations, so a resumed or distributed run repeats them.
"""

import dataclasses

import tensorflow as tf

# Gaussian taps either side of the centre; covers 3 sigma of the largest default blur.
BLUR_RADIUS = 4
# Colour blotches: a random field on this many cells a side, resized to the image.
BLOTCH_GRID = 5


@dataclasses.dataclass(frozen=True)
class DegradationConfig:
    """Per-example strengths are drawn uniformly from [0, max] (blur, noise, shift) or
    [1 - x, 1 + x] / [-x, x] (contrast / brightness); a zero switches that degradation off."""

    max_blur_sigma: float = 1.2
    blur_probability: float = 0.7
    max_shift: float = 1.5      # pixels, each axis, sub-pixel (bilinear)
    contrast: float = 0.2
    brightness: float = 0.1     # in the [-1, 1] image range
    max_noise: float = 0.15     # per-pixel, per-channel Gaussian noise std, in the [-1, 1] image range
    max_blotches: float = 0.15  # std of a smooth colour field (BLOTCH_GRID^2 cells, bilinear), same range

    def __post_init__(self):
        for name in ("max_blur_sigma", "max_shift", "contrast", "brightness", "max_noise", "max_blotches"):
            if getattr(self, name) < 0:
                raise ValueError(f"DegradationConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.blur_probability <= 1.0:
            raise ValueError(f"DegradationConfig.blur_probability must be in [0, 1], got {self.blur_probability}")
        if self.max_blur_sigma > BLUR_RADIUS / 2:
            raise ValueError(f"DegradationConfig.max_blur_sigma must be <= {BLUR_RADIUS / 2} "
                             f"(the kernel has {BLUR_RADIUS} taps a side), got {self.max_blur_sigma}")


def gaussian_blur(images, sigma):
    """Blurs each image of (B, H, W, C) with its own Gaussian std `sigma` (B,); sigma 0 leaves it as is.

    Separable, with per-example kernels: the batch is folded into the channels of one depthwise conv.
    Borders are padded by reflection, so a blur does not darken the edges.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    sigma = tf.reshape(tf.cast(sigma, tf.float32), [-1])
    batch, height, width, channels = tf.unstack(tf.shape(images))
    taps = tf.range(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=tf.float32)
    safe_sigma = tf.maximum(sigma, 1e-3)[:, None]
    kernel = tf.exp(-0.5 * tf.square(taps[None, :] / safe_sigma))
    delta = tf.cast(tf.equal(taps, 0.0), tf.float32)[None, :]
    kernel = tf.where(sigma[:, None] > 1e-3, kernel, delta)
    kernel = kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)              # (B, taps)
    kernel = tf.repeat(kernel, channels, axis=0)                                 # (B*C, taps), batch-major
    folded = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, height, width, batch * channels])
    padding = [[0, 0], [BLUR_RADIUS, BLUR_RADIUS], [BLUR_RADIUS, BLUR_RADIUS], [0, 0]]
    folded = tf.pad(folded, padding, mode="REFLECT")
    horizontal = tf.transpose(kernel)[None, :, :, None]                          # (1, taps, B*C, 1)
    vertical = tf.transpose(kernel)[:, None, :, None]                            # (taps, 1, B*C, 1)
    folded = tf.nn.depthwise_conv2d(folded, horizontal, [1, 1, 1, 1], "VALID")
    folded = tf.nn.depthwise_conv2d(folded, vertical, [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(folded, [height, width, batch, channels]), [2, 0, 1, 3])


def translate(images, offsets, fill_value=-1.0):
    """Shifts each image by its (dx, dy) in pixels (B, 2), bilinear; uncovered pixels get `fill_value`
    (-1: the lab's black background)."""
    images = tf.convert_to_tensor(images, tf.float32)
    offsets = tf.cast(offsets, tf.float32)
    count = tf.shape(images)[0]
    ones, zeros = tf.ones([count]), tf.zeros([count])
    # Output pixel (x, y) reads input (x - dx, y - dy).
    transforms = tf.stack([ones, zeros, -offsets[:, 0], zeros, ones, -offsets[:, 1], zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=tf.constant(fill_value, tf.float32), interpolation="BILINEAR", fill_mode="CONSTANT")


def random_degradations(images, seed, config: DegradationConfig = DegradationConfig(), offset=0, total=None):
    """(B, H, W, C) images in [-1, 1] -> the same images, each randomly blurred, shifted, re-contrasted,
    brightened, noised and blotched; clipped to [-1, 1]. `seed`: a stateless-RNG seed, shape (2,) int.

    `offset` and `total` place the images in a larger batch (a replica's share of the global batch):
    every draw is made for all `total` examples and these images take rows offset..offset+B-1, so an
    example is degraded the same way whether the batch runs on one device or is split over replicas.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    count = tf.shape(images)[0]
    total = count if total is None else tf.maximum(tf.cast(total, tf.int32), offset + count)
    rows = offset + tf.range(count)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 9)

    def draw(index, tail=(), sampler=tf.random.stateless_uniform):
        """Rows `rows` of a (total, *tail) draw from stream `index`."""
        return tf.gather(sampler(tf.concat([[total], tf.cast(tail, tf.int32)], 0), seed=seeds[index]), rows)

    if config.max_blur_sigma > 0 and config.blur_probability > 0:
        blurred = tf.cast(draw(0) < config.blur_probability, tf.float32)
        images = gaussian_blur(images, blurred * config.max_blur_sigma * draw(1))
    if config.max_shift > 0:
        images = translate(images, config.max_shift * (2.0 * draw(2, [2]) - 1.0))
    if config.contrast > 0 or config.brightness > 0:
        scale = 1.0 + config.contrast * (2.0 * draw(3, [1, 1, 1]) - 1.0)
        shift = config.brightness * (2.0 * draw(4, [1, 1, 1]) - 1.0)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * scale + mean + shift
    if config.max_noise > 0:
        std = config.max_noise * draw(5, [1, 1, 1])
        images = images + std * draw(6, tf.shape(images)[1:], tf.random.stateless_normal)
    if config.max_blotches > 0:
        std = config.max_blotches * draw(7, [1, 1, 1])
        field = draw(8, [BLOTCH_GRID, BLOTCH_GRID, tf.shape(images)[3]], tf.random.stateless_normal)
        images = images + std * tf.image.resize(field, tf.shape(images)[1:3], method="bilinear")
    return tf.clip_by_value(images, -1.0, 1.0)
