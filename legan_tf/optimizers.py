"""The optimizers of every recipe and their learning-rate schedule, made in one place so a run-wide setting
(--on_nan=skip) reaches them all."""

from __future__ import annotations

import keras
from keras import ops

from legan_tf import precision

_SETTINGS = {"skip_non_finite": False}


def set_skip_non_finite(enabled: bool) -> None:
    """--on_nan=skip: every optimizer made from now on skips updates whose gradients are not finite."""
    _SETTINGS["skip_non_finite"] = bool(enabled)


def adam(learning_rate, beta_1=0.9, beta_2=0.999):
    """Adam; under --mixed_precision=mixed_float16 with dynamic loss scaling (which itself skips an update
    whose scaled gradients overflow), else wrapped in SkipNonFiniteUpdates under --on_nan=skip."""
    optimizer = keras.optimizers.Adam(learning_rate, beta_1, beta_2)
    if precision.needs_loss_scaling():
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return SkipNonFiniteUpdates(optimizer) if _SETTINGS["skip_non_finite"] else optimizer


class SkipNonFiniteUpdates(keras.optimizers.LossScaleOptimizer):
    """The inner optimizer's update where every gradient is finite; otherwise nothing changes (weights,
    moments, iterations) and `step_counter` counts the consecutive skipped updates.

    Built on Keras's LossScaleOptimizer for its finite-or-not branch, which tf.distribute supports (a
    cond in cross-replica context) and JAX traces; the loss scale stays 1, since float32 needs none.
    """

    def __init__(self, inner_optimizer, name=None, **kwargs):
        kwargs.pop("initial_scale", None), kwargs.pop("dynamic_growth_steps", None)
        super().__init__(inner_optimizer, initial_scale=1.0, dynamic_growth_steps=1, name=name, **kwargs)

    @property
    def consecutive_skips(self):
        return self.step_counter

    # TensorFlow (stateful)
    def _stateful_handle_finite_grads(self, grads, trainable_variables):
        self.inner_optimizer.apply(grads, trainable_variables=trainable_variables)
        self.step_counter.assign(0)

    def _stateful_handle_non_finite_grads(self):
        self.step_counter.assign_add(1)

    # JAX (stateless)
    def _stateless_handle_finite_grads(self, optimizer_variables, grads, trainable_variables):
        mapping = list(zip(self.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self.step_counter.assign(0)
            new_trainable, new_inner = self.inner_optimizer.stateless_apply(
                self.inner_optimizer.variables, grads, trainable_variables)
        return new_trainable, [scope.get_current_value(v) for v in self._variables] + list(new_inner)

    def _stateless_handle_non_finite_grads(self, optimizer_variables, trainable_variables):
        mapping = list(zip(self.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self.step_counter.assign_add(1)
        return trainable_variables, [scope.get_current_value(v) for v in self.variables]


@keras.saving.register_keras_serializable(package="legan_tf")
class LinearDecayAfter(keras.optimizers.schedules.LearningRateSchedule):
    """Constant, then linear decay to 0 over the last `decay_steps` of `total_steps` (StarGAN's schedule)."""

    def __init__(self, initial_learning_rate, total_steps, decay_steps):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        rate = ops.convert_to_tensor(self.initial_learning_rate, "float32")
        if self.decay_steps <= 0:
            return rate
        step = ops.cast(step, "float32")
        decay_start = float(self.total_steps - self.decay_steps)
        remaining = (float(self.total_steps) - step) / float(self.decay_steps)
        return ops.where(step < decay_start, rate, rate * ops.clip(remaining, 0.0, 1.0))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "total_steps": self.total_steps,
                "decay_steps": self.decay_steps}


@keras.saving.register_keras_serializable(package="legan_tf")
class ConstantFirst(keras.optimizers.schedules.LearningRateSchedule):
    """`rate` for the first `steps` updates, then `then` (another schedule, read at the same step count)."""

    def __init__(self, rate, steps, then):
        self.rate = float(rate)
        self.steps = int(steps)
        self.then = then

    def __call__(self, step):
        return ops.where(ops.cast(step, "float32") < float(self.steps), ops.convert_to_tensor(self.rate, "float32"),
                         ops.convert_to_tensor(self.then(step), "float32"))

    def get_config(self):
        return {"rate": self.rate, "steps": self.steps, "then": keras.saving.serialize_keras_object(self.then)}

    @classmethod
    def from_config(cls, config):
        return cls(config["rate"], config["steps"], keras.saving.deserialize_keras_object(config["then"]))
