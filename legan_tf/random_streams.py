"""Named random streams: every random draw of a training step, keyed by what it is for.

The rule (TensorFlow; JAX folds the same three numbers into a threefry key, see
`legan_tf.backend.stateless_uniform`): a draw of stream `name` at training step `step` of a run with
seed `seed` uses the stateless-RNG seed

    (seed, key(name) * 2**32 + step),    key(name) = crc32(name) mod 2**31.

So a draw depends on (run seed, stream, step) only: a resumed run repeats what the uninterrupted one
drew, and no two streams of one run share numbers (keys are checked distinct when a stream is made;
steps stay below 2**32). Per-example draws are taken for the whole global batch and each replica
keeps its own examples' rows, so a batch split over replicas draws what one device would.
"""

from __future__ import annotations

import zlib

from keras import ops

from legan_tf import backend

_KEYS: dict[int, str] = {}


class Stream:
    """One named stream. Make it once, at module level, e.g. `ALPHA = Stream("gan/gradient_penalty_alpha")`."""

    def __init__(self, name: str):
        key = zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF
        if _KEYS.get(key, name) != name:
            raise ValueError(f"random streams {name!r} and {_KEYS[key]!r} have the same key; rename one.")
        _KEYS[key] = name
        self.name, self.key = name, key

    def seed(self, run_seed, step):
        """TensorFlow's stateless-RNG seed, shape (2,) int64, of this stream at `step` (for tf.image-style ops)."""
        import tensorflow as tf

        return tf.stack([tf.cast(run_seed, tf.int64), tf.constant(self.key * 2**32, tf.int64) + tf.cast(step, tf.int64)])

    def uniform(self, shape, run_seed, step):
        """U(0, 1) draws of this stream at `step` (`legan_tf.backend.stateless_uniform`)."""
        return backend.stateless_uniform(shape, run_seed, self.key, step)

    def __repr__(self):
        return f"Stream({self.name!r})"


replica_index = backend.replica_index


def uniform_per_example(stream: Stream, run_seed, step, count, global_batch_size):
    """U(0, 1), one per example of this replica's `count`, drawn for the global batch (see the module docstring)."""
    if backend.num_replicas() == 1 and isinstance(count, int):
        # The first `count` draws of the global batch's: what the gather below picks on replica 0.
        # Evaluation batches may be larger than the training batch.
        return stream.uniform([max(int(global_batch_size), int(count))], run_seed, step)[:count]
    replica = replica_index()
    length = ops.maximum(global_batch_size, (replica + 1) * count)
    draws = stream.uniform(ops.reshape(length, [1]), run_seed, step)
    return ops.take(draws, replica * count + ops.arange(count))
