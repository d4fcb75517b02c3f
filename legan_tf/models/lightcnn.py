"""LightCNN-29 v2, the face-identity network f of LEGAN's identity loss 1 - cos(f(I), f(G(I))).

A port of `LightCNN_29Layers_v2` from the official PyTorch code (AlfredXiangWu/LightCNN,
light_cnn.py; Wu et al., "A Light CNN for Deep Face Representation with Noisy Labels"). Layers,
with the reference widths (48, 96, 192, 128, 128) and input 128x128x1:

    conv1   MFM conv 5x5 pad 2, 1 -> 48                       128x128
    pool    max_pool2d(2) + avg_pool2d(2) (a sum, as in v2)   64x64
    block1  1 residual block  (MFM 3x3, MFM 3x3, + input) at 48
    group1  MFM conv 1x1 48 -> 48, MFM conv 3x3 pad 1 48 -> 96
    pool                                                      32x32
    block2  2 residual blocks at 96;   group2 96 -> 192
    pool                                                      16x16
    block3  3 residual blocks at 192;  group3 192 -> 128
    block4  4 residual blocks at 128;  group4 128 -> 128
    pool                                                      8x8
    fc      Linear 8*8*128 -> 256 (plain, with bias: v2 has no MFM here), the embedding
    fc2     dropout(0.5, training only), Linear 256 -> num_classes, bias-free (80013 for the
            released model, trained on CASIA-WebFace + MS-Celeb-1M)

An MFM (max-feature-map) conv layer computes 2*n channels and returns the elementwise max of
the first n and the last n. Every conv has a bias. The network has 10,475,872 parameters
without fc2 (30,959,200 with the released 80013-class head).

Input: grayscale (B, S, S, 1) in [0, 1], as the reference's `ToTensor()` of an 8-bit gray image.
`IdentityEmbedder` wraps the network for RGB images in [-1, 1] of any size.

Documented differences from the reference (none changes a shape or a parameter count): kernels
start as PyTorch's default init, biases at zero (`legan_tf.layers`); the fc input is flattened in
NHWC order, so `load_lightcnn_weights` permutes the official fc weights accordingly.
"""

import os

import keras
import numpy as np

from legan_tf.errors import ConfigError
from legan_tf.layers import torch_default_kernel_initializer
from legan_tf.models.weights import load_npz_arrays, load_saved_model

PAPER_CHANNELS = (48, 96, 192, 128, 128)
PAPER_BLOCKS = (1, 2, 3, 4)
# ITU-R BT.601 luma, the weights of OpenCV's IMREAD_GRAYSCALE that the reference's data went through.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@keras.saving.register_keras_serializable(package="legan_tf")
class MaxFeatureMapConv2D(keras.layers.Layer):
    """Conv to 2*filters channels, then the elementwise max of the two halves (the reference's `mfm`, type 1).

    `padding` is PyTorch's: that many zero rows and columns on every side, then a valid conv, so the
    output size is (in + 2*padding - kernel_size) // strides + 1 for any stride.
    """

    def __init__(self, filters, kernel_size, strides=1, padding=0, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.pad = keras.layers.ZeroPadding2D(padding, name="pad") if padding else None
        self.filter = keras.layers.Conv2D(
            2 * filters, kernel_size, strides=strides, padding="valid",
            kernel_initializer=torch_default_kernel_initializer(), name="filter")

    def build(self, input_shape):
        shape = self.pad.compute_output_shape(input_shape) if self.pad else input_shape
        if not self.filter.built:
            self.filter.build(shape)

    def call(self, inputs):
        features = self.filter(self.pad(inputs) if self.pad else inputs)
        first, second = keras.ops.split(features, 2, axis=-1)
        return keras.ops.maximum(first, second)

    def compute_output_shape(self, input_shape):
        shape = self.pad.compute_output_shape(input_shape) if self.pad else input_shape
        return self.filter.compute_output_shape(shape)[:-1] + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="legan_tf")
class LightCNNResidualBlock(keras.layers.Layer):
    """The reference's `resblock`: MFM conv 3x3, MFM conv 3x3, plus the input; no activation after the sum."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv1 = MaxFeatureMapConv2D(filters, 3, padding=1, name="conv1")
        self.conv2 = MaxFeatureMapConv2D(filters, 3, padding=1, name="conv2")

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.filters:
            raise ValueError(
                f"LightCNNResidualBlock: {self.filters} filters cannot add to a {input_shape[-1]}-channel input.")
        self.conv1.build(input_shape)
        self.conv2.build(self.conv1.compute_output_shape(input_shape))

    def call(self, inputs):
        return self.conv2(self.conv1(inputs)) + inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


@keras.saving.register_keras_serializable(package="legan_tf")
class LightCNNGroup(keras.layers.Layer):
    """The reference's `group`: MFM conv 1x1 keeping the channels (`conv_a`), then MFM conv 3x3 pad 1 (`conv`)."""

    def __init__(self, in_channels, filters, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.filters = filters
        self.conv_a = MaxFeatureMapConv2D(in_channels, 1, padding=0, name="conv_a")
        self.conv = MaxFeatureMapConv2D(filters, 3, padding=1, name="conv")

    def build(self, input_shape):
        self.conv_a.build(input_shape)
        self.conv.build(self.conv_a.compute_output_shape(input_shape))

    def call(self, inputs):
        return self.conv(self.conv_a(inputs))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self.conv_a.compute_output_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters)
        return config


@keras.saving.register_keras_serializable(package="legan_tf")
class MaxPlusAveragePool(keras.layers.Layer):
    """v2's downsampling: max_pool2d(x, 2) + avg_pool2d(x, 2), a sum of both (2x2, stride 2, floor)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.max_pool = keras.layers.MaxPooling2D(2)
        self.average_pool = keras.layers.AveragePooling2D(2)

    def call(self, inputs):
        return self.max_pool(inputs) + self.average_pool(inputs)

    def compute_output_shape(self, input_shape):
        return self.max_pool.compute_output_shape(input_shape)


def _positive_ints(owner, name, values, length):
    values = tuple(values)
    if len(values) != length or not all(isinstance(v, (int, np.integer)) and v > 0 for v in values):
        raise ValueError(f"{owner}: {name} must be {length} positive integers, got {values!r}.")
    return tuple(int(v) for v in values)


@keras.saving.register_keras_serializable(package="legan_tf")
class LightCNN29v2(keras.Model):
    """LightCNN-29 v2 (see the module docstring for the layer table).

    Call: `model(images)` with grayscale (B, input_size, input_size, 1) in [0, 1]. Returns the
    (B, embedding_dim) embedding (the reference's `fc`, which it returns as the features), or
    `(embedding, logits)` when num_classes > 0.

    Args:
        input_size: square input size; must be divisible by 16 (four 2x2 poolings). 128 in the paper.
        channels: outputs of conv1, group1, group2, group3, group4 ((48, 96, 192, 128, 128)).
        embedding_dim: width of fc, the embedding (256).
        num_classes: identities of the classifier fc2; 0 builds no classifier (80013 for the release).
        num_blocks: residual blocks in block1..block4 ((1, 2, 3, 4), which makes it 29 layers).
        dropout: dropout rate on the embedding before fc2, in training only (0.5, F.dropout's default).
    """

    def __init__(self, input_size=128, channels=PAPER_CHANNELS, embedding_dim=256, num_classes=0,
                 num_blocks=PAPER_BLOCKS, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        owner = "LightCNN29v2"
        if not isinstance(input_size, (int, np.integer)) or input_size < 16 or input_size % 16:
            raise ValueError(
                f"{owner}: input_size must be a positive multiple of 16 (four 2x2 poolings), got {input_size!r}.")
        self.input_size = int(input_size)
        self.channels = _positive_ints(owner, "channels", channels, 5)
        self.num_blocks = _positive_ints(owner, "num_blocks", num_blocks, 4)
        self.embedding_dim = _positive_ints(owner, "embedding_dim", (embedding_dim,), 1)[0]
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 0:
            raise ValueError(f"{owner}: num_classes must be a non-negative integer, got {num_classes!r}.")
        self.num_classes = int(num_classes)
        self.dropout_rate = float(dropout)

        c = self.channels
        self.conv1 = MaxFeatureMapConv2D(c[0], 5, padding=2, name="conv1")
        # Stage k: its residual blocks at the width of its input, then its group (width change).
        stage_widths = [(c[0], c[1]), (c[1], c[2]), (c[2], c[3]), (c[3], c[4])]
        for stage, ((width, out), count) in enumerate(zip(stage_widths, self.num_blocks), start=1):
            blocks = [LightCNNResidualBlock(width, name=f"block{stage}_{i}") for i in range(count)]
            setattr(self, f"block{stage}", blocks)
            setattr(self, f"group{stage}", LightCNNGroup(width, out, name=f"group{stage}"))
        self.pool = MaxPlusAveragePool(name="pool")
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(
            self.embedding_dim, kernel_initializer=torch_default_kernel_initializer(), name="fc")
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.fc2 = (keras.layers.Dense(self.num_classes, use_bias=False,
                                       kernel_initializer=torch_default_kernel_initializer(), name="fc2")
                    if self.num_classes else None)

    def _check_images(self, images):
        shape = tuple(images.shape)
        expected = (self.input_size, self.input_size, 1)
        if len(shape) != 4 or any(s is not None and s != e for s, e in zip(shape[1:], expected)):
            raise ValueError(f"LightCNN29v2: expected grayscale images of shape (batch, {self.input_size}, "
                             f"{self.input_size}, 1), got {shape}; IdentityEmbedder converts and resizes RGB faces.")

    @property
    def blocks(self):
        """The residual blocks of block1..block4, one list per stage."""
        return [self.block1, self.block2, self.block3, self.block4]

    @property
    def groups(self):
        return [self.group1, self.group2, self.group3, self.group4]

    def trunk_layers(self):
        """Every weighted layer of the embedding network in forward order (all but fc2)."""
        layers = [self.conv1]
        for blocks, group in zip(self.blocks, self.groups):
            layers += [*blocks, group]
        return layers + [self.fc]

    def build(self, input_shape):
        # Built from shapes alone, so `build()` and `.keras` loading create every weight without a forward pass.
        shape = tuple(input_shape)
        self.conv1.build(shape)
        shape = self.pool.compute_output_shape(self.conv1.compute_output_shape(shape))
        for stage, (blocks, group) in enumerate(zip(self.blocks, self.groups)):
            for block in blocks:
                block.build(shape)
            group.build(shape)
            shape = group.compute_output_shape(shape)
            if stage != 2:
                shape = self.pool.compute_output_shape(shape)
        self.fc.build((shape[0], int(np.prod(shape[1:]))))
        if self.fc2 is not None:
            self.fc2.build((shape[0], self.embedding_dim))

    def call(self, images, training=False):
        self._check_images(images)
        x = self.pool(self.conv1(images))
        for stage, (blocks, group) in enumerate(zip(self.blocks, self.groups)):
            for block in blocks:
                x = block(x)
            x = group(x)
            if stage != 2:  # the reference pools after group1, group2 and group4, not after group3
                x = self.pool(x)
        embedding = self.fc(self.flatten(x))
        if self.fc2 is None:
            return embedding
        return embedding, self.fc2(self.dropout(embedding, training=training))

    def without_classifier(self):
        """A copy of the embedding network (num_classes=0) with this network's weights."""
        config = self.get_config()
        config.update(num_classes=0, name=f"{self.name}_embedding")
        copy = LightCNN29v2.from_config(config)
        copy(np.zeros((1, self.input_size, self.input_size, 1), np.float32))
        for source, target in zip(self.trunk_layers(), copy.trunk_layers()):
            target.set_weights(source.get_weights())
        return copy

    def get_config(self):
        config = super().get_config()
        config.update(
            input_size=self.input_size,
            channels=list(self.channels),
            embedding_dim=self.embedding_dim,
            num_classes=self.num_classes,
            num_blocks=list(self.num_blocks),
            dropout=self.dropout_rate,
        )
        return config


def faces_to_lightcnn_input(images, input_size):
    """RGB (or gray) faces in [-1, 1], (B, H, W, 3 or 1) -> LightCNN input (B, input_size, input_size, 1) in [0, 1].

    Luma grayscale as the reference's data, then a bilinear resize (antialiased, so downscaling
    does not alias); differentiable, so an identity loss can train a generator through it.
    """
    images = keras.ops.convert_to_tensor(images, "float32")
    gray = (images + 1.0) * 0.5
    if images.shape[-1] == 3:
        gray = keras.ops.sum(gray * keras.ops.convert_to_tensor(LUMA_WEIGHTS, "float32"), axis=-1, keepdims=True)
    elif images.shape[-1] != 1:
        raise ValueError(f"faces_to_lightcnn_input: expected 3 (RGB) or 1 channels, got shape {tuple(images.shape)}.")
    if images.shape[1] != input_size or images.shape[2] != input_size:
        gray = keras.ops.image.resize(gray, (input_size, input_size), interpolation="bilinear", antialias=True)
    return keras.ops.clip(gray, 0.0, 1.0)


@keras.saving.register_keras_serializable(package="legan_tf")
class IdentityEmbedder(keras.Model):
    """f for the identity loss: RGB faces in [-1, 1] of any size -> (B, embedding_dim) embeddings.

    Converts to luma grayscale, maps to [0, 1], resizes to the network's input size and returns its
    fc embedding (a classifier head, if the network has one, is not used). Pair with
    `legan_tf.losses.identity_loss(embedder(real), embedder(fake))`; set `trainable = False` to freeze.
    """

    def __init__(self, network, **kwargs):
        super().__init__(**kwargs)
        if isinstance(network, dict):
            network = keras.saving.deserialize_keras_object(network)
        if not isinstance(network, LightCNN29v2):
            raise ValueError(f"IdentityEmbedder: network must be a LightCNN29v2, got {type(network).__name__}.")
        self.network = network

    @property
    def input_size(self):
        return self.network.input_size

    @property
    def embedding_dim(self):
        return self.network.embedding_dim

    def build(self, input_shape):
        if not self.network.built:
            self.network.build((input_shape[0], self.network.input_size, self.network.input_size, 1))

    def call(self, images, training=False):
        outputs = self.network(faces_to_lightcnn_input(images, self.network.input_size), training=training)
        return outputs[0] if isinstance(outputs, (tuple, list)) else outputs

    def get_config(self):
        config = super().get_config()
        config.update(network=keras.saving.serialize_keras_object(self.network))
        return config


# --- official weights ----------------------------------------------------------------------------

def _torch_parameters(model):
    """PyTorch state_dict name -> (Keras variable, layout) for every trunk weight of `model`."""
    def conv(prefix, layer):
        return {f"{prefix}.filter.weight": (layer.filter.kernel, "conv"),
                f"{prefix}.filter.bias": (layer.filter.bias, "vector")}

    table = conv("conv1", model.conv1)
    for stage, (blocks, group) in enumerate(zip(model.blocks, model.groups), start=1):
        for index, block in enumerate(blocks):
            table.update(conv(f"block{stage}.{index}.conv1", block.conv1))
            table.update(conv(f"block{stage}.{index}.conv2", block.conv2))
        table.update(conv(f"group{stage}.conv_a", group.conv_a))
        table.update(conv(f"group{stage}.conv", group.conv))
    table["fc.weight"] = (model.fc.kernel, "fc_from_nchw")
    table["fc.bias"] = (model.fc.bias, "vector")
    if model.fc2 is not None:
        table["fc2.weight"] = (model.fc2.kernel, "dense")
    return table


def _torch_shape(keras_shape, layout):
    """The PyTorch shape of a Keras variable's weight: OIHW for convs, (out, in) for linear layers."""
    if layout == "conv":
        height, width, inputs, outputs = keras_shape
        return (outputs, inputs, height, width)
    if layout in ("dense", "fc_from_nchw"):
        return tuple(reversed(keras_shape))
    return tuple(keras_shape)


def _to_keras_layout(array, layout, final_map_shape):
    if layout == "conv":
        return array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if layout == "dense":
        return array.T
    if layout == "fc_from_nchw":
        # PyTorch flattens the last feature map (C, H, W), Keras (H, W, C): reorder the fc's inputs.
        height, width, channels = final_map_shape
        return array.reshape(array.shape[0], channels, height, width).transpose(2, 3, 1, 0).reshape(-1, array.shape[0])
    return array


def _keys(names, shown=5):
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return f"key{'s' if len(names) > 1 else ''} {listed}"


def load_lightcnn_weights(model, path, include_classifier=True):
    """Loads the official LightCNN-29 v2 weights, as an .npz from tools/convert_lightcnn.py, into `model`.

    PyTorch names (a `module.` prefix from DataParallel is ignored) map to the Keras layers; conv
    kernels are transposed OIHW -> HWIO, linear ones (out, in) -> (in, out), and fc's inputs are
    reordered from PyTorch's (C, H, W) flatten to Keras' (H, W, C). The classifier fc2 is loaded
    when the model has one, the file holds it and `include_classifier` is true (false: fine-tuning on
    other identities); otherwise it is ignored. Every fault (missing file, not an npz, missing or
    unexpected key, wrong shape) is a ConfigError naming the file, and leaves the model unchanged.
    Returns the names loaded.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: LightCNN weights file not found (make one with tools/convert_lightcnn.py).")
    arrays = load_npz_arrays(path, path, "LightCNN weights",
                             "convert the official .pth.tar with tools/convert_lightcnn.py")
    arrays = {key[len("module."):] if key.startswith("module.") else key: array for key, array in arrays.items()}
    if not model.built:
        model.build((None, model.input_size, model.input_size, 1))
    table = _torch_parameters(model)
    if not include_classifier:
        table.pop("fc2.weight", None)
    optional = {"fc2.weight"}  # the 80013-identity head of the release: not needed for embeddings
    missing = [name for name in table if name not in arrays and name not in optional]
    if missing:
        raise ConfigError(f"{path}: missing {_keys(missing)} for LightCNN29v2(input_size={model.input_size}, "
                          f"channels={model.channels}, num_blocks={model.num_blocks}).")
    unexpected = [name for name in arrays if name not in table and name not in optional]
    if unexpected:
        raise ConfigError(f"{path}: unexpected {_keys(unexpected)}, which LightCNN29v2(channels={model.channels}, "
                          f"num_blocks={model.num_blocks}) has no place for (is it another LightCNN variant?).")
    final_size = model.input_size // 16
    final_map_shape = (final_size, final_size, model.channels[-1])
    values = []
    for name, (variable, layout) in table.items():
        if name not in arrays:
            continue
        expected = _torch_shape(tuple(variable.shape), layout)
        if tuple(arrays[name].shape) != expected:
            raise ConfigError(f"{path}: {name} has shape {tuple(arrays[name].shape)}, the model expects {expected} "
                              f"(LightCNN29v2 input_size={model.input_size}, channels={model.channels}, "
                              f"embedding_dim={model.embedding_dim}, num_classes={model.num_classes}).")
        values.append((variable, _to_keras_layout(np.asarray(arrays[name], np.float32), layout, final_map_shape)))
    for variable, value in values:  # only once every key checked out: a fault leaves the model as it was
        variable.assign(value)
    return [name for name in table if name in arrays]


def torch_checkpoint_to_npz(checkpoint_path, output_path, allow_pickle=False):
    """Writes the `state_dict` of an official LightCNN `.pth.tar` (or a bare state_dict) as an .npz.

    Needs torch (not a dependency of this project): run it wherever torch is installed. Returns the
    number of arrays written.
    """
    try:
        import torch
    except ImportError:
        raise ConfigError("torch is not installed here; run tools/convert_lightcnn.py where torch is installed "
                          "(pip install torch), then copy the .npz back.") from None
    if not os.path.isfile(checkpoint_path):
        raise ConfigError(f"{checkpoint_path}: checkpoint not found.")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as error:  # torch raises many types for a bad or untrusted file
        hint = "" if allow_pickle else " If you trust the file and it pickles other objects, pass --allow_pickle."
        raise ConfigError(f"{checkpoint_path}: cannot read it with torch.load ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}).{hint}") from None
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise ConfigError(f"{checkpoint_path}: holds a {type(checkpoint).__name__}, not a state_dict "
                          "(or a dict with one under 'state_dict').")
    arrays = {name: value.detach().cpu().numpy() for name, value in state_dict.items() if hasattr(value, "detach")}
    if not arrays:
        raise ConfigError(f"{checkpoint_path}: the state_dict holds no tensors.")
    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    with open(output_path, "wb") as output:  # a file object: np.savez would append .npz to a name
        np.savez(output, **arrays)
    return len(arrays)


def load_identity_embedder(path, trainable=False, **network_args):
    """f for LEGAN from a local file: an `identity_model.keras` exported by `--task=identity`, or an
    .npz of the official LightCNN-29 v2 weights (`network_args` default to the paper's: 128 px,
    widths 48..128, embedding 256). Frozen unless `trainable`."""
    if path.endswith(".npz"):
        embedder = IdentityEmbedder(LightCNN29v2(**network_args), name="identity_embedder")
        load_lightcnn_weights(embedder.network, path, include_classifier=False)
    else:
        loaded = load_saved_model(path, "identity model (an identity_model.keras or a converted .npz)", path,
                                  (IdentityEmbedder, LightCNN29v2))
        embedder = IdentityEmbedder(loaded, name="identity_embedder") if isinstance(loaded, LightCNN29v2) else loaded
    embedder.build((None, embedder.input_size, embedder.input_size, 3))
    embedder.trainable = trainable
    return embedder
