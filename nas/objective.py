"""The Optuna objective: space -> architecture -> predicted latency (cheap, first) -> proxy
accuracy (expensive, only for feasible candidates not evaluated before, and never by two
workers at once: see ``nas.coordination``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from repghost import NetConfig, build, count
from space import SearchSpace, arch_id

from .coordination import Heartbeat, earlier_trials, queue_interrupted, slots_taken, take_ticket, wait_for_claims, worker_name
from .evaluations import Evaluation, lookup, store
from .interrupts import TrialLoopInterrupts
from .screens import passes_screen
from .vocabulary import Status, TrialAttr

# train(config, report) -> (final accuracy, per-epoch accuracies, seconds); report(epoch, accuracy)
Trainer = Callable[[NetConfig, Callable[[int, float], None]], tuple[float, list[float], float]]


@dataclass(frozen=True)
class Candidate:
    """What is known about an architecture before any training."""

    config: NetConfig
    arch_id: str
    latency_ms: float
    params: int
    macs: int


def describe(config: NetConfig, predict_ms: Callable[[NetConfig], float], resolution: int) -> Candidate:
    counts = count(build(config), resolution)
    return Candidate(config, arch_id(config), predict_ms(config), counts.params, counts.macs)


class Objective:
    """Callable for ``study.optimize``.

    Single objective: returns proxy accuracy; the latency constraint (predicted minus budget,
    feasible when <= 0) is set on every trial, and an infeasible candidate returns 0.0 at once.
    Multi-objective: returns (accuracy, latency_ms) for feasible candidates, same constraint.
    ``epochs`` is the proxy's epoch count: the pruner is asked after every epoch but the last.
    ``target``: evaluations wanted in the study; with several workers, a feasible trial that
    finds them all taken by earlier trials is ended as ``surplus`` (pruned, not counted) and its
    worker stops. ``beat_every_s``: heartbeat period for storages without their own (journal
    files), None for the others. ``sleep``: how waits for other workers pass time.
    ``interrupts``: where Ctrl-C may land (``TrialLoopInterrupts.raised_here``): counting,
    screening, training and waiting, never a storage call nor between a result and its record.
    ``screen``, ``screen_factor``: a training-free score (higher is better) that a candidate
    about to be trained must rank within the top ``1/screen_factor`` of, among the candidates of
    other architectures that trials numbered before it screened (``nas.screens.passes_screen``;
    a retry is ranked as its first trial was); the rest end as ``screened`` (pruned, not counted).
    """

    def __init__(
        self,
        *,
        space: SearchSpace,
        predict_ms: Callable[[NetConfig], float],
        budget_ms: float,
        proxy_id: str,
        train: Trainer,
        epochs: int,
        multi_objective: bool = False,
        target: int | None = None,
        beat_every_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        interrupts: TrialLoopInterrupts | None = None,
        screen: Callable[[NetConfig], float] | None = None,
        screen_factor: int = 1,
    ) -> None:
        self.space = space
        self.predict_ms = predict_ms
        self.budget_ms = budget_ms
        self.proxy_id = proxy_id
        self.train = train
        self.epochs = epochs
        self.multi_objective = multi_objective
        self.target = target
        self.beat_every_s = beat_every_s
        self.sleep = sleep
        self.interrupts = interrupts or TrialLoopInterrupts()
        self.screen = screen
        self.screen_factor = screen_factor

    def _result(self, accuracy: float, latency_ms: float) -> Any:
        return (accuracy, latency_ms) if self.multi_objective else accuracy

    def __call__(self, trial: optuna.Trial) -> Any:
        with Heartbeat(trial, self.beat_every_s):
            trial.set_user_attr(TrialAttr.WORKER, worker_name())
            return self._run(trial)

    def interrupted(self, trial: optuna.Trial) -> None:
        """Ctrl-C stopped ``trial`` (Optuna fails it and stops): say so, and queue its candidate
        so that a rerun trains it."""
        trial.set_user_attr(TrialAttr.STATUS, Status.INTERRUPTED.value)
        queue_interrupted(trial)

    def _run(self, trial: optuna.Trial) -> Any:
        study = trial.study
        config = self.space.suggest(trial)
        latency_ms = self.predict_ms(config)
        for key, value in (  # latency_ms last: it tells other workers the candidate is declared
            (TrialAttr.ARCH, config.to_json()),
            (TrialAttr.ARCH_ID, arch_id(config)),
            (TrialAttr.PROXY_ID, self.proxy_id),
            (TrialAttr.LATENCY_MS, latency_ms),
        ):
            trial.set_user_attr(key, value)
        trial.set_constraint("latency", latency_ms - self.budget_ms)
        if latency_ms > self.budget_ms:
            # Never built nor counted: a prediction is all an infeasible candidate costs
            # (counting a large network takes seconds).
            trial.set_user_attr(TrialAttr.STATUS, Status.INFEASIBLE.value)
            return self._result(0.0, latency_ms)
        with self.interrupts.raised_here():
            candidate = describe(config, self.predict_ms, self.space.resolution)
        trial.set_user_attr(TrialAttr.PARAMS, candidate.params)
        trial.set_user_attr(TrialAttr.MACS, candidate.macs)
        ticket = take_ticket(trial)
        if self.target is not None and slots_taken(earlier_trials(study, trial.number, ticket, self._wait), self.budget_ms) >= self.target:
            trial.set_user_attr(TrialAttr.STATUS, Status.SURPLUS.value)
            study.stop()
            raise optuna.TrialPruned(f"the study's {self.target} evaluations are taken by earlier trials")
        wait_for_claims(study, trial.number, ticket, candidate.arch_id, self.proxy_id, self._wait)
        known = lookup(study, self.proxy_id, candidate.arch_id)
        if known is not None:
            trial.set_user_attr(TrialAttr.STATUS, Status.CACHED.value)
            trial.set_user_attr(TrialAttr.CACHED_FROM, known.source)
            trial.set_user_attr(TrialAttr.EPOCH_ACCURACIES, list(known.epoch_accuracies))
            return self._result(known.accuracy, candidate.latency_ms)
        if self.screen is not None and self.screen_factor > 1:
            self._screen(trial, config, candidate.arch_id)
        accuracies: list[float] = []

        def report(epoch: int, accuracy: float) -> None:
            with self.interrupts.held():
                accuracies.append(accuracy)
                trial.set_user_attr(TrialAttr.EPOCH_ACCURACIES, list(accuracies))
                if self.multi_objective or epoch >= self.epochs:
                    return  # Optuna does not prune multi-objective studies; pruning after the last epoch saves nothing and loses a result
                trial.report(accuracy, epoch)
                if trial.should_prune():
                    trial.set_user_attr(TrialAttr.STATUS, Status.PRUNED.value)
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} with accuracy {accuracy:.4f}")

        with self.interrupts.raised_here():
            accuracy, epochs, seconds = self.train(config, report)
        # From here an interrupt waits for the next trial: it would split the result from its record.
        trial.set_user_attr(TrialAttr.STATUS, Status.TRAINED.value)
        trial.set_user_attr(TrialAttr.TRAIN_SECONDS, seconds)
        store(study, self.proxy_id, Evaluation(candidate.arch_id, accuracy, tuple(epochs), seconds, f"trial {trial.number}"))
        return self._result(accuracy, candidate.latency_ms)

    def _wait(self, seconds: float) -> None:
        """A wait for other workers, which Ctrl-C may cut short."""
        with self.interrupts.raised_here():
            self.sleep(seconds)

    def _screen(self, trial: optuna.Trial, config: NetConfig, arch: str) -> None:
        """Record the candidate's screen score; end the trial as ``screened`` unless it ranks
        within the top ``1/screen_factor``."""
        with self.interrupts.raised_here():
            score = self.screen(config)
        trial.set_user_attr(TrialAttr.SCREEN_SCORE, score)
        first = trial.user_attrs.get(TrialAttr.RETRY_OF, trial.number)
        earlier = {t.user_attrs[TrialAttr.ARCH_ID]: t.user_attrs[TrialAttr.SCREEN_SCORE] for t in trial.study.get_trials(deepcopy=False)
                   if t.number < first and TrialAttr.SCREEN_SCORE in t.user_attrs and t.user_attrs.get(TrialAttr.ARCH_ID) != arch}
        if not passes_screen(score, earlier.values(), self.screen_factor):
            trial.set_user_attr(TrialAttr.STATUS, Status.SCREENED.value)
            raise optuna.TrialPruned(f"screened out: score {score:.2f} is not in the top 1/{self.screen_factor} of {len(earlier) + 1} candidates")
