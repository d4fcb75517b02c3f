#!/usr/bin/env python
"""The JAX path's reader against grain, side by side on the same shards at the same moment.

`legan_tf/data/numpy_input.py` reads prepared TFRecord shards without TensorFlow, on threads or in
`--input_processes` worker processes of its own. grain (Google's data loader for JAX) can read the same
shards as they are: a grain data source needs only `__len__` and `__getitem__`, and the reader's record
spans give every record's offset and length. `grain_batches` below is that reader behind the same
interface (grain's shuffle, flips from `random_map`, `ReadOptions` threads, `mp_prefetch` workers,
resume by slicing at the step); `main` times both, interleaved, per image size and worker count.
docs/backends.md ("The JAX path's input") has the figures and why the project's reader is kept.

grain is not a dependency of legan-tf. To run this (from the repository root, in the project's venv;
`pip uninstall` the packages again afterwards):

    .venv/bin/pip install grain==0.2.18
    for size in 64 128; do
      .venv/bin/python scripts/make_synthetic.py --output_dir=/tmp/inbench/lab$size --image_size=$size \\
          --num_identities=20 --num_lightings=20 --parts=multipie
      .venv/bin/python scripts/prepare_data.py --data_format=multipie --num_lightings=20 --image_size=$size \\
          --data_path=/tmp/inbench/lab$size/multipie/manifest.csv --output_dir=/tmp/inbench/shards$size --num_shards=4
    done
    .venv/bin/python studies/grain_input/run.py --repeats=7 --data_root=/tmp/inbench

Per configuration and repeat: a fresh stream, its first batch (start-up, reported apart), one more
batch, then a fixed number of batches timed by the wall clock and by the CPU time of the trainer's
process and its worker processes together (CPU time per batch is what contention for the cores does
not change). Medians and ranges over the repeats.
"""

import argparse
import functools
import multiprocessing
import os
import statistics
import time

import numpy as np

BATCH = 64
TIMED_BATCHES = {64: 40, 128: 20}


# --- the grain reader -----------------------------------------------------------------------------

def _grain_flags_usable():
    """grain reads one of its absl flags at start-up, an error before absl has parsed the command line."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS["grain_enable_multiprocess_worker_profiling"].present = True


def _worker_init(index, count):
    """What grain's workers need to behave as the project's do: ignore Ctrl-C (the trainer finishes its
    step first) and exit when the trainer dies (grain's own workers outlive it)."""
    import multiprocessing.connection
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()

    def watch():
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _with_flip(span, rng, flips):
    return span, bool(rng.integers(0, 2)) and flips


def _load(item, arguments):
    from legan_tf.data.numpy_input import load_example

    return load_example(item, *arguments)


def _collate(examples):
    """A batch of decoded examples, stacked by feature (as the project's reader stacks them)."""
    return {name: np.stack([example[name] for example in examples]) for name in examples[0]}


def grain_batches(source, batch_size, training, seed=0, repeat=True, start_step=0, processes=0):
    """The batches of a NumpySource through grain (same records, same decoding; grain's own order)."""
    import grain

    from legan_tf.data.errors import DataError

    spans = source._spans_in_order() if training else source._eval_order()
    arguments = (source.features, source.config.image_size, source.config.apply_mask)
    dataset = grain.MapDataset.source(spans)
    if training:
        dataset = dataset.shuffle(seed=seed)
        if repeat:
            dataset = dataset.repeat()
        dataset = dataset.random_map(functools.partial(_with_flip, flips=source.config.random_flip), seed=seed)
    else:
        dataset = dataset.map(lambda span: (span, False))
    dataset = dataset.map(functools.partial(_load, arguments=arguments))
    if not processes:  # threads decode examples; batches are cut after them
        if start_step:
            dataset = dataset[start_step * batch_size:]
        threads = min(32, os.cpu_count() or 1)
        dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=4 * batch_size))
        dataset = dataset.batch(batch_size, drop_remainder=training, batch_fn=_collate)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=training, batch_fn=_collate)
        if start_step:
            dataset = dataset[start_step:]
        _grain_flags_usable()
        dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=processes, per_worker_buffer_size=2),
                                      worker_init_fn=_worker_init)
    iterator = iter(dataset)
    try:
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except RuntimeError as error:
                if "terminated unexpectedly" in str(error):
                    raise DataError(f"an input worker process ended before sending its batch ({error})") from None
                raise
            yield batch
    finally:
        iterator.close()


# --- the comparison -------------------------------------------------------------------------------

def _cpu_seconds(children):
    """CPU time of this process and of `children` (their /proc stat), in seconds."""
    total, tick = time.process_time(), os.sysconf("SC_CLK_TCK")
    for child in children:
        try:
            with open(f"/proc/{child.pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except FileNotFoundError:
            pass
    return total


def _stream(reader, source, processes, seed):
    if reader == "grain":
        return grain_batches(source, BATCH, True, seed=seed, processes=processes)
    return source.batches(BATCH, True, seed=seed, processes=processes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data_root", default="/tmp/inbench", help="holds shards64/ and shards128/ (docstring)")
    args = parser.parse_args()

    from legan_tf.data.config import DataConfig, numbered_names
    from legan_tf.data.numpy_input import open_numpy_source

    rows = {}
    for size in (64, 128):
        config = DataConfig("tfrecord", os.path.join(args.data_root, f"shards{size}"), image_size=size,
                            lighting_names=numbered_names(20), random_flip=True)
        source = open_numpy_source(config)
        for repeat in range(args.repeats):
            order = ("legan-tf", "grain") if repeat % 2 == 0 else ("grain", "legan-tf")
            for processes in (0, 1, 2):
                for reader in order:
                    started = time.perf_counter()
                    stream = _stream(reader, source, processes, seed=repeat)
                    next(stream)
                    first = time.perf_counter() - started
                    next(stream)  # warm
                    children = multiprocessing.active_children()
                    wall, cpu = time.perf_counter(), _cpu_seconds(children)
                    for _ in range(TIMED_BATCHES[size]):
                        next(stream)
                    cpu = (_cpu_seconds(children) - cpu) / TIMED_BATCHES[size]
                    rate = TIMED_BATCHES[size] / (time.perf_counter() - wall)
                    stream.close()
                    rows.setdefault((size, processes, reader), []).append((rate, first, cpu))
                    print(f"{size} px, {processes} worker(s), {reader}: {rate:.2f} batches/s, "
                          f"{cpu * 1000:.0f} CPU ms/batch, first batch {first:.2f} s", flush=True)
    print(f"\nbatch {BATCH}, {args.repeats} repeats, medians (range)")
    print("| size | worker processes | reader | batches/s | images/s | CPU ms per batch | first batch (s) |")
    print("|---|---|---|---|---|---|---|")
    for (size, processes, reader), values in sorted(rows.items()):
        rates, firsts, cpus = (np.asarray(column) for column in zip(*values))
        median = statistics.median(rates)
        print(f"| {size} px | {processes} | {reader} | {median:.1f} ({rates.min():.1f}..{rates.max():.1f}) | "
              f"{median * BATCH:.0f} | {statistics.median(cpus) * 1000:.0f} ({cpus.min() * 1000:.0f}.."
              f"{cpus.max() * 1000:.0f}) | {statistics.median(firsts):.2f} |")


if __name__ == "__main__":
    main()
