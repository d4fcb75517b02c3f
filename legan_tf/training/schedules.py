"""Learning-rate schedules (Keras-serializable, keyed by the optimizer's own step counter)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="legan_tf")
class LinearDecayAfter(keras.optimizers.schedules.LearningRateSchedule):
    """Constant, then linear decay to 0 over the last `decay_steps` of `total_steps` (StarGAN's schedule)."""

    def __init__(self, initial_learning_rate, total_steps, decay_steps):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        rate = tf.constant(self.initial_learning_rate, tf.float32)
        if self.decay_steps <= 0:
            return rate
        decay_start = float(self.total_steps - self.decay_steps)
        remaining = (float(self.total_steps) - tf.cast(step, tf.float32)) / float(self.decay_steps)
        return tf.where(tf.cast(step, tf.float32) < decay_start, rate, rate * tf.clip_by_value(remaining, 0.0, 1.0))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "total_steps": self.total_steps,
                "decay_steps": self.decay_steps}
