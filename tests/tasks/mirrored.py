"""Runs a mirrored-vs-single-device comparison script in a fresh process (logical CPUs must be set
up before TensorFlow initialises) and reads back the figures it prints."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worst_and_moved(script: str, timeout: int = 600) -> tuple[float, float]:
    """The script prints `WORST <largest weight difference> MOVED <largest change from the start>`."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                            timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    line = [line for line in result.stdout.splitlines() if line.startswith("WORST")][-1]
    return float(line.split()[1]), float(line.split()[3])
