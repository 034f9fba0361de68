"""Ctrl-C in Optuna's trial loop, taken only where the loop can record it.

``Study.optimize`` catches an interrupt raised inside the objective: it fails that trial and
stops. An interrupt that lands anywhere else in the loop (while ``study.ask`` creates the next
trial, or while a result is told) escapes with the trial left RUNNING, and nobody ends it until
a rerun finds it dead. ``TrialLoopInterrupts`` holds SIGINT back outside the objective, and
from the point where the objective has a result that must be recorded whole, and raises it as
the next objective starts or as the loop ends: every trial an interrupted search created is
finished in its storage.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from types import FrameType
from typing import Any, Callable, Iterator

import optuna


class TrialLoopInterrupts:
    """``with interrupts.installed(): study.optimize(interrupts.taken_in(objective), ...)``;
    the objective calls ``interrupts.hold_until_told()`` once its result must be recorded whole."""

    def __init__(self) -> None:
        self.live = False  # an interrupt is raised where it lands
        self.pending = False  # an interrupt arrived while held back, and waits

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.live:
            raise KeyboardInterrupt
        self.pending = True

    def _raise_pending(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def taken_in(self, objective: Callable[[optuna.Trial], Any],
                 on_interrupt: Callable[[optuna.Trial], None] = lambda trial: None) -> Callable[[optuna.Trial], Any]:
        """The objective, with interrupts raised where they land while it runs (Optuna fails
        its trial) and one held back since the last trial raised as it starts. Either way
        ``on_interrupt(trial)`` runs first, with a further interrupt held back until it is done."""

        def run(trial: optuna.Trial) -> Any:
            try:
                self._raise_pending()
                self.live = True
                return objective(trial)
            except KeyboardInterrupt:
                self.live = False
                on_interrupt(trial)
                raise
            finally:
                self.live = False

        return run

    def hold_until_told(self) -> None:
        """Inside the objective: from here on an interrupt waits until this trial's result is
        told, for a result that is complete and must reach the storage whole."""
        self.live = False

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
        self._raise_pending()  # arrived after the last objective: the loop is over, the interrupt is not
