"""What a running search prints: one line per trial, and the counts those lines are made of."""

from __future__ import annotations

import math
import time

import optuna

from .vocabulary import Status, TrialAttr, counts, is_scored, status_of


def count_evaluated(study: optuna.Study) -> int:
    """Trials that evaluated a feasible candidate (trained, pruned or found in the cache)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if counts(t))


def best_accuracy(study: optuna.Study) -> float:
    return max((t.values[0] for t in study.get_trials(deepcopy=False) if is_scored(t)), default=math.nan)


def stored_seconds_per_evaluation(study: optuna.Study) -> float | None:
    """Wall seconds per evaluated trial over the finished trials in the storage (those that
    ended infeasible, screened or cached included, as they pass between evaluations): None
    without an evaluated one."""
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.duration is not None]
    evaluated = sum(1 for t in finished if counts(t))
    return sum(t.duration.total_seconds() for t in finished) / evaluated if evaluated else None


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Study callback: one line per trial (number, latency, accuracy or outcome, best so far,
    elapsed, ETA of the trial phase); stops the study once ``target`` evaluations are done.
    Lines, not a bar: the workers of a ``--workers`` run print into one terminal, and logs stay
    readable."""

    def __init__(self, target: int, done_before: int, prefix: str = "") -> None:
        self.prefix = prefix
        self.target = target
        self.done_before = done_before
        self.start = time.monotonic()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted = count_evaluated(study)
        status = status_of(trial)
        latency = trial.user_attrs.get(TrialAttr.LATENCY_MS, math.nan)
        if is_scored(trial):
            outcome = f"acc {trial.values[0]:.4f}" + (" (cached)" if status == Status.CACHED else "")
        else:
            outcome = str(status) if status is not None else trial.state.name.lower()
        elapsed = time.monotonic() - self.start
        done_now = counted - self.done_before
        remaining = max(self.target - counted, 0)
        if done_now > 0:
            eta = clock(elapsed / done_now * remaining)
        else:  # a resumed run before its first evaluation: the stored trials' pace, until it has its own
            per_trial = stored_seconds_per_evaluation(study)
            eta = clock(per_trial * remaining) if per_trial is not None else "?"
        best = best_accuracy(study)
        print(
            f"{self.prefix}trial {trial.number:4d} | {latency:7.2f} ms | {outcome:<22} | best {'-     ' if math.isnan(best) else f'{best:.4f}'} | "
            f"{counted}/{self.target} evaluated | {clock(elapsed)} elapsed | trials ETA {eta}",
            flush=True,
        )
        if counted >= self.target:
            study.stop()
