import keras
import numpy as np
import pytest

from legan_tf.layers import ConvBlock, InstanceNorm, ResidualBlock, TileLabels, torch_default_kernel_initializer

RNG = np.random.default_rng(0)
U = 2.0**-24  # float32 unit roundoff


def _dot_product_bound(terms, magnitudes):
    """A float32 sum of `terms` products, in any order (FMA or not), is within terms * U * sum|w x| of exact."""
    return terms * U / (1 - terms * U) * magnitudes


def _instance_norm_bound(h, gamma, beta):
    """float32 rounding of InstanceNorm(h): the n-value mean (<= n + 1 roundings) and variance (<= n + 3), rsqrt
    (<= 2 ulps) and x * inv + (beta - mean * inv) each round a term <= max|h| |gamma| / std + |beta|;
    collected, <= (2n + 16) U times that."""
    h = np.asarray(h, np.float64)
    n = h.shape[1] * h.shape[2]
    std = np.sqrt(h.var(axis=(1, 2)) + 1e-5)
    return (2 * n + 16) * U * (np.abs(h).max(axis=(1, 2)) * np.abs(gamma) / std + np.abs(beta)).max()


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
    # float32 sums of k * k * 2 products against float64; a wrong padding is off by whole terms, O(0.1).
    magnitudes = _torch_conv2d(np.abs(x[0]).astype(np.float64), np.abs(np.asarray(conv.kernel, np.float64)), stride,
                               padding)
    assert np.all(np.abs(got - expected) <= _dot_product_bound(kernel_size**2 * 2, magnitudes))


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
    # float32 sums of at most 4 * 4 * 2 products (the taps that land on an output) against float64.
    magnitudes = _torch_conv_transpose2d(np.abs(x[0]).astype(np.float64), np.abs(kernel).astype(np.float64), stride=2,
                                         padding=1)
    assert np.all(np.abs(got - expected) <= _dot_product_bound(4 * 4 * 2, magnitudes))


def test_kernels_start_as_pytorch_default_uniform():
    conv = keras.layers.Conv2D(64, 4, kernel_initializer=torch_default_kernel_initializer(seed=1))
    conv.build((None, 8, 8, 32))
    bound = 1.0 / np.sqrt(4 * 4 * 32)
    kernel = np.asarray(conv.kernel)
    # 32768 seeded uniform draws (the same bits on any CPU): all within 5% of the bound has odds 0.95**32768, and
    # the sample std's relative standard error is sqrt(0.8 / (4 * 32768)) = 0.25%, so 5% is 20 of them.
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
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(1, 2), keepdims=True)
    var = x64.var(axis=(1, 2), keepdims=True)  # biased, as PyTorch
    expected = (x64 - mean) / np.sqrt(var + 1e-5) * np.array([2.0, 0.5]) + np.array([1.0, -1.0])
    tolerance = _instance_norm_bound(x, [2.0, 0.5], [1.0, -1.0])  # float32 against float64
    np.testing.assert_allclose(np.asarray(norm(x)), expected, rtol=0, atol=tolerance)
    # Per instance in inference too, and independent of the rest of the batch.
    np.testing.assert_allclose(np.asarray(norm(x[:1], training=False)), expected[:1], rtol=0, atol=tolerance)
    np.testing.assert_allclose(np.asarray(norm(x, training=True)), expected, rtol=0, atol=tolerance)


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
    # Exact: inv = rsqrt(var + eps) * 0 = 0, so the branch is x * 0 + (0 - mean * 0) = 0.
    np.testing.assert_array_equal(np.asarray(block(x)), x)
    # The branch ends in instance norm: with scale 1 its contribution has zero mean per channel.
    block.norm_b.gamma.assign(np.ones(4, np.float32))
    out = np.asarray(block(x))
    branch = out.astype(np.float64) - x  # exact in float64
    # Its mean is off 0 by the norm's rounding and that of the sum x + branch (<= U |out|).
    hidden = block.conv_b(block.relu(block.norm_a(block.conv_a(x))))  # what norm_b normalises
    tolerance = _instance_norm_bound(hidden, 1.0, 0.0) + U * np.abs(out).max()
    np.testing.assert_allclose(branch.mean(axis=(1, 2)), 0.0, atol=tolerance)
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
