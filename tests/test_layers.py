import keras
import numpy as np
import pytest

from legan_tf.layers import ConvBlock, InstanceNorm, ResidualBlock, TileLabels, torch_default_kernel_initializer

RNG = np.random.default_rng(0)


def _torch_conv2d(x, kernel, stride, padding):
    """PyTorch Conv2d semantics (cross-correlation, explicit zero padding) in numpy.

    x: (H, W, Cin); kernel: Keras layout (k, k, Cin, Cout).
    """
    k = kernel.shape[0]
    x = np.pad(x, ((padding, padding), (padding, padding), (0, 0)))
    out_h = (x.shape[0] - k) // stride + 1
    out_w = (x.shape[1] - k) // stride + 1
    out = np.zeros((out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[i, j] = np.einsum("abc,abco->o", patch, kernel)
    return out


def _torch_conv_transpose2d(x, kernel, stride, padding):
    """PyTorch ConvTranspose2d semantics in numpy: the full transposed convolution, cropped by
    `padding` on each side. x: (H, W, Cin); kernel: Keras Conv2DTranspose layout (k, k, Cout, Cin),
    i.e. PyTorch's weight[c, o, a, b] = kernel[a, b, o, c]."""
    k = kernel.shape[0]
    height, width = x.shape[:2]
    full = np.zeros(((height - 1) * stride + k, (width - 1) * stride + k, kernel.shape[2]))
    for i in range(height):
        for j in range(width):
            full[i * stride : i * stride + k, j * stride : j * stride + k] += np.einsum("c,aboc->abo", x[i, j], kernel)
    return full[padding : full.shape[0] - padding, padding : full.shape[1] - padding]


@pytest.mark.parametrize("kernel_size,stride,padding", [(7, 1, 3), (4, 2, 1), (3, 1, 1)])
def test_same_conv_is_the_reference_padding_on_even_sizes(kernel_size, stride, padding):
    x = RNG.normal(size=(1, 8, 8, 2)).astype(np.float32)
    conv = keras.layers.Conv2D(3, kernel_size, strides=stride, padding="same", use_bias=False)
    got = np.asarray(conv(x))[0]
    expected = _torch_conv2d(x[0].astype(np.float64), np.asarray(conv.kernel, np.float64), stride, padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("size", [4, 6])
def test_same_transposed_conv_is_pytorch_conv_transpose_k4_s2_p1(size):
    x = RNG.normal(size=(1, size, size, 2)).astype(np.float32)
    conv = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", use_bias=False)
    conv.build(x.shape)
    # A known, asymmetric kernel, so a flipped or transposed kernel would not pass.
    kernel = np.arange(4 * 4 * 3 * 2, dtype=np.float32).reshape(4, 4, 3, 2) / 10.0 - 2.0
    conv.kernel.assign(kernel)
    got = np.asarray(conv(x))[0]
    expected = _torch_conv_transpose2d(x[0].astype(np.float64), kernel.astype(np.float64), stride=2, padding=1)
    assert got.shape == expected.shape == (2 * size, 2 * size, 3)  # PyTorch: (H-1)*2 - 2*1 + 4 = 2H
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_kernels_start_as_pytorch_default_uniform():
    conv = keras.layers.Conv2D(64, 4, kernel_initializer=torch_default_kernel_initializer(seed=1))
    conv.build((None, 8, 8, 32))
    bound = 1.0 / np.sqrt(4 * 4 * 32)
    kernel = np.asarray(conv.kernel)
    assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.95 * bound
    np.testing.assert_allclose(kernel.std(), bound / np.sqrt(3), rtol=0.05)
    transposed = keras.layers.Conv2DTranspose(16, 4, kernel_initializer=torch_default_kernel_initializer(seed=1))
    transposed.build((None, 8, 8, 32))
    bound = 1.0 / np.sqrt(4 * 4 * 16)  # PyTorch's fan-in of a (in, out, k, k) transposed weight: out * k * k
    assert 0.95 * bound < np.abs(np.asarray(transposed.kernel)).max() <= bound


def test_instance_norm_normalises_each_image_and_channel_with_affine_parameters():
    x = RNG.normal(3.0, 2.0, size=(3, 5, 4, 2)).astype(np.float32)
    norm = InstanceNorm()
    norm.build(x.shape)
    assert norm.epsilon == 1e-5
    assert [tuple(w.shape) for w in norm.weights] == [(2,), (2,)]  # gamma, beta: PyTorch affine=True
    norm.gamma.assign([2.0, 0.5])
    norm.beta.assign([1.0, -1.0])
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)  # biased, as PyTorch
    expected = (x - mean) / np.sqrt(var + 1e-5) * np.array([2.0, 0.5]) + np.array([1.0, -1.0])
    np.testing.assert_allclose(np.asarray(norm(x)), expected, atol=1e-5)
    # Per instance in inference too, and independent of the rest of the batch.
    np.testing.assert_allclose(np.asarray(norm(x[:1], training=False)), expected[:1], atol=1e-5)
    np.testing.assert_allclose(np.asarray(norm(x, training=True)), expected, atol=1e-5)


def test_instance_norm_config_round_trip_and_fixed_groups():
    norm = InstanceNorm(name="in")
    config = norm.get_config()
    assert "groups" not in config and config["epsilon"] == 1e-5
    restored = keras.layers.deserialize(keras.layers.serialize(norm))
    assert isinstance(restored, InstanceNorm) and restored.groups == -1 and restored.epsilon == 1e-5
    assert InstanceNorm(groups=-1).groups == -1
    with pytest.raises(ValueError, match="groups is fixed"):
        InstanceNorm(groups=2)


def test_tile_labels_appends_constant_label_planes():
    images = RNG.normal(size=(2, 3, 4, 3)).astype(np.float32)
    labels = np.array([[1, 0], [0.25, 1]], np.float32)
    out = np.asarray(TileLabels()([images, labels]))
    assert out.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(out[..., :3], images)
    for example in range(2):
        for label in range(2):
            np.testing.assert_array_equal(out[example, :, :, 3 + label], np.full((3, 4), labels[example, label]))
    assert TileLabels().compute_output_shape(((None, 3, 4, 3), (None, 2))) == (None, 3, 4, 5)


def test_residual_block_is_identity_plus_a_bias_free_branch():
    block = ResidualBlock(4)
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    assert np.asarray(block(x)).shape == x.shape
    assert block.count_params() == 2 * (3 * 3 * 4 * 4) + 2 * (2 * 4)  # two bias-free convs, two affine INs
    assert not block.conv_a.use_bias and not block.conv_b.use_bias
    # With the branch's last norm at scale 0 and offset 0 the block passes x through.
    block.norm_b.gamma.assign(np.zeros(4, np.float32))
    np.testing.assert_allclose(np.asarray(block(x)), x, atol=1e-6)
    # The branch ends in instance norm: with scale 1 its contribution has zero mean per channel.
    block.norm_b.gamma.assign(np.ones(4, np.float32))
    branch = np.asarray(block(x)) - x
    np.testing.assert_allclose(branch.mean(axis=(1, 2)), 0.0, atol=1e-5)
    restored = ResidualBlock.from_config(block.get_config())
    assert restored.filters == 4
    with pytest.raises(ValueError, match="skip connection"):
        ResidualBlock(8)(x)


@pytest.mark.parametrize("transpose,expected_size", [(False, 4), (True, 16)])
def test_conv_block_is_bias_free_conv_norm_relu(transpose, expected_size):
    block = ConvBlock(6, 4, strides=2, transpose=transpose)
    out = np.asarray(block(RNG.normal(size=(2, 8, 8, 3)).astype(np.float32)))
    assert out.shape == (2, expected_size, expected_size, 6)
    assert out.min() >= 0.0  # ReLU
    assert block.count_params() == 4 * 4 * 3 * 6 + 2 * 6
    restored = ConvBlock.from_config(block.get_config())
    assert (restored.filters, restored.kernel_size, restored.strides, restored.transpose) == (6, 4, 2, transpose)
