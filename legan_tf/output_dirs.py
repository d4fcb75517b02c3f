"""Output folders of the tools that write a dataset into a folder (scripts/augment.py, make_depth.py)."""

import os
import shutil
from typing import Iterable

from legan_tf.errors import ConfigError


def prepare_output_dir(output_dir: str, outputs: Iterable[str], overwrite: bool, contents: str) -> None:
    """Creates `output_dir`. A non-empty one is refused unless `overwrite`; then only `outputs` (the names
    of the files and folders the tool writes there) are removed, so a user's other files survive a rerun.
    `contents` names what is replaced, for the message."""
    refuse_unless_empty(output_dir, overwrite, contents)
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        remove_outputs(output_dir, outputs)
    os.makedirs(output_dir, exist_ok=True)


def refuse_unless_empty(output_dir: str, overwrite: bool, contents: str) -> None:
    """The refusal alone: a path that is not a folder, or a non-empty folder without `overwrite`. Removes
    nothing, for tools that replace their outputs only once the new ones are complete."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(f"--output_dir={output_dir} exists and is not a folder.")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise ConfigError(f"--output_dir={output_dir} is not empty; pass --overwrite to replace {contents} "
                          "there.")


def remove_outputs(output_dir: str, outputs: Iterable[str]) -> None:
    """Removes the files and folders named `outputs` from `output_dir`, and nothing else there."""
    for name in outputs:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
