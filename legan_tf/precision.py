"""--mixed_precision: the dtype the networks compute in while their weights stay float32.

Keras's global dtype policy is set before the task builds its networks, so every layer computes in
float16 or bfloat16 and keeps float32 variables. What stays float32 on purpose: every loss
(legan_tf.losses casts its inputs), the gradient penalty's norm, the optimizer's moments and the
saved models. float16's narrow exponent (smallest normal 6e-5) makes small gradients underflow, so
its optimizers scale the loss (Keras's LossScaleOptimizer, dynamic: an update whose scaled gradients
overflow is skipped and the scale halved). bfloat16 has float32's exponent range and needs no scaling.

The exported .keras files are float32 copies: a user's CPU, or TF-Serving, should not inherit a
training-time speed choice (float16 convolutions are slow or missing on most CPUs).
"""

from __future__ import annotations

import copy

import keras

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")

_STATE = {"policy": "float32"}


def set_policy(name: str) -> None:
    """Networks built from now on compute in `name`'s dtype (one of POLICIES)."""
    if name not in POLICIES:
        raise ValueError(f"mixed precision policy {name!r}: expected one of {', '.join(POLICIES)}")
    keras.config.set_dtype_policy(name)
    _STATE["policy"] = name


def policy() -> str:
    return _STATE["policy"]


def needs_loss_scaling() -> bool:
    return _STATE["policy"] == "mixed_float16"


def _float32_config(config):
    """`config` (a serialized Keras object) with every dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(config.get("config"), dict):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_config(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_config(value) for value in config]
    if config in POLICIES[1:]:  # a policy stored by name
        return "float32"
    return config


def float32_copy(model: keras.Model) -> keras.Model:
    """The same network computing in float32, with the same (float32) weights."""
    serialized = _float32_config(copy.deepcopy(keras.saving.serialize_keras_object(model)))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clone = keras.saving.deserialize_keras_object(serialized)
    finally:
        keras.config.set_dtype_policy(previous)
    clone.set_weights(model.get_weights())
    return clone


def save(model: keras.Model, path: str) -> None:
    """`model.save(path)`, as a float32 network when it was trained under a mixed policy."""
    if any(getattr(layer.dtype_policy, "name", "float32") != "float32" for layer in _all_layers(model)):
        model = float32_copy(model)
    model.save(path)


def _all_layers(model):
    yield model
    for layer in getattr(model, "_flatten_layers", lambda: [])(include_self=False, recursive=True):
        yield layer
