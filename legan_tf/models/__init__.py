"""Keras networks, one module per network. Importing this registers them for `keras.models.load_model`."""

from legan_tf.models.classifier import AttributeClassifier

__all__ = ["AttributeClassifier"]
