"""An append-only CSV of finished runs: one line per run, written with one ``write`` call as
soon as the run ends, so a kill loses at most the run in progress. Several processes may append
to the same file (each line is a single small write to a file opened for appending).

Every line ends with an ``ok`` column holding ``1``: a line cut short by a kill mid-write lacks
it, is set apart on the next append (it gets its own line) and is skipped on reading, with a
warning naming the file.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path
from typing import Any, Sequence

END = "ok"  # the last column; "1" on every whole line


def append_line(path: Path, fields: Sequence[str], values: dict[str, Any]) -> None:
    """Append one run's line (writing the header first when the file is new or empty)."""
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{path}: values for unknown columns {unknown}; columns are {list(fields)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*fields, END], lineterminator="\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            writer.writeheader()
        elif not _ends_with_newline(path, size):
            buffer.write("\n")  # a kill cut the last line short: keep ours whole and apart
        writer.writerow({**{name: _text(values.get(name)) for name in fields}, END: "1"})
        os.write(fd, buffer.getvalue().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: Path, fields: Sequence[str]) -> list[dict[str, str]]:
    """Every whole line of ``path`` (none when it does not exist), as strings by column.

    Raises ValueError when the header is not ``fields`` (a file of another kind or version)."""
    if not path.is_file():
        return []
    text = path.read_text()
    if not text:
        return []
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    if header != [*fields, END]:
        raise ValueError(f"{path} has columns {header}, expected {[*fields, END]}: pass another output file, or move this one away")
    whole = [dict(zip(fields, row)) for row in body if len(row) == len(fields) + 1 and row[-1] == "1"]
    if len(whole) < len(body):
        print(f"warning: {path}: {len(body) - len(whole)} line(s) cut short by a kill are ignored", file=sys.stderr)
    return whole


def _ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
