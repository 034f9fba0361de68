"""What an engine is: a small class that says what it is (its settings) and measures one ONNX
model on this machine's CPU.

``Engine`` is the interface every engine implements (the contract tests run against each).
``TimedEngine`` is the base of the real engines: they load each model and bind an input once,
then the timing protocol of ``latency.timing`` times the calls, interleaved.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from typing import Any, Callable, Sequence

from ..timing import Measurement, RunPolicy, time_interleaved

OPT_LEVELS = ("disabled", "basic", "extended", "all")


class Engine(abc.ABC):
    """An inference engine for one ONNX model at a time.

    Subclasses set ``name`` (and ``SETTINGS``, the keyword arguments they take, when they add
    any), and implement ``version`` and ``_measure``.
    """

    name = ""
    SETTINGS: tuple[str, ...] = ("threads", "inter_op_threads", "opt_level")

    def __init__(self, *, threads: int = 1, inter_op_threads: int = 1, opt_level: str = "all") -> None:
        for label, value in (("threads", threads), ("inter_op_threads", inter_op_threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        if opt_level not in OPT_LEVELS:
            raise ValueError(f"opt_level must be one of {list(OPT_LEVELS)}, got {opt_level!r}")
        self.threads = threads
        self.inter_op_threads = inter_op_threads
        self.opt_level = opt_level

    @abc.abstractmethod
    def version(self) -> str:
        """The engine's version (recorded in every LUT)."""

    def settings(self) -> dict[str, Any]:
        """Everything about the engine that changes a timing (goes into a LUT's fingerprint)."""
        return {
            "engine": self.name,
            "engine_version": self.version(),
            "threads": self.threads,
            "inter_op_threads": self.inter_op_threads,
            "opt_level": self.opt_level,
        }

    def constructor_settings(self) -> dict[str, Any]:
        """The keyword arguments that make this engine again (sent to a remote agent)."""
        return {key: getattr(self, key) for key in self.SETTINGS}

    def measure(self, onnx_path: str, input_shape: tuple[int, ...], policy: RunPolicy | None = None) -> Measurement:
        """The statistics (ms) of one inference of ``onnx_path`` on an input of ``input_shape``."""
        return self.measure_many([(onnx_path, input_shape)], policy)[0]

    def measure_many(self, models: Sequence[tuple[str, tuple[int, ...]]], policy: RunPolicy | None = None) -> list[Measurement]:
        """The statistics of each ``(onnx_path, input_shape)``, timed together (interleaved)."""
        checked = []
        for onnx_path, input_shape in models:
            if not os.path.isfile(onnx_path):
                raise ValueError(f"no ONNX file at {onnx_path}")
            checked.append((str(onnx_path), tuple(int(d) for d in input_shape)))
        measurements = self._measure_many(checked, policy or RunPolicy())
        return [dataclasses.replace(m, meta={**m.meta, "engine": self.name}) for m in measurements]

    @abc.abstractmethod
    def _measure_many(self, models: list[tuple[str, tuple[int, ...]]], policy: RunPolicy) -> list[Measurement]:
        """The measurements of existing files, shapes already made tuples of ints."""


class TimedEngine(Engine):
    """An engine whose latency is timed on this CPU by the protocol of ``latency.timing``.

    Subclasses implement ``_prepare``: load the model, bind an input of ``input_shape`` and
    return a zero-argument callable that runs it once.
    """

    @abc.abstractmethod
    def _prepare(self, onnx_path: str, input_shape: tuple[int, ...]) -> Callable[[], Any]:
        """A callable that runs the model once, inputs already bound."""

    def _measure_many(self, models: list[tuple[str, tuple[int, ...]]], policy: RunPolicy) -> list[Measurement]:
        if policy.clock == "thread" and self.threads != 1:
            raise ValueError(f"the thread clock needs threads=1 (the engine then computes in the calling thread), got threads={self.threads}")
        calls = [self._prepare(onnx_path, input_shape) for onnx_path, input_shape in models]
        return time_interleaved(calls, policy)


def import_engine_package(module: str, engine: str, remedy: str) -> Any:
    """Import an engine's Python package, or fail with one line naming what to install."""
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"engine '{engine}' needs the Python package {module}, which is not installed here ({remedy})") from None
