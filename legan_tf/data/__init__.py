"""Data layer: readers for naturalness ratings, attribute-labelled faces and RGB-depth pairs.

The public names load lazily, so importing the numpy-only synthetic subpackage
(`legan_tf.data.synthetic`) does not pull in TensorFlow.
"""

import importlib

_PUBLIC = {
    "DataConfig": "legan_tf.data.config",
    "MULTIPIE_EXPRESSIONS": "legan_tf.data.config",
    "MULTIPIE_LIGHTINGS": "legan_tf.data.config",
    "AFFECTNET_EXPRESSIONS": "legan_tf.data.config",
    "CELEBA_ATTRIBUTES": "legan_tf.data.config",
    "DATA_FORMATS": "legan_tf.data.config",
    "DataError": "legan_tf.data.errors",
    "Fault": "legan_tf.data.errors",
    "Source": "legan_tf.data.pipeline",
    "open_source": "legan_tf.data.pipeline",
    "distribute": "legan_tf.data.pipeline",
    "define_data_flags": "legan_tf.data.flags",
    "data_config_from_flags": "legan_tf.data.flags",
    "write_tfrecords": "legan_tf.data.tfrecord",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'legan_tf.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
