"""Many workers on one study: no architecture trained twice, no evaluation beyond the target.

Trial numbers are handed out by the storage, one by one, so they order the workers' trials
(a queued trial, such as a baseline or a retry, is taken before any new one is created, so it
starts before the trials numbered after it).
A trial first declares its candidate (user attrs ``worker``, ``arch_id``, ``latency_ms``); a
feasible one then waits until every earlier running trial has declared, and looks at them:

- evaluation slot: when the earlier feasible trials that count (finished ones evaluated,
  running ones still alive) already reach the target, this trial is surplus;
- claim: while an earlier live trial holds the same architecture, this one waits for it and
  then takes its result from the evaluation cache.

The earlier trial always wins, whatever the timing, so two workers never train the same
architecture at once. A trial whose worker died is no claim: on this host the process is
checked; elsewhere the storage's heartbeat (RDB storages) fails it after its grace period.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import warnings
from typing import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

WORKER_ATTR = "worker"
# A running trial declares its candidate within a second of starting; one silent for longer
# belongs to a worker that died before declaring and is left out.
DECLARE_WINDOW_S = 60.0
POLL_S = 0.25
COUNTED = ("trained", "cached", "pruned")


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
    """True when the trial's worker ran on this host and its process is gone."""
    host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not _process_alive(int(pid))


def _live(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING and not worker_dead(trial)


def _declared(trial: FrozenTrial) -> bool:
    return "latency_ms" in trial.user_attrs


def _silent_too_long(trial: FrozenTrial) -> bool:
    start = trial.datetime_start
    return start is not None and (dt.datetime.now() - start).total_seconds() > DECLARE_WINDOW_S


def fail_stale(study: optuna.Study) -> None:
    """Optuna's heartbeat staleness check (RDB storages), without its experimental warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _never_started(trial: FrozenTrial, after_s: float) -> bool:
    """A trial whose worker died between creating it and the objective's first line (which
    names the worker): no worker to check, and perhaps not even a heartbeat to go stale."""
    start = trial.datetime_start
    return WORKER_ATTR not in trial.user_attrs and start is not None and (dt.datetime.now() - start).total_seconds() > after_s


def fail_dead_trials(study: optuna.Study, undeclared_after_s: float = DECLARE_WINDOW_S) -> list[int]:
    """Fail the running trials whose worker process on this host is gone, or that never reached
    the objective within ``undeclared_after_s``, and queue each once more (storages without
    heartbeats, such as journal files, keep them running otherwise)."""
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not (worker_dead(trial) or _never_started(trial, undeclared_after_s)):
            continue
        try:
            if study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
                retry(study, study._storage.get_trial(trial._trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker failed it first
    return failed


def earlier_trials(study: optuna.Study, number: int, sleep: Callable[[float], None] = time.sleep) -> list[FrozenTrial]:
    """The trials numbered below ``number``, once every live running one has declared its
    candidate."""
    while True:
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number < number]
        if all(_declared(t) or not _live(t) or _silent_too_long(t) for t in earlier):
            return earlier
        sleep(POLL_S)


def holds_slot(trial: FrozenTrial, budget_ms: float) -> bool:
    """An earlier feasible trial that counts towards the target: evaluated, or still evaluating."""
    if not _declared(trial) or trial.user_attrs["latency_ms"] > budget_ms:
        return False
    if trial.state == TrialState.RUNNING:
        return not worker_dead(trial)
    return trial.state.is_finished() and trial.user_attrs.get("status") in COUNTED


def slots_taken(earlier: list[FrozenTrial], budget_ms: float) -> int:
    return sum(holds_slot(t, budget_ms) for t in earlier)


def wait_for_claims(
    study: optuna.Study, number: int, arch_id: str, proxy_id: str, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Return once no earlier live trial holds ``arch_id`` under ``proxy_id``."""
    while True:
        holders = [
            t
            for t in earlier_trials(study, number, sleep)
            if _live(t) and t.user_attrs.get("arch_id") == arch_id and t.user_attrs.get("proxy_id") == proxy_id
        ]
        if not holders:
            return
        fail_stale(study)  # RDB heartbeats: a holder on another host that died is failed here
        sleep(POLL_S)
