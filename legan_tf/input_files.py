"""Finding a tool's input files in a folder: the walk every folder-of-photos tool shares (hidden files
and folders left out, sorted so that runs repeat, a tool's own outputs excluded)."""

import os
from typing import List, Sequence


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
