#!/usr/bin/env python
"""Trains a recipe: python scripts/train.py --flagfile=configs/<dataset>/<preset>.flags [--flag=value ...]

Writes runs/<name>-<timestamp>/ with the resolved flags, checkpoints, TensorBoard logs and sample
grids. --dry_run prints the configuration and the data summary; --resume=<run dir> continues a run with
its own flags.txt (flags given beside it override it).
"""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way


# A run directory's flagfile (legan_tf.runs.FLAGS_FILE; spelt here because nothing of legan_tf may be
# imported before the Keras backend is chosen, and a resumed run's backend is in that file).
_RUN_FLAGS_FILE = "flags.txt"


def _with_the_resumed_runs_flags(argv):
    """`argv` with `--flagfile=<run dir>/flags.txt` first when it has `--resume=<run dir>`: a resumed run
    reads its own settings, and flags given on the command line (or in other flagfiles) override them."""
    for position, argument in enumerate(argv[1:], start=1):
        run = None
        if argument.startswith("--resume="):
            run = argument.partition("=")[2]
        elif argument == "--resume" and position + 1 < len(argv):
            run = argv[position + 1]
        if run and os.path.isfile(os.path.join(run, _RUN_FLAGS_FILE)):
            return [argv[0], f"--flagfile={os.path.join(run, _RUN_FLAGS_FILE)}", *argv[1:]]
    return list(argv)


def _expanded_arguments(argv):
    """The command line with every --flagfile's lines put in its place, in order (as absl reads them)."""
    arguments, expanded = list(argv[1:]), []
    while arguments:
        argument = arguments.pop(0)
        expanded.append(argument)
        match = re.fullmatch(r"--flagfile=(.+)", argument)
        if match and os.path.isfile(match.group(1)):
            with open(match.group(1), encoding="utf-8") as handle:
                nested = [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
            arguments = nested + arguments
    return expanded


def _requested_backend(argv):
    """The --backend value on the command line or in a --flagfile (the last one wins, as in absl), or None.

    Keras fixes its backend when it is first imported, which every legan_tf module does, so the
    choice is read here, before absl parses anything.
    """
    found, arguments = None, _expanded_arguments(argv)
    for position, argument in enumerate(arguments):
        match = re.fullmatch(r"--backend(?:=(.*))?", argument)
        if match:
            found = match.group(1) if match.group(1) is not None else (
                arguments[position + 1] if position + 1 < len(arguments) else None)
    return found


def _requested_flag(argv, name):
    """Whether a boolean --name (or --noname) is set on the command line or in a --flagfile (the last wins)."""
    found = False
    for argument in _expanded_arguments(argv):
        if argument in (f"--{name}", f"--{name}=true", f"--{name}=True", f"--{name}=1"):
            found = True
        elif argument in (f"--no{name}", f"--{name}=false", f"--{name}=False", f"--{name}=0"):
            found = False
    return found


def _select_backend(argv):
    requested = _requested_backend(argv)
    if requested is None:
        return
    if requested not in ("tensorflow", "jax"):
        return  # absl reports the bad enum value with the flag's help
    os.environ["KERAS_BACKEND"] = requested
    if requested == "jax":
        try:
            import jax  # noqa: F401
        except ImportError:
            print("error: --backend=jax needs JAX, which is not installed here: pip install 'legan-tf[jax]' "
                  "(or jax[cuda13] for NVIDIA GPUs).", file=sys.stderr)
            sys.exit(2)


sys.argv = _with_the_resumed_runs_flags(sys.argv)
_select_backend(sys.argv)
if _requested_flag(sys.argv, "deterministic"):
    # oneDNN's CPU kernels may sum in an order that depends on thread scheduling (measured: a run repeated
    # under load differed by 5e-6 in G's Adam moments); TensorFlow's own (Eigen) kernels do not. Read when
    # TensorFlow loads, so set before anything imports it.
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

from absl import app, flags, logging  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf import tasks  # noqa: E402
from legan_tf.data import flags as data_flags  # noqa: E402
from legan_tf.training import train_lib  # noqa: E402

train_lib.define_flags()
# --help lists the flags of these modules too, not only those defined in this file; every recipe
# found in legan_tf/tasks/ is among them.
for module in (train_lib, data_flags, *tasks.recipe_modules()):
    flags.adopt_module_key_flags(module)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    run_main(train_lib.run)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("WARNING")  # TensorFlow's own INFO lines (checkpoint sharding, ...) are noise here
    app.run(main)
