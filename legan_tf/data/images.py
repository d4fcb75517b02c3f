"""Image validation with PIL (every file decoded fully once, before training) and decoding with tf.io.

Validation is the gatekeeper: the tf decoders below assume a file passed it, so a corrupt or
wrongly-typed file is reported with its manifest row instead of failing mid-training.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import tensorflow as tf
from PIL import Image, ImageFile, UnidentifiedImageError

# Truncated files must fail validation, not be padded with grey by PIL.
ImageFile.LOAD_TRUNCATED_IMAGES = False

RGB_FORMATS = ("PNG", "JPEG")
# PIL modes of a 16-bit single-channel PNG (the exact one depends on the PNG's byte order / Pillow).
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
# Colour modes convert_color turns into RGB: grey, grey+alpha, RGBA and palette images.
CONVERTIBLE_MODES = ("L", "LA", "RGBA", "P", "PA")


class ImageFault(Exception):
    """A file that fails validation; the message says what is wrong with it (not where it is)."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    format: str
    bit_depth: int


# Pillow's own decompression-bomb threshold (89.5 MP, about 270 MB as RGB): no face image of a dataset
# comes near it, and decoding a forged header that claims more would exhaust memory.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS


def _too_large(pixels, role) -> ImageFault:
    return ImageFault(f"{role} too large to decode (its header says {pixels:,} pixels; the limit is {MAX_PIXELS:,})")


def _load_fully(path: str, role: str) -> Image.Image:
    if not os.path.exists(path):
        raise ImageFault(f"missing {role} file")
    if os.path.isdir(path):
        raise ImageFault(f"{role} path is a folder, not a file")
    try:
        with warnings.catch_warnings():  # refused below from the header, so Pillow's warning says nothing more
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
        if image.width * image.height > MAX_PIXELS:
            raise _too_large(image.width * image.height, role)
        image.load()
    except Image.DecompressionBombError as error:  # Pillow refuses twice its limit already when opening
        claimed = [int(word.strip("(")) for word in str(error).split() if word.strip("(").isdigit()]
        raise _too_large(claimed[0] if claimed else MAX_PIXELS + 1, role) from None
    except UnidentifiedImageError:
        raise ImageFault(f"unreadable {role} (not an image file)") from None
    except (OSError, SyntaxError, ValueError) as error:
        if "truncated" in str(error).lower():
            raise ImageFault(f"truncated {role} file") from None
        raise ImageFault(f"unreadable {role} ({error})") from None
    return image


def _info(image: Image.Image, bit_depth: int) -> ImageInfo:
    return ImageInfo(image.width, image.height, image.mode, image.format or "", bit_depth)


def inspect_rgb(path: str, convert_color: bool) -> ImageInfo:
    """Validates an RGB face image: PNG or JPEG, 8-bit, RGB (or convertible when convert_color)."""
    image = _load_fully(path, "image")
    if image.format not in RGB_FORMATS:
        raise ImageFault(f"{image.format} image; expected PNG or JPEG")
    if image.mode == "RGB":
        return _info(image, 8)
    if image.mode in SIXTEEN_BIT_MODES:
        raise ImageFault(f"16-bit grayscale image (mode {image.mode}); expected 8-bit RGB")
    if image.mode in CONVERTIBLE_MODES:
        if convert_color:
            return _info(image, 8)
        kind = {"L": "grayscale", "LA": "grayscale+alpha", "RGBA": "RGBA", "P": "palette",
                "PA": "palette+alpha"}[image.mode]
        raise ImageFault(
            f"{kind} image (mode {image.mode}); expected RGB (--convert_color converts it)")
    raise ImageFault(f"image mode {image.mode} not supported; expected RGB")


def inspect_depth(path: str, depth_bits: str = "auto") -> ImageInfo:
    """Validates a depth map: a single-channel 8- or 16-bit PNG, of the declared bit depth
    (`depth_bits` "8" or "16"; "auto" accepts both), that is not all zero or constant (no face,
    or a failed 3D fit). Returns its bit depth."""
    image = _load_fully(path, "depth map")
    if image.format != "PNG":
        raise ImageFault(f"depth map is {image.format}; expected a single-channel PNG")
    if image.mode == "L":
        bits = 8
    elif image.mode in SIXTEEN_BIT_MODES:
        bits = 16
    else:
        raise ImageFault(f"depth map has mode {image.mode}; expected single-channel 8- or 16-bit")
    if depth_bits != "auto" and int(depth_bits) != bits:
        raise ImageFault(
            f"depth map is {bits}-bit (mode {image.mode}) but --depth_bits={depth_bits} declares "
            f"{depth_bits}-bit")
    low, high = image.getextrema()
    if high == 0:
        raise ImageFault("depth map is all zero (no face, or a failed fit)")
    if low == high:
        raise ImageFault(
            f"depth map is constant ({low} everywhere, of {2 ** bits - 1}; no face, or a failed fit)")
    return _info(image, bits)


def inspect_normals(path: str) -> ImageInfo:
    """Validates a surface-normal map: an 8-bit RGB PNG."""
    image = _load_fully(path, "normal map")
    if image.format != "PNG" or image.mode != "RGB":
        raise ImageFault(
            f"normal map is {image.format} mode {image.mode}; expected an 8-bit RGB PNG")
    return _info(image, 8)


def inspect_mask(path: str) -> ImageInfo:
    """Validates a face mask: a single-channel PNG (non-zero = face)."""
    image = _load_fully(path, "mask")
    if image.format != "PNG" or image.mode not in ("L", "1"):
        raise ImageFault(
            f"mask is {image.format} mode {image.mode}; expected a single-channel PNG")
    return _info(image, 8 if image.mode == "L" else 1)


def check_same_size(role: str, info: ImageInfo, image_info: ImageInfo) -> None:
    if (info.width, info.height) != (image_info.width, image_info.height):
        raise ImageFault(
            f"{role} is {info.width}x{info.height} but the image is "
            f"{image_info.width}x{image_info.height}")


# --- tf decoding (files that passed validation) -------------------------------------------------

def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    """PNG/JPEG bytes -> uint8 (H, W, 3). Grey is repeated; alpha is composited over black.

    Only convert_color lets non-RGB files through validation, so for plain RGB this is the identity.
    """
    image = tf.io.decode_image(encoded, channels=0, expand_animations=False, dtype=tf.uint8)
    channels = tf.shape(image)[-1]
    color_channels = tf.where(channels >= 3, 3, 1)
    color = tf.cast(image[..., :color_channels], tf.float32)
    has_alpha = tf.equal(channels % 2, 0)
    alpha = tf.cond(
        has_alpha,
        lambda: tf.cast(image[..., -1:], tf.float32) / 255.0,
        lambda: tf.ones_like(color[..., :1]))
    color = tf.cast(tf.round(color * alpha), tf.uint8)
    rgb = tf.tile(color, [1, 1, 3 // color_channels])
    rgb.set_shape([None, None, 3])
    return rgb


def decode_depth(encoded: tf.Tensor) -> tf.Tensor:
    """Depth PNG bytes -> float32 (H, W, 1) in [0, 1], normalised by the file's dtype maximum.

    Decoding as uint16 scales an 8-bit PNG by 257 (255 -> 65535), so one division by 65535
    normalises 8-bit and 16-bit files alike.
    """
    depth = tf.io.decode_png(encoded, channels=1, dtype=tf.uint16)
    return tf.cast(depth, tf.float32) / 65535.0


def decode_normals(encoded: tf.Tensor) -> tf.Tensor:
    """Normal-map PNG bytes -> uint8 (H, W, 3)."""
    return tf.io.decode_png(encoded, channels=3)


def decode_mask(encoded: tf.Tensor) -> tf.Tensor:
    """Mask PNG bytes -> float32 (H, W, 1), 1 on the face (any non-zero pixel) and 0 elsewhere."""
    return tf.cast(tf.io.decode_png(encoded, channels=1) > 0, tf.float32)
