"""The settings of a training loop, shared by the TensorFlow trainer and the JAX trainer."""

import dataclasses

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")  # tf.distribute, TensorFlow backend only


@dataclasses.dataclass
class TrainerConfig:
    train_steps: int
    log_every: int = 50
    sample_every: int = 500
    eval_every: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    num_samples: int = 16
    eval_batch_size: int = 64
    seed: int = 0
    progress_bar: bool = True
