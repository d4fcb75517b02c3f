"""The one training loop, for every recipe under either Keras backend.

`TrainingLoop` runs the updates of `Task.step_schedule()` step after step, with everything a run
does around them: the data position as a function of the step (a resumed run reads the batches an
uninterrupted run would have read next), periodic checkpoints of finite state only, sample grids,
held-out evaluations, TensorBoard scalars and images (and logs/scalars.jsonl), progress lines, the
NaN guard (--on_nan), stop signals (exit 75), --stop_after_minutes, the profiler window, the export of
the trained networks, and a finished run resumed: nothing to train, evaluated and exported again.

What differs between TensorFlow and JAX is a `Backend` (its hooks: legan_tf/training/backend_api.py;
tensorflow_backend.py and jax_backend.py implement them): where the task's variables live, how one
update is compiled, how a checkpoint is written and read, the input pipeline, and whether this
process is a cluster's chief. A custom loop rather than `fit()`, because `fit()` does not drive a GAN
under MultiWorkerMirroredStrategy, and one loop for every recipe keeps checkpoints, summaries and
resume behaving the same everywhere.
"""

from __future__ import annotations

import os
import sys
import time

from absl import logging
from tqdm import tqdm

from legan_tf import visualize
from legan_tf.errors import CannotWrite, Interrupted, NonFiniteLoss
from legan_tf.runs import RunDir
from legan_tf.runs.settings import TrainingSettings
from legan_tf.training import profiling, summaries
from legan_tf.training.backend_api import Backend
from legan_tf.training.config import (CheckpointNotWritten, Deadline, NanGuard, StopSignals, cannot_write_message,
                                      non_finite_message)

EVAL_BATCH_SIZE = 64  # held-out examples per evaluation batch
THROUGHPUT = "throughput/images_per_second"


class TrainingLoop:
    """Trains `task` in the run directory `run` with `backend`, as `settings` say; `run()` returns the
    final held-out metrics."""

    def __init__(self, task, backend: Backend, run, train_source, eval_source, settings: TrainingSettings):
        self.task, self.backend, self.settings = task, backend, settings
        self.run_dir = run if isinstance(run, RunDir) else RunDir(run)
        self.train_source, self.eval_source = train_source, eval_source
        self.chief = backend.chief
        self.last_saved = 0
        backend.build()
        backend.open_checkpoints(self.run_dir, settings.keep_checkpoints)
        self.nan_guard = NanGuard(settings, task, self.run_dir.path, backend.read)
        self.writer = summaries.event_writer(self.run_dir.logs_dir) if self.chief else summaries.NullWriter()

    def restore(self) -> int:
        """Restores the latest checkpoint of the run directory, if any; returns the step reached."""
        self.last_saved = self.backend.restore()
        return self.last_saved

    def run(self) -> dict[str, float]:
        """Trains to --train_steps (or the deadline, or a stop signal); the writer is flushed and closed on
        every way out."""
        try:
            start = self.restore()
            if start >= self.settings.train_steps:
                logging.info("The run already reached step %d of %d; nothing to train.", start,
                             self.settings.train_steps)
                metrics = self._evaluate(start)
                self._export()  # so a finished run can be exported again, e.g. after a crash in its export
                return metrics
            return self._train(start)
        finally:
            self.writer.close()

    def _train(self, start):
        settings, task = self.settings, self.task
        batches = self.backend.train_batches(self.train_source, task.global_batch_size, settings.seed, start)
        progress = tqdm(total=settings.train_steps, initial=start, desc=f"{task.name} ({self.backend.name})",
                        unit="step", disable=not (settings.progress_bar and self.chief), dynamic_ncols=True)
        profiler = profiling.StepProfiler(settings.profile_window, self.run_dir.logs_dir, enabled=self.chief)
        try:
            updates = [(entry, self.backend.compile(entry)) for entry in task.step_schedule()]
            sample_batch = self.backend.sample_batch(self.eval_source or self.train_source, settings.num_samples,
                                                     settings.seed)
            with StopSignals() as signals:
                final_step, pending = self._steps(start, batches, updates, sample_batch, progress, signals, profiler)
                progress.close()
                batches.close()
                return self._finish(final_step, pending, sample_batch)
        finally:
            profiler.stop()  # a run that ends inside the window still leaves its trace
            progress.close()
            batches.close()

    def _steps(self, start, batches, updates, sample_batch, progress, signals, profiler):
        """Steps start+1 onwards; returns (the last step, its unchecked metrics) or raises Interrupted."""
        settings = self.settings
        window = [time.perf_counter(), 0]  # when the current logging window started, its steps
        latest, pending = {}, []  # latest: each running update's last metrics; pending: (step, metrics) not yet
        # checked for NaN and inf
        deadline = Deadline(settings)
        for step in range(start + 1, settings.train_steps + 1):
            # One batch per step, shared by every update of the step (D and G see the same faces).
            profiler.before(step)
            batch = next(batches)
            this_step = {}
            for entry, update in updates:
                if entry.runs_at(step):
                    latest[entry.name] = update(batch, step)
                    this_step.update(latest[entry.name])
                elif entry.finished(step):  # a warm-up over: its last figures are not logged on
                    latest.pop(entry.name, None)
            metrics = {name: value for values in latest.values() for name, value in values.items()}
            pending.append((step, this_step))
            summary = profiler.after(step)
            if summary:
                logging.info("Profiled steps %d-%d (%s):\n%s", profiler.first, profiler.last,
                             os.path.join(self.run_dir.logs_dir, profiling.SUMMARY_FILE), summary)
            window[1] += 1
            progress.update(1)
            if step % settings.log_every == 0 or step == settings.train_steps:
                self._log(step, metrics, pending, window, progress)
            ending = self._after_step(step, pending, sample_batch, deadline, signals)
            if ending == "interrupt":
                raise Interrupted(signals.message(step, self.run_dir.path))
            if ending == "stop":
                return step, pending
        return settings.train_steps, pending

    def _log(self, step, metrics, pending, window, progress):
        """The scalars of the latest updates and the throughput since the last log, after the NaN check."""
        settings = self.settings
        self.nan_guard.check(pending, self.last_saved)
        values = {name: float(value) for name, value in metrics.items()}
        images_per_second = window[1] * self.task.global_batch_size / (time.perf_counter() - window[0])
        window[:] = [time.perf_counter(), 0]
        self._write_scalars(step, {**values, THROUGHPUT: images_per_second})
        progress.set_postfix({name.split("/")[-1] if name.startswith("loss") else name: f"{value:.3f}"
                              for name, value in values.items()}, refresh=False)
        if self.chief and not (settings.progress_bar and sys.stderr.isatty()):
            # A run without a terminal (a cluster job, nohup) still logs its progress.
            remaining = (settings.train_steps - step) * self.task.global_batch_size / images_per_second
            logging.info("step %d/%d: %s, %.1f images/s, about %.0f min left", step, settings.train_steps,
                         ", ".join(f"{name} {value:.4g}" for name, value in values.items()), images_per_second,
                         remaining / 60)

    def _after_step(self, step, pending, sample_batch, deadline, signals):
        """The periodic checkpoint, samples and evaluation, then the early ends: None to go on, "stop" when
        --stop_after_minutes ended the run (it finishes as a run at --train_steps does), or "interrupt"
        after a stop signal at any worker, its step checkpointed."""
        settings = self.settings
        if step % settings.checkpoint_every == 0:
            self.save(step, pending)
        if step % settings.sample_every == 0:
            self._write_samples(sample_batch, step)
        stopping = deadline.reached(step, self.run_dir.path)
        if step % settings.eval_every == 0 and step != settings.train_steps and not stopping:
            self._evaluate(step)  # the last step's evaluation comes after the loop
        if stopping:
            return "stop"
        if self.backend.any_worker(signals.received is not None):
            if step % settings.checkpoint_every:
                self.save(step, pending)
            return "interrupt"
        return None

    def _finish(self, final_step, pending, sample_batch):
        settings = self.settings
        if final_step % settings.checkpoint_every:
            self.save(final_step, pending)
        if final_step % settings.sample_every:
            self._write_samples(sample_batch, final_step)
        final_metrics = self._evaluate(final_step)
        self._export()
        return final_metrics

    def save(self, step, pending) -> None:
        """A checkpoint of `step`, only of finite losses and weights: a NaN is never the run's latest state.
        `pending`: the (step, metrics) not yet checked, emptied here."""
        self.nan_guard.check(pending, self.last_saved)
        if not self.backend.state_finite():
            raise NonFiniteLoss(non_finite_message(step, self.backend.state_description, "not finite",
                                                   self.last_saved, self.run_dir.path, self.task.global_batch_size))
        try:
            self.backend.save(step)
        except CheckpointNotWritten as failure:
            raise CannotWrite(cannot_write_message(step, failure.error, self.last_saved, self.run_dir.path)) from None
        self.last_saved = step

    def _write_scalars(self, step, values):
        if self.chief:
            self.writer.scalars(step, values)
            self.run_dir.append_scalars(step, values)

    def _write_samples(self, batch, step):
        if not self.chief:
            return
        self.backend.sync()
        grid = self.task.sample_grid(batch)
        visualize.save_png(grid, self.run_dir.sample_path(step))
        self.writer.image(step, "samples", grid)

    def _evaluate(self, step):
        if self.eval_source is None or not self.chief:
            return {}
        self.backend.sync()
        metrics = self.task.evaluate(self.backend.eval_batches(self.eval_source, EVAL_BATCH_SIZE))
        metrics = {name: float(value) for name, value in metrics.items()}
        self._write_scalars(step, metrics)
        self.run_dir.append_metrics(step, metrics)
        logging.info("step %d: %s", step, ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        return metrics

    def _export(self):
        self.backend.sync()
        if self.chief:
            for path in self.task.export(self.run_dir.path):
                logging.info("Exported %s", path)


def backend_for(task, **options) -> Backend:
    """The Backend of the Keras backend this process runs (legan_tf.backend.name()), with its options:
    TensorFlow: strategy, distribute_fn, jit_compile; JAX: devices, input_processes."""
    from legan_tf import backend

    if backend.name() == "jax":
        from legan_tf.training.jax_backend import JaxBackend

        return JaxBackend(task, **options)
    from legan_tf.training.tensorflow_backend import TensorFlowBackend

    return TensorFlowBackend(task, **options)
