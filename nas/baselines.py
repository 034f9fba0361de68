"""The paper's RepGhostNets as baselines, evaluated with exactly the proxy the search uses.

Each baseline's candidate (architecture, predicted latency, counts) is kept in the study too,
as user attr ``baseline:<width>``: a report made elsewhere needs neither the LUT nor the space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import optuna

from repghost import REPGHOST_WIDTHS, NetConfig
from space import SearchSpace

from .evaluations import Evaluation, lookup, store
from .objective import Candidate, Trainer, describe
from .vocabulary import StudyAttr

PREFIX = StudyAttr.BASELINE


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
        baseline = Baseline(width, candidate, evaluation)
        if study.user_attrs.get(_key(width)) != _record(baseline):
            study.set_user_attr(_key(width), _record(baseline))
        baselines.append(baseline)
    return baselines


def baseline_label(baseline: Baseline) -> str:
    return f"RepGhostNet {baseline.width}x"


def _key(width: float) -> str:
    return f"{PREFIX}:{width:g}"


def _record(baseline: Baseline) -> dict[str, Any]:
    c = baseline.candidate
    return {"width": baseline.width, "arch": c.config.to_json(), "arch_id": c.arch_id, "latency_ms": c.latency_ms, "params": c.params, "macs": c.macs}


def stored_baselines(study: optuna.Study, proxy_id: str) -> list[Baseline]:
    """The baselines a study holds for ``proxy_id``, by width, rebuilt from its storage alone."""
    baselines = []
    for key, data in study.user_attrs.items():
        if not key.startswith(f"{PREFIX}:"):
            continue
        evaluation = lookup(study, proxy_id, data["arch_id"])
        if evaluation is None:
            continue
        candidate = Candidate(NetConfig.from_json(data["arch"]), data["arch_id"], float(data["latency_ms"]), int(data["params"]), int(data["macs"]))
        baselines.append(Baseline(float(data["width"]), candidate, evaluation))
    return sorted(baselines, key=lambda b: b.width)


def enqueue_feasible(study: optuna.Study, space: SearchSpace, baselines: list[Baseline], budget_ms: float) -> int:
    """Put the baselines within the budget into the study first, so the sampler starts there."""
    feasible = [b for b in baselines if b.candidate.latency_ms <= budget_ms]
    for baseline in feasible:
        study.enqueue_trial(space.paper_point(baseline.width), skip_if_exists=True)
    return len(feasible)
