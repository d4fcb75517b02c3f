"""--profile_steps: a profiler trace of the chosen steps in the run's logs, and a summary of where their
kernel time went, readable without TensorBoard."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(tmp_path, tiny_lab, *arguments):
    command = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), f"--runs_root={tmp_path}", *tiny_lab,
               "--task=stargan", "--image_size=32", "--batch_size=4", "--stargan_g_filters=4",
               "--stargan_g_residual_blocks=1", "--stargan_d_filters=4", "--stargan_d_downsamples=3",
               "--stargan_n_critic=2", "--progress_bar=false", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_profiled_steps_leave_a_trace_and_a_summary(tmp_path, tiny_lab):
    from legan_tf.training import profiling

    result = _train(tmp_path, tiny_lab, "--train_steps=4", "--profile_steps=2,3")
    assert result.returncode == 0, result.stderr[-3000:]
    logs = next(path for path in tmp_path.iterdir() if path.is_dir()) / "logs"
    assert profiling.trace_files(str(logs))
    summary = (logs / "profile_summary.md").read_text()
    assert "2 training step(s)" in summary
    # Steps 2 and 3 run D's update twice and G's once: convolutions and their gradients are traced.
    totals, wall_ms = profiling.kernel_times(profiling.trace_files(str(logs))[-1])
    assert wall_ms > 0 and sum(totals.values()) > 0
    assert any(op.startswith("Conv2D") for op in totals), sorted(totals)
    assert any("Backprop" in op for op in totals), sorted(totals)
    assert "Profiled steps 2-3" in result.stderr


@pytest.mark.parametrize("value", ["3,2", "0,1", "5", "a,b"])
def test_bad_profile_steps_are_a_clear_error(value):
    # Every value is refused where the settings are made, before any work (TrainingSettings.__post_init__).
    from legan_tf.errors import ConfigError
    from legan_tf.runs.settings import TrainingSettings

    with pytest.raises(ConfigError) as raised:
        TrainingSettings(profile_steps=tuple(value.split(",")))
    assert f"--profile_steps={value}:" in str(raised.value) and "FIRST,LAST" in str(raised.value)


def test_the_script_refuses_bad_profile_steps_in_one_line(tmp_path, tiny_lab):
    # The script's path from that refusal to the message: one process (each costs a TensorFlow start-up) for
    # what the test above checks of every value.
    result = _train(tmp_path, tiny_lab, "--train_steps=4", "--profile_steps=3,2")
    assert result.returncode != 0
    assert "--profile_steps=3,2:" in result.stderr and "FIRST,LAST" in result.stderr
    assert "Traceback" not in result.stderr
