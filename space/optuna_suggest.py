"""The one place that talks to Optuna: each active decision becomes a ``suggest_categorical``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repghost.config import NetConfig

if TYPE_CHECKING:  # optuna is only needed by whoever passes a trial
    import optuna

    from .search_space import SearchSpace


def suggest(space: "SearchSpace", trial: "optuna.Trial") -> NetConfig:
    """The network ``trial`` picks. Parameter names are the decision names (``width``,
    ``s3.out``, ``b07.mid`` ...), so ``study.enqueue_trial(space.paper_point(w))`` replays a
    paper model, and studies on the same space file stay comparable."""
    _, config = space.params_of(lambda decision: trial.suggest_categorical(decision.name, list(decision.choices)))
    return config
