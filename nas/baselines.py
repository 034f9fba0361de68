"""The paper's RepGhostNets as baselines, evaluated with exactly the proxy the search uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import optuna

from repghost import REPGHOST_WIDTHS, NetConfig
from space import SearchSpace

from .evaluations import Evaluation, lookup, store
from .objective import Candidate, Trainer, describe


@dataclass(frozen=True)
class Baseline:
    width: float
    candidate: Candidate
    evaluation: Evaluation


def evaluate_baselines(
    study: optuna.Study,
    *,
    space: SearchSpace,
    predict_ms: Callable[[NetConfig], float],
    proxy_id: str,
    train: Trainer,
    log: Callable[[str], None] = print,
) -> list[Baseline]:
    """Train each paper width once per proxy setting (results kept in the study's storage)."""
    baselines = []
    for width in REPGHOST_WIDTHS:
        try:
            config = space.decode(space.paper_point(width))
        except ValueError as error:
            log(f"baseline RepGhostNet {width}x: not a point of {space.path.name} ({error}); skipped")
            continue
        candidate = describe(config, predict_ms, space.resolution)
        evaluation = lookup(study, proxy_id, candidate.arch_id)
        if evaluation is None:
            log(f"baseline RepGhostNet {width}x: training ({candidate.latency_ms:.1f} ms predicted)")
            accuracy, epochs, seconds = train(config, lambda epoch, accuracy: None)
            evaluation = Evaluation(candidate.arch_id, accuracy, tuple(epochs), seconds, f"baseline {width}x")
            store(study, proxy_id, evaluation)
        log(f"baseline RepGhostNet {width}x: accuracy {evaluation.accuracy:.4f}, {candidate.latency_ms:.1f} ms")
        baselines.append(Baseline(width, candidate, evaluation))
    return baselines


def enqueue_feasible(study: optuna.Study, space: SearchSpace, baselines: list[Baseline], budget_ms: float) -> int:
    """Put the baselines within the budget into the study first, so the sampler starts there."""
    feasible = [b for b in baselines if b.candidate.latency_ms <= budget_ms]
    for baseline in feasible:
        study.enqueue_trial(space.paper_point(baseline.width), skip_if_exists=True)
    return len(feasible)
