"""Random image degradations for training a face recogniser that a generator's output cannot fool.

LEGAN's L_id compares f(I) with f(G(I, c)). An f trained only on clean renders reads the slight
blur and colour error of any generator as another person (measured in docs/identity.md), so L_id
sits near 1 whatever G does and its gradient says nothing about identity. Training f on faces
degraded the way generated ones are (blur, sub-pixel misalignment, contrast, colour noise and
blotches, the speckle seen in a young GAN's output) makes the
embedding follow the person instead, as a recogniser trained on real photos does.

Stateless: the same seed gives the same degradations, so a resumed or distributed run repeats them.
Written in keras.ops, so the TensorFlow and the JAX backend train the identity network alike (each
backend draws its own random numbers, legan_tf.backend).
"""

import dataclasses

from keras import ops

from legan_tf import backend
from legan_tf.random_streams import Stream

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


# One named stream per kind of draw (legan_tf.random_streams): keyed by the seed pair's run seed and step.
_DRAWS = [Stream(f"degradations/{name}") for name in ("blur_on", "blur_sigma", "shift", "contrast", "brightness",
                                                      "noise_std", "noise", "blotch_std", "blotch_field")]


def _shape(images):
    """(B, H, W, C): Python ints where known, a tensor for an unknown batch in a TensorFlow graph."""
    static = tuple(images.shape)
    dynamic = ops.shape(images)
    return tuple(static[i] if static[i] is not None else dynamic[i] for i in range(4))


def gaussian_blur(images, sigma):
    """Blurs each image of (B, H, W, C) with its own Gaussian std `sigma` (B,); sigma 0 leaves it as is.

    Separable, with per-example kernels: the batch is folded into the channels of one depthwise conv.
    Borders are padded by reflection, so a blur does not darken the edges.
    """
    images = ops.cast(ops.convert_to_tensor(images), "float32")
    sigma = ops.reshape(ops.cast(sigma, "float32"), [-1])
    _, height, width, channels = _shape(images)
    taps = ops.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype="float32")
    safe_sigma = ops.maximum(sigma, 1e-3)[:, None]
    kernel = ops.exp(-0.5 * ops.square(taps[None, :] / safe_sigma))
    delta = ops.cast(ops.equal(taps, 0.0), "float32")[None, :]
    kernel = ops.where(sigma[:, None] > 1e-3, kernel, delta)
    kernel = kernel / ops.sum(kernel, axis=1, keepdims=True)                    # (B, taps)
    kernel = ops.repeat(kernel, channels, axis=0)                               # (B*C, taps), batch-major
    folded = ops.reshape(ops.transpose(images, [1, 2, 0, 3]), [1, height, width, -1])
    padding = [[0, 0], [BLUR_RADIUS, BLUR_RADIUS], [BLUR_RADIUS, BLUR_RADIUS], [0, 0]]
    folded = ops.pad(folded, padding, mode="reflect")
    horizontal = ops.transpose(kernel)[None, :, :, None]                        # (1, taps, B*C, 1)
    vertical = ops.transpose(kernel)[:, None, :, None]                          # (taps, 1, B*C, 1)
    folded = ops.depthwise_conv(folded, horizontal, strides=1, padding="valid")
    folded = ops.depthwise_conv(folded, vertical, strides=1, padding="valid")
    return ops.transpose(ops.reshape(folded, [height, width, -1, channels]), [2, 0, 1, 3])


def translate(images, offsets, fill_value=-1.0):
    """Shifts each image by its (dx, dy) in pixels (B, 2), bilinear; uncovered pixels get `fill_value`
    (-1: the lab's black background)."""
    images = ops.cast(ops.convert_to_tensor(images), "float32")
    offsets = ops.cast(offsets, "float32")
    ones, zeros = ops.ones_like(offsets[:, 0]), ops.zeros_like(offsets[:, 0])
    # Output pixel (x, y) reads input (x - dx, y - dy).
    transforms = ops.stack([ones, zeros, -offsets[:, 0], zeros, ones, -offsets[:, 1], zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transforms, interpolation="bilinear", fill_mode="constant",
                                      fill_value=fill_value)


def random_degradations(images, seed, config: DegradationConfig = DegradationConfig(), offset=0, total=None):
    """(B, H, W, C) images in [-1, 1] -> the same images, each randomly blurred, shifted, re-contrasted,
    brightened, noised and blotched; clipped to [-1, 1]. `seed`: (run seed, step), the pair that
    keys every draw (legan_tf.random_streams).

    `offset` and `total` place the images in a larger batch (a replica's share of the global batch):
    every draw is made for all `total` examples and these images take rows offset..offset+B-1, so an
    example is degraded the same way whether the batch runs on one device or is split over replicas.
    """
    images = ops.cast(ops.convert_to_tensor(images), "float32")
    count, height, width, channels = _shape(images)
    run_seed, step = seed[0], seed[1]
    if total is None:
        total = count
    elif isinstance(count, int) and isinstance(offset, int):
        total = max(int(total), offset + count)
    else:
        total = ops.maximum(ops.cast(total, "int32"), offset + count)
    rows = offset + ops.arange(count)

    def draw(index, tail=(), normal=False):
        """Rows `rows` of a (total, *tail) draw from stream `index`."""
        if isinstance(total, int):
            shape = [total, *tail]
        else:  # an unknown batch in a TensorFlow graph
            shape = ops.concatenate([ops.reshape(total, [1]), ops.convert_to_tensor(list(tail), "int32")], 0)
        sample = backend.stateless_normal if normal else backend.stateless_uniform
        return ops.take(sample(shape, run_seed, _DRAWS[index].key, step), rows, axis=0)

    if config.max_blur_sigma > 0 and config.blur_probability > 0:
        blurred = ops.cast(draw(0) < config.blur_probability, "float32")
        images = gaussian_blur(images, blurred * config.max_blur_sigma * draw(1))
    if config.max_shift > 0:
        images = translate(images, config.max_shift * (2.0 * draw(2, [2]) - 1.0))
    if config.contrast > 0 or config.brightness > 0:
        scale = 1.0 + config.contrast * (2.0 * draw(3, [1, 1, 1]) - 1.0)
        shift = config.brightness * (2.0 * draw(4, [1, 1, 1]) - 1.0)
        mean = ops.mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * scale + mean + shift
    if config.max_noise > 0:
        std = config.max_noise * draw(5, [1, 1, 1])
        images = images + std * draw(6, [height, width, channels], normal=True)
    if config.max_blotches > 0:
        std = config.max_blotches * draw(7, [1, 1, 1])
        field = draw(8, [BLOTCH_GRID, BLOTCH_GRID, channels], normal=True)
        images = images + std * ops.image.resize(field, (height, width), interpolation="bilinear")
    return ops.clip(images, -1.0, 1.0)
