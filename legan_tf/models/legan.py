"""LEGAN's tri-hourglass generator (Banerjee et al. 2021).

Three hourglasses, each the StarGAN generator body (`StarGANGenerator`):

- the expression hourglass takes the image and N_e tiled one-hot channels and outputs an
  expression transformation mask M_e (3-channel tanh map);
- the lighting hourglass takes the image and N_l tiled channels and outputs a lighting mask M_l;
- the final hourglass takes concat(I, M_e, M_l) and outputs the translated image (tanh).

Splitting the two attributes into separate hourglasses is what disentangles them: the expression
mask never sees the lighting target and vice versa. At the paper size (128 px, N_e = 6, N_l = 20,
StarGAN body widths) the expression hourglass input is 128x128x9 and the three hourglasses have
8,433,664 + 8,477,568 + 8,433,664 = 25,344,896 parameters.

With `lighting_output="ratio"` (an option of this project, not the paper's) the lighting mask is read
as a shading ratio, the way relit training faces are made (ratio-image relighting, `legan_tf.photos.relight`):
the channel mean of M_l, averaged over a coarse grid and resized back bilinearly, is a log-ratio, and
the photo is multiplied by it before the final hourglass sees it. The final hourglass's attention
composite then copies from that relit face, so a lighting-only edit can be pure smooth shading of the
face's own pixels rather than a painted patch.

With `expression_output="warp"` (also this project's, not the paper's) the expression mask's first two
channels, averaged over a coarse grid and resized back bilinearly, are a displacement field of at most
`max_shift` of the image side, and the photo is resampled along it (bilinear, edges clamped) before it is
shaded and composited: an expression edit can move the mouth, brows and cheeks with the face's own pixels,
and the composite is left for what moving them cannot make (teeth, an open mouth).

LEGAN's discriminator is the StarGAN discriminator with two heads:
`StarGANDiscriminator(image_size, head_classes={"expression": N_e, "lighting": N_l})`.
"""

import math

import keras
from keras import ops

from legan_tf.models.stargan import StarGANGenerator, attention_parts


@keras.saving.register_keras_serializable(package="legan_tf")
class LEGANGenerator(keras.Model):
    """Tri-hourglass generator: joint expression and lighting translation through two masks.

    Call: `generator((images, labels))` like a StarGAN generator, with images (B, S, S, 3) in [-1, 1]
    and labels (B, num_expressions + num_lightings): the one-hot target expression followed by the
    one-hot target lighting (expression first, the order every label vector in this project uses).
    Returns the translated images in [-1, 1]. `generator.translate_with_masks((images, labels))`
    returns (images, expression_mask, lighting_mask).

    Args:
        image_size: square input size; divisible by 2**num_downsamples.
        num_expressions: N_e (6 on Multi-PIE).
        num_lightings: N_l (20 on Multi-PIE).
        base_filters, num_downsamples, num_residual_blocks: the body of every hourglass
            (StarGAN's 64, 2, 6 by default).
        mask_channels: channels of each mask (3 in the paper).
        upsampling: the hourglasses' upsampling, "transpose" (the paper's StarGAN body) or "resize"
            (see `StarGANGenerator`).
        output_mode: "image" (the paper: the final hourglass draws the whole face, tanh) or "attention"
            (the final hourglass outputs a colour map C and a mask A, and the result is
            A * C + (1 - A) * I, GANimation's composite as in `StarGANGenerator`: pixels neither
            attribute needs are copied from the input I). `edit_parts(inputs)` returns (C, A).
        grey_colour: with output_mode="attention", one colour-map channel repeated on all three.
        lighting_output: "mask" (the paper: M_l is only an input of the final hourglass) or "ratio"
            (with output_mode="attention": M_l also gives a smooth shading ratio in [1 / max_ratio,
            max_ratio] that multiplies the photo, and the composite copies from the shaded photo:
            A * C + (1 - A) * clip(ratio * I)). `shading_ratio(inputs)` returns the ratio.
        shading_grid: with lighting_output="ratio", the ratio is averaged over shading_grid x shading_grid
            cells before it is resized back bilinearly (its smoothness); image_size must be a multiple.
        max_ratio: with lighting_output="ratio", the largest factor (relight_faces.py's default, 4).
        expression_output: "mask" (the paper: M_e is only an input of the final hourglass) or "warp" (with
            output_mode="attention" and mask_channels >= 2: M_e's first two channels also give a smooth
            displacement field, and the composite copies from the photo resampled along it).
            `displacement(inputs)` returns the field.
        warp_grid: with expression_output="warp", the field is averaged over warp_grid x warp_grid cells before
            it is resized back bilinearly; image_size must be a multiple.
        max_shift: with expression_output="warp", the largest displacement along each axis as a fraction of
            image_size (0.1: 6.4 px at 64 px).
    """

    LIGHTING_OUTPUTS = ("mask", "ratio")
    EXPRESSION_OUTPUTS = ("mask", "warp")

    def __init__(self, image_size=128, num_expressions=6, num_lightings=20, base_filters=64, num_downsamples=2,
                 num_residual_blocks=6, mask_channels=3, upsampling="transpose", output_mode="image",
                 grey_colour=False, lighting_output="mask", shading_grid=16, max_ratio=4.0, expression_output="mask",
                 warp_grid=16, max_shift=0.1, **kwargs):
        super().__init__(**kwargs)
        for argument, value in (("num_expressions", num_expressions), ("num_lightings", num_lightings),
                                ("mask_channels", mask_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LEGANGenerator: {argument} must be a positive integer, got {value!r}.")
        if output_mode not in StarGANGenerator.OUTPUTS:
            raise ValueError(f"LEGANGenerator: output_mode must be one of {StarGANGenerator.OUTPUTS}, "
                             f"got {output_mode!r}.")
        if grey_colour and output_mode != "attention":
            raise ValueError("LEGANGenerator: grey_colour=True is a property of the attention output's colour map; "
                             f"output_mode={output_mode!r} has none.")
        if _composite_option("lighting_output", lighting_output, self.LIGHTING_OUTPUTS, "shades", output_mode,
                             ("shading_grid", shading_grid), image_size):
            if not max_ratio > 1.0:
                raise ValueError(f"LEGANGenerator: max_ratio must be above 1, got {max_ratio!r}.")
        if _composite_option("expression_output", expression_output, self.EXPRESSION_OUTPUTS, "moves", output_mode,
                             ("warp_grid", warp_grid), image_size):
            if mask_channels < 2:
                raise ValueError("LEGANGenerator: expression_output='warp' reads a displacement from two channels "
                                 f"of the expression mask; mask_channels is {mask_channels}.")
            if not 0.0 < max_shift <= 0.5:
                raise ValueError(f"LEGANGenerator: max_shift is a fraction of the image side in (0, 0.5], "
                                 f"got {max_shift!r}.")
        self.expression_output = expression_output
        self.warp_grid = int(warp_grid)
        self.max_shift = float(max_shift)
        self.lighting_output = lighting_output
        self.shading_grid = int(shading_grid)
        self.max_ratio = float(max_ratio)
        self.image_size = image_size
        self.num_expressions = num_expressions
        self.num_lightings = num_lightings
        self.base_filters = base_filters
        self.num_downsamples = num_downsamples
        self.num_residual_blocks = num_residual_blocks
        self.mask_channels = mask_channels
        self.upsampling = upsampling
        self.output_mode = output_mode
        self.grey_colour = bool(grey_colour)
        body = dict(image_size=image_size, base_filters=base_filters, num_downsamples=num_downsamples,
                    num_residual_blocks=num_residual_blocks, upsampling=upsampling)
        self.expression_hourglass = StarGANGenerator(num_labels=num_expressions, output_channels=mask_channels,
                                                     name="expression_hourglass", **body)
        self.lighting_hourglass = StarGANGenerator(num_labels=num_lightings, output_channels=mask_channels,
                                                   name="lighting_hourglass", **body)
        # With the attention output the final hourglass's last conv gives the colour channels and the
        # mask logit; its pre-activation features are read and split here (`_final_parts`).
        final_channels = 3 if output_mode == "image" else self._colour_channels + 1
        self.final_hourglass = StarGANGenerator(num_labels=0, input_channels=3 + 2 * mask_channels,
                                                output_channels=final_channels, name="final_hourglass", **body)

    @property
    def _colour_channels(self):
        return 1 if self.grey_colour else 3

    @property
    def num_labels(self):
        return self.num_expressions + self.num_lightings

    def build(self, input_shape=None):
        for hourglass in (self.expression_hourglass, self.lighting_hourglass, self.final_hourglass):
            if not hourglass.built:
                hourglass.build()
        self.built = True

    def _split(self, inputs):
        if isinstance(inputs, dict) or not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError(f"LEGANGenerator: call it with a pair (images, labels); got {type(inputs).__name__}.")
        images, labels = inputs
        label_shape = tuple(labels.shape)
        if len(label_shape) != 2 or (label_shape[-1] is not None and label_shape[-1] != self.num_labels):
            raise ValueError(
                f"LEGANGenerator: expected labels of shape (batch, {self.num_labels}) = {self.num_expressions} "
                f"expressions then {self.num_lightings} lightings, got {label_shape}.")
        return images, labels[:, :self.num_expressions], labels[:, self.num_expressions:]

    def _hourglasses(self, inputs, training):
        images, expression, lighting = self._split(inputs)
        if not self.built:  # called directly rather than through __call__
            self.build()
        expression_mask = self.expression_hourglass((images, expression), training=training)
        lighting_mask = self.lighting_hourglass((images, lighting), training=training)
        return images, expression_mask, lighting_mask

    def ratio_of_mask(self, lighting_mask):
        """The shading ratio (B, S, S, 1) of a lighting mask (B, S, S, C) in [-1, 1]: max_ratio ** m, where m is
        the channel mean averaged over shading_grid x shading_grid cells and resized back bilinearly."""
        smooth = self._smooth(ops.mean(lighting_mask, axis=-1, keepdims=True), self.shading_grid)
        return ops.exp(math.log(self.max_ratio) * smooth)

    def _smooth(self, maps, grid):
        """Maps (B, S, S, K) averaged over grid x grid cells and resized back to S x S bilinearly."""
        cell = self.image_size // grid
        channels = maps.shape[-1]
        cells = ops.mean(ops.reshape(maps, (-1, grid, cell, grid, cell, channels)), axis=(2, 4))
        return ops.image.resize(cells, (self.image_size, self.image_size), interpolation="bilinear")

    def displacement_of_mask(self, expression_mask):
        """The displacement field (B, S, S, 2) in pixels (rows, columns) of an expression mask (B, S, S, C) in
        [-1, 1]: its first two channels averaged over warp_grid x warp_grid cells, resized back bilinearly and
        scaled by max_shift * image_size."""
        return self._smooth(expression_mask[..., :2], self.warp_grid) * (self.max_shift * self.image_size)

    def _base(self, images, expression_mask, lighting_mask):
        """What the composite copies from: the photo; with expression_output="warp" resampled along the
        displacement; with lighting_output="ratio" then shaded by the ratio (on [0, 2] = images + 1, clipped back
        to [-1, 1])."""
        images = ops.cast(images, lighting_mask.dtype)
        if self.expression_output == "warp":
            images = warp_bilinear(images, self.displacement_of_mask(expression_mask))
        if self.lighting_output != "ratio":
            return images
        return ops.clip((images + 1.0) * self.ratio_of_mask(lighting_mask) - 1.0, -1.0, 1.0)

    def _final_parts(self, base, expression_mask, lighting_mask):
        merged = ops.concatenate([base, expression_mask, lighting_mask], axis=-1)
        return attention_parts(self.final_hourglass.last_features(merged), self._colour_channels, 3)

    def _composite(self, images, expression_mask, lighting_mask):
        """(translation, C, A) of the attention output from the hourglasses' masks: A * C + (1 - A) * base."""
        base = self._base(images, expression_mask, lighting_mask)
        color, mask = self._final_parts(base, expression_mask, lighting_mask)
        return mask * color + (1.0 - mask) * ops.cast(base, color.dtype), color, mask

    def attention_edit(self, inputs, training=False):
        """With output_mode="attention": (translation, colour map C, mask A); translation = A * C + (1 - A) * base,
        base the photo (or the shaded photo with lighting_output="ratio")."""
        if self.output_mode != "attention":
            raise ValueError("LEGANGenerator.attention_edit: the generator was built with output_mode='image'; it "
                             "returns whole images, not a colour map and a mask.")
        return self._composite(*self._hourglasses(inputs, training))

    def translate_with_masks(self, inputs, training=False):
        images, expression_mask, lighting_mask = self._hourglasses(inputs, training)
        if self.output_mode == "attention":
            output = self._composite(images, expression_mask, lighting_mask)[0]
        else:
            merged = ops.concatenate([images, expression_mask, lighting_mask], axis=-1)
            output = self.final_hourglass(merged, training=training)
        return output, expression_mask, lighting_mask

    def edit_parts(self, inputs, training=False):
        """With output_mode="attention": (colour map C in [-1, 1] of shape (B, S, S, 3), mask A in [0, 1] of
        shape (B, S, S, 1)); the translation is A * C + (1 - A) * images (with lighting_output="ratio", the
        images times `shading_ratio(inputs)`)."""
        return self.attention_edit(inputs, training)[1:]

    def _check_ratio(self, method):
        if self.lighting_output != "ratio":
            raise ValueError(f"LEGANGenerator.{method}: the generator was built with lighting_output='mask'; "
                             "its lighting is drawn by the final hourglass, not a shading ratio.")

    def shading_ratio(self, inputs, training=False):
        """With lighting_output="ratio": the shading ratio (B, S, S, 1) the photo is multiplied by."""
        self._check_ratio("shading_ratio")
        return self.ratio_of_mask(self._hourglasses(inputs, training)[2])

    def edit_parts_and_ratio(self, inputs, training=False):
        """With lighting_output="ratio": (C, A, ratio) of `edit_parts` and `shading_ratio` from one pass of
        the hourglasses."""
        self._check_ratio("edit_parts_and_ratio")
        images, expression_mask, lighting_mask = self._hourglasses(inputs, training)
        _, color, mask = self._composite(images, expression_mask, lighting_mask)
        return color, mask, self.ratio_of_mask(lighting_mask)

    def displacement(self, inputs, training=False):
        """With expression_output="warp": the displacement field (B, S, S, 2), in pixels along rows and columns,
        that the photo is resampled along (output pixel (y, x) reads the photo at (y + dy, x + dx))."""
        if self.expression_output != "warp":
            raise ValueError("LEGANGenerator.displacement: the generator was built with expression_output='mask'; "
                             "its expressions are drawn by the final hourglass, not a warp of the photo.")
        images, expression, _ = self._split(inputs)
        if not self.built:
            self.build()
        return self.displacement_of_mask(self.expression_hourglass((images, expression), training=training))

    def call(self, inputs, training=False):
        return self.translate_with_masks(inputs, training=training)[0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.image_size, self.image_size, 3)

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, num_expressions=self.num_expressions,
                      num_lightings=self.num_lightings, base_filters=self.base_filters,
                      num_downsamples=self.num_downsamples, num_residual_blocks=self.num_residual_blocks,
                      mask_channels=self.mask_channels)
        if self.upsampling != "transpose":  # only when set: configs saved before the option read the same
            config.update(upsampling=self.upsampling)
        if self.output_mode != "image":
            config.update(output_mode=self.output_mode)
        if self.grey_colour:
            config.update(grey_colour=True)
        if self.lighting_output != "mask":
            config.update(lighting_output=self.lighting_output, shading_grid=self.shading_grid,
                          max_ratio=self.max_ratio)
        if self.expression_output != "mask":
            config.update(expression_output=self.expression_output, warp_grid=self.warp_grid,
                          max_shift=self.max_shift)
        return config


def _composite_option(name, value, choices, verb, output_mode, grid, image_size):
    """Checks an option whose non-default value (choices[1]) changes the photo the attention composite copies from:
    a known value, the attention output, and its grid (name, value) a positive divisor of image_size. Returns
    whether the option is on."""
    if value not in choices:
        raise ValueError(f"LEGANGenerator: {name} must be one of {choices}, got {value!r}.")
    if value == choices[0]:
        return False
    if output_mode != "attention":
        raise ValueError(f"LEGANGenerator: {name}={value!r} {verb} the photo that the attention composite copies "
                         f"from; it needs output_mode='attention', got {output_mode!r}.")
    grid_name, grid_value = grid
    if not isinstance(grid_value, int) or grid_value < 1 or image_size % grid_value:
        raise ValueError(f"LEGANGenerator: {grid_name} must be a positive divisor of image_size {image_size}, "
                         f"got {grid_value!r}.")
    return True


def warp_bilinear(images, displacement):
    """images (B, H, W, C) resampled along displacement (B, H, W, 2): output (y, x) is the bilinear reading of the
    image at (y + dy, x + dx), the position clamped to the image (edge pixels repeat). Differentiable in both
    arguments (the weights of the four neighbours are linear in the position)."""
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    dtype = images.dtype
    rows = ops.clip(ops.arange(height, dtype=dtype)[:, None] + displacement[..., 0], 0.0, height - 1.0)
    cols = ops.clip(ops.arange(width, dtype=dtype)[None, :] + displacement[..., 1], 0.0, width - 1.0)
    row0, col0 = ops.floor(rows), ops.floor(cols)
    row_weight, col_weight = (rows - row0)[..., None], (cols - col0)[..., None]
    row0, col0 = ops.cast(row0, "int32"), ops.cast(col0, "int32")
    row1, col1 = ops.minimum(row0 + 1, height - 1), ops.minimum(col0 + 1, width - 1)
    flat = ops.reshape(images, (-1, height * width, channels))

    def read(row, col):
        index = ops.repeat(ops.reshape(row * width + col, (-1, height * width, 1)), channels, axis=-1)
        return ops.reshape(ops.take_along_axis(flat, index, axis=1), (-1, height, width, channels))

    top = (1.0 - col_weight) * read(row0, col0) + col_weight * read(row0, col1)
    bottom = (1.0 - col_weight) * read(row1, col0) + col_weight * read(row1, col1)
    return (1.0 - row_weight) * top + row_weight * bottom
