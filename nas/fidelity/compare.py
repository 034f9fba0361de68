"""Does one way of searching find architectures that train better than another? Each arm is a
set of finished searches that differ only in their search seed (``python -m nas.search ...
--seed K``); each search's confirmed winner (its ``best.json``) is trained with tier 1's recipe,
and the arms are compared on those tier-1 accuracies, the search being the unit: one value per
search, the mean of its winner's tier-1 seeds.

A winner that is a row of the fidelity study already (a paper width, a drawn architecture) takes
its tier-1 runs from the study's ledger instead of training again.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from repghost import NetConfig
from space import arch_id

from ..confirmation import welch_greater_p
from ..errors import UserError
from ..vocabulary import BEST_FILE, COUNTED, TRIALS_FILE, Status
from .ledger import read_lines
from .rows import Row, Task, counted
from .tiers import RUN_FIELDS, Tier1, run_tier1, settings_id, tier1_settings

SIGNIFICANCE = 0.05
TEST = ("Welch t-test (scipy.stats.ttest_ind, equal_var=False), one-sided each way, of each arm's per-search values "
        f"against the first arm's, significance level {SIGNIFICANCE}")


@dataclass(frozen=True)
class Search:
    """One finished search of an arm, and its confirmed winner as a row to train."""

    arm: str
    folder: Path
    winner: Row
    confirmed_mean: float
    candidates: int  # feasible candidates it looked at (trained, pruned, cached or screened out)
    trained: int  # candidates given proxy training (trained or pruned)
    proxy_epochs: int  # the proxy epochs those trainings ran: the search's training cost


def confirmed_best(folder: Path) -> dict[str, Any]:
    """The ``best.json`` of the finished search in ``folder``, whose winner was confirmed; a
    one-line error otherwise."""
    try:
        best = json.loads((folder / BEST_FILE).read_text())
    except (OSError, ValueError):
        raise UserError(f"{folder} holds no readable {BEST_FILE}: name a finished python -m nas.search output folder") from None
    if best.get("architecture") is None:
        raise UserError(f"{folder}: its search found no candidate within the budget; there is no winner to measure")
    if not best.get("confirmation"):
        raise UserError(f"{folder}: its best candidate was not confirmed; rerun the search with --confirm-top 1 or more to finish it")
    return best


def read_search(arm: str, folder: Path, task: Task = Task()) -> Search:
    """The search in ``folder`` (``nas.search``'s outputs) with its confirmed winner."""
    best = confirmed_best(folder)
    config = NetConfig.from_dict(best["architecture"])
    task_counts = counted(dataclasses.replace(config, in_chans=task.in_chans, num_classes=task.num_classes), task.resolution)
    winner = Row(row=0, id=arch_id(config), name=f"winner-{folder.name}", kind="winner", latency_ms=float(best["latency_ms"]),
                 in_band=False, half="", params=int(best["params"]), macs=int(best["macs"]), params_task=task_counts.params,
                 macs_task=task_counts.macs, lut_sha256="", arch=config)
    try:
        trials = pd.read_csv(folder / TRIALS_FILE, usecols=["status", "epoch_accuracies"])
    except (OSError, ValueError):
        raise UserError(f"{folder} holds no readable {TRIALS_FILE}: name a finished python -m nas.search output folder") from None
    trained = trials[trials["status"].isin([Status.TRAINED.value, Status.PRUNED.value])]
    looked_at = [status.value for status in (*COUNTED, Status.SCREENED)]
    return Search(arm, folder, winner, float(best["confirmation"]["mean"]),
                  candidates=int(trials["status"].isin(looked_at).sum()), trained=len(trained),
                  proxy_epochs=int(sum(len(json.loads(text)) for text in trained["epoch_accuracies"])))


def train_winners(searches: list[Search], ledger: Path, ground_truth: Path, *, seeds: Iterable[int], tier: Tier1, threads: int,
                  log: Callable[[str], None] = print) -> int:
    """Tier 1 for every winner and seed that neither ledger holds (resumable); returns runs done."""
    rows = list({s.winner.id: s.winner for s in searches}.values())
    return run_tier1(rows, ledger, seeds=seeds, tier=tier, threads=threads, done_elsewhere=_runs(ground_truth, tier, threads), log=log)


def _runs(ledger: Path, tier: Tier1, threads: int) -> dict[tuple[str, int], float]:
    """(arch id, seed) -> validation accuracy, from the ledger's runs of these settings."""
    sid = settings_id(tier1_settings(tier, threads))
    return {(line["id"], int(line["seed"])): float(line["val_accuracy"]) for line in read_lines(ledger, RUN_FIELDS)
            if line["settings_id"] == sid}


def comparison(searches: list[Search], ledger: Path, ground_truth: Path, *, seeds: list[int], tier: Tier1,
               threads: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per search: its winner and the winner's tier-1 accuracy per seed and mean (NaN until every
    seed is in). Per arm: the mean and sd over its searches, and against the first arm the
    difference and the one-sided p-values each way (``TEST``), with a verdict."""
    runs = _runs(ground_truth, tier, threads) | _runs(ledger, tier, threads)
    lines = []
    for s in searches:
        accuracies = [runs.get((s.winner.id, seed), math.nan) for seed in seeds]
        lines.append({"arm": s.arm, "search": str(s.folder), "winner": s.winner.id, "latency_ms": s.winner.latency_ms,
                      "params": s.winner.params, "macs": s.winner.macs, "confirmed_proxy": s.confirmed_mean,
                      "candidates": s.candidates, "trained": s.trained, "proxy_epochs": s.proxy_epochs,
                      **{f"tier1@{seed}": a for seed, a in zip(seeds, accuracies)},
                      "tier1": statistics.mean(accuracies) if not any(map(math.isnan, accuracies)) else math.nan})
    per_search = pd.DataFrame(lines)
    arms = list(dict.fromkeys(s.arm for s in searches))
    values = {arm: per_search.loc[per_search["arm"] == arm, "tier1"].dropna().tolist() for arm in arms}
    summary = []
    for arm in arms:
        mine, first = values[arm], values[arms[0]]
        line = {"arm": arm, "searches": int((per_search["arm"] == arm).sum()), "with_tier1": len(mine),
                "tier1_mean": statistics.mean(mine) if mine else math.nan,
                "tier1_sd": statistics.stdev(mine) if len(mine) > 1 else math.nan}
        if arm != arms[0]:
            line["minus_first_pt"] = 100 * (line["tier1_mean"] - statistics.mean(first)) if mine and first else math.nan
            line["p_better"], line["p_worse"] = welch_greater_p(mine, first), welch_greater_p(first, mine)
            line["verdict"] = verdict(line["p_better"], line["p_worse"], complete=len(mine) == line["searches"] and len(first) > 1)
        summary.append(line)
    return per_search, pd.DataFrame(summary)


def verdict(p_better: float, p_worse: float, *, complete: bool) -> str:
    if not complete:
        return "incomplete"
    if p_better < SIGNIFICANCE:
        return "better"
    if p_worse < SIGNIFICANCE:
        return "worse"
    return "tied within noise"
