"""What the command-line tools of nas/ share."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from .errors import UserError


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (the help text says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default is None else super()._get_help_string(action)


def run_command(command: Callable[[], object], *, on_interrupt: str) -> int:
    """Run a CLI's work: a user error is one line (exit 2), Ctrl-C says what was kept (exit
    130), output cut short by its reader (``| head``) ends quietly (exit 141, as SIGPIPE would),
    and anything else is a bug that keeps its traceback."""
    try:
        command()
        sys.stdout.flush()  # a reader gone shows here, not as a traceback at exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush goes nowhere
        return 141
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {on_interrupt}", file=sys.stderr)
        return 130
    return 0
