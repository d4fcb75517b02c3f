"""legan_tf.benchmark.flops: the forward FLOP counter against closed-form counts."""

import keras
import numpy as np
import pytest

from legan_tf.benchmark.flops import count_flops
from legan_tf.models.stargan import StarGANGenerator


def _zeros(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("batch", [1, 3])
def test_conv2d_is_two_flops_per_multiply_add_over_the_output(batch):
    k, cin, cout, h, w = 3, 4, 5, 8, 6
    conv = keras.layers.Conv2D(cout, k, padding="same")
    assert count_flops(lambda: conv(_zeros(batch, h, w, cin))) == batch * k * k * cin * cout * h * w * 2


def test_strided_and_grouped_conv2d_count_their_output_positions_and_group_inputs():
    strided = keras.layers.Conv2D(8, 4, strides=2, padding="same")
    assert count_flops(lambda: strided(_zeros(1, 16, 16, 3))) == 4 * 4 * 3 * 8 * 8 * 8 * 2
    grouped = keras.layers.Conv2D(6, 3, padding="valid", groups=2)
    assert count_flops(lambda: grouped(_zeros(1, 10, 10, 4))) == 3 * 3 * (4 // 2) * 6 * 8 * 8 * 2


def test_conv2d_transpose_scatters_a_kernel_from_every_input_pixel():
    k, cin, cout, h, w = 4, 6, 3, 5, 7
    up = keras.layers.Conv2DTranspose(cout, k, strides=2, padding="same")
    assert count_flops(lambda: up(_zeros(2, h, w, cin))) == 2 * k * k * cin * cout * h * w * 2


def test_dense_counts_every_input_row():
    dense = keras.layers.Dense(7)
    assert count_flops(lambda: dense(_zeros(3, 11))) == 3 * 11 * 7 * 2
    assert count_flops(lambda: dense(_zeros(2, 5, 11))) == 2 * 5 * 11 * 7 * 2


def test_a_model_is_the_sum_of_its_layers_and_everything_else_is_free():
    conv, dense = keras.layers.Conv2D(4, 3, padding="same"), keras.layers.Dense(2)
    model = keras.Sequential([keras.Input((8, 8, 3)), conv, keras.layers.ReLU(), keras.layers.BatchNormalization(),
                              keras.layers.Flatten(), dense])
    assert count_flops(lambda: model(_zeros(1, 8, 8, 3))) == 3 * 3 * 3 * 4 * 8 * 8 * 2 + 8 * 8 * 4 * 2 * 2


def test_a_layer_called_twice_counts_twice():
    dense = keras.layers.Dense(4)
    assert count_flops(lambda: dense(dense(_zeros(1, 4)))) == 2 * (4 * 4 * 2)


def test_stargan_generator_matches_its_layer_table():
    size, labels, filters = 16, 2, 4
    generator = StarGANGenerator(size, labels, filters, num_downsamples=1, num_residual_blocks=1)
    expected = 2 * (7 * 7 * (3 + labels) * filters * size**2           # stem
                    + 4 * 4 * filters * 2 * filters * (size // 2)**2  # down: stride 2, doubling
                    + 2 * 3 * 3 * (2 * filters)**2 * (size // 2)**2   # residual block: two 3x3 convs
                    + 4 * 4 * 2 * filters * filters * (size // 2)**2  # up: transposed, from the 8x8 input
                    + 7 * 7 * filters * 3 * size**2)                  # to RGB
    assert count_flops(lambda: generator((_zeros(1, size, size, 3), _zeros(1, labels)))) == expected


def test_the_layers_are_restored_even_when_the_function_fails():
    calls = {cls: cls.__dict__.get("call") for cls in (keras.layers.Conv2D, keras.layers.Conv2DTranspose,
                                                       keras.layers.Dense)}

    def failing():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        count_flops(failing)
    assert {cls: cls.__dict__.get("call") for cls in calls} == calls
