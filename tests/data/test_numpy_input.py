"""legan_tf.data.numpy_input, the JAX path's reader of prepared shards, against the tf.data reader."""

import os
import struct

import numpy as np
import pytest

from legan_tf.data import DataError, open_source, tfrecord
from legan_tf.data.numpy_input import open_numpy_source, parse_example, record_spans

# The fixtures' images are 20 x 16 (tests/data/conftest.py): the centre crop is 16 x 16. At 16 px
# no resampling happens and both readers must give identical floats. At 8 and 24 px both use a
# triangle (bilinear) filter widened by the scale, evaluated in float32 by different code: the
# weights of one output pixel sum to 1 and its inputs lie in [0, 255], so the two results can
# differ by a few float32 ulps of 255 (2^-16 each) before scaling to [-1, 1]: 1e-5 bounds that
# with margin, while a wrong filter, centre or crop moves pixels by 1e-2 or more.
RESAMPLING_ATOL = 1e-5


def _shards(layout, tmp_path, holdout_fraction, num_shards=3):
    source = open_source(layout.config())
    output = str(tmp_path / f"shards-{holdout_fraction}")
    tfrecord.prepare_output_dir(output, overwrite=False)
    tfrecord.write_tfrecords(source, output, num_shards=num_shards, holdout_fraction=holdout_fraction, seed=1)
    return output


def _pair(layout, shards, **overrides):
    config = layout.config(data_format="tfrecord", data_path=shards, **overrides)
    return open_source(config), open_numpy_source(config)


def _assert_same_batches(tf_batches, np_batches, atol):
    assert len(tf_batches) == len(np_batches)
    for tf_batch, np_batch in zip(tf_batches, np_batches):
        for name, value in np_batch.items():
            expected = tf_batch[name]
            assert value.shape == expected.shape and value.dtype == expected.dtype, name
            if name == "image":  # the only bilinear map: depth, normals and masks resize by nearest neighbour
                np.testing.assert_allclose(value, expected, rtol=0, atol=atol, err_msg=name)
            else:
                np.testing.assert_array_equal(value, expected, err_msg=name)


@pytest.mark.parametrize("name, size, atol", [("multipie", 16, 0.0), ("multipie", 8, RESAMPLING_ATOL),
                                              ("multipie", 24, RESAMPLING_ATOL), ("rgbd", 16, 0.0),
                                              ("rgbd", 8, RESAMPLING_ATOL), ("ratings", 16, 0.0)])
def test_evaluation_batches_equal_the_tf_data_readers(make_layout, tmp_path, name, size, atol):
    layout = make_layout(name)
    tf_source, np_source = _pair(layout, _shards(layout, tmp_path, 0.0), image_size=size)
    tf_batches = [{k: v for k, v in batch.items() if k not in ("group", "stratum", "path")}
                  for batch in tf_source.dataset(3, training=False, repeat=False).as_numpy_iterator()]
    np_batches = list(np_source.batches(3, training=False))
    _assert_same_batches(tf_batches, np_batches, atol)
    assert set(np_batches[0]) >= {"image"} | ({"depth", "normals", "mask"} if name == "rgbd" else set())


@pytest.mark.parametrize("holdout_fraction", [0.0, 0.3])
def test_splits_hold_the_same_examples(make_layout, tmp_path, holdout_fraction):
    """A stored split (prepare_data held out 0.3) and a split by group at training time (0.4)."""
    layout = make_layout("multipie")
    shards = _shards(layout, tmp_path, holdout_fraction, num_shards=2)
    tf_source, np_source = _pair(layout, shards, holdout_fraction=holdout_fraction or 0.4, split_seed=3)
    for tf_part, np_part in zip(tf_source.split(), np_source.split()):
        assert np_part.split_name == tf_part.split_name and np_part.num_examples == tf_part.num_examples
        assert np_part.groups == tf_part.groups
        assert np_part.class_counts() == tf_part.class_counts()
    assert tf_source.split()[1].num_examples > 0


def test_resumed_training_batches_continue_the_uninterrupted_stream(make_layout, tmp_path):
    layout = make_layout("rgbd")  # normals: a flip negates their x component
    _, source = _pair(layout, _shards(layout, tmp_path, 0.0), random_flip=True)
    stream = source.batches(3, training=True, seed=5)
    first = [next(stream) for _ in range(7)]  # 21 examples: past the end of the 8-example epoch
    stream.close()
    resumed = source.batches(3, training=True, seed=5, start_step=4)
    for expected in first[4:]:
        got = next(resumed)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    resumed.close()
    other_seed = next(source.batches(3, training=True, seed=6))
    assert not all(np.array_equal(other_seed[name], first[0][name]) for name in first[0])


def test_worker_processes_give_the_threads_batches(make_layout, tmp_path):
    layout = make_layout("rgbd")
    _, source = _pair(layout, _shards(layout, tmp_path, 0.0), random_flip=True)
    threads, processes = source.batches(3, training=True, seed=1), source.batches(3, training=True, seed=1, processes=2)
    for _ in range(5):
        expected, got = next(threads), next(processes)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    threads.close()
    processes.close()


def test_flips_mirror_every_pixel_map_and_negate_normals_x(make_layout, tmp_path):
    layout = make_layout("rgbd")
    shards = _shards(layout, tmp_path, 0.0)
    _, plain = _pair(layout, shards)
    _, flipping = _pair(layout, shards, random_flip=True)
    unflipped = next(plain.batches(8, training=True, seed=2))
    maybe_flipped = next(flipping.batches(8, training=True, seed=2))
    mirrored = 0
    for i in range(8):
        if np.array_equal(maybe_flipped["image"][i], unflipped["image"][i]):
            continue
        mirrored += 1
        np.testing.assert_array_equal(maybe_flipped["image"][i], unflipped["image"][i][:, ::-1])
        np.testing.assert_array_equal(maybe_flipped["depth"][i], unflipped["depth"][i][:, ::-1])
        np.testing.assert_array_equal(maybe_flipped["normals"][i],
                                      unflipped["normals"][i][:, ::-1] * np.float32([-1, 1, 1]))
    assert 0 < mirrored < 8  # a fair coin per example: P(none or all of 8) = 2^-7


def test_a_truncated_or_corrupt_shard_is_an_error_naming_the_file(make_layout, tmp_path):
    layout = make_layout("multipie")
    shards = _shards(layout, tmp_path, 0.0, num_shards=1)
    [shard] = [os.path.join(shards, f) for f in os.listdir(shards) if f.endswith(".tfrecord")]
    data = open(shard, "rb").read()
    with open(shard, "wb") as handle:
        handle.write(data[:len(data) - 10])
    _, source = _pair(layout, shards)
    with pytest.raises(DataError, match=f"{os.path.basename(shard)}: truncated"):
        next(source.batches(2, training=False))
    with open(shard, "wb") as handle:
        handle.write(b"\x05" + data[1:])
    _, source = _pair(layout, shards)
    with pytest.raises(DataError, match="bad length checksum"):
        next(source.batches(2, training=False))


def test_other_layouts_are_sent_to_prepare_data(make_layout):
    with pytest.raises(DataError, match="prepare_data.py"):
        open_numpy_source(make_layout("multipie").config())


def test_example_parser_reads_every_kind_of_list():
    import tensorflow as tf

    example = tf.train.Example(features=tf.train.Features(feature={
        "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x", b""])),
        "f": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5, -2.25])),
        "i": tf.train.Feature(int64_list=tf.train.Int64List(value=[0, 300, -7, 2**40])),
        "empty": tf.train.Feature(int64_list=tf.train.Int64List(value=[])),
    })).SerializeToString()
    parsed = parse_example(example)
    assert parsed == {"b": [b"x", b""], "f": [1.5, -2.25], "i": [0, 300, -7, 2**40], "empty": []}


def test_record_spans_follow_the_framing(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "x.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for payload in (b"a", b"", b"hello" * 100):
            writer.write(payload)
    data = open(path, "rb").read()
    spans = record_spans(path)
    assert [data[o:o + n] for o, n in spans] == [b"a", b"", b"hello" * 100]
    assert struct.unpack("<Q", data[:8])[0] == 1


def _read_past_a_dead_worker(stream):
    """Reads more batches than are queued ahead (a dead worker owes one of them) on a thread, for at most a
    minute; returns ["no error"] or [the DataError's message], or [] when reading hung."""
    import threading

    outcome = []

    def drain():
        try:
            for _ in range(20):
                next(stream)
            outcome.append("no error")
        except DataError as error:
            outcome.append(str(error))

    reading = threading.Thread(target=drain, daemon=True)
    reading.start()
    reading.join(timeout=60)
    return outcome


def test_workers_ignore_ctrl_c_and_die_on_sigterm_under_the_trainers_signal_handlers(make_layout, tmp_path):
    """The trainer installs its stop-signal handlers (StopSignals: log, then stop after the step) before
    the first batch forks the workers, and a fork keeps Python's handlers. A worker must ignore SIGINT,
    which Ctrl-C sends to the whole process group (the trainer finishes its step, then ends the workers;
    under StopSignals' handler a second Ctrl-C would raise KeyboardInterrupt in every worker), and must
    die on SIGTERM like any process (under StopSignals' handler it would log and carry on), so that
    `kill` and schedulers can end it and the trainer then reports the batch that worker owed."""
    import multiprocessing
    import signal

    from legan_tf.training.config import StopSignals

    layout = make_layout("rgbd")
    _, source = _pair(layout, _shards(layout, tmp_path, 0.0), random_flip=True)
    expected = source.batches(3, training=True, seed=1)
    with StopSignals():
        stream = source.batches(3, training=True, seed=1, processes=2)
        try:
            for _ in range(2):  # batch i comes from worker i % 2: both have set up their signal handling
                _assert_batches_equal(next(stream), next(expected))
            workers = sorted(multiprocessing.active_children(), key=lambda worker: worker.name)
            assert len(workers) == 2
            for worker in workers:
                assert _disposition(worker.pid, signal.SIGINT) == "ignored"
                assert _disposition(worker.pid, signal.SIGTERM) == "default"
                os.kill(worker.pid, signal.SIGINT)
            # More batches than are queued ahead, so each worker decodes some after its SIGINT arrived.
            for _ in range(12):
                _assert_batches_equal(next(stream), next(expected))
            assert all(worker.is_alive() for worker in workers)

            victim = workers[0]
            os.kill(victim.pid, signal.SIGTERM)
            victim.join(timeout=60)  # a default SIGTERM ends a process once it runs; 60 s allows a loaded machine
            assert victim.exitcode == -signal.SIGTERM
            outcome = _read_past_a_dead_worker(stream)
            assert outcome and f"input worker process {victim.pid} ended (exit code {-signal.SIGTERM})" in outcome[0]
        finally:
            # Kills what is left, after a failure too: a worker that survived SIGTERM would otherwise hang
            # multiprocessing's exit handler, which terminates and then joins it.
            stream.close()
            expected.close()
    assert not any(worker.is_alive() for worker in workers)


def _assert_batches_equal(got, expected):
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def _disposition(pid, number):
    """How process `pid` takes signal `number`: "ignored", "caught" (by a handler) or "default"."""
    masks = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("SigIgn", "SigCgt"):
                masks[key] = int(value, 16)
    bit = 1 << (number - 1)
    return "ignored" if masks["SigIgn"] & bit else "caught" if masks["SigCgt"] & bit else "default"


def _close_in_a_minute(stream):
    """Closes `stream` on a thread: (whether the close hung, pids of its workers still alive after it).
    A healthy close takes well under a second; a hung one never returns, so after 60 s the workers are
    killed to free it and let the test process end."""
    import multiprocessing
    import signal
    import threading

    workers = multiprocessing.active_children()
    assert workers, "the stream should have started worker processes"
    closing = threading.Thread(target=stream.close, daemon=True)
    closing.start()
    closing.join(timeout=60)
    still_alive = [worker.pid for worker in workers if worker.is_alive()]
    if closing.is_alive():
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
    return closing.is_alive(), still_alive


def _large_batch_source(make_layout, tmp_path):
    # At 256 px a batch of 3 RGB-D examples pickles to several MB, far beyond what a pipe holds (64 KiB
    # to a few hundred KiB), so a worker is still inside its send when the trainer stops reading.
    layout = make_layout("rgbd")
    shards = _shards(layout, tmp_path, 0.0)
    return open_numpy_source(layout.config(data_format="tfrecord", data_path=shards, image_size=256))


def test_closing_while_workers_are_halfway_through_sending_a_batch_ends_them(make_layout, tmp_path):
    """multiprocessing.Pool.terminate() could kill a worker holding the result queue's shared lock
    mid-send and then wait on that lock for ever (CI's Ctrl-C test hung under load). Closing the
    stream must end every worker and return however far their sends got."""
    import time

    source = _large_batch_source(make_layout, tmp_path)
    for seed in range(3):
        stream = source.batches(3, training=True, seed=seed, processes=2)
        next(stream)
        time.sleep(0.5)  # the workers fill their pipes and block in send
        hung, still_alive = _close_in_a_minute(stream)
        assert not hung, "closing the stream hung"
        assert not still_alive


def test_a_worker_process_that_dies_is_a_clear_error_not_a_wait_for_ever(make_layout, tmp_path):
    """A worker killed from outside (or by the kernel, out of memory) never sends its batch: with
    multiprocessing.Pool the trainer waited for it for ever; now the next batch it owed is an error."""
    import multiprocessing
    import signal

    source = _large_batch_source(make_layout, tmp_path)
    stream = source.batches(3, training=True, seed=0, processes=2)
    next(stream)
    [victim, *_] = multiprocessing.active_children()
    os.kill(victim.pid, signal.SIGKILL)
    outcome = _read_past_a_dead_worker(stream)
    assert outcome, "reading past a dead worker hung"
    assert f"input worker process {victim.pid} ended" in outcome[0] and "--input_processes=0" in outcome[0]
    stream.close()


def test_an_image_that_does_not_decode_is_a_clear_error_from_a_thread_or_a_worker(make_layout, tmp_path):
    layout = make_layout("multipie")
    shards = _shards(layout, tmp_path, 0.0, num_shards=1)
    [shard] = [os.path.join(shards, f) for f in os.listdir(shards) if f.endswith(".tfrecord")]
    _, source = _pair(layout, shards)
    source._all_spans()  # the framing is read before the damage, so only decoding can notice it
    data = bytearray(open(shard, "rb").read())
    start = data.index(b"\x89PNG")
    data[start + 8:start + 40] = b"\xff" * 32  # its header chunk (the record starts after 12 bytes of framing)
    open(shard, "wb").write(bytes(data))
    errors = []
    for processes in (0, 2):
        stream = source.batches(2, training=False, processes=processes)
        with pytest.raises(DataError, match=f"{os.path.basename(shard)}: the record at byte 12 holds an image "
                                            f"that does not decode") as caught:
            next(stream)
        stream.close()
        errors.append(str(caught.value))
    assert errors[1] == errors[0]


def test_workers_exit_when_the_trainer_is_killed(make_layout, tmp_path):
    """A trainer killed outright (SIGKILL, the kernel's out-of-memory killer) runs no clean-up: its
    workers must notice on their own. multiprocessing.Pool's waited for ever on a shared lock (one such
    orphan from a CI run was found alive 90 minutes later)."""
    import pickle
    import subprocess
    import sys
    import time

    layout = make_layout("rgbd")
    config = tmp_path / "config.pickle"
    config.write_bytes(pickle.dumps(layout.config(data_format="tfrecord", data_path=_shards(layout, tmp_path, 0.0))))
    script = f"""
import multiprocessing, os, pickle, sys, time
sys.path.insert(0, {os.getcwd()!r})
from legan_tf.data.numpy_input import open_numpy_source
source = open_numpy_source(pickle.loads(open({str(config)!r}, "rb").read()))
stream = source.batches(3, training=True, seed=0, processes=3)
next(stream)
print(" ".join(str(child.pid) for child in multiprocessing.active_children()), flush=True)
time.sleep(600)
"""
    trainer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in trainer.stdout.readline().split()]
    finally:
        trainer.kill()
        trainer.wait()
    assert len(pids) == 3
    deadline = time.monotonic() + 60  # they exit as soon as they are scheduled; 60 s allows a loaded machine
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    alive = [pid for pid in pids if _alive(pid)]
    for pid in alive:
        os.kill(pid, 9)
    assert not alive, f"worker processes {alive} outlived their killed trainer"


def _alive(pid):
    # An orphan is re-parented to init, which reaps it; a zombie (state Z) has already exited.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
