"""Input pipelines: training images per second delivered from lab faces prepared into TFRecord shards.

input_tf: the TensorFlow backend's tf.data pipeline (Source.dataset(training=True)). input: the JAX
backend's reader of prepared shards (legan_tf/data/numpy_input.py, no TensorFlow), on threads or
worker processes.
"""

from __future__ import annotations

import os
import tempfile

from legan_tf.benchmark.timing import throughput_row

BATCHES_PER_REPEAT = 10


def prepared_lab_shards(options, root, size):
    """Lab faces (stored at --input_source_size, else `size`) prepared into 4 TFRecord shards under
    `root`, as prepare_data.py writes them; returns the DataConfig that reads them for training."""
    from legan_tf.data import open_source, tfrecord
    from legan_tf.data.config import DataConfig
    from legan_tf.data.synthetic.writer import write_face_lab

    write_face_lab(root, image_size=options.input_source_size or size, num_identities=4, seed=0, num_lightings=4,
                   naturalness_variants=1, rgbd_lightings_per_face=1, parts=("multipie",), progress=False)
    lab = DataConfig("multipie", os.path.join(root, "multipie", "manifest.csv"), image_size=size,
                     lighting_names=tuple(f"{i:02d}" for i in range(4)), random_flip=True)
    shards = os.path.join(root, "shards")
    tfrecord.prepare_output_dir(shards, overwrite=False)
    tfrecord.write_tfrecords(open_source(lab), shards, num_shards=4, holdout_fraction=0.0, seed=0)
    return DataConfig("tfrecord", shards, image_size=size, lighting_names=lab.lighting_names, random_flip=True)


def input_row(options, label, next_batch, details="", key=""):
    """Images/s of `next_batch()` over BATCHES_PER_REPEAT training batches of --input_batch per timed call."""

    def run():
        for _ in range(BATCHES_PER_REPEAT):
            next_batch()

    stored = options.input_source_size or options.input_size
    return throughput_row(f"{label} {stored} px PNG to {options.input_size} px, batch {options.input_batch}{details}, "
                          "flips", run, options.repeats, BATCHES_PER_REPEAT * options.input_batch, key=key)


def bench_input(options):
    from legan_tf.data.numpy_input import open_numpy_source

    with tempfile.TemporaryDirectory() as root:
        # Preparing needs TensorFlow's writer; reading (what is timed) does not.
        source = open_numpy_source(prepared_lab_shards(options, root, options.input_size))
        stream = source.batches(options.input_batch, training=True, num_workers=options.input_workers or None,
                                processes=options.input_processes)
        workers = (f"{options.input_processes} processes" if options.input_processes
                   else f"{options.input_workers or os.cpu_count()} threads")
        row = input_row(options, "numpy input (JAX path)", lambda: next(stream), details=f", {workers}")
        stream.close()
    return [row]


def bench_input_tf(options):
    from legan_tf.data import open_source

    with tempfile.TemporaryDirectory() as root:
        source = open_source(prepared_lab_shards(options, root, options.input_size))
        batches = iter(source.dataset(batch_size=options.input_batch, training=True))
        return [input_row(options, "tf.data input (TensorFlow trainer)", lambda: next(batches),
                          key=f"input_tf {options.input_size}")]
