"""Confirmation at the end of a search: one proxy score per candidate is noise-prone, so the top
k feasible candidates and every paper baseline within the budget are trained again with S
fresh seeds (the search's own seed excluded; same proxy, same data split).

Verdict: a candidate is better than the strongest baseline within the budget (highest
confirmed mean) only when a one-sided Welch t-test over those seeds gives p < 0.05 after Holm
correction over the k candidates; otherwise the two are tied within noise.

Each re-training is stored in the study as soon as it ends (user attr
``confirm:<proxy id>:<arch id>:<seed>``), with the plan (k, seeds) beside it: a killed
confirmation resumes without redoing finished seeds, and ``nas.report`` rebuilds every verdict
from the storage alone.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import optuna
import pandas as pd

from repghost import NetConfig

from .baselines import Baseline, baseline_label
from .outputs import scored
from .progress import clock
from .vocabulary import StudyAttr

ALPHA = 0.05
TEST = (
    "one-sided Welch t-test (scipy.stats.ttest_ind, equal_var=False, alternative='greater') of each candidate's "
    f"confirmation accuracies against the strongest paper baseline's within the budget, Holm correction over the "
    f"candidates, significance level {ALPHA}"
)
PLAN_ATTR = f"{StudyAttr.CONFIRMATION}:plan"
# What a confirmation trains: train(config, seed) -> (accuracy, per-epoch accuracies, seconds).
SeedTrainer = Callable[[NetConfig, int], tuple[float, list[float], float]]


@dataclass(frozen=True)
class Plan:
    """How many candidates, which seeds; ``reduced`` when fewer seeds than the default were
    used (``--quick``), which the summary says."""

    top_k: int
    seeds: tuple[int, ...]
    reduced: bool = False

    def to_attr(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "seeds": list(self.seeds), "reduced": self.reduced}

    @classmethod
    def from_attr(cls, data: dict[str, Any]) -> "Plan":
        return cls(int(data["top_k"]), tuple(int(s) for s in data["seeds"]), bool(data.get("reduced", False)))


def fresh_seeds(search_seed: int, count: int) -> tuple[int, ...]:
    """``count`` seeds other than the search's: the ones after it."""
    return tuple(search_seed + 1 + i for i in range(count))


@dataclass(frozen=True)
class Target:
    """An architecture to confirm: a searched candidate or a paper baseline."""

    label: str  # "trial 41" or "RepGhostNet 0.5x"
    kind: str  # "candidate" or "baseline"
    arch_id: str
    arch_json: str
    latency_ms: float


def targets(frame: pd.DataFrame, baselines: list[Baseline], budget_ms: float, top_k: int) -> list[Target]:
    """The top ``top_k`` feasible searched architectures of ``frame`` (``outputs.trials_frame``)
    by search score, paper models left out (they are the baselines), then every baseline within
    the budget."""
    baseline_ids = {b.candidate.arch_id for b in baselines}
    found = scored(frame)
    found = found[(found["latency_ms"] <= budget_ms) & ~found["arch_id"].isin(baseline_ids)]
    found = found.sort_values(["accuracy", "latency_ms", "number"], ascending=[False, True, True]).drop_duplicates("arch_id")
    chosen = [Target(f"trial {int(r['number'])}", "candidate", r["arch_id"], r["arch"], float(r["latency_ms"])) for _, r in found.head(top_k).iterrows()]
    chosen += [Target(baseline_label(b), "baseline", b.candidate.arch_id, b.candidate.config.to_json(), b.candidate.latency_ms) for b in baselines if b.candidate.latency_ms <= budget_ms]
    return chosen


def _key(proxy_id: str, arch_id: str, seed: int) -> str:
    return f"{StudyAttr.CONFIRMATION}:{proxy_id}:{arch_id}:{seed}"


def stored_accuracies(study: optuna.Study, proxy_id: str, arch_id: str, seeds: Sequence[int]) -> dict[int, float]:
    """The confirmation accuracies the study holds for ``arch_id``, by seed (finished ones only)."""
    attrs = study.user_attrs
    return {seed: float(attrs[_key(proxy_id, arch_id, seed)]["accuracy"]) for seed in seeds if _key(proxy_id, arch_id, seed) in attrs}


def stored_plan(study: optuna.Study) -> Plan | None:
    data = study.user_attrs.get(PLAN_ATTR)
    return None if data is None else Plan.from_attr(data)


def confirm(
    study: optuna.Study, proxy_id: str, plan: Plan, chosen: list[Target], train: SeedTrainer, log: Callable[[str], None] = print
) -> None:
    """Train every target with every seed of ``plan`` that the study does not hold yet,
    storing each result at once."""
    if stored_plan(study) != plan:
        study.set_user_attr(PLAN_ATTR, plan.to_attr())
    todo = [(t, s) for t in chosen for s in plan.seeds if _key(proxy_id, t.arch_id, s) not in study.user_attrs]
    done_before = len(chosen) * len(plan.seeds) - len(todo)
    seeds = ", ".join(map(str, plan.seeds))
    log(f"confirmation: {len(chosen)} architectures x seeds {seeds}; {done_before} trainings stored, {len(todo)} to go")
    start = time.monotonic()
    for index, (target, seed) in enumerate(todo, 1):
        accuracy, epochs, seconds = train(NetConfig.from_json(target.arch_json), seed)
        study.set_user_attr(_key(proxy_id, target.arch_id, seed), {"accuracy": accuracy, "epoch_accuracies": list(epochs), "train_seconds": seconds, "label": target.label})
        elapsed = time.monotonic() - start
        log(f"confirm {index}/{len(todo)} | {target.label:<18} | seed {seed} | acc {accuracy:.4f} | {clock(elapsed)} elapsed | ETA {clock(elapsed / index * (len(todo) - index))}")


# Statistics: pure functions of the accuracies, tested on given numbers. ---------------------


def welch_greater_p(sample: Sequence[float], reference: Sequence[float]) -> float:
    """p-value of the one-sided Welch t-test that ``sample``'s mean exceeds ``reference``'s;
    1.0 where the test is undefined (fewer than two values on a side, or no spread on either:
    no claim rests on a spread that was not seen)."""
    from scipy.stats import ttest_ind  # here: scipy.stats takes seconds to import, and every search worker imports this module

    if len(sample) < 2 or len(reference) < 2 or statistics.pvariance(sample) + statistics.pvariance(reference) == 0:
        return 1.0
    with warnings.catch_warnings():
        # Seeds that score the same (accuracies are counts over one split) make scipy warn of
        # cancellation in that side's variance; it is zero, and the test is exact without it.
        warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        p_value = float(ttest_ind(sample, reference, equal_var=False, alternative="greater").pvalue)
    return 1.0 if math.isnan(p_value) else p_value


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input's order: the i-th smallest p is
    multiplied by (m - i), made monotone, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Verdict:
    p_value: float
    p_holm: float
    better: bool

    @property
    def words(self) -> str:
        return f"better (p = {self.p_holm:.3g} after Holm)" if self.better else f"tied within noise (p = {self.p_holm:.3g} after Holm)"


def verdicts(candidates: dict[str, Sequence[float]], reference: Sequence[float], alpha: float = ALPHA) -> dict[str, Verdict]:
    """Each candidate against the reference baseline: one-sided Welch p, Holm over the
    candidates, better only when the adjusted p is below ``alpha``."""
    names = list(candidates)
    raw = [welch_greater_p(candidates[n], reference) for n in names]
    return {n: Verdict(p, q, q < alpha) for n, p, q in zip(names, raw, holm(raw))}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for fewer than two values)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def table(study: optuna.Study, proxy_id: str, plan: Plan, chosen: list[Target]) -> pd.DataFrame:
    """One row per confirmed architecture, best confirmed mean first: accuracies per seed,
    mean, std, and for candidates the verdict against the strongest baseline."""
    rows = []
    for target in chosen:
        scores = stored_accuracies(study, proxy_id, target.arch_id, plan.seeds)
        mean, std = mean_std(list(scores.values()))
        rows.append({"model": target.label, "kind": target.kind, "arch_id": target.arch_id, "latency_ms": target.latency_ms,
                     "confirmed_mean": mean, "confirmed_std": std, "confirmed_seeds": len(scores), "accuracies": list(scores.values())})
    frame = pd.DataFrame(rows, columns=["model", "kind", "arch_id", "latency_ms", "confirmed_mean", "confirmed_std", "confirmed_seeds", "accuracies"])
    frame["versus"], frame["p_value"], frame["p_holm"], frame["verdict"] = "", math.nan, math.nan, ""
    baselines = frame[(frame["kind"] == "baseline") & (frame["confirmed_seeds"] >= 2)]
    if not baselines.empty:
        strongest = baselines.sort_values("confirmed_mean", ascending=False).iloc[0]
        candidates = frame[frame["kind"] == "candidate"]
        found = verdicts({row["arch_id"]: row["accuracies"] for _, row in candidates.iterrows()}, strongest["accuracies"])
        for index, row in candidates.iterrows():
            verdict = found[row["arch_id"]]
            frame.loc[index, ["versus", "p_value", "p_holm", "verdict"]] = [strongest["model"], verdict.p_value, verdict.p_holm, verdict.words]
    return frame.sort_values(["confirmed_mean", "latency_ms"], ascending=[False, True], na_position="last").reset_index(drop=True)
