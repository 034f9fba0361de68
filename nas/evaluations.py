"""Proxy results shared through the study's storage, keyed by (proxy settings, architecture).

A candidate the sampler proposes twice, or a paper baseline that also enters the study, is
trained once per proxy setting; every worker on the same storage sees the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna

from .vocabulary import StudyAttr

PREFIX = StudyAttr.EVALUATION


@dataclass(frozen=True)
class Evaluation:
    """One proxy training of one architecture."""

    arch_id: str
    accuracy: float
    epoch_accuracies: tuple[float, ...]
    train_seconds: float
    source: str  # "trial 12" or "baseline 0.5x"

    def to_attr(self) -> dict[str, Any]:
        data = asdict(self)
        data["epoch_accuracies"] = list(self.epoch_accuracies)
        return data

    @classmethod
    def from_attr(cls, data: dict[str, Any]) -> "Evaluation":
        return cls(**{**data, "epoch_accuracies": tuple(data["epoch_accuracies"])})


def _key(proxy_id: str, arch_id: str) -> str:
    return f"{PREFIX}:{proxy_id}:{arch_id}"


def lookup(study: optuna.Study, proxy_id: str, arch_id: str) -> Evaluation | None:
    data = study.user_attrs.get(_key(proxy_id, arch_id))
    return None if data is None else Evaluation.from_attr(data)


def store(study: optuna.Study, proxy_id: str, evaluation: Evaluation) -> None:
    study.set_user_attr(_key(proxy_id, evaluation.arch_id), evaluation.to_attr())


def all_evaluations(study: optuna.Study, proxy_id: str) -> dict[str, Evaluation]:
    prefix = f"{PREFIX}:{proxy_id}:"
    return {k[len(prefix):]: Evaluation.from_attr(v) for k, v in study.user_attrs.items() if k.startswith(prefix)}
