"""Many workers on one study: no architecture trained twice, no evaluation beyond the target.

A trial first declares its candidate (user attrs ``worker``, ``arch_id``, ... ``latency_ms``);
a feasible one then takes a *ticket*, one above the highest it sees, flagging itself meanwhile
(Lamport's bakery: ties go to the lower trial number). Tickets, not trial numbers, order the
trials: a requeued trial keeps the number it was queued with but may start after trials
numbered above it. Once no live trial is still taking a ticket, a trial looks at those
before it (lower ticket):

- evaluation slot: when the feasible ones that count (finished ones evaluated, running ones
  still alive) already reach the target, this trial is surplus;
- claim: while one of them, alive, holds the same architecture, this one waits for it and
  then takes its result from the evaluation cache.

The earlier ticket always wins, whatever the timing, so two workers never train the same
architecture at once. A trial whose worker died is no claim: on this host the process is
checked; elsewhere its heartbeat: RDB storages beat on their own (and fail a silent trial
after the grace period), journal files get one from ``Heartbeat``, a thread that stamps the
trial every few seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import warnings
from types import TracebackType
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from .vocabulary import COUNTED, TrialAttr, status_of

# A running trial declares its candidate within a second of starting; one silent for longer
# belongs to a worker that died before declaring and is left out.
DECLARE_WINDOW_S = 60.0
POLL_S = 0.25
# A trial whose heartbeat is older than this many beat periods has lost its worker (as RDB
# storages judge theirs: grace period = 3 heartbeats).
MISSED_BEATS = 3
# Where Optuna keeps the parameters a trial was enqueued with (a system attribute of the trial).
QUEUED_PARAMS = "fixed_params"


def worker_name() -> str:
    """This process as the trials record it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that its parent has not reaped yet is a zombie: dead all the same
        stat = open(f"/proc/{pid}/stat").read()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def worker_dead(trial: FrozenTrial) -> bool:
    """True when the trial's worker ran on this host and its process is gone, or when its
    heartbeat (``Heartbeat``) stopped more than ``MISSED_BEATS`` periods ago."""
    attrs = trial.user_attrs
    host, _, pid = str(attrs.get(TrialAttr.WORKER, "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid) != os.getpid() and not _process_alive(int(pid))
    beat_at, every_s = attrs.get(TrialAttr.BEAT_AT), attrs.get(TrialAttr.BEAT_EVERY_S)
    return beat_at is not None and every_s is not None and time.time() - float(beat_at) > MISSED_BEATS * float(every_s)


class Heartbeat:
    """Context manager that stamps ``trial`` (user attr ``beat_at``, wall-clock seconds) every
    ``every_s`` from a thread while the objective runs, so that workers elsewhere see when it
    dies; for storages without heartbeats of their own (journal files). ``every_s=None``: off."""

    def __init__(self, trial: optuna.Trial, every_s: float | None) -> None:
        self.trial, self.every_s = trial, every_s
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _beat(self) -> None:
        self.trial.set_user_attr(TrialAttr.BEAT_AT, time.time())

    def _run(self) -> None:
        assert self.every_s is not None
        while not self.stop.wait(self.every_s):
            self._beat()

    def __enter__(self) -> "Heartbeat":
        if self.every_s is not None:
            self.trial.set_user_attr(TrialAttr.BEAT_EVERY_S, float(self.every_s))
            self._beat()  # before the worker names itself: a named trial has always beaten
            self.thread = threading.Thread(target=self._run, name=f"heartbeat-trial-{self.trial.number}", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


def _live(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING and not worker_dead(trial)


def _declared(trial: FrozenTrial) -> bool:
    return TrialAttr.LATENCY_MS in trial.user_attrs


def _age_s(trial: FrozenTrial) -> float:
    start = trial.datetime_start
    return 0.0 if start is None else (dt.datetime.now() - start).total_seconds()


def fail_stale(study: optuna.Study) -> None:
    """Optuna's heartbeat staleness check (RDB storages), without its experimental warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def whole_candidate(trial: FrozenTrial) -> dict[str, Any] | None:
    """The parameters of a trial's whole candidate: those it was queued with, or those it drew
    once it declared the candidate (``arch``). None for a candidate drawn only in part: queueing
    those parameters would have the rest drawn afresh, another architecture under its name."""
    if TrialAttr.ARCH in trial.user_attrs:
        return dict(trial.params)
    queued = trial.system_attrs.get(QUEUED_PARAMS)
    return dict(queued) if queued else None


def queue_interrupted(trial: optuna.Trial) -> None:
    """Queue the candidate of a trial stopped by Ctrl-C once more, so that a rerun trains it: an
    interrupt is the user's doing, not the candidate's, so it is queued even if it was itself a
    retry. A candidate neither queued nor fully drawn is left to the sampler."""
    (frozen,) = (t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    params = whole_candidate(frozen)
    if params is not None:
        _queue_again(trial.study, params, frozen.user_attrs.get(TrialAttr.RETRY_OF, trial.number))


def retry_once(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's candidate once more (not a retry's: one retry per candidate;
    nor one drawn only in part: ``whole_candidate``)."""
    params = whole_candidate(trial)
    if TrialAttr.RETRY_OF not in trial.user_attrs and params is not None:
        _queue_again(study, params, trial.number)


def _queue_again(study: optuna.Study, params: dict[str, Any], original: int) -> None:
    """Enqueue ``params`` as a retry of trial ``original``. Unlike Optuna's
    ``RetryHeartbeatStaleTrialCallback`` it copies no user attrs, so the retry starts undeclared,
    with no ticket, like any new trial."""
    study.enqueue_trial(params, user_attrs={TrialAttr.RETRY_OF: original})


def _never_started(trial: FrozenTrial, after_s: float) -> bool:
    """A trial whose worker died between creating it and the objective's first line (which
    names the worker): no worker to check, and perhaps not even a heartbeat to go stale."""
    return TrialAttr.WORKER not in trial.user_attrs and trial.datetime_start is not None and _age_s(trial) > after_s


def fail_dead_trials(study: optuna.Study, undeclared_after_s: float = DECLARE_WINDOW_S) -> list[int]:
    """Fail the running trials whose worker is gone (``worker_dead``), or that never reached
    the objective within ``undeclared_after_s``, and queue each once more; returns their
    numbers. Uses ``Study.tell``, so it works on every storage, heartbeats or not."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not (worker_dead(trial) or _never_started(trial, undeclared_after_s)):
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker failed it first (or its own worker just finished it)
        failed.append(trial.number)
        retry_once(study, trial)
    return failed


def take_ticket(trial: optuna.Trial) -> int:
    """The bakery's doorway: flag, read the highest ticket, take the next one."""
    trial.set_user_attr(TrialAttr.TAKING_TICKET, True)
    others = trial.study.get_trials(deepcopy=False)
    ticket = 1 + max((int(t.user_attrs.get(TrialAttr.TICKET) or 0) for t in others if t.number != trial.number), default=0)
    trial.set_user_attr(TrialAttr.TICKET, ticket)
    return ticket


def _before(trial: FrozenTrial, ticket: int, number: int) -> bool:
    theirs = trial.user_attrs.get(TrialAttr.TICKET)
    if theirs is None:  # never feasible, or finished before tickets existed
        return trial.state.is_finished()
    return (int(theirs), trial.number) < (ticket, number)


def _taking_ticket(trial: FrozenTrial) -> bool:
    attrs = trial.user_attrs
    return TrialAttr.TICKET not in attrs and bool(attrs.get(TrialAttr.TAKING_TICKET)) and _live(trial) and _age_s(trial) <= DECLARE_WINDOW_S


def earlier_trials(study: optuna.Study, number: int, ticket: int, sleep: Callable[[float], None] = time.sleep) -> list[FrozenTrial]:
    """The trials before trial ``number`` holding ``ticket``, once no live trial is still
    taking its ticket."""
    while True:
        others = [t for t in study.get_trials(deepcopy=False) if t.number != number]
        if not any(_taking_ticket(t) for t in others):
            return [t for t in others if _before(t, ticket, number)]
        sleep(POLL_S)


def holds_slot(trial: FrozenTrial, budget_ms: float) -> bool:
    """An earlier feasible trial that counts towards the target: evaluated, or still evaluating."""
    if not _declared(trial) or trial.user_attrs[TrialAttr.LATENCY_MS] > budget_ms:
        return False
    if trial.state == TrialState.RUNNING:
        return not worker_dead(trial)
    return trial.state.is_finished() and status_of(trial) in COUNTED


def slots_taken(earlier: list[FrozenTrial], budget_ms: float) -> int:
    return sum(holds_slot(t, budget_ms) for t in earlier)


def wait_for_claims(
    study: optuna.Study, number: int, ticket: int, arch_id: str, proxy_id: str, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Return once no earlier live trial holds ``arch_id`` under ``proxy_id``; a holder whose
    worker died (here or elsewhere) is failed on the way, so nothing waits on it again."""
    while True:
        fail_stale(study)  # RDB storages: their own heartbeats
        fail_dead_trials(study)  # this host's processes, and journal files' heartbeats
        holders = [
            t
            for t in earlier_trials(study, number, ticket, sleep)
            if _live(t) and t.user_attrs.get(TrialAttr.ARCH_ID) == arch_id and t.user_attrs.get(TrialAttr.PROXY_ID) == proxy_id
        ]
        if not holders:
            return
        sleep(POLL_S)
