"""What the training loop guards against, and the messages it stops with: the wall-clock deadline
(--stop_after_minutes), stop signals, non-finite losses (--on_nan) and checkpoints that cannot be written."""

import time

from absl import logging


class CheckpointNotWritten(Exception):
    """A backend's checkpoint write failed (`error`); its partial files are removed, the previous
    checkpoint stays the latest. The loop reports it as CannotWrite."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


class Deadline:
    """--stop_after_minutes: tells the loop when to end early, and says so in the log."""

    def __init__(self, config):
        self.minutes = config.stop_after_minutes
        self.train_steps = config.train_steps
        self._end = time.monotonic() + 60.0 * self.minutes if self.minutes > 0 else None

    def reached(self, step: int, run_dir: str) -> bool:
        if self._end is None or step >= self.train_steps or time.monotonic() < self._end:
            return False
        logging.info("Stopping at step %d of %d: --stop_after_minutes=%g reached. The run ends as a finished one "
                     "does; --resume=%s continues it.", step, self.train_steps, self.minutes, run_dir)
        return True


def first_non_finite(pending):
    """(step, metric name, value) of the first non-finite metric among `pending` [(step, {name: scalar})]
    (scalars as tensors or arrays, read here), or None when all are finite."""
    import math

    for step, metrics in pending:
        for name, value in metrics.items():
            value = float(value)
            if not math.isfinite(value):
                return step, name, value
    return None


def non_finite_message(step, name, value, last_good, run_dir, global_batch):
    where = (f"the latest checkpoint, step {last_good}, is the last finite state: --resume={run_dir} continues "
             "from it (with a lower learning rate, or --seed to draw other batches)") if last_good else \
        "no checkpoint was written before it"
    return (f"{name} is {value} at step {step} (that step's batch: examples {(step - 1) * global_batch} to "
            f"{step * global_batch - 1} of the run's data order). Nothing non-finite was saved; {where}.")


class StopSignals:
    """SIGTERM and SIGINT ask the loop to stop after the step in progress (a preempted machine or a
    scheduler sends SIGTERM, Ctrl-C sends SIGINT); a second SIGINT interrupts at once, as usual.
    Installed only in the main thread, where Python delivers signals."""

    def __init__(self):
        self.received = None
        self._previous = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame):
        import signal

        if self.received == signal.SIGINT and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = number
        logging.warning("%s received: stopping after the step in progress, with a checkpoint.",
                        signal.Signals(number).name)

    def __exit__(self, *exc):
        import signal

        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False

    def message(self, step, run_dir):
        import signal

        cause = (f"{signal.Signals(self.received).name} received" if self.received is not None
                 else "another worker of the cluster received a stop signal")
        return f"{cause}: stopped after step {step}, whose checkpoint is written; --resume={run_dir} continues the run."


def cannot_write_message(step, error, last_good, run_dir):
    kept = (f"the latest checkpoint is still step {last_good}, complete: free space (or fix the folder) and "
            f"--resume={run_dir} continues from it") if last_good else "no checkpoint of this run was written"
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"could not write the checkpoint of step {step} into {run_dir} ({detail}); {kept}."


def skip_counters(task):
    """(name, variable) of the consecutive-skip counter of every optimizer that skips non-finite updates."""
    from legan_tf.optimizers import SkipNonFiniteUpdates

    return [(name, item.consecutive_skips) for name, item in task.checkpoint_items().items()
            if isinstance(item, SkipNonFiniteUpdates)]


def skipped_steps(pending):
    """The steps among `pending` [(step, metrics)] with a non-finite metric: their updates were skipped."""
    import math

    return [step for step, metrics in pending if not all(math.isfinite(float(v)) for v in metrics.values())]


def too_many_skips_message(name, count, limit, last_good, run_dir):
    where = f"the latest checkpoint, step {last_good}, is the last finite state" if last_good else \
        "no checkpoint was written"
    return (f"{count} updates of {name} in a row had non-finite gradients and were skipped (more than "
            f"--max_consecutive_skips={limit}): the run is not recovering by itself; {where}.")


class NanGuard:
    """What the loop does with the steps' metrics before logging and saving: under --on_nan=stop a
    non-finite one stops the run; under --on_nan=skip it was a skipped update, counted, and too many
    skips in a row stop the run. `read_counter(variable) -> int` reads a skip counter's current value
    (under JAX the variables' values live on the device). `config`: the TrainingSettings."""

    def __init__(self, config, task, run_dir, read_counter):
        self.config, self.task, self.run_dir, self.read_counter = config, task, run_dir, read_counter
        self.skipped_total = 0

    def check(self, pending, last_saved):
        """Checks and empties `pending` [(step, metrics)]; raises NonFiniteLoss to stop the run."""
        from legan_tf.errors import NonFiniteLoss

        if self.config.on_nan == "skip":
            skipped = skipped_steps(pending)
            pending.clear()
            if skipped:
                self.skipped_total += len(skipped)
                logging.warning("Skipped the updates of %d step(s) with a non-finite loss (%s); %d in the run.",
                                len(skipped), ", ".join(map(str, skipped[:5])) + (" ..." if len(skipped) > 5 else ""),
                                self.skipped_total)
            for name, counter in skip_counters(self.task):
                count = self.read_counter(counter)
                if count > self.config.max_consecutive_skips:
                    raise NonFiniteLoss(too_many_skips_message(name, count, self.config.max_consecutive_skips,
                                                               last_saved, self.run_dir))
            return
        found = first_non_finite(pending)
        pending.clear()
        if found is not None:
            raise NonFiniteLoss(non_finite_message(*found, last_saved, self.run_dir, self.task.global_batch_size))
