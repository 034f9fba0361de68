"""What native code prints, kept out of the way: the agent's stdout carries JSON lines only,
and an engine's converter log would bury a build's progress. Works on file descriptors (native
code writes to them directly, bypassing ``sys.stdout``)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever native code prints to stderr: the agent's stdout carries JSON lines only
    (MNN prints its CPU features on import and a log of every conversion)."""
    sys.stdout.flush()
    _flush_c_stdio()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def native_output_captured() -> Iterator[list[str]]:
    """Collect what native code prints (to stdout and stderr) instead of showing it: MNN's
    converter logs a dozen lines per model, which would bury a build's progress. Yields a list
    that holds the captured lines once the block has run (shown only when a conversion fails)."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    _flush_c_stdio()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield lines
        finally:
            _flush_c_stdio()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            lines.extend(log.read().splitlines())
