"""--profile_steps: a TensorFlow profiler trace of a few training steps, and where their time went.

The trace (`<run>/logs/plugins/profile/<date>/*.xplane.pb`) opens in TensorBoard's Profile tab
(`pip install tensorboard-plugin-profile`). So that a run on a headless machine tells its user
something without TensorBoard, `summarize` reads the same file with the protobuf TensorFlow ships and
writes `profile_summary.md` beside it: the kernel time of each op type, summed over the threads
that ran it, as a share of all kernel time.
"""

from __future__ import annotations

import collections
import glob
import os

SUMMARY_FILE = "profile_summary.md"  # beside the trace, in the run's logs/

# Events on the compute threads named "<op name>:<op type>" are kernels; the rest is the executor's
# bookkeeping (ExecutorState::Process, ThreadpoolListener::*, memory events).
_KERNEL_SEPARATOR = ":"


def trace_files(logdir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))


def kernel_times(path: str) -> tuple[dict[str, float], float]:
    """({op type: milliseconds of kernel time}, wall milliseconds of the traced window) of a trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as handle:
        space.ParseFromString(handle.read())
    totals = collections.Counter()
    first, last = None, None
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU") and not plane.name.startswith("/device:"):
            continue
        for line in plane.lines:
            for event in line.events:
                start = line.timestamp_ns * 1000 + event.offset_ps
                first = start if first is None else min(first, start)
                last = start + event.duration_ps if last is None else max(last, start + event.duration_ps)
                name = plane.event_metadata[event.metadata_id].name
                if line.name.startswith("python") or _KERNEL_SEPARATOR not in name or "::" in name:
                    continue
                op_type = name.rsplit(_KERNEL_SEPARATOR, 1)[1].strip()
                if op_type.startswith("__inference"):  # a tf.function's call, around kernels counted on their own
                    continue
                totals[_plain_op_type(op_type)] += event.duration_ps / 1e9
    wall = (last - first) / 1e9 if first is not None else 0.0
    return dict(totals), wall


def _plain_op_type(op_type: str) -> str:
    """oneDNN's kernels carry a prefix (_MklConv2D, _MklNativeFusedConv2D): name the op, not the library."""
    for prefix in ("_MklNative", "_Mkl"):
        if op_type.startswith(prefix):
            return op_type[len(prefix):]
    return op_type


def summarize(logdir: str, steps: int, top: int = 20) -> str | None:
    """Writes `<logdir>/profile_summary.md` from the newest trace under `logdir`; returns its text."""
    files = trace_files(logdir)
    if not files:
        return None
    totals, wall_ms = kernel_times(files[-1])
    kernel_ms = sum(totals.values())
    convolution_ms = sum(ms for op_type, ms in totals.items() if "Conv" in op_type)
    lines = [f"# Profile of {steps} training step(s)", "",
             f"Trace: `{os.path.relpath(files[-1], logdir)}` (open it in TensorBoard's Profile tab).", "",
             f"Traced wall time {wall_ms:.0f} ms ({wall_ms / max(steps, 1):.0f} ms per step); kernel time "
             f"{kernel_ms:.0f} ms summed over threads ({kernel_ms / max(wall_ms, 1e-9):.2f} threads busy on average), "
             f"{100 * convolution_ms / max(kernel_ms, 1e-9):.1f}% of it in convolutions and their gradients.", "",
             "| op type | kernel ms | share |", "|---|---:|---:|"]
    for op_type, milliseconds in sorted(totals.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"| {op_type} | {milliseconds:.1f} | {100 * milliseconds / max(kernel_ms, 1e-9):.1f}% |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(logdir, SUMMARY_FILE), "w") as handle:
        handle.write(text)
    return text


class StepProfiler:
    """Starts the profiler before step `first` and stops it after step `last` (chief only)."""

    def __init__(self, steps, logdir: str, enabled: bool = True):
        self.first, self.last = steps if steps else (0, -1)
        self.logdir = logdir
        self.enabled = enabled and bool(steps)
        self.running = False

    def before(self, step: int) -> None:
        if self.enabled and step == self.first:
            import tensorflow as tf

            tf.profiler.experimental.start(self.logdir)
            self.running = True

    def after(self, step: int) -> str | None:
        """Stops at the last profiled step; returns the summary's text then."""
        if not (self.running and step == self.last):
            return None
        return self.stop()

    def stop(self) -> str | None:
        if not self.running:
            return None
        import tensorflow as tf

        tf.profiler.experimental.stop()
        self.running = False
        return summarize(self.logdir, self.last - self.first + 1)
