#!/usr/bin/env python
"""Trains a recipe: python scripts/train.py --flagfile=configs/<recipe>.flags [--flag=value ...]

Writes runs/<name>-<timestamp>/ with the resolved flags, checkpoints, TensorBoard logs and sample
grids. --dry_run prints the configuration and the data summary; --resume=<run dir> continues a run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

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
    import tensorflow as tf

    tf.get_logger().setLevel("WARNING")  # TensorFlow's own INFO lines (checkpoint sharding, ...) are noise here
    app.run(main)
