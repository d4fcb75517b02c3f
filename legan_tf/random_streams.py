"""Named random streams: every random draw of a training step, keyed by what it is for.

The rule: a draw of stream `name` at training step `step` of a run with seed `seed` uses the
stateless-RNG seed

    (seed, key(name) * 2**32 + step),    key(name) = crc32(name) mod 2**31.

So a draw depends on (run seed, stream, step) only: a resumed run repeats what the uninterrupted one
drew, and no two streams of one run share numbers (keys are checked distinct when a stream is made;
steps stay below 2**32). Per-example draws are taken for the whole global batch and each replica
keeps its own examples' rows, so a batch split over replicas draws what one device would.
"""

from __future__ import annotations

import zlib

import tensorflow as tf

_KEYS: dict[int, str] = {}


class Stream:
    """One named stream. Make it once, at module level, e.g. `ALPHA = Stream("gan/gradient_penalty_alpha")`."""

    def __init__(self, name: str):
        key = zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF
        if _KEYS.get(key, name) != name:
            raise ValueError(f"random streams {name!r} and {_KEYS[key]!r} have the same key; rename one.")
        _KEYS[key] = name
        self.name, self.key = name, key

    def seed(self, run_seed, step) -> tf.Tensor:
        """The stateless-RNG seed, shape (2,) int64, of this stream at `step`."""
        return tf.stack([tf.cast(run_seed, tf.int64), tf.constant(self.key * 2**32, tf.int64) + tf.cast(step, tf.int64)])

    def __repr__(self):
        return f"Stream({self.name!r})"


def replica_index() -> tf.Tensor:
    """This replica's position in the sync group (0 outside a strategy or in cross-replica code)."""
    context = tf.distribute.get_replica_context()
    return tf.cast(context.replica_id_in_sync_group if context is not None else 0, tf.int32)


def uniform_per_example(stream: Stream, run_seed, step, count, global_batch_size) -> tf.Tensor:
    """U(0, 1), one per example of this replica's `count`, drawn for the global batch (see the module docstring)."""
    replica = replica_index()
    # Evaluation batches may be larger than the training batch.
    length = tf.maximum(global_batch_size, (replica + 1) * count)
    draws = tf.random.stateless_uniform([length], seed=stream.seed(run_seed, step))
    return tf.gather(draws, replica * count + tf.range(count))
