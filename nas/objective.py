"""The Optuna objective: space -> architecture -> predicted latency (cheap, first) -> proxy
accuracy (expensive, only for feasible candidates not evaluated before)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import optuna

from repghost import NetConfig, build, count
from space import SearchSpace, arch_id

from .evaluations import Evaluation, lookup, store

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
    ) -> None:
        self.space = space
        self.predict_ms = predict_ms
        self.budget_ms = budget_ms
        self.proxy_id = proxy_id
        self.train = train
        self.epochs = epochs
        self.multi_objective = multi_objective

    def _result(self, accuracy: float, latency_ms: float) -> Any:
        return (accuracy, latency_ms) if self.multi_objective else accuracy

    def __call__(self, trial: optuna.Trial) -> Any:
        config = self.space.suggest(trial)
        candidate = describe(config, self.predict_ms, self.space.resolution)
        for key, value in (
            ("arch", config.to_json()),
            ("arch_id", candidate.arch_id),
            ("latency_ms", candidate.latency_ms),
            ("params", candidate.params),
            ("macs", candidate.macs),
            ("proxy_id", self.proxy_id),
        ):
            trial.set_user_attr(key, value)
        trial.set_constraint("latency", candidate.latency_ms - self.budget_ms)
        if candidate.latency_ms > self.budget_ms:
            trial.set_user_attr("status", "infeasible")
            return self._result(0.0, candidate.latency_ms)
        study = trial.study
        known = lookup(study, self.proxy_id, candidate.arch_id)
        if known is not None:
            trial.set_user_attr("status", "cached")
            trial.set_user_attr("cached_from", known.source)
            trial.set_user_attr("epoch_accuracies", list(known.epoch_accuracies))
            return self._result(known.accuracy, candidate.latency_ms)

        def report(epoch: int, accuracy: float) -> None:
            trial.set_user_attr("epoch_accuracies", [*trial.user_attrs.get("epoch_accuracies", []), accuracy])
            if self.multi_objective or epoch >= self.epochs:
                return  # Optuna does not prune multi-objective studies; pruning after the last epoch saves nothing and loses a result
            trial.report(accuracy, epoch)
            if trial.should_prune():
                trial.set_user_attr("status", "pruned")
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with accuracy {accuracy:.4f}")

        accuracy, epochs, seconds = self.train(config, report)
        trial.set_user_attr("status", "trained")
        trial.set_user_attr("train_seconds", seconds)
        store(study, self.proxy_id, Evaluation(candidate.arch_id, accuracy, tuple(epochs), seconds, f"trial {trial.number}"))
        return self._result(accuracy, candidate.latency_ms)
