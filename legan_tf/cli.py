"""Shared behaviour of the entry points in scripts/."""

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
