"""Differentiable augmentation of what a discriminator sees (DiffAugment, Zhao et al., NeurIPS 2020).

The same random transformation family is applied to every image the discriminator reads, real and
generated, in its own update and in the generator's, so D never sees an untransformed face and G's
gradient flows back through the transformation. Its purpose here: a discriminator whose
classification head reads every training face right and few unseen ones has memorised the training
photos, and G is then rewarded for what the head memorised; translated and cut-out faces make that
harder.

Two of DiffAugment's three transformations, with its default strengths:
- translation: each image shifted by a whole number of pixels in [-H/8, H/8] on each axis, the
  uncovered border filled with 0 (mid-grey in [-1, 1]);
- cutout: a square of side H/2 (rounded) set to 0, centred on a uniformly drawn pixel, clipped at
  the border.
DiffAugment's colour transformation (brightness, saturation, contrast) is left out: brightness and
contrast are what the lighting labels describe.

Everything is `keras.ops` (both trainers run it); the draws come from named random streams per
example of the global batch, so a run is reproducible and independent of the replica layout.
"""

from __future__ import annotations

from keras import ops

from legan_tf.errors import ConfigError
from legan_tf.gan.base import batch_size
from legan_tf.random_streams import Stream, uniform_per_example

TRANSFORMS = ("translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
# Which images a draw is for: real faces and fakes in D's update, fakes in G's.
ROLES = ("real", "fake", "generator")
_DRAWS = ("translate_y", "translate_x", "cutout_y", "cutout_x")
STREAMS = {(role, draw): Stream(f"gan/diffaugment/{role}/{draw}") for role in ROLES for draw in _DRAWS}


def parse_policy(policy: str) -> tuple[str, ...]:
    """"translation,cutout" -> ("translation", "cutout"); "" -> (). ConfigError for an unknown or repeated name."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in TRANSFORMS]
    if unknown:
        raise ConfigError(f"d_augment={policy!r}: unknown transformation {unknown[0]!r} "
                          f"(known: {', '.join(TRANSFORMS)}; comma-separated, empty for none).")
    if len(set(names)) != len(names):
        raise ConfigError(f"d_augment={policy!r} names a transformation twice.")
    return names


def _shift_matrices(shifts, size):
    """(B, size, size) one-hot matrices M with (M @ x)[i] = x[i - shift] where 0 <= i - shift < size, else 0."""
    rows = ops.arange(size, dtype="int32")
    source = ops.expand_dims(rows, 0) - ops.expand_dims(shifts, 1)       # (B, size): the row each output row reads
    return ops.cast(ops.equal(ops.expand_dims(source, 2), ops.reshape(rows, (1, 1, size))), "float32")


def translate(images, shift_y, shift_x):
    """Each image moved down by shift_y and right by shift_x whole pixels ((B,) int32), zeros filling the border.

    Written as two one-hot matrix products (rows, then columns) so that it is differentiable and runs
    the same on every backend; at GAN sizes (64 px) it is a small share of D's cost.
    """
    height, width = images.shape[1], images.shape[2]
    rows = _shift_matrices(shift_y, height)
    columns = _shift_matrices(shift_x, width)
    images = ops.cast(images, "float32")
    return ops.einsum("bij,bjkc,blk->bilc", rows, images, columns)


def cutout_mask(centre_y, centre_x, height, width, side):
    """(B, H, W, 1) float mask: 0 on the side x side square whose top-left corner is centre - side // 2, else 1."""
    def outside(centre, size):
        first = ops.expand_dims(centre - side // 2, 1)
        index = ops.expand_dims(ops.arange(size, dtype="int32"), 0)
        return ops.logical_or(index < first, index >= first + side)          # (B, size)

    keep = ops.logical_or(ops.expand_dims(outside(centre_y, height), 2), ops.expand_dims(outside(centre_x, width), 1))
    return ops.expand_dims(ops.cast(keep, "float32"), -1)


def _whole(draw, low, high):
    """U(0, 1) draws -> whole numbers in [low, high]."""
    return ops.cast(ops.minimum(ops.floor(draw * (high - low + 1)), high - low), "int32") + low


def augment(images, transforms, role, run_seed, step, global_batch_size):
    """`images` (B, H, W, C) in [-1, 1] under `transforms` (from parse_policy), with `role`'s draws at `step`."""
    if not transforms:
        return images
    count = batch_size(images)

    def draw(name):
        return uniform_per_example(STREAMS[(role, name)], run_seed, step, count, global_batch_size)

    height, width = images.shape[1], images.shape[2]
    output = ops.cast(images, "float32")
    if "translation" in transforms:
        reach_y, reach_x = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
        output = translate(output, _whole(draw("translate_y"), -reach_y, reach_y),
                           _whole(draw("translate_x"), -reach_x, reach_x))
    if "cutout" in transforms:
        side = int(height * CUTOUT_RATIO + 0.5)
        output = output * cutout_mask(_whole(draw("cutout_y"), 0, height - 1), _whole(draw("cutout_x"), 0, width - 1),
                                      height, width, side)
    return ops.cast(output, images.dtype)
