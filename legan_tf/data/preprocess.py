"""Pure tf preprocessing of one decoded example: square crop, resize, scale to [-1, 1], flip, mask.

An example is a dict; the keys this module touches are the pixel maps
"image" (uint8 H,W,3), "depth" (float32 H,W,1 in [0, 1]), "normals" (uint8 H,W,3) and
"mask" (float32 H,W,1 in {0, 1}); all share one height and width. Other keys (labels) pass through.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

PIXEL_MAPS = ("image", "depth", "normals", "mask")


def center_crop_square(pixels: tf.Tensor) -> tf.Tensor:
    """Crops the centred square of side min(H, W)."""
    height, width = tf.shape(pixels)[0], tf.shape(pixels)[1]
    side = tf.minimum(height, width)
    return tf.image.crop_to_bounding_box(
        pixels, (height - side) // 2, (width - side) // 2, side, side)


def resize_rgb(image: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 RGB -> float32 [-1, 1] at size x size; antialiased bilinear so downscaling doesn't alias."""
    resized = tf.image.resize(
        tf.cast(image, tf.float32), [size, size], method="bilinear", antialias=True)
    # The resampling weights sum to 1 only up to float rounding; keep the promised range exact.
    return tf.clip_by_value(resized / 127.5 - 1.0, -1.0, 1.0)


def resize_geometry(pixels: tf.Tensor, size: int) -> tf.Tensor:
    """Nearest-neighbour resize for depth, normals and masks.

    Interpolating would average face depth with the 0 background and invent intermediate depths
    (and a grown mask) along the silhouette, and would shorten unit normals; nearest keeps every
    value one the sensor or renderer produced.
    """
    return tf.image.resize(pixels, [size, size], method="nearest")


def prepare(example: Dict[str, tf.Tensor], image_size: int, apply_mask: bool) -> Dict[str, tf.Tensor]:
    """Decoded example -> model-ready example: all pixel maps square, image_size, in [-1, 1]."""
    prepared = dict(example)
    prepared["image"] = resize_rgb(center_crop_square(example["image"]), image_size)
    if "depth" in example:
        depth = resize_geometry(center_crop_square(example["depth"]), image_size)
        prepared["depth"] = depth * 2.0 - 1.0
        # The RGB-D layout marks background with depth 0; the face mask is where depth exists.
        prepared["mask"] = tf.cast(depth > 0.0, tf.float32)
    elif "mask" in example:
        prepared["mask"] = resize_geometry(center_crop_square(example["mask"]), image_size)
    if "normals" in example:
        normals = resize_geometry(center_crop_square(example["normals"]), image_size)
        prepared["normals"] = tf.cast(normals, tf.float32) / 127.5 - 1.0
    if apply_mask:
        prepared["image"] = tf.where(prepared["mask"] > 0.5, prepared["image"], -1.0)
    for key in PIXEL_MAPS:
        if key in prepared:
            prepared[key].set_shape([image_size, image_size, None])
    return prepared


def flip_horizontally(example: Dict[str, tf.Tensor], flip: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Mirrors every pixel map left-right when `flip` is true.

    A mirrored surface's normals point the other way along x, so their x component is negated.
    """
    flipped = dict(example)
    for key in PIXEL_MAPS:
        if key in example:
            flipped[key] = tf.where(flip, tf.reverse(example[key], axis=[1]), example[key])
    if "normals" in example:
        mirrored_x = tf.constant([-1.0, 1.0, 1.0])
        flipped["normals"] = tf.where(flip, flipped["normals"] * mirrored_x, flipped["normals"])
    return flipped
