"""The claim, measured: a finished search's confirmed winner against a paper model, both trained
with ``nas.train``'s full reference recipe over several seeds and read once on the test split,
beside the size and predicted latency the search recorded for each (counted at its space's
resolution, the operating point its latency budget refers to).

Every run is a ``nas.training.train`` run with a tier-2 run's settings (``tiers``), in
``<folder>/<model>-<arch id>-seed<seed>``, resumable per epoch. When it ends its line goes to
``runs.csv`` with its test accuracy, read then and never again. A finished ``python -m nas.train``
run of either model with the same settings can stand for a run (``import_runs``); if it did not
read the test split, its saved model is read on it once, when it is imported.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

import repghost
from repghost import NetConfig
from space import arch_id

from ..confirmation import welch_greater_p
from ..errors import UserError
from ..recipes import Recipe, recipe_for
from ..training import accuracy_on_test_split, finished_run, train
from ..vocabulary import BASELINES_FILE, BEST_FILE
from .compare import SIGNIFICANCE, confirmed_best, verdict
from .ledger import append_line, read_lines
from .tiers import finished, tier2_settings_id

RUNS_FILE = "runs.csv"
TABLE_FILE = "claim.csv"
REPORT_FILE = "claim.md"
RUN_FIELDS = ("model", "id", "seed", "val_accuracy", "test_accuracy", "cpu_seconds", "wall_seconds", "run",
              "settings_id", "finished_utc")
TEST = ("Welch t-test (scipy.stats.ttest_ind, equal_var=False) of the winner's per-seed test accuracies against the "
        f"baseline's, one-sided each way, significance level {SIGNIFICANCE}")


@dataclass(frozen=True)
class Model:
    """One side of the claim, with the counts and latency its search recorded."""

    label: str
    slug: str  # the start of its run folders' names
    config: NetConfig
    arch_id: str
    params: int
    macs: int
    latency_ms: float


@dataclass(frozen=True)
class Claim:
    search: Path
    winner: Model
    baseline: Model
    split_seed: int  # the search's seed: its validation split is held out of training
    budget_ms: float
    latency_device: str
    latency_estimated: bool

    @property
    def models(self) -> tuple[Model, Model]:
        return self.winner, self.baseline


def read_claim(search: Path, width: float | None = None) -> Claim:
    """The winner of the finished search in ``search`` against RepGhostNet ``width``x (default:
    the widest paper model within the search's budget), from ``best.json`` and ``baselines.csv``."""
    best = confirmed_best(search)
    config = NetConfig.from_dict(best["architecture"])
    winner = Model(f"winner (trial {best['trial']})", "winner", config, arch_id(config), int(best["params"]), int(best["macs"]),
                   float(best["latency_ms"]))
    try:
        baselines = pd.read_csv(search / BASELINES_FILE)
    except (OSError, ValueError):
        raise UserError(f"{search} holds no readable {BASELINES_FILE}: rerun its search without --no-baselines") from None
    if baselines.empty:
        raise UserError(f"{search}/{BASELINES_FILE} lists no paper model: rerun its search without --no-baselines")
    if width is None:
        within = baselines[baselines["latency_ms"] <= float(best["budget_ms"])]
        if within.empty:
            raise UserError(f"no paper model of {search}/{BASELINES_FILE} is within its {best['budget_ms']:g} ms budget: pass --baseline WIDTH")
        line = within.loc[within["width"].idxmax()]
    else:
        match = baselines[(baselines["width"] - width).abs() < 1e-9]
        if match.empty:
            raise UserError(f"--baseline {width:g}: {search}/{BASELINES_FILE} has widths {', '.join(f'{w:g}' for w in baselines['width'])}")
        line = match.iloc[0]
    base_width = float(line["width"])
    base_config = repghost.repghostnet_config(base_width)
    if arch_id(base_config) != line["arch_id"]:
        raise UserError(f"RepGhostNet {base_width:g}x here (arch id {arch_id(base_config)}) is not the one {search} evaluated "
                        f"({line['arch_id']}): rerun the search with this version")
    baseline = Model(str(line["model"]), f"repghostnet-{base_width:g}x", base_config, str(line["arch_id"]), int(line["params"]),
                     int(line["macs"]), float(line["latency_ms"]))
    if baseline.arch_id == winner.arch_id:
        raise UserError(f"{search}: its winner is {baseline.label} itself; there is no claim to measure against it")
    return Claim(search, winner, baseline, int(best.get("seed") or 0), float(best["budget_ms"]),
                 str(best.get("latency_device", "")), bool(best.get("latency_estimated", False)))


def _settings(claim: Claim, data: str, threads: int, recipe: Recipe | None) -> tuple[Recipe, str]:
    """The recipe (the data set's reference one unless given) and the settings id its runs carry."""
    recipe = recipe or recipe_for(data)
    return recipe, tier2_settings_id(data, claim.split_seed, threads, recipe)


def run_claim(claim: Claim, folder: Path, *, seeds: Iterable[int], data: str = "fashion-mnist", threads: int = 1,
              recipe: Recipe | None = None, log: Callable[[str], None] = print) -> int:
    """Train each model with each seed that ``runs.csv`` lacks, seed by seed (winner, then
    baseline), reading the test split at the end of each run; returns the runs done."""
    recipe, sid = _settings(claim, data, threads, recipe)
    done = finished(folder / RUNS_FILE, sid, RUN_FIELDS)
    work = [(seed, model) for seed in seeds for model in claim.models if (model.arch_id, seed) not in done]
    log(f"claim: {len(done)} run(s) in {folder / RUNS_FILE}, {len(work)} to do")
    for seed, model in work:
        out = folder / f"{model.slug}-{model.arch_id}-seed{seed}"
        log(f"{model.label} seed {seed}: training in {out}; the test split is read once, at its end")
        metrics = train(model.config, recipe, data=data, out=out, origin=f"claim: {model.label} of {claim.search}", seed=seed,
                        split_seed=claim.split_seed, threads=threads, test=True)
        _record(folder, model, seed, metrics, metrics["test_accuracy"], out, sid, log)
    return len(work)


def import_runs(claim: Claim, folder: Path, runs: Iterable[Path], *, data: str = "fashion-mnist", threads: int = 1,
                recipe: Recipe | None = None, log: Callable[[str], None] = print) -> int:
    """Lines for finished ``python -m nas.train`` runs of either model with the settings
    ``run_claim`` would use (anything else is refused, naming what differs): an hour of training
    each, not done twice. A run that did not read the test split is read on it now."""
    recipe, sid = _settings(claim, data, threads, recipe)
    done = finished(folder / RUNS_FILE, sid, RUN_FIELDS)
    models = {model.label: model for model in claim.models}
    count = 0
    for run in map(Path, runs):
        name, metrics = finished_run(run, {label: model.config for label, model in models.items()}, recipe, data=data,
                                     split_seed=claim.split_seed, threads=threads, kind="claim")
        model, settings = models[name], metrics["settings"]
        if (model.arch_id, settings["seed"]) in done:
            log(f"{model.label} seed {settings['seed']}: already in {folder / RUNS_FILE}")
            continue
        test = metrics["test_accuracy"] if metrics.get("test_split_read") else accuracy_on_test_split(run, metrics)
        _record(folder, model, settings["seed"], metrics, test, run, sid, log)
        done.add((model.arch_id, settings["seed"]))
        count += 1
    return count


def _record(folder: Path, model: Model, seed: int, metrics: dict[str, Any], test: float, run: Path, sid: str,
            log: Callable[[str], None]) -> None:
    append_line(folder / RUNS_FILE, RUN_FIELDS, {
        "model": model.label, "id": model.arch_id, "seed": seed, "val_accuracy": metrics["val_accuracy"], "test_accuracy": test,
        "cpu_seconds": metrics["cpu_seconds"], "wall_seconds": metrics["wall_seconds"], "run": str(run), "settings_id": sid,
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
    log(f"{model.label} seed {seed}: val {metrics['val_accuracy']:.4f}, test {test:.4f}, {metrics['cpu_seconds']:.0f} CPU s ({run})")


def claim_table(claim: Claim, folder: Path, *, seeds: list[int], data: str = "fashion-mnist", threads: int = 1,
                recipe: Recipe | None = None) -> pd.DataFrame:
    """Per model: counts, latency, and test accuracy per seed, mean and sd (NaN until in); on the
    winner's line, its difference from the baseline and the one-sided p-values each way (``TEST``)
    with a verdict that waits for every seed of both."""
    recipe, sid = _settings(claim, data, threads, recipe)
    runs = {(line["id"], int(line["seed"])): line for line in read_lines(folder / RUNS_FILE, RUN_FIELDS) if line["settings_id"] == sid}
    lines, tests = [], {}
    for model in claim.models:
        mine = [runs[(model.arch_id, seed)] for seed in seeds if (model.arch_id, seed) in runs]
        tests[model.arch_id] = [float(line["test_accuracy"]) for line in mine]
        test = tests[model.arch_id]
        lines.append({"model": model.label, "id": model.arch_id, "params": model.params, "macs": model.macs,
                      "latency_ms": model.latency_ms, "runs": len(mine),
                      **{f"test@{seed}": float(runs[(model.arch_id, seed)]["test_accuracy"]) if (model.arch_id, seed) in runs else math.nan
                         for seed in seeds},
                      "test_mean": statistics.mean(test) if test else math.nan,
                      "test_sd": statistics.stdev(test) if len(test) > 1 else math.nan,
                      "val_mean": statistics.mean(float(line["val_accuracy"]) for line in mine) if mine else math.nan,
                      "cpu_seconds": sum(float(line["cpu_seconds"]) for line in mine)})
    table = pd.DataFrame(lines)
    win, base = tests[claim.winner.arch_id], tests[claim.baseline.arch_id]
    testable = min(len(win), len(base)) > 1
    p_better, p_worse = (welch_greater_p(win, base), welch_greater_p(base, win)) if testable else (math.nan, math.nan)
    table.loc[0, "minus_baseline_pt"] = 100 * (statistics.mean(win) - statistics.mean(base)) if win and base else math.nan
    table.loc[0, "p_better"], table.loc[0, "p_worse"] = p_better, p_worse
    table.loc[0, "verdict"] = verdict(p_better, p_worse, complete=len(win) == len(base) == len(seeds) and len(seeds) > 1)
    return table


def report(claim: Claim, table: pd.DataFrame, *, seeds: list[int], data: str, recipe: Recipe, command: str) -> str:
    """``claim.md``: what was trained, the table, the test and the verdict in words."""
    device = f"{claim.latency_device} LUT" + (", estimated" if claim.latency_estimated else "")
    lines = [f"# The claim: the winner of `{claim.search}` against {claim.baseline.label}", "",
             f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}`.", "",
             f"Each model is trained with `nas.train`'s reference recipe for {data} ({', '.join(f'{k} {v}' for k, v in recipe.to_dict().items())}) "
             f"on every training image but the search's validation split (split seed {claim.split_seed}), once per seed "
             f"({', '.join(map(str, seeds))}), and each run is read once on the test split, at its end. Runs: `{RUNS_FILE}` beside this file.", "",
             f"| model | arch id | params | MACs | latency ms ({device}) | runs | test accuracy mean +- sd | per seed | val accuracy mean |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        per_seed = ", ".join("-" if math.isnan(row[f"test@{seed}"]) else f"{row[f'test@{seed}']:.4f}" for seed in seeds)
        spread = "-" if math.isnan(row["test_sd"]) else f"{row['test_sd']:.4f}"
        mean = "-" if math.isnan(row["test_mean"]) else f"{row['test_mean']:.4f} +- {spread}"
        val = "-" if math.isnan(row["val_mean"]) else f"{row['val_mean']:.4f}"
        lines.append(f"| {row['model']} | {row['id']} | {row['params']:,} | {row['macs']:,} | {row['latency_ms']:.1f} | {row['runs']} | "
                     f"{mean} | {per_seed} | {val} |")
    first = table.iloc[0]
    lines += ["", f"Params and MACs are counted at the search's resolution with its classes, as its `{BEST_FILE}` and "
              f"`{BASELINES_FILE}` record them; the latency is the search's prediction for the same (budget {claim.budget_ms:g} ms).", ""]
    if first["verdict"] == "incomplete":
        lines.append(f"**Incomplete**: {int(table['runs'].sum())} of {2 * len(seeds)} runs are in; the verdict waits for all of them.")
    else:
        lines.append(f"Winner minus baseline: {first['minus_baseline_pt']:+.2f} points on the test split; p = {first['p_better']:.3f} "
                     f"that the winner is better, {first['p_worse']:.3f} that it is worse: **{first['verdict']}**.")
    lines += ["", f"Test: {TEST}.", ""]
    return "\n".join(lines)
