"""How well one score ranks like another: Kendall's tau with a bootstrap interval, and the
ground truth's own noise (how well it ranks like itself under another seed)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000


def tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (a pair tied on either side counts as neither concordant nor
    discordant; the denominator leaves each side's tied pairs out); nan when either side has
    fewer than two distinct values."""
    if len(x) != len(y):
        raise ValueError(f"x and y must be the same length, got {len(x)} and {len(y)}")
    return float(_taus(np.asarray(x, dtype=float)[None, :], np.asarray(y, dtype=float)[None, :])[0])


def _taus(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """tau-b of each row pair of ``x`` and ``y`` (shape [samples, n]), vectorized."""
    dx = np.sign(x[:, :, None] - x[:, None, :])
    dy = np.sign(y[:, :, None] - y[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=(1, 2)) / np.sqrt((dx != 0).sum(axis=(1, 2)) * (dy != 0).sum(axis=(1, 2)))


def bootstrap_interval(x: Sequence[float], y: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``tau(x, y)``: the rows (pairs) drawn with replacement;
    resamples where tau is undefined (one distinct value on a side) are left out."""
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x_arr) != len(y_arr):
        raise ValueError(f"x and y must be the same length, got {len(x_arr)} and {len(y_arr)}")
    if len(x_arr) < 3:
        return math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(x_arr), (resamples, len(x_arr)))
    return _percentiles(_taus(x_arr[picks], y_arr[picks]), level)


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap samples, leaving out the undefined (nan) ones."""
    samples = samples[~np.isnan(samples)]
    if not samples.size:
        return math.nan, math.nan
    low, high = np.quantile(samples, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def paired_difference(a: Sequence[float], b: Sequence[float], truth: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES,
                      level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``tau(a, truth) - tau(b, truth)`` with a percentile bootstrap interval that draws the
    same rows for both scores (they are compared on the same architectures, so their errors
    are correlated and a difference of two separate intervals would be too wide)."""
    arrays = [np.asarray(v, dtype=float) for v in (a, b, truth)]
    if len({len(v) for v in arrays}) != 1:
        raise ValueError(f"a, b and truth must be the same length, got {', '.join(str(len(v)) for v in arrays)}")
    x, z, y = arrays
    difference = tau(x, y) - tau(z, y)
    if len(y) < 3:
        return difference, math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(y), (resamples, len(y)))
    return difference, *_percentiles(_taus(x[picks], y[picks]) - _taus(z[picks], y[picks]), level)


@dataclass(frozen=True)
class Noise:
    """The ground truth against itself, over rows trained with two seeds.

    Attributes:
        rows: rows with both seeds.
        seed_tau: Kendall tau between the two seeds' accuracies.
        mean_abs_diff: mean |seed a - seed b| over rows (accuracy, 0..1).
        worst_abs_diff: the largest such difference.
        within_sd: one run's standard deviation around its row's mean (pooled over rows).
        between_sd: standard deviation of the rows' means.
        range_of_means: best row mean minus worst.
    """

    rows: int
    seed_tau: float
    mean_abs_diff: float
    worst_abs_diff: float
    within_sd: float
    between_sd: float
    range_of_means: float

    @property
    def architecture_share(self) -> float:
        """Share of the variance of one run's accuracy that is the architecture's (an intraclass
        correlation): 1 when seeds agree exactly, about 0 when rows differ by noise alone."""
        between = self.between_sd**2 - self.within_sd**2 / 2  # a mean of two holds half the noise
        total = between + self.within_sd**2
        return max(between, 0.0) / total if total > 0 else math.nan


def noise(a: Sequence[float], b: Sequence[float]) -> Noise:
    """``a[i]`` and ``b[i]``: row i's accuracy under two seeds."""
    if len(a) != len(b):
        raise ValueError(f"a and b must be the same length, got {len(a)} and {len(b)}")
    if len(a) < 2:
        return Noise(len(a), math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    diffs = [abs(p - q) for p, q in zip(a, b)]
    means = [(p + q) / 2 for p, q in zip(a, b)]
    within = math.sqrt(sum((p - q) ** 2 / 2 for p, q in zip(a, b)) / len(a))
    return Noise(len(a), tau(a, b), statistics.mean(diffs), max(diffs), within, statistics.stdev(means),
                 max(means) - min(means))
