"""The timing protocol: how a real engine's calls are timed, and what a timing is.

A shared machine is slowed by whatever else runs on it, and interference only ever adds time:
the median of one contiguous attempt measures the weather of that moment, a low order statistic
over samples spread in time estimates the undisturbed cost. So everything a job times (the parts
of a LUT chunk, the calibration networks, the drift reference, the networks of a validation) is
timed in short bursts, interleaved round-robin over the items, for several rounds: every item is
seen at several moments. The first runs of each burst warm the session (its weights back into
cache after the other items ran) and are discarded. Every item gets the same number of timed
samples (the expected minimum falls as the count grows), and keeps its minimum, a low
percentile, its median, its interquartile range and the count. Which of them a LUT predicts with
is its ``statistic`` (recorded in the fingerprint).

Standard library and numpy only: this module is shipped with the engines to a remote board.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

CLOCKS = {"wall": time.perf_counter_ns, "thread": time.thread_time_ns}
STATISTICS = ("min", "p10", "median")
DEFAULT_STATISTIC = "min"
LOW_PERCENTILE = 10


@dataclass(frozen=True)
class Measurement:
    """One item's timed samples, summarized (milliseconds): median, interquartile range, count,
    minimum and the ``LOW_PERCENTILE`` percentile. ``value(statistic)`` picks one."""

    median_ms: float
    iqr_ms: float
    runs: int
    meta: dict[str, Any] = field(default_factory=dict)
    min_ms: float | None = None
    p10_ms: float | None = None

    def value(self, statistic: str) -> float:
        """The figure a LUT of ``statistic`` uses."""
        if statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")
        value = getattr(self, f"{statistic}_ms")
        if value is None:
            raise ValueError(f"this measurement has no {statistic} (only a median); measure it again")
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measurement":
        return cls(
            float(data["median_ms"]), float(data["iqr_ms"]), int(data["runs"]), dict(data.get("meta") or {}),
            None if data.get("min_ms") is None else float(data["min_ms"]),
            None if data.get("p10_ms") is None else float(data["p10_ms"]),
        )


def summarize(samples_ms: Sequence[float], meta: dict[str, Any] | None = None) -> Measurement:
    """The statistics of one item's timed samples."""
    values = np.asarray(samples_ms, dtype=float)
    low, q1, median, q3 = np.percentile(values, [LOW_PERCENTILE, 25, 50, 75])
    return Measurement(float(median), float(q3 - q1), int(len(values)), dict(meta or {}), float(values.min()), float(low))


@dataclass(frozen=True)
class RunPolicy:
    """How items are timed together.

    Attributes:
        rounds: passes over all items of a job (each item gets one burst per round).
        burst_runs: timed calls per burst.
        warmup_runs: untimed calls at the start of each burst (cache-cold after the other items).
        chunk_items: items timed together in one interleaved job at most (a LUT build times its
            parts in chunks of this many, the drift reference and the session-call probe included).
        clock: ``wall`` (latency as a user sees it) or ``thread`` (CPU time of the calling
            thread: blind to time spent preempted; valid only with one intra-op thread).
    """

    rounds: int = 5
    burst_runs: int = 4
    warmup_runs: int = 2
    chunk_items: int = 40
    clock: str = "wall"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"run policy clock must be one of {list(CLOCKS)}, got {self.clock!r}")
        for name in ("rounds", "burst_runs", "warmup_runs", "chunk_items"):
            value = getattr(self, name)
            low = 0 if name == "warmup_runs" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"run policy {name} must be an integer of at least {low}, got {value!r}")

    @property
    def samples(self) -> int:
        """Timed samples per item."""
        return self.rounds * self.burst_runs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunPolicy":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"run policy settings {sorted(unknown)} are not this protocol's (known: {sorted(cls.__dataclass_fields__)}); "
                "a LUT measured with the older protocol must be rebuilt"
            )
        return cls(**data)


def time_interleaved(calls: Sequence[Callable[[], Any]], policy: RunPolicy) -> list[Measurement]:
    """Time each of ``calls`` (each runs one model once, inputs bound) by the protocol above.

    Round ``r`` starts at item ``r`` (mod n), so no item always follows the same one. Garbage
    collection is off while timing. ``meta`` keeps the mean of each burst's first warm-up run
    over the rounds (how much slower a cache-cold call is)."""
    clock = CLOCKS[policy.clock]
    n = len(calls)
    samples: list[list[float]] = [[] for _ in range(n)]
    cold: list[list[float]] = [[] for _ in range(n)]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_index in range(policy.rounds):
            for offset in range(n):
                index = (round_index + offset) % n
                call = calls[index]
                for warm in range(policy.warmup_runs):
                    t0 = clock()
                    call()
                    if warm == 0:
                        cold[index].append((clock() - t0) * 1e-6)
                timed = samples[index]
                for _ in range(policy.burst_runs):
                    t0 = clock()
                    call()
                    timed.append((clock() - t0) * 1e-6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [summarize(timed, {"first_warmup_ms": round(float(np.mean(c)), 6)} if c else {}) for timed, c in zip(samples, cold)]
