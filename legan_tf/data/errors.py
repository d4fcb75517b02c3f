"""Errors and per-entry faults found while reading a dataset.

Row numbers are 1-based data rows: the header is row 0, so "row 7" is the seventh entry under the
header (line 8 of the file). Folder datasets have no rows; their faults name the file only.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Iterable, Optional


class DataError(Exception):
    """A dataset or data configuration that cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """One bad entry: its data row (None for folder datasets), the offending file and what is wrong.

    `origin` is the manifest's (or root folder's) file name, used to make the message self-contained.
    """

    row: Optional[int]
    path: str
    message: str
    origin: str = ""

    def __str__(self) -> str:
        where = f"{self.origin} row {self.row}" if self.row is not None else self.origin
        if self.path:
            where = f"{where} ({self.path})" if where else self.path
        return f"{where}: {self.message}"


def write_fault_report(faults: Iterable[Fault], report_path: str) -> None:
    """Writes the skipped entries as CSV `row,path,fault` (row empty for folder datasets)."""
    parent = os.path.dirname(os.path.abspath(report_path))
    os.makedirs(parent, exist_ok=True)
    with open(report_path, "w", newline="", encoding="utf-8") as report:
        writer = csv.writer(report)
        writer.writerow(["row", "path", "fault"])
        for fault in faults:
            writer.writerow(["" if fault.row is None else fault.row, fault.path, fault.message])
