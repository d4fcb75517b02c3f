"""Shared behaviour of the entry points in scripts/."""

import os
import shlex
import sys

from legan_tf.data import DataError
from legan_tf.errors import ConfigError, RunStopped


def run_main(function, *args, **kwargs):
    """Runs `function`; a fault in the user's input prints one line and exits 1 instead of a traceback."""
    try:
        return function(*args, **kwargs)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    except RunStopped as error:
        print(f"stopped: {error}", file=sys.stderr, flush=True)
        sys.exit(error.exit_code)


def command_line(argv) -> str:
    """The command that ran, as a shell line a report can quote: python <script path relative to here> <args>."""
    script = os.path.relpath(os.path.abspath(argv[0])) if os.path.exists(argv[0]) else argv[0]
    return " ".join(shlex.quote(part) for part in ["python", script, *argv[1:]])
