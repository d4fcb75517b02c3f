"""Finding a tool's input files in a folder: the walk every folder-of-photos tool shares (hidden files
and folders left out, sorted so that runs repeat, a tool's own outputs excluded)."""

import os
import re
from typing import List, Sequence, Tuple


def is_inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies under it (after making both absolute)."""
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def files_under(folder: str, exclude: Sequence[str] = ()) -> List[str]:
    """Non-hidden files under `folder`, recursively and sorted, leaving out what lies in `exclude`."""
    def excluded(path):
        return any(is_inside(path, x) for x in exclude)

    found = []
    for current, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".")
                               and not excluded(os.path.join(current, name)))
        found.extend(path for path in (os.path.join(current, name) for name in sorted(files)
                                       if not name.startswith(".")) if not excluded(path))
    return found


def leave_out_matching(paths: Sequence[str], pattern: str, where: str) -> Tuple[List[str], int]:
    """(kept paths, how many were left out): the paths in which the regular expression `pattern` is not
    found, as prepare_data's --exclude_pattern does (e.g. FER2013's augmented copies, '\\.jpg\\d+\\.jpg$').
    A pattern that matches nothing is an error, not a silent no-op: a mistyped pattern would otherwise let
    the files it was meant to drop through. So is one that leaves nothing."""
    from legan_tf.data.errors import DataError
    from legan_tf.errors import ConfigError

    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"--exclude_pattern={pattern!r} is not a regular expression: {error}") from None
    kept = [path for path in paths if not compiled.search(path)]
    if paths and len(kept) == len(paths):
        raise DataError(f"{where}: --exclude_pattern={pattern!r} matches none of its {len(paths)} files "
                        f"(e.g. {paths[0]!r}); fix it or leave it out")
    if paths and not kept:
        raise DataError(f"{where}: --exclude_pattern={pattern!r} leaves out every one of its {len(paths)} files")
    return kept, len(paths) - len(kept)
