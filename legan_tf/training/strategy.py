"""Chooses the tf.distribute strategy from a flag, so a run scales from a laptop to many GPUs unchanged."""

import json
import os

import numpy as np
import tensorflow as tf

from legan_tf.errors import ConfigError
from legan_tf.runs.settings import STRATEGIES


def create_strategy(name: str = "default", tpu_address: str = "") -> tf.distribute.Strategy:
    """Returns the strategy called `name`.

    default: whatever single device TF picks. mirrored: every local GPU (or the CPU when there is
    none). multi_worker: one MirroredStrategy per machine, synchronised over the cluster described
    by TF_CONFIG. tpu: a TPUStrategy on `tpu_address` ("" = the local TPU or the one the
    environment names).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable describing the cluster "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}).'
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise ConfigError(f"TF_CONFIG is not valid JSON: {error}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes summaries, samples and the flagfile; every worker must still checkpoint."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def split_cpu_into_logical_devices(count: int) -> None:
    """Makes `count` logical CPU devices so mirrored runs can be tested without GPUs.

    Must run before TensorFlow initialises its devices (before any op executes).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


# Longest path broadcast_from_chief carries (bytes, UTF-8).
_MAX_BROADCAST_BYTES = 4096


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """A MultiWorkerMirroredStrategy over more than one process (TF_CONFIG names several tasks)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(tasks) for kind, tasks in spec.items() if kind in ("chief", "worker")) > 1


def broadcast_from_chief(strategy: tf.distribute.Strategy, text: str) -> str:
    """The chief's `text` on every worker of a cluster (one all-reduce; `text` as given elsewhere).

    Global replica 0 lives on the chief: it contributes the bytes and every other replica zeros, so a
    SUM leaves the chief's bytes everywhere. Every worker must call this at the same point.
    """
    if not is_multi_worker(strategy):
        return text
    encoded = text.encode("utf-8")
    if len(encoded) > _MAX_BROADCAST_BYTES:
        raise ConfigError(f"{text[:80]}...: longer than {_MAX_BROADCAST_BYTES} bytes, too long to share with the workers.")
    padded = np.zeros(_MAX_BROADCAST_BYTES, np.int32)
    padded[:len(encoded)] = np.frombuffer(encoded, np.uint8)
    own = tf.constant(padded)

    def share():
        context = tf.distribute.get_replica_context()
        first = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.int32)
        return context.all_reduce(tf.distribute.ReduceOp.SUM, own * first)

    shared = strategy.experimental_local_results(strategy.run(tf.function(share)))[0].numpy()
    return bytes(shared[shared > 0].astype(np.uint8)).decode("utf-8")


def any_worker_function(strategy: tf.distribute.Strategy):
    """flag -> whether any worker of the cluster passed True (one small all-reduce), so that every worker
    takes the same decision at the same step; the identity outside a multi-worker cluster."""
    if not is_multi_worker(strategy):
        return bool

    def count(flag):
        # The value reduced must be made by an op inside the replica function. tf.distribute sends a
        # collective to the devices of the tensor it is given (`tensor.device`); with one device per worker
        # a replica's value stays a plain tensor, and the function's own input names no device, so
        # MultiWorkerMirroredStrategy in TF 2.21 refuses it ("destinations can not be empty"). An op made
        # here runs under the replica's device scope and names its device (legan_tf.backend.all_gather
        # does the same); a scalar so made all-reduces as well as this vector of one.
        context = tf.distribute.get_replica_context()
        return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reshape(flag, [1]))

    @tf.function
    def vote(flag):
        return strategy.experimental_local_results(strategy.run(count, args=(flag,)))[0]

    return lambda flag: int(vote(tf.constant(int(flag), tf.int32))[0]) > 0
