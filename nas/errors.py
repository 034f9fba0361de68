"""The one exception a user can cause and fix: every ``main`` of nas/ prints it as a single
``error:`` line and exits with 2. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class UserError(Exception):
    """Bad input or a missing file: the message names the problem and the fix."""


@contextmanager
def user_input() -> Iterator[None]:
    """Around a call that reads what the user named through a lower layer (space/, latency/,
    the data loaders and recipes), which reject bad input with a ValueError that names it:
    that error becomes a UserError. Keep the block to that one call, so that a ValueError
    from anywhere else still reads as the bug it is."""
    try:
        yield
    except ValueError as error:
        raise UserError(str(error)) from error
