"""Ctrl-C in Optuna's trial loop, taken only where the loop can record it.

``Study.optimize`` catches an interrupt raised inside the objective: it fails that trial and
stops. An interrupt that lands anywhere else in the loop (while ``study.ask`` creates the next
trial, or while a result is told) escapes with the trial left RUNNING, and nobody ends it until
a rerun finds it dead. ``ObjectiveOnlyInterrupts`` holds SIGINT back outside the objective and
raises it as the next objective starts (or as the loop ends), so every trial an interrupted
search created is finished in its storage.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from types import FrameType
from typing import Any, Callable, Iterator

import optuna


class ObjectiveOnlyInterrupts:
    """Wraps an objective for ``study.optimize``; use ``with guard.installed(): study.optimize(guard, ...)``."""

    def __init__(self, objective: Callable[[optuna.Trial], Any]) -> None:
        self.objective = objective
        self.inside = False  # the objective is running: an interrupt is raised where it lands
        self.pending = False  # an interrupt arrived outside the objective and waits

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.inside:
            raise KeyboardInterrupt
        self.pending = True

    def __call__(self, trial: optuna.Trial) -> Any:
        if self.pending:  # raised inside Optuna's try: it fails this trial and stops
            self.pending = False
            raise KeyboardInterrupt
        self.inside = True
        try:
            return self.objective(trial)
        finally:
            self.inside = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Hold SIGINT back outside the objective while the block runs. A process that ignores
        SIGINT (started by ``nohup ... &``) or handles it its own way is left as it is."""
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            yield
            return
        signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        if self.pending:  # arrived after the last objective: the loop is over, the interrupt is not
            self.pending = False
            raise KeyboardInterrupt
