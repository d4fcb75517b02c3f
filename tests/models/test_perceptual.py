"""The perceptual feature network: VGG19 from local weights, your own .keras network, and every way it
cannot be had (a ConfigError naming the flags). Nothing is downloaded: VGG19 is built with random
weights and saved to local files, and the "imagenet" download is pointed at local sockets.

VGG19 has 20M parameters, so it is built as few times as possible (module-scoped fixtures).
"""

import hashlib
import shutil
import socket
import time

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf.errors import ConfigError
from legan_tf.losses import perceptual_loss
from legan_tf.models import perceptual
from legan_tf.models.perceptual import VGG19_FEATURE_LAYERS, FeatureNetwork, build_feature_network
from legan_tf.models.weights import load_all_weights

IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
FLAGS = ("--perceptual_net", "--perceptual_weights")


def maps(channels, size, seed=0, batch=2):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, channels)).astype(np.float32)


def write_official_layout(model, path):
    """Writes `model`'s weights as the published Keras-2 `..._notop.h5` files are laid out (legacy HDF5)."""
    with h5py.File(path, "w") as weights_file:
        weights_file.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        weights_file.attrs["backend"] = b"tensorflow"
        weights_file.attrs["keras_version"] = b"2.1.5"
        for layer in model.layers:
            group = weights_file.create_group(layer.name)
            names = [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"] if layer.weights else []
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name, data=value)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A randomly initialised VGG19 (biases made non-zero too), its weights in both file layouts, and
    the reference features: the chosen layers of this very network on VGG-preprocessed input."""
    folder = tmp_path_factory.mktemp("vgg19")
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(64, 64, 3))
    rng = np.random.default_rng(1)
    for layer in vgg.layers:
        if layer.weights:
            layer.bias.assign(rng.normal(0, 0.05, layer.bias.shape).astype(np.float32))
    keras_file, official_file = str(folder / "vgg19.weights.h5"), str(folder / perceptual.VGG19_NOTOP_FILE)
    vgg.save_weights(keras_file)
    write_official_layout(vgg, official_file)
    extractor = keras.Model(vgg.input, [vgg.get_layer(name).output for name in VGG19_FEATURE_LAYERS])

    def reference(rgb_maps):
        """Features of RGB maps in [-1, 1], preprocessed by hand: 0..255, RGB -> BGR, minus the ImageNet mean."""
        bgr = (rgb_maps + 1.0) * 127.5
        return [np.asarray(f) for f in extractor(bgr[..., ::-1] - IMAGENET_MEAN_BGR)]

    return dict(keras_file=keras_file, official_file=official_file, reference=reference, folder=folder)


@pytest.fixture(scope="module")
def depth_net(source):
    """1-channel maps at 64 px, from the .weights.h5 that Keras wrote."""
    return build_feature_network("vgg19", source["keras_file"], 64, 1)


@pytest.fixture(scope="module")
def rgb_net_32(source):
    """3-channel maps at 32 px, from the weights in the published file's layout."""
    return build_feature_network("vgg19", source["official_file"], 32, 3)


def assert_same_features(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(np.asarray(a), e)


def test_vgg19_from_a_keras_weights_file_gives_the_saved_networks_features(source, depth_net):
    depth = maps(1, 64)
    assert_same_features(depth_net(depth), source["reference"](np.repeat(depth, 3, axis=-1)))


def test_vgg19_from_the_published_file_layout_gives_the_saved_networks_features(source, rgb_net_32):
    # Convolutions do not depend on the input size, so 64 px weights serve 32 px inputs.
    rgb = maps(3, 32, seed=2)
    vgg32 = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    vgg32.load_weights(source["keras_file"])
    extractor = keras.Model(vgg32.input, [vgg32.get_layer(name).output for name in VGG19_FEATURE_LAYERS])
    expected = [np.asarray(f) for f in extractor(((rgb + 1.0) * 127.5)[..., ::-1] - IMAGENET_MEAN_BGR)]
    assert_same_features(rgb_net_32(rgb), expected)


def test_feature_shapes_at_64_and_32_px(depth_net, rgb_net_32):
    channels = [64, 128, 256, 512, 512]
    assert [tuple(f.shape) for f in depth_net(maps(1, 64))] == [
        (2, 64 // 2 ** i, 64 // 2 ** i, c) for i, c in enumerate(channels)]
    assert [tuple(f.shape) for f in rgb_net_32(maps(3, 32))] == [
        (2, 32 // 2 ** i, 32 // 2 ** i, c) for i, c in enumerate(channels)]


def test_one_channel_is_the_same_map_repeated_to_three(depth_net):
    rgb_view = FeatureNetwork(depth_net.extractor, 3, preprocessing="vgg19")
    depth = maps(1, 64, seed=3)
    assert_same_features(depth_net(depth), [np.asarray(f) for f in rgb_view(np.repeat(depth, 3, axis=-1))])


def test_the_network_is_frozen(depth_net, rgb_net_32):
    for network in (depth_net, rgb_net_32):
        assert not network.trainable and not network.trainable_weights
        assert len(network.weights) == 32      # 16 convolutions, kernel and bias


def test_perceptual_loss_is_zero_for_identical_maps_and_its_gradient_reaches_the_prediction(rgb_net_32):
    target = maps(1, 32, seed=4)
    target3 = np.repeat(target, 3, axis=-1)
    same = perceptual_loss(rgb_net_32(target3), rgb_net_32(target3))
    np.testing.assert_array_equal(same.numpy(), np.zeros(2, np.float32))
    predicted = tf.Variable(np.repeat(maps(1, 32, seed=5), 3, axis=-1))
    with tf.GradientTape() as tape:
        loss = perceptual_loss(rgb_net_32(target3), rgb_net_32(predicted))
        mean_loss = tf.reduce_mean(loss)
    assert loss.shape == (2,) and np.all(loss.numpy() > 0)
    gradient = tape.gradient(mean_loss, predicted)
    assert gradient is not None and np.all(np.isfinite(gradient)) and np.abs(gradient.numpy()).sum() > 0


# --- your own network as a .keras file ----------------------------------------------------------

def small_extractor(channels=3, size=None, outputs=2):
    inputs = keras.Input((size, size, channels))
    first = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="first")(inputs)
    second = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="second")(first)
    return keras.Model(inputs, [first, second] if outputs == 2 else second)


def test_own_network_with_several_outputs_gives_them_all(tmp_path):
    extractor = small_extractor()
    path = str(tmp_path / "own.keras")
    extractor.save(path)
    network = build_feature_network(path, "imagenet", 32, 1)
    depth = maps(1, 32, seed=6)
    expected = [np.asarray(f) for f in extractor(np.repeat(depth, 3, axis=-1))]   # maps as given, no VGG scaling
    assert_same_features(network(depth), expected)
    assert not network.trainable_weights


def test_own_network_with_one_output_gives_a_list_of_one(tmp_path):
    extractor = small_extractor(channels=1, size=32, outputs=1)
    path = str(tmp_path / "one.keras")
    extractor.save(path)
    features = build_feature_network(path, None, 32, 1)(maps(1, 32))
    assert isinstance(features, list) and [tuple(f.shape) for f in features] == [(2, 16, 16, 6)]


def test_feature_network_save_and_load_round_trip(tmp_path):
    network = FeatureNetwork(small_extractor(), 1, preprocessing="vgg19", name="features")
    depth = maps(1, 32, seed=7)
    expected = [np.asarray(f) for f in network(depth)]
    path = str(tmp_path / "features.keras")
    network.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, FeatureNetwork)
    assert (loaded.input_channels, loaded.preprocessing) == (1, "vgg19")
    assert_same_features(loaded(depth), expected)
    # And as --perceptual_net: a saved FeatureNetwork keeps its preprocessing.
    assert_same_features(build_feature_network(path, "", 32, 1)(depth), expected)


# --- every way it cannot be had ------------------------------------------------------------------

def assert_config_error(call, *fragments):
    with pytest.raises(ConfigError) as error:
        call()
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_none_gives_no_network():
    assert build_feature_network("none", "imagenet", 16, 1) is None


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_imagenet_without_a_download_names_the_flags(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(perceptual, "VGG19_NOTOP_URL", f"http://127.0.0.1:{unused_port()}/vgg19_notop.h5")
    message = assert_config_error(lambda: build_feature_network("vgg19", "imagenet", 64, 1),
                                  "--perceptual_weights=imagenet: cannot download VGG19's ImageNet weights",
                                  "URL fetch failure", "--perceptual_weights=<a local", "--perceptual_net=none")
    assert str(tmp_path / "models" / perceptual.VGG19_NOTOP_FILE) in message


def test_a_hung_download_times_out(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(perceptual, "DOWNLOAD_TIMEOUT_S", 0.5)
    with socket.socket() as silent:      # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        monkeypatch.setattr(perceptual, "VGG19_NOTOP_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/x.h5")
        start = time.monotonic()
        assert_config_error(lambda: build_feature_network("vgg19", "imagenet", 64, 1), "timed out",
                            "--perceptual_net=none")
    assert time.monotonic() - start < 10
    assert socket.getdefaulttimeout() is None


def test_imagenet_uses_the_cached_file_without_the_network(monkeypatch, tmp_path, source):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    shutil.copyfile(source["official_file"], tmp_path / "models" / perceptual.VGG19_NOTOP_FILE)
    with open(source["official_file"], "rb") as cached:
        monkeypatch.setattr(perceptual, "VGG19_NOTOP_MD5", hashlib.md5(cached.read()).hexdigest())
    monkeypatch.setattr(perceptual, "VGG19_NOTOP_URL", f"http://127.0.0.1:{unused_port()}/never_fetched.h5")
    network = build_feature_network("vgg19", "imagenet", 64, 3)
    rgb = maps(3, 64, seed=8, batch=1)
    assert_same_features(network(rgb), source["reference"](rgb))


def test_missing_weights_file(tmp_path):
    missing = str(tmp_path / "nowhere.h5")
    assert_config_error(lambda: build_feature_network("vgg19", missing, 64, 1),
                        f"--perceptual_weights={missing}: weights file not found", "--perceptual_net=none")


def test_a_file_that_is_not_a_weights_file(tmp_path):
    notes = tmp_path / "vgg19.txt"
    notes.write_text("weights")
    assert_config_error(lambda: build_feature_network("vgg19", str(notes), 64, 1),
                        "not a weights file", "--perceptual_net=none")


def test_weights_of_another_network_are_refused_not_half_loaded(tmp_path):
    other = str(tmp_path / "other.weights.h5")
    small_extractor(size=32).save_weights(other)
    assert_config_error(lambda: build_feature_network("vgg19", other, 32, 1),
                        f"--perceptual_weights={other}: not weights of VGG19(include_top=False)",
                        "--perceptual_net=none")


def test_a_load_that_leaves_variables_unset_is_refused(monkeypatch):
    model = small_extractor(size=8)
    monkeypatch.setattr(model, "load_weights", lambda path: None)    # as Keras does with a file of other layers
    assert_config_error(lambda: load_all_weights(model, "x.weights.h5", "--w=x.weights.h5",
                                                 perceptual.VGG19_NOTOP_NETWORK, "hint"),
                        "--w=x.weights.h5: not weights of VGG19(include_top=False): 4 of its 4 variables",
                        "are not in the file; hint")


def test_vgg19_below_32_px(tmp_path):
    assert_config_error(lambda: build_feature_network("vgg19", "imagenet", 16, 1),
                        "--perceptual_net=vgg19 needs images of at least 32 px", "--image_size is 16",
                        "--perceptual_net=none")


def test_unknown_spec():
    assert_config_error(lambda: build_feature_network("resnet50", "imagenet", 64, 1),
                        "--perceptual_net='resnet50': unknown feature network", "--perceptual_net=none")


def test_missing_keras_file(tmp_path):
    assert_config_error(lambda: build_feature_network(str(tmp_path / "gone.keras"), None, 64, 1),
                        "feature network not found", "--perceptual_net=none")


def test_unloadable_keras_file(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip archive")
    assert_config_error(lambda: build_feature_network(str(broken), None, 64, 1),
                        f"--perceptual_net={broken}: cannot load it as a Keras model", "--perceptual_net=none")


@pytest.mark.parametrize("channels,size,maps_channels,maps_size", [
    (3, 64, 3, 32),     # made for another image size
    (1, None, 3, 32),   # takes depth, given normals
])
def test_keras_file_whose_input_does_not_fit(tmp_path, channels, size, maps_channels, maps_size):
    path = str(tmp_path / "misfit.keras")
    small_extractor(channels=channels, size=size).save(path)
    assert_config_error(lambda: build_feature_network(path, None, maps_size, maps_channels),
                        f"the network takes inputs of shape (None, {size}, {size}, {channels}), but the maps are "
                        f"(None, {maps_size}, {maps_size}, {maps_channels})", "--perceptual_net=none")


def test_weights_with_a_keras_file_are_refused(tmp_path):
    assert_config_error(lambda: build_feature_network(str(tmp_path / "own.keras"), "vgg.h5", 64, 1),
                        "--perceptual_weights=vgg.h5: only --perceptual_net=vgg19 takes weights")


def test_messages_name_the_callers_flags():
    assert_config_error(lambda: build_feature_network("vgg19", "imagenet", 16, 1, flag_names=("--depth_net", "--w")),
                        "--depth_net=vgg19 needs", "--depth_net=none")
