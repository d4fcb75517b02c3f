"""Learning-rate schedules (Keras-serializable, keyed by the optimizer's own step counter)."""

import keras
from keras import ops


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
