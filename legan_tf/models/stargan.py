"""StarGAN generator and discriminator, a faithful port of yunjey/stargan `model.py`.

At 128x128 with 5 labels and the reference defaults the generator has 8,430,528 parameters and the
discriminator 44,762,048, as the reference's `print_network` reports.

Documented differences from the reference (none changes a shape or a parameter count):

- Instance norm always uses per-image statistics, also at inference (the reference tracks running
  averages for `eval()` mode); see `legan_tf.layers.InstanceNorm`.
- Conv kernels start as PyTorch's default init; biases (discriminator trunk only) start at zero
  rather than PyTorch's uniform draw; see `legan_tf.layers`.

Both networks also take `input_channels` (and the generator `output_channels`), so the same
bodies serve the depth networks of Bodur et al. and LEGAN's hourglasses; the defaults are the
reference's 3-channel RGB.
"""

import keras
from keras import ops

from legan_tf.layers import ConvBlock, ResidualBlock, TileLabels, check_image_size, torch_default_kernel_initializer


def _check_images(owner, images, image_size, channels):
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(f"{owner}: expected NHWC images of rank 4, got shape {shape}.")
    height, width, depth = shape[1:]
    if (height is not None and height != image_size) or (width is not None and width != image_size):
        raise ValueError(
            f"{owner}: built for {image_size}x{image_size} images, got {height}x{width} "
            f"(image shape {shape}); construct the network with the image_size you feed it."
        )
    if depth is not None and depth != channels:
        raise ValueError(f"{owner}: expected {channels} image channels, got {depth} (image shape {shape}).")


def attention_parts(features, colour_channels, output_channels, residual_of=None):
    """GANimation's parts from a generator's last conv output: (colour map C = tanh of the first
    `colour_channels` channels, repeated to `output_channels` when fewer, mask A = sigmoid of the last).

    With `residual_of` (the input images), C is that input plus a change, clip(x + 2 tanh(.), -1, 1):
    under the mask the face's own texture is shifted rather than repainted (residual images, Shen and
    Liu 2017); 2 tanh reaches every value of [-1, 1] from any input value."""
    color = ops.tanh(features[..., :colour_channels])
    if colour_channels != output_channels:
        color = ops.repeat(color, output_channels, axis=-1)
    if residual_of is not None:
        color = ops.clip(ops.cast(residual_of, color.dtype) + 2.0 * color, -1.0, 1.0)
    return color, ops.sigmoid(features[..., colour_channels:])


@keras.saving.register_keras_serializable(package="legan_tf")
class StarGANGenerator(keras.Model):
    """The StarGAN generator: an image-to-image translator conditioned on target labels.

    Layers (reference defaults in brackets): tile the labels over the image plane and concatenate
    them to the image; conv 7x7 to base_filters [64], IN, ReLU; num_downsamples [2] x (conv 4x4
    stride 2 doubling the filters, IN, ReLU); num_residual_blocks [6] residual blocks at
    1/2**num_downsamples resolution; num_downsamples x (transposed conv 4x4 stride 2 halving the
    filters, IN, ReLU); conv 7x7 to output_channels [3]; tanh. Every conv is bias-free.

    Call: `generator((images, labels))` with images (B, image_size, image_size, input_channels) in
    [-1, 1] and labels (B, num_labels) float (one-hot, or multi-hot for multi-label attributes);
    a list `[images, labels]` works alike. With num_labels=0 (an unconditioned hourglass, e.g.
    LEGAN's final one) call `generator(images)`. Returns (B, image_size, image_size, output_channels)
    in [-1, 1].

    Two options depart from the reference (their defaults are the reference):

    - `upsampling="resize"`: each upsampling is a nearest-neighbour 2x resize then a 3x3 conv
      (resize-convolution, Odena et al. 2016) instead of the 4x4 stride-2 transposed conv, which
      can paint a period-2 checkerboard over the whole output.
    - `output_mode="attention"` (GANimation, Pumarola et al. 2018): the last conv gives a colour map C
      (output_channels, tanh) and a mask A (1 channel, sigmoid), and the output is
      A * C + (1 - A) * x: where A is 0 the input pixel is copied unchanged. `edit_parts(inputs)`
      returns (C, A), so a caller can composite them at another resolution
      (`legan_tf.photos`). Needs input_channels == output_channels.
    - `grey_colour=True` (attention only): the colour map is one channel, repeated on every output
      channel, so an edit of a grey face stays grey (three free channels drift apart into colour
      fringes where nothing asks them to agree).
    - `colour_map="residual"` (attention only): the colour map is the input plus a change,
      C = clip(x + 2 tanh(.), -1, 1), so under the mask the face's own texture is shifted, not
      repainted (residual images, Shen and Liu 2017); the default "absolute" paints C from scratch.

    Args:
        image_size: square input size; must be divisible by 2**num_downsamples.
        num_labels: length of the label vector tiled onto the input (5 in the reference; 0 for none).
        base_filters: filters of the first conv (64, the reference's conv_dim).
        num_downsamples: stride-2 downsamplings, mirrored by as many upsamplings (2).
        num_residual_blocks: residual blocks in the bottleneck (6, the reference's repeat_num).
        input_channels: image channels in (3).
        output_channels: image channels out (3).
        upsampling: "transpose" (the reference) or "resize".
        output_mode: "image" (the reference) or "attention".
        grey_colour: with output_mode="attention", one colour-map channel for all output channels.
        colour_map: with output_mode="attention", "absolute" (C painted) or "residual" (C = input + change).
    """

    UPSAMPLINGS = ("transpose", "resize")
    OUTPUTS = ("image", "attention")
    COLOUR_MAPS = ("absolute", "residual")

    def __init__(
        self,
        image_size=128,
        num_labels=5,
        base_filters=64,
        num_downsamples=2,
        num_residual_blocks=6,
        input_channels=3,
        output_channels=3,
        upsampling="transpose",
        output_mode="image",
        grey_colour=False,
        colour_map="absolute",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_image_size("StarGANGenerator", image_size, num_downsamples)
        if upsampling not in self.UPSAMPLINGS:
            raise ValueError(f"StarGANGenerator: upsampling must be one of {self.UPSAMPLINGS}, got {upsampling!r}.")
        if output_mode not in self.OUTPUTS:
            raise ValueError(f"StarGANGenerator: output_mode must be one of {self.OUTPUTS}, got {output_mode!r}.")
        if output_mode == "attention" and input_channels != output_channels:
            raise ValueError("StarGANGenerator: output_mode='attention' copies input pixels, so it needs "
                             f"input_channels == output_channels, got {input_channels} and {output_channels}.")
        if grey_colour and output_mode != "attention":
            raise ValueError("StarGANGenerator: grey_colour=True is a property of the attention output's colour "
                             f"map; output_mode={output_mode!r} has none.")
        if colour_map not in self.COLOUR_MAPS:
            raise ValueError(f"StarGANGenerator: colour_map must be one of {self.COLOUR_MAPS}, got {colour_map!r}.")
        if colour_map != "absolute" and output_mode != "attention":
            raise ValueError(f"StarGANGenerator: colour_map={colour_map!r} is a property of the attention output's "
                             f"colour map; output_mode={output_mode!r} has none.")
        for argument, value, minimum in (
            ("num_labels", num_labels, 0),
            ("base_filters", base_filters, 1),
            ("num_residual_blocks", num_residual_blocks, 0),
            ("input_channels", input_channels, 1),
            ("output_channels", output_channels, 1),
        ):
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"StarGANGenerator: {argument} must be an integer >= {minimum}, got {value!r}.")
        self.image_size = image_size
        self.num_labels = num_labels
        self.base_filters = base_filters
        self.num_downsamples = num_downsamples
        self.num_residual_blocks = num_residual_blocks
        self.input_channels = input_channels
        self.output_channels = output_channels
        self.upsampling = upsampling
        self.output_mode = output_mode
        self.grey_colour = bool(grey_colour)
        self.colour_map = colour_map

        self.tile = TileLabels(name="tile_labels")
        # One ordered list of the layers after the label tiling (tanh excepted), so tests and
        # sample code can walk the network stage by stage.
        self.body = [ConvBlock(base_filters, 7, name="stem")]
        filters = base_filters
        for index in range(num_downsamples):
            filters *= 2
            self.body.append(ConvBlock(filters, 4, strides=2, name=f"down{index + 1}"))
        for index in range(num_residual_blocks):
            self.body.append(ResidualBlock(filters, name=f"res{index + 1}"))
        for index in range(num_downsamples):
            filters //= 2
            if upsampling == "resize":
                self.body.append(ConvBlock(filters, 3, upsample=2, name=f"up{index + 1}"))
            else:
                self.body.append(ConvBlock(filters, 4, strides=2, transpose=True, name=f"up{index + 1}"))
        self.body.append(
            keras.layers.Conv2D(
                self._colour_channels + (1 if output_mode == "attention" else 0),
                7,
                padding="same",
                use_bias=False,
                kernel_initializer=torch_default_kernel_initializer(),
                name="to_image",
            )
        )

    @property
    def _colour_channels(self):
        return 1 if self.grey_colour else self.output_channels

    def build(self, input_shape=None):
        # Everything the variables depend on is a constructor argument, so the network builds the
        # same whatever shape Keras recorded (this is also what `.keras` loading calls).
        shape = (None, self.image_size, self.image_size, self.input_channels + self.num_labels)
        for layer in self.body:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def _split(self, inputs):
        if self.num_labels == 0:
            if isinstance(inputs, (tuple, list)):
                raise ValueError("StarGANGenerator: built with num_labels=0, call it with images alone.")
            return inputs, None
        if isinstance(inputs, dict) or not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            length = f" of length {len(inputs)}" if isinstance(inputs, (tuple, list)) else ""
            raise ValueError(
                f"StarGANGenerator: call it with a pair (images, labels); got {type(inputs).__name__}{length}."
            )
        return inputs[0], inputs[1]

    def call(self, inputs, training=False):
        if self.output_mode == "attention":
            images = self._split(inputs)[0]
            color, mask = self.edit_parts(inputs, training=training)
            return mask * color + (1.0 - mask) * ops.cast(images, color.dtype)
        return ops.tanh(self.last_features(inputs))

    def edit_parts(self, inputs, training=False):
        """With output_mode="attention": (colour map C in [-1, 1], mask A in [0, 1] of shape (B, S, S, 1))."""
        if self.output_mode != "attention":
            raise ValueError("StarGANGenerator.edit_parts: the generator was built with output_mode='image'; it "
                             "returns whole images, not a colour map and a mask.")
        residual_of = self._split(inputs)[0] if self.colour_map == "residual" else None
        return attention_parts(self.last_features(inputs), self._colour_channels, self.output_channels, residual_of)

    def last_features(self, inputs):
        """The last conv's output before tanh (and, with the attention output, before the split and sigmoid):
        (B, S, S, output_channels), or colour channels + 1 with output_mode="attention"."""
        images, labels = self._split(inputs)
        _check_images("StarGANGenerator", images, self.image_size, self.input_channels)
        features = images
        if labels is not None:
            label_shape = tuple(labels.shape)
            if len(label_shape) != 2 or (label_shape[-1] is not None and label_shape[-1] != self.num_labels):
                raise ValueError(
                    f"StarGANGenerator: expected labels of shape (batch, {self.num_labels}), got {label_shape}."
                )
            features = self.tile([images, labels])
        for layer in self.body:
            features = layer(features)
        return features

    def compute_output_shape(self, input_shape):
        image_shape = input_shape if self.num_labels == 0 else input_shape[0]
        return (image_shape[0], self.image_size, self.image_size, self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            num_labels=self.num_labels,
            base_filters=self.base_filters,
            num_downsamples=self.num_downsamples,
            num_residual_blocks=self.num_residual_blocks,
            input_channels=self.input_channels,
            output_channels=self.output_channels,
        )
        # Only when set, so a generator saved before these options has the same config as before.
        if self.upsampling != "transpose":
            config.update(upsampling=self.upsampling)
        if self.output_mode != "image":
            config.update(output_mode=self.output_mode)
        if self.grey_colour:
            config.update(grey_colour=True)
        if self.colour_map != "absolute":
            config.update(colour_map=self.colour_map)
        return config


@keras.saving.register_keras_serializable(package="legan_tf")
class StarGANDiscriminator(keras.Model):
    """The StarGAN PatchGAN discriminator: a real/fake patch map plus attribute logits.

    Trunk: num_downsamples [6] x (conv 4x4 stride 2 with bias, LeakyReLU 0.01), filters
    base_filters [64] doubling each time (capped at max_filters if given; the reference does not
    cap). Heads, both bias-free, on the last feature map (image_size / 2**num_downsamples wide):
    `src`, a 3x3 "same" conv to 1 channel (the real/fake score map); the class head(s), a valid conv
    whose kernel covers the whole feature map, giving one logit per class.

    Call: `discriminator(images)` with images (B, image_size, image_size, input_channels). Returns
    `(src, cls)`: src (B, s, s, 1) with s = image_size / 2**num_downsamples, and

    - with `head_classes=None` (the reference): cls, logits (B, num_labels);
    - with `head_classes={"lighting": 20, "expression": 6}` (LEGAN's two heads): cls, a dict
      {name: logits (B, classes)} in the order given; num_labels is then unused. A single-entry
      dict gives a one-entry dict, so trainers can treat every attribute alike.

    Separate heads have exactly the parameters of one head with the summed class count; their
    logits are kept apart so each attribute gets its own softmax.

    Args:
        image_size: square input size; must be divisible by 2**num_downsamples.
        num_labels: classes of the single class head (5 in the reference's CelebA setting).
        base_filters: filters of the first conv (64, the reference's conv_dim).
        num_downsamples: stride-2 convs in the trunk (6, the reference's repeat_num).
        max_filters: optional cap on the trunk's filters (None: no cap, as the reference).
        head_classes: optional {attribute name: class count} for several class heads.
        input_channels: image channels in (3; 1 for a depth discriminator).
        leaky_slope: LeakyReLU negative slope (0.01).
    """

    def __init__(
        self,
        image_size=128,
        num_labels=5,
        base_filters=64,
        num_downsamples=6,
        max_filters=None,
        head_classes=None,
        input_channels=3,
        leaky_slope=0.01,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_image_size("StarGANDiscriminator", image_size, num_downsamples)
        if num_downsamples < 1:
            raise ValueError("StarGANDiscriminator: num_downsamples must be at least 1.")
        for argument, value in (("base_filters", base_filters), ("input_channels", input_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"StarGANDiscriminator: {argument} must be a positive integer, got {value!r}.")
        if max_filters is not None and (not isinstance(max_filters, int) or max_filters < 1):
            raise ValueError(
                f"StarGANDiscriminator: max_filters must be None or a positive integer, got {max_filters!r}."
            )
        if head_classes is None:
            if not isinstance(num_labels, int) or num_labels < 1:
                raise ValueError(f"StarGANDiscriminator: num_labels must be a positive integer, got {num_labels!r}.")
            heads = {"cls": num_labels}
        else:
            head_classes = dict(head_classes)
            if not head_classes or any(
                not isinstance(name, str) or not isinstance(count, int) or count < 1
                for name, count in head_classes.items()
            ):
                raise ValueError(
                    "StarGANDiscriminator: head_classes must map attribute names to positive class counts, "
                    f"got {head_classes!r}."
                )
            heads = head_classes
        self.image_size = image_size
        self.num_labels = num_labels
        self.base_filters = base_filters
        self.num_downsamples = num_downsamples
        self.max_filters = max_filters
        self.head_classes = head_classes
        self.input_channels = input_channels
        self.leaky_slope = leaky_slope
        self.output_size = image_size // 2**num_downsamples

        self.trunk = []
        for index in range(num_downsamples):
            filters = base_filters * 2**index
            if max_filters is not None:
                filters = min(filters, max_filters)
            self.trunk += [
                keras.layers.Conv2D(
                    filters,
                    4,
                    strides=2,
                    padding="same",
                    kernel_initializer=torch_default_kernel_initializer(),
                    name=f"conv{index + 1}",
                ),
                keras.layers.LeakyReLU(leaky_slope),
            ]
        self.src = keras.layers.Conv2D(
            1, 3, padding="same", use_bias=False, kernel_initializer=torch_default_kernel_initializer(), name="src"
        )
        self.cls_heads = {
            name: keras.layers.Conv2D(
                count,
                self.output_size,
                padding="valid",
                use_bias=False,
                kernel_initializer=torch_default_kernel_initializer(),
                name=name if head_classes is None else f"cls_{name}",
            )
            for name, count in heads.items()
        }

    def build(self, input_shape=None):
        shape = (None, self.image_size, self.image_size, self.input_channels)
        for layer in self.trunk:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        if not self.src.built:
            self.src.build(shape)
        for head in self.cls_heads.values():
            if not head.built:
                head.build(shape)

    def call(self, images, training=False):
        _check_images("StarGANDiscriminator", images, self.image_size, self.input_channels)
        features = images
        for layer in self.trunk:
            features = layer(features)
        src = self.src(features)
        logits = {name: keras.ops.reshape(head(features), (-1, head.filters)) for name, head in self.cls_heads.items()}
        if self.head_classes is None:
            return src, logits["cls"]
        return src, logits

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            num_labels=self.num_labels,
            base_filters=self.base_filters,
            num_downsamples=self.num_downsamples,
            max_filters=self.max_filters,
            head_classes=self.head_classes,
            input_channels=self.input_channels,
            leaky_slope=self.leaky_slope,
        )
        return config
