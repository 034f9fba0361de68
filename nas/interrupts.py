"""Ctrl-C in Optuna's trial loop, taken only where it can land without harm.

``Study.optimize`` catches an interrupt raised inside the objective: it fails that trial and
stops. An interrupt that lands anywhere else in the loop (while ``study.ask`` creates the next
trial, or while a result is told) escapes with the trial left RUNNING, and nobody ends it until
a rerun finds it dead. One that lands inside a storage call, even within the objective, can
leave the storage's connection half way through a transaction (SQLite then says "database is
locked"), and the failed trial can no longer be told. ``TrialLoopInterrupts`` holds SIGINT back
everywhere but in the objective's ``raised_here`` blocks (training, screening, waiting; never a
storage call): it is raised where it lands there, or as the next such block or the next
objective starts, or as the loop ends. Every trial an interrupted search created is finished in
its storage.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from types import FrameType
from typing import Any, Callable, Iterator

import optuna


class TrialLoopInterrupts:
    """``with interrupts.installed(): study.optimize(interrupts.taken_in(objective), ...)``; the
    objective runs its long computations in ``with interrupts.raised_here():`` and any storage
    call made inside one in ``with interrupts.held():``. Not installed, it changes nothing."""

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
        """The objective, with an interrupt held back since the last trial raised as it starts.
        Whatever the objective raises it from, ``on_interrupt(trial)`` runs first, with a
        further interrupt held back."""

        def run(trial: optuna.Trial) -> Any:
            try:
                self._raise_pending()
                return objective(trial)
            except KeyboardInterrupt:
                self.live = False
                on_interrupt(trial)
                raise

        return run

    @contextmanager
    def raised_here(self) -> Iterator[None]:
        """An interrupt is raised where it lands in this block; one held back is raised as it starts."""
        self._raise_pending()
        self.live = True
        try:
            yield
        finally:
            self.live = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Inside ``raised_here``: an interrupt waits while this block runs (a storage call) and
        is raised as it ends."""
        was, self.live = self.live, False
        try:
            yield
        finally:
            self.live = was
        if was:
            self._raise_pending()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Hold SIGINT back outside ``raised_here`` while the block runs. A process that ignores
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
