"""Inference engines, by name: ``get_engine("ort", threads=1)``.

Each engine is a small class (``base.Engine``): ``ort`` (ONNX Runtime) and ``mnn`` (MNN) time
a model on this CPU with the protocol of ``latency.timing``; ``deterministic`` computes a known
cost from the graph (for tests of logic). An engine's own package is imported when the engine
is made, so a machine needs only the engines it uses. This package is shipped as files, with
``latency.timing`` and ``latency.agent``, to a machine measured over SSH.
"""

from __future__ import annotations

from typing import Any

from .base import OPT_LEVELS, Engine, TimedEngine
from .deterministic import DeterministicEngine
from .mnn import MnnEngine
from .ort import OrtEngine

ENGINES: dict[str, type[Engine]] = {"ort": OrtEngine, "mnn": MnnEngine, "deterministic": DeterministicEngine}
PRECISIONS = tuple(MnnEngine.PRECISIONS)


def get_engine(name: str, **settings: Any) -> Engine:
    """The engine called ``name`` with explicit settings (threads, inter_op_threads, opt_level, ...)."""
    engine_type = ENGINES.get(name)
    if engine_type is None:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(sorted(ENGINES))}")
    try:
        return engine_type(**settings)
    except TypeError as error:
        raise ValueError(f"engine {name!r} does not take these settings ({error}); its settings: {', '.join(engine_type.SETTINGS)}") from None


def engine_from_settings(recorded: dict[str, Any]) -> Engine:
    """The engine a fingerprint (or ``Engine.settings()``) describes, with the same settings."""
    name = recorded.get("engine", "ort")
    engine_type = ENGINES.get(name)
    if engine_type is None:
        raise ValueError(f"unknown engine {name!r}; known engines: {', '.join(sorted(ENGINES))}")
    return get_engine(name, **{key: recorded[key] for key in engine_type.SETTINGS if recorded.get(key) is not None})


__all__ = ["ENGINES", "OPT_LEVELS", "PRECISIONS", "DeterministicEngine", "Engine", "MnnEngine", "OrtEngine", "TimedEngine", "engine_from_settings", "get_engine"]
