"""Floating-point operations of the networks, for the achieved GFLOP/s that scripts/benchmark.py prints.

What is counted (`count_flops`): the layers that hold nearly all of these networks' arithmetic,
at 2 FLOPs per multiply-add, over the calls a function really makes:

- Conv2D: k_h * k_w * (c_in / groups) * c_out * H_out * W_out multiply-adds per image. "same"
  padding counts the zero-padded positions too, as a dense convolution computes them.
- Conv2DTranspose: k_h * k_w * c_in * c_out * H_in * W_in (every input pixel scatters a kernel).
- Dense: inputs * units per input row (every position of a non-flat input is a row).

Everything else is ignored: biases, normalisation, activations, pooling, resizing, concatenation,
losses and the optimizer's update. Those are elementwise or per-channel work, small beside the
convolutions, so the counts are slight underestimates. Only these Keras layers are seen: a
convolution written directly with `keras.ops.conv` would not be counted (this project has none).

Training (`TRAINING_FACTOR`, `GRADIENT_PENALTY_FACTOR`): the backward pass of a differentiated
computation is taken as 2x its forward (one pass for the gradients of the activations, one for
the weights'), so forward + backward = 3x forward. That is an upper estimate where only one of
the two gradients is needed (a frozen judge passes only input gradients back; the first layer of
a network on data needs no input gradient). The WGAN gradient penalty differentiates a gradient:
its forward (1x) and the input gradient it penalises (2x, a backward) make a 3x computation, and
the D update's backward runs through both (2 x 3x = 6x), 9x the forward in all, three times a
plain forward + backward of D.
"""

import contextlib
import math

import keras

TRAINING_FACTOR = 3
GRADIENT_PENALTY_FACTOR = 3 * TRAINING_FACTOR


def _dimensions(shape) -> int:
    return math.prod(int(size) for size in shape)


def conv2d_flops(layer, input_shape, output_shape) -> int:
    kernel_h, kernel_w = layer.kernel_size
    channels_in = input_shape[-1] // layer.groups
    return 2 * kernel_h * kernel_w * channels_in * layer.filters * _dimensions(output_shape[:-1])


def conv2d_transpose_flops(layer, input_shape, output_shape) -> int:
    kernel_h, kernel_w = layer.kernel_size
    return 2 * kernel_h * kernel_w * input_shape[-1] * layer.filters * _dimensions(input_shape[:-1])


def dense_flops(layer, input_shape, output_shape) -> int:
    return 2 * input_shape[-1] * layer.units * _dimensions(input_shape[:-1])


# None of the three subclasses another, so a call is counted once; a subclass of one (e.g. a
# custom conv) is counted by its parent's rule when its call reaches the parent's.
RULES = {keras.layers.Conv2D: conv2d_flops, keras.layers.Conv2DTranspose: conv2d_transpose_flops,
         keras.layers.Dense: dense_flops}


@contextlib.contextmanager
def observe_calls(observer):
    """Within the block, each call of a Conv2D, Conv2DTranspose or Dense layer (RULES) runs
    `observer(layer, inputs, outputs)` after it.

    Keras has no forward hooks, so these classes' `call` is wrapped for the duration. A network may
    call a layer several times (the depth network runs twice per G step): every call made is
    observed, and nothing that is merely built.
    """
    own = {cls: cls.__dict__.get("call") for cls in RULES}  # None: the class inherits its call

    def observing(inner):
        def call(self, inputs, *args, **kwargs):
            outputs = inner(self, inputs, *args, **kwargs)
            observer(self, inputs, outputs)
            return outputs

        return call

    try:
        for cls in RULES:
            cls.call = observing(cls.call)
        yield
    finally:
        for cls, original in own.items():
            if original is None:
                del cls.call
            else:
                cls.call = original


def count_flops(function) -> int:
    """FLOPs of the Conv2D, Conv2DTranspose and Dense calls that `function()` makes, run once eagerly.

    E.g. `count_flops(lambda: generator((images[:1], labels[:1])))` is the generator's forward
    FLOPs per image (the count scales with the batch).
    """
    totals = [0]

    def count(layer, inputs, outputs):
        rule = next(rule for cls, rule in RULES.items() if isinstance(layer, cls))
        totals[0] += rule(layer, tuple(inputs.shape), tuple(outputs.shape))

    with observe_calls(count):
        function()
    return totals[0]
