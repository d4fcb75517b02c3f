"""Shared helpers of the metric tests: tiny stand-in networks (never Inception with random weights in a result)."""

import socket

import keras
import numpy as np
import pytest

from legan_tf.evaluation.metrics.features import FeatureExtractor


def images(count, size=8, seed=0, channels=3, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, (count, size, size, channels)).astype(np.float32)


def channel_mean_network(size=8):
    """A Keras stand-in for Inception: (B, size, size, 3) -> (B, 3), the mean of each channel."""
    inputs = keras.Input((size, size, 3))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs), name="channel_means")


@pytest.fixture(scope="module")
def mean_extractor():
    """Features = channel means of the images resized to 8 px, not quantized."""
    return FeatureExtractor(channel_mean_network(), image_size=8, source="stand-in", name="channel means",
                            quantize=False)


def unused_port():
    """A local port nothing listens on: a connection to it is refused at once, as offline downloads fail."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
