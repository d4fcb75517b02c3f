"""LightCNN-29 v2: the reference architecture, official-weight loading with numpy parity, the embedder."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf.errors import ConfigError
from legan_tf.losses import identity_loss
from legan_tf.models.lightcnn import (IdentityEmbedder, LightCNN29v2, MaxFeatureMapConv2D, faces_to_lightcnn_input,
                                      load_identity_embedder, load_lightcnn_weights)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERT = os.path.join(REPO, "tools", "convert_lightcnn.py")
SMALL = dict(input_size=32, channels=(4, 8, 8, 8, 8), embedding_dim=16)


def _reference_state_shapes(channels=(48, 96, 192, 128, 128), blocks=(1, 2, 3, 4), input_size=128,
                            embedding_dim=256, num_classes=80013):
    """The state_dict of AlfredXiangWu/LightCNN `LightCNN_29Layers_v2`, name -> PyTorch shape, from its layer table.

    mfm(in, out, k) is `filter` = Conv2d(in, 2*out, k) with bias; resblock(c, c) is mfm conv1, conv2
    (3x3); group(in, out) is mfm conv_a (1x1, in -> in) and mfm conv (3x3, in -> out); fc is a plain
    Linear with bias; fc2 is bias-free.
    """
    shapes = {}

    def mfm(name, inputs, outputs, kernel):
        shapes[f"{name}.filter.weight"] = (2 * outputs, inputs, kernel, kernel)
        shapes[f"{name}.filter.bias"] = (2 * outputs,)

    mfm("conv1", 1, channels[0], 5)
    for stage in range(1, 5):
        width, out = channels[stage - 1], channels[stage]
        for index in range(blocks[stage - 1]):
            mfm(f"block{stage}.{index}.conv1", width, width, 3)
            mfm(f"block{stage}.{index}.conv2", width, width, 3)
        mfm(f"group{stage}.conv_a", width, width, 1)
        mfm(f"group{stage}.conv", width, out, 3)
    final = input_size // 16
    shapes["fc.weight"] = (embedding_dim, final * final * channels[4])
    shapes["fc.bias"] = (embedding_dim,)
    if num_classes:
        shapes["fc2.weight"] = (num_classes, embedding_dim)
    return shapes


def _count(shapes):
    return sum(int(np.prod(shape)) for shape in shapes.values())


# --- a numpy forward pass of the PyTorch network, NCHW ---------------------------------------------

def _conv_nchw(x, weight, bias, padding):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(x, weight.shape[2:], axis=(2, 3))  # N,C,H,W,kh,kw
    return np.einsum("nchwij,ocij->nohw", windows, weight) + bias[None, :, None, None]


def _mfm(x, state, name, padding):
    y = _conv_nchw(x, state[f"{name}.filter.weight"], state[f"{name}.filter.bias"], padding)
    half = y.shape[1] // 2  # torch.split(x, out_channels, 1), then torch.max of the two
    return np.maximum(y[:, :half], y[:, half:])


def _v2_pool(x):
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2)
    return windows.max(axis=(3, 5)) + windows.mean(axis=(3, 5))


def _reference_forward(images_nchw, state, blocks):
    """`network_29layers_v2.forward` in eval mode: returns (out, fc)."""
    x = _v2_pool(_mfm(images_nchw, state, "conv1", 2))
    for stage in range(1, 5):
        for index in range(blocks[stage - 1]):
            residual = x
            x = _mfm(_mfm(x, state, f"block{stage}.{index}.conv1", 1), state, f"block{stage}.{index}.conv2", 1)
            x = x + residual
        x = _mfm(_mfm(x, state, f"group{stage}.conv_a", 0), state, f"group{stage}.conv", 1)
        if stage != 3:
            x = _v2_pool(x)
    fc = x.reshape(len(x), -1) @ state["fc.weight"].T + state["fc.bias"]  # x.view(N, -1): NCHW order
    return fc @ state["fc2.weight"].T, fc


def _random_state(rng, **shape_args):
    state = {}
    for name, shape in _reference_state_shapes(**shape_args).items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        # He-scaled so activations stay O(1) through 29 layers and the comparison means something.
        state[name] = (rng.normal(0.0, np.sqrt(2.0 / fan_in), shape) if len(shape) > 1
                       else rng.normal(0.0, 0.1, shape)).astype(np.float32)
    return state


@pytest.fixture(scope="module")
def official_small(tmp_path_factory):
    """Random weights of a reduced LightCNN-29 v2 in PyTorch layout under the official (DataParallel) names."""
    rng = np.random.default_rng(0)
    state = _random_state(rng, channels=SMALL["channels"], input_size=32, embedding_dim=16, num_classes=7)
    path = str(tmp_path_factory.mktemp("weights") / "lightcnn.npz")
    np.savez(path, **{f"module.{name}": value for name, value in state.items()})
    return path, state


def _small_model(**overrides):
    model = LightCNN29v2(**{**SMALL, "num_classes": 7, **overrides})
    model(np.zeros((1, model.input_size, model.input_size, 1), np.float32))
    return model


# --- architecture ----------------------------------------------------------------------------------

def test_paper_size_parameter_count_equals_the_reference_table():
    model = LightCNN29v2()
    embedding = model(np.zeros((2, 128, 128, 1), np.float32))
    assert tuple(embedding.shape) == (2, 256)
    assert model.count_params() == _count(_reference_state_shapes(num_classes=0)) == 10_475_872
    released = LightCNN29v2(num_classes=80013)
    released.build((None, 128, 128, 1))
    assert released.count_params() == _count(_reference_state_shapes()) == 30_959_200


def test_layer_shapes_follow_the_reference():
    model = _small_model(num_classes=0)
    x = model.pool(model.conv1(np.zeros((1, 32, 32, 1), np.float32)))
    shapes = [tuple(x.shape[1:])]
    for stage, (blocks, group) in enumerate(zip(model.blocks, model.groups)):
        for block in blocks:
            x = block(x)
        x = group(x)
        if stage != 2:
            x = model.pool(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 16, 4), (8, 8, 8), (4, 4, 8), (4, 4, 8), (2, 2, 8)]
    assert [len(blocks) for blocks in model.blocks] == [1, 2, 3, 4]


def test_outputs_embedding_and_logits_with_a_classifier():
    model = _small_model()
    embedding, logits = model(np.zeros((3, 32, 32, 1), np.float32))
    assert tuple(embedding.shape) == (3, 16) and tuple(logits.shape) == (3, 7)
    assert model.fc2.bias is None and model.fc.bias is not None


def test_max_feature_map_conv_takes_the_max_of_the_two_halves():
    conv = MaxFeatureMapConv2D(3, 5, strides=2, padding=2)
    x = np.random.default_rng(1).normal(size=(1, 9, 9, 2)).astype(np.float32)
    y = conv(x)
    assert tuple(y.shape) == (1, 5, 5, 3)  # PyTorch: (9 + 2*2 - 5) // 2 + 1 = 5
    # Exact: the layer runs this same conv on the same input; split and max do not round.
    full = conv.filter(conv.pad(x)).numpy()
    np.testing.assert_array_equal(y, np.maximum(full[..., :3], full[..., 3:]))


@pytest.mark.parametrize("size", [100, 8, 0])
def test_a_bad_input_size_is_a_clear_error(size):
    with pytest.raises(ValueError, match="multiple of 16"):
        LightCNN29v2(input_size=size)


def test_images_of_another_size_are_refused_with_the_expected_shape():
    model = _small_model()
    with pytest.raises(ValueError, match=r"\(batch, 32, 32, 1\)"):
        model(np.zeros((1, 64, 64, 1), np.float32))


def test_keras_save_and_load_give_equal_outputs(tmp_path):
    model = _small_model()
    images = np.random.default_rng(2).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
    path = str(tmp_path / "lightcnn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for got, want in zip(loaded(images), model(images)):
        # Exact: .keras keeps float32 weights bit for bit, and the same ops run on the same shapes in this process.
        np.testing.assert_array_equal(got, want)
    assert loaded.get_config()["channels"] == list(SMALL["channels"])


# --- official weights ------------------------------------------------------------------------------

def test_official_weights_give_the_reference_embeddings_and_logits(official_small):
    path, state = official_small
    model = _small_model()
    loaded = load_lightcnn_weights(model, path)
    assert len(loaded) == len(state)
    # The port is compared in float64, where rounding cannot blur a layout error: 31 layers of dot products of
    # <= 72 terms, each rounding <= 72 * 1.1e-16 of its scale (times ~14, a He row's L1 norm), add up to
    # ~3e-12 of the output's scale; float32 would give ~2e-3 by the same count, too coarse for a tight check.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        model64 = _small_model()
    finally:
        keras.config.set_dtype_policy(previous)
    load_lightcnn_weights(model64, path)
    # Exact: both models are given the same float32 arrays, so the float32 model holds the same weights.
    for weight32, weight64 in zip(model.weights, model64.weights):
        assert weight64.dtype == "float64"
        np.testing.assert_array_equal(weight32.numpy(), weight64.numpy().astype(np.float32))
    images = np.random.default_rng(3).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
    want_logits, want_embedding = _reference_forward(
        images.transpose(0, 3, 1, 2).astype(np.float64), {k: v.astype(np.float64) for k, v in state.items()},
        (1, 2, 3, 4))
    embedding, logits = model64(images.astype(np.float64))
    scale = np.abs(want_embedding).max()
    assert scale > 0.1  # the activations did not vanish, so the comparison is meaningful
    np.testing.assert_allclose(embedding, want_embedding, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(logits, want_logits, rtol=0, atol=1e-9 * np.abs(want_logits).max())
    # The float32 model end to end, at the ~2e-3 of the scale that float32's rounding allows (see above); a
    # layout error moves outputs by their own order.
    embedding32, logits32 = model(images)
    np.testing.assert_allclose(embedding32, want_embedding, rtol=0, atol=1e-2 * scale)
    np.testing.assert_allclose(logits32, want_logits, rtol=0, atol=1e-2 * np.abs(want_logits).max())


def test_the_classifier_head_may_be_absent_or_ignored(official_small, tmp_path):
    path, state = official_small
    headless = str(tmp_path / "headless.npz")
    np.savez(headless, **{name: value for name, value in state.items() if name != "fc2.weight"})  # no prefix
    model = _small_model(num_classes=0)
    assert "fc2.weight" not in load_lightcnn_weights(model, path)  # head in the file, none in the model
    before = _small_model(num_classes=3)
    head = before.fc2.kernel.numpy()
    assert "fc2.weight" not in load_lightcnn_weights(before, headless)
    np.testing.assert_array_equal(before.fc2.kernel.numpy(), head)
    # A 7-class head in the file and a 3-class one in the model: loading it would be a shape error ...
    other_head = _small_model(num_classes=3)
    other_head_kernel = other_head.fc2.kernel.numpy()
    with pytest.raises(ConfigError, match=r"fc2.weight has shape \(7, 16\), the model expects \(3, 16\)"):
        load_lightcnn_weights(other_head, path)
    # ... so include_classifier=False leaves the model's head as it was and loads every trunk weight.
    loaded = load_lightcnn_weights(other_head, path, include_classifier=False)
    assert sorted(loaded) == sorted(name for name in state if name != "fc2.weight")
    np.testing.assert_array_equal(other_head.fc2.kernel.numpy(), other_head_kernel)
    # Exact: the loader only transposes the file's float32 arrays (OIHW -> HWIO; (out, in) -> (in, out)).
    np.testing.assert_array_equal(other_head.conv1.filter.kernel.numpy(),
                                  state["conv1.filter.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(other_head.fc.bias.numpy(), state["fc.bias"])
    reference = _small_model(num_classes=0)
    load_lightcnn_weights(reference, path)
    for got, want in zip(other_head.trunk_layers(), reference.trunk_layers()):
        for got_weight, want_weight in zip(got.get_weights(), want.get_weights()):
            np.testing.assert_array_equal(got_weight, want_weight)


def _write_npz(path, state):
    np.savez(path, **state)
    return str(path)


def test_weight_file_errors_say_what_and_where(official_small, tmp_path):
    path, state = official_small
    model = _small_model()
    kernel = model.conv1.filter.kernel.numpy()
    with pytest.raises(ConfigError, match="not found"):
        load_lightcnn_weights(model, str(tmp_path / "absent.npz"))
    text = tmp_path / "text.npz"
    text.write_text("not weights")
    with pytest.raises(ConfigError, match="text.npz: not an .npz"):
        load_lightcnn_weights(model, str(text))
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(ConfigError, match="single array"):
        load_lightcnn_weights(model, str(single))
    missing = {k: v for k, v in state.items() if k != "block3.2.conv2.filter.bias"}
    with pytest.raises(ConfigError, match=r"missing key block3\.2\.conv2\.filter\.bias"):
        load_lightcnn_weights(model, _write_npz(tmp_path / "missing.npz", missing))
    with pytest.raises(ConfigError, match=r"unexpected key fc3\.weight"):
        load_lightcnn_weights(model, _write_npz(tmp_path / "extra.npz", {**state, "fc3.weight": np.zeros(2)}))
    wrong = {**state, "fc.weight": np.zeros((16, 128), np.float32)}  # from a 64 px network
    with pytest.raises(ConfigError, match=r"fc\.weight has shape \(16, 128\), the model expects \(16, 32\)"):
        load_lightcnn_weights(model, _write_npz(tmp_path / "wrong.npz", wrong))
    deeper = _small_model(num_blocks=(1, 2, 3, 5))
    with pytest.raises(ConfigError, match=r"missing keys block4\.4\.conv1\.filter\.weight, "):
        load_lightcnn_weights(deeper, path)
    np.testing.assert_array_equal(model.conv1.filter.kernel.numpy(), kernel)  # a failed load changed nothing


# --- the embedder ----------------------------------------------------------------------------------

def test_faces_become_luma_grayscale_in_0_1_at_the_network_size():
    colour = np.array([0.2, -0.4, 0.8], np.float32)
    faces = np.broadcast_to(colour, (2, 64, 64, 3))
    gray = faces_to_lightcnn_input(faces, 32).numpy()
    assert gray.shape == (2, 32, 32, 1)
    expected = np.dot((colour + 1) / 2, [0.299, 0.587, 0.114])
    # float32: a 3-term luma sum and resampling weights summing to 1, on values <= 1: a few roundings of 6e-8.
    np.testing.assert_allclose(gray, expected, atol=1e-5)
    np.testing.assert_allclose(faces_to_lightcnn_input(-np.ones((1, 32, 32, 1)), 32), 0.0)  # exact: (-1 + 1) * 0.5


def test_embedder_feeds_the_network_and_passes_gradients_for_the_identity_loss():
    network = _small_model()
    embedder = IdentityEmbedder(network)
    faces = tf.constant(np.random.default_rng(4).uniform(-1, 1, (2, 48, 48, 3)).astype(np.float32))
    embedding = embedder(faces)
    # Exact: the embedder runs these very ops on the same tensors.
    np.testing.assert_array_equal(embedding, network(faces_to_lightcnn_input(faces, 32))[0])
    # 1 - cos(a, a) in float32: two 16-term sums of squares (<= 15 roundings each), rsqrt and products:
    # <= ~36 * 6e-8 = 2.2e-6.
    np.testing.assert_allclose(identity_loss(embedding, embedder(faces)), 0.0, atol=1e-5)
    embedder.trainable = False
    with tf.GradientTape() as tape:
        tape.watch(faces)
        loss = tf.reduce_mean(identity_loss(embedder(faces), embedder(tf.reverse(faces, axis=[2]))))
    gradient = tape.gradient(loss, faces)
    assert gradient is not None and np.abs(gradient).sum() > 0
    assert not embedder.trainable_weights


def test_embedder_round_trips_and_loads_for_legan(official_small, tmp_path):
    path, _ = official_small
    embedder = load_identity_embedder(path, channels=SMALL["channels"], input_size=32, embedding_dim=16)
    assert not embedder.trainable
    faces = np.random.default_rng(5).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    saved = str(tmp_path / "identity_model.keras")
    embedder.save(saved)
    again = load_identity_embedder(saved)
    # Exact: .keras keeps float32 weights bit for bit, and the same ops run on the same shapes in this process.
    np.testing.assert_array_equal(again(faces), embedder(faces))
    assert not again.trainable_weights
    network_file = str(tmp_path / "network.keras")
    _small_model().save(network_file)
    assert isinstance(load_identity_embedder(network_file), IdentityEmbedder)
    with pytest.raises(ConfigError, match="none.keras: no such identity model"):
        load_identity_embedder(str(tmp_path / "none.keras"))
    with pytest.raises(ConfigError, match="a StarGANGenerator, not an IdentityEmbedder or LightCNN29v2"):
        load_identity_embedder(_saved_generator(tmp_path))


# --- the converter script --------------------------------------------------------------------------

def _convert(*args, pythonpath=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, CONVERT, *args], capture_output=True, text=True, timeout=120, env=env)


def test_converter_without_torch_says_where_to_run_it(tmp_path):
    result = _convert(f"--input={tmp_path / 'x.pth.tar'}")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: torch is not installed") or "error: torch" in result.stderr
    assert "Traceback" not in result.stderr


def test_converter_writes_the_state_dict_as_npz(tmp_path, official_small):
    # A stand-in torch whose `load` reads an .npz: the conversion itself, without installing torch.
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text(textwrap.dedent("""
        import numpy as np

        class Tensor:
            def __init__(self, array): self.array = array
            def detach(self): return self
            def cpu(self): return self
            def numpy(self): return self.array

        def load(path, map_location=None, weights_only=True):
            with np.load(path) as stored:
                return {"epoch": 40, "arch": "LightCNN-29v2",
                        "state_dict": {name: Tensor(stored[name]) for name in stored.files}}
    """))
    path, state = official_small
    checkpoint = tmp_path / "LightCNN_29Layers_V2_checkpoint.pth.tar"
    checkpoint.write_bytes(open(path, "rb").read())
    result = _convert(f"--input={checkpoint}", pythonpath=str(fake))
    assert result.returncode == 0, result.stderr[-2000:]
    output = tmp_path / "LightCNN_29Layers_V2_checkpoint.npz"
    assert f"wrote {len(state)} arrays to {output}" in result.stdout
    with np.load(output) as converted:
        assert sorted(converted.files) == sorted(f"module.{name}" for name in state)
        np.testing.assert_array_equal(converted["module.fc.weight"], state["fc.weight"])
    assert len(load_lightcnn_weights(_small_model(), str(output))) == len(state)


def test_converter_help_names_its_flags():
    result = _convert("--help")
    assert "Traceback" not in result.stderr
    assert "torch is not a dependency" in result.stdout
    assert "--input" in result.stdout and "--output" in result.stdout and "allow_pickle" in result.stdout


def _saved_generator(folder):
    """Another network's .keras file, which the identity loader must refuse by name."""
    from legan_tf.models.stargan import StarGANGenerator

    generator = StarGANGenerator(image_size=16, num_labels=2, base_filters=4, num_downsamples=2,
                                 num_residual_blocks=1)
    generator((np.zeros((1, 16, 16, 3), np.float32), np.zeros((1, 2), np.float32)))
    path = str(folder / "generator.keras")
    generator.save(path)
    return path
