"""Building blocks shared by the StarGAN and LEGAN networks (port of yunjey/stargan `model.py`).

Padding. PyTorch's explicit paddings in the reference are all Keras `padding="same"` for even
input sizes (which the networks enforce):

- conv 7x7 stride 1 padding 3 and conv 3x3 stride 1 padding 1: "same" pads (k - 1) / 2 each side.
- conv 4x4 stride 2 padding 1: "same" pads 4 - 2 = 2 in total, split 1 before / 1 after.
- transposed conv 4x4 stride 2 padding 1: PyTorch crops 1 from each side of the full
  (2H + 2)-wide transposed convolution; Keras "same" gives 2H by the same crop.

`tests/test_layers.py` checks each case against a numpy convolution with the reference padding.

Initialisation. `torch_default_kernel_initializer()` draws kernels as PyTorch's default
(`kaiming_uniform_(a=sqrt(5))`, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))); the reference applies no
custom init. Biases start at zero (PyTorch draws them from the same uniform): a documented difference.
"""

import keras


def torch_default_kernel_initializer(seed=None):
    """PyTorch's default conv / transposed-conv kernel init: U(-b, b) with b = 1/sqrt(fan_in).

    kaiming_uniform_(a=sqrt(5)) has bound gain*sqrt(3/fan_in) with gain = sqrt(2/(1+5)), i.e.
    sqrt(1/fan_in): VarianceScaling(scale=1/3, fan_in, uniform) has bound sqrt(3*scale/fan_in), the
    same. Keras computes the fan-in of a Conv2DTranspose kernel (k, k, out, in) as k*k*out, like
    PyTorch does for its (in, out, k, k) transposed-conv weight.
    """
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed)


@keras.saving.register_keras_serializable(package="legan_tf")
class InstanceNorm(keras.layers.GroupNormalization):
    """Instance normalisation with a learned per-channel scale and offset (PyTorch InstanceNorm2d(affine=True)).

    A GroupNormalization with one group per channel (`groups=-1`) and PyTorch's epsilon 1e-5; the
    variance is the biased one, as in PyTorch. `groups` is fixed, so it is neither an argument nor
    part of the config.

    Documented difference from the reference: yunjey/stargan builds its norms with
    `track_running_stats=True`, so in `eval()` mode PyTorch normalises with running averages of the
    per-instance statistics collected in training. This layer always normalises each image by its
    own statistics, in training and inference alike: per-image statistics are what every training
    step sees, so inference matches training exactly, no running state has to be tracked or
    synchronised across replicas, and the output of one image never depends on the batch or on
    the history of training.
    """

    def __init__(self, epsilon=1e-5, center=True, scale=True, **kwargs):
        groups = kwargs.pop("groups", -1)
        if groups != -1:
            raise ValueError(f"InstanceNorm: groups is fixed at -1 (one group per channel), got {groups}.")
        super().__init__(groups=-1, epsilon=epsilon, center=center, scale=scale, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("groups", None)
        return config


@keras.saving.register_keras_serializable(package="legan_tf")
class TileLabels(keras.layers.Layer):
    """Concatenates labels, tiled over the image plane, to an image: the StarGAN conditioning.

    Call with `[images, labels]`: images (B, H, W, C) and labels (B, L) float (one-hot or
    multi-hot); returns (B, H, W, C + L), the label channels after the image channels (the
    reference's `torch.cat([x, c], dim=1)`).
    """

    def call(self, inputs):
        images, labels = inputs
        labels = keras.ops.cast(labels, images.dtype)
        labels = keras.ops.expand_dims(keras.ops.expand_dims(labels, 1), 1)  # (B, 1, 1, L)
        tiled = labels * keras.ops.ones_like(images[..., :1])  # broadcast to (B, H, W, L)
        return keras.ops.concatenate([images, tiled], axis=-1)

    def compute_output_shape(self, input_shape):
        image_shape, label_shape = input_shape
        channels = None if image_shape[-1] is None or label_shape[-1] is None else image_shape[-1] + label_shape[-1]
        return tuple(image_shape[:-1]) + (channels,)


@keras.saving.register_keras_serializable(package="legan_tf")
class ConvBlock(keras.layers.Layer):
    """conv (bias-free) -> InstanceNorm -> ReLU, the unit of the StarGAN generator.

    Args:
        filters: output channels.
        kernel_size: square kernel size.
        strides: 1, or 2 to halve (conv) / double (transposed conv) the spatial size.
        transpose: use Conv2DTranspose (the generator's upsampling) instead of Conv2D.
        upsample: 1, or 2 to double the size first by nearest-neighbour resizing, then convolve with
            stride 1 (resize-convolution: Odena et al. 2016, "Deconvolution and Checkerboard
            Artifacts"; every output pixel then sees the same number of kernel taps, so the layer
            cannot paint the period-2 grid a strided transposed convolution can).
    """

    def __init__(self, filters, kernel_size=3, strides=1, transpose=False, upsample=1, **kwargs):
        super().__init__(**kwargs)
        if upsample not in (1, 2) or (upsample > 1 and (transpose or strides != 1)):
            raise ValueError(f"ConvBlock: upsample={upsample!r} must be 1, or 2 with strides=1 and no transpose.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.transpose = transpose
        self.upsample = upsample
        self.resize = keras.layers.UpSampling2D(upsample, interpolation="nearest") if upsample > 1 else None
        conv_class = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
        self.conv = conv_class(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=torch_default_kernel_initializer(),
            name="conv",
        )
        self.norm = InstanceNorm(name="norm")
        self.relu = keras.layers.ReLU()

    def _resized_shape(self, input_shape):
        if self.resize is None:
            return tuple(input_shape)
        return self.resize.compute_output_shape(input_shape)

    def build(self, input_shape):
        shape = self._resized_shape(input_shape)
        if not self.conv.built:
            self.conv.build(shape)
        if not self.norm.built:
            self.norm.build(self.conv.compute_output_shape(shape))

    def call(self, inputs):
        if self.resize is not None:
            inputs = self.resize(inputs)
        return self.relu(self.norm(self.conv(inputs)))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self._resized_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, transpose=self.transpose)
        if self.upsample != 1:  # only when set, so configs saved before the option read the same
            config.update(upsample=self.upsample)
        return config


@keras.saving.register_keras_serializable(package="legan_tf")
class ResidualBlock(keras.layers.Layer):
    """x + IN(conv3x3(ReLU(IN(conv3x3(x))))), convs bias-free: the reference's ResidualBlock.

    The input must have `filters` channels (the reference uses dim_in == dim_out).
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv_a = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=torch_default_kernel_initializer(),
            name="conv_a",
        )
        self.norm_a = InstanceNorm(name="norm_a")
        self.relu = keras.layers.ReLU()
        self.conv_b = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=torch_default_kernel_initializer(),
            name="conv_b",
        )
        self.norm_b = InstanceNorm(name="norm_b")

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.filters:
            raise ValueError(
                f"ResidualBlock: input has {input_shape[-1]} channels but the block has {self.filters} filters; "
                "the skip connection needs them equal."
            )
        shape = tuple(input_shape[:-1]) + (self.filters,)
        for layer in (self.conv_a, self.norm_a, self.conv_b, self.norm_b):
            if not layer.built:
                layer.build(shape)

    def call(self, inputs):
        return inputs + self.norm_b(self.conv_b(self.relu(self.norm_a(self.conv_a(inputs)))))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


def check_image_size(owner, image_size, num_downsamples):
    """A network with `num_downsamples` stride-2 stages needs a positive size divisible by 2**num_downsamples."""
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"{owner}: image_size must be a positive integer, got {image_size!r}.")
    if not isinstance(num_downsamples, int) or num_downsamples < 0:
        raise ValueError(f"{owner}: num_downsamples must be a non-negative integer, got {num_downsamples!r}.")
    if image_size % (2**num_downsamples):
        raise ValueError(
            f"{owner}: image_size {image_size} is not divisible by 2**num_downsamples = {2**num_downsamples}."
        )
