"""The one place that talks to Optuna: each active decision becomes a ``suggest_categorical``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from repghost.config import NetConfig

if TYPE_CHECKING:  # optuna is only needed by whoever passes a trial
    import optuna


class Walkable(Protocol):
    """What ``suggest`` needs of a ``SearchSpace`` (named here so this module does not import
    the one that imports it)."""

    def params_of(self, choose: Callable[[Any], Any]) -> tuple[dict[str, Any], NetConfig]: ...


def suggest(space: Walkable, trial: "optuna.Trial") -> NetConfig:
    """The network ``trial`` picks. Parameter names are the decision names (``width``,
    ``s3.out``, ``b07.mid`` ...), so ``study.enqueue_trial(space.paper_point(w))`` replays a
    paper model, and studies on the same space file stay comparable."""
    _, config = space.params_of(lambda decision: trial.suggest_categorical(decision.name, list(decision.choices)))
    return config
