"""Chooses the tf.distribute strategy from a flag, so a run scales from a laptop to many GPUs unchanged."""

import json
import os

import tensorflow as tf

from legan_tf.errors import ConfigError

from legan_tf.training.config import STRATEGIES  # noqa: E402


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
