"""The timing protocol: how a real engine's call is timed, and what a timing is.

Explicit thread counts (set by the engine), warm-up runs, then timed runs in batches until the
median is stable; median and interquartile range in milliseconds; an entry whose spread is high
is measured again and the attempt with the lowest relative spread is kept.

Standard library and numpy only: this module is shipped with the engines to a remote board.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

CLOCKS = {"wall": time.perf_counter_ns, "thread": time.thread_time_ns}


@dataclass(frozen=True)
class Measurement:
    """A timing with its spread: median and interquartile range of ``runs`` timed calls."""

    median_ms: float
    iqr_ms: float
    runs: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunPolicy:
    """How many runs an entry gets.

    Attributes:
        warmup_runs: untimed calls first (at least ``warmup_ms`` worth of them).
        warmup_ms: minimum warm-up time.
        min_runs: timed calls before the median may be declared stable.
        batch_runs: timed calls added per round once ``min_runs`` are done.
        max_runs: stop there even if the median still moves.
        max_ms: stop after this much timed wall time (for slow entries), once ``min_runs`` are done.
        stable_rel: the median is stable when a new batch moves it by less than this fraction.
        max_iqr_rel: an attempt with IQR/median above this is measured again...
        attempts: ...up to this many attempts in all (the lowest IQR/median wins).
        clock: ``wall`` (latency as a user sees it) or ``thread`` (CPU time of the calling
            thread: blind to time spent preempted, so steadier on a shared machine; valid only
            with one intra-op thread, where the engine computes in the calling thread).
    """

    warmup_runs: int = 5
    warmup_ms: float = 30.0
    min_runs: int = 20
    batch_runs: int = 10
    max_runs: int = 200
    max_ms: float = 1500.0
    stable_rel: float = 0.01
    max_iqr_rel: float = 0.10
    attempts: int = 3
    clock: str = "wall"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"run policy clock must be one of {list(CLOCKS)}, got {self.clock!r}")
        for name in ("warmup_runs", "min_runs", "batch_runs", "max_runs", "attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "warmup_runs" else 1):
                raise ValueError(f"run policy {name} must be a positive integer, got {value!r}")
        if self.max_runs < self.min_runs:
            raise ValueError(f"run policy max_runs ({self.max_runs}) must be at least min_runs ({self.min_runs})")
        for name in ("warmup_ms", "max_ms", "stable_rel", "max_iqr_rel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"run policy {name} must be a non-negative number, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunPolicy":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown run policy settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


def _quartiles(samples_ms: list[float]) -> tuple[float, float]:
    q1, median, q3 = np.percentile(np.asarray(samples_ms), [25, 50, 75])
    return float(median), float(q3 - q1)


def time_calls(call: Callable[[], Any], policy: RunPolicy) -> Measurement:
    """Time ``call`` by the protocol above. ``call`` runs the model once, inputs already bound."""
    attempts: list[Measurement] = []
    for attempt in range(1, policy.attempts + 1):
        measurement = _one_attempt(call, policy, attempt)
        attempts.append(measurement)
        if measurement.iqr_ms <= policy.max_iqr_rel * measurement.median_ms:
            break
    best = min(attempts, key=lambda m: m.iqr_ms / max(m.median_ms, 1e-12))
    return Measurement(best.median_ms, best.iqr_ms, best.runs, {**best.meta, "attempts": len(attempts)})


def _one_attempt(call: Callable[[], Any], policy: RunPolicy, attempt: int) -> Measurement:
    wall = time.perf_counter_ns
    clock = CLOCKS[policy.clock]
    start = wall()
    done = 0
    while done < policy.warmup_runs or (wall() - start) * 1e-6 < policy.warmup_ms:
        call()
        done += 1
    samples: list[float] = []
    previous_median = None
    timed_ns = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            target = policy.min_runs if not samples else min(len(samples) + policy.batch_runs, policy.max_runs)
            while len(samples) < target:
                t0 = clock()
                call()
                elapsed = clock() - t0
                timed_ns += elapsed
                samples.append(elapsed * 1e-6)
            median = float(np.median(samples))
            if len(samples) >= policy.max_runs or timed_ns * 1e-6 >= policy.max_ms:
                break
            if previous_median is not None and abs(median - previous_median) <= policy.stable_rel * previous_median:
                break
            previous_median = median
    finally:
        if gc_was_enabled:
            gc.enable()
    median, iqr = _quartiles(samples)
    return Measurement(median, iqr, len(samples), {"warmup_runs": done, "attempt": attempt})
