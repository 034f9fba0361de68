"""The fidelity study's analysis: the ground truth's own noise, and how well each score ranks
like it, within the band (on each half) and over all rows, with what each score costs.

Inputs are the rows file and the ledgers; outputs are ``report.md`` and ``ranking.csv`` (one
line per score and subset). Everything is recomputed from the files, so a partial ledger gives
a partial report that says how partial it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .ranking import Noise, bootstrap_interval, noise, paired_difference, tau
from .rows import Row, file_sha256

TRUTH = "tier1"
OTHER_TRUTH = "tier1 in "  # another setting's tier 1 on the same rows (``analyse --against DIR``), read as tier 2 is
CHEAP = ("params", "macs", "params_task", "macs_task")  # counted from the architecture: no training
PREFILTERS = ("params_task", "synflow", "naswot")  # cheap first stages of a screening search (seed 0)
PREFILTER_KEEP = 0.5
SCREENED = re.compile(r"(?P<second>.+) on top (?P<keep>\d+)% by (?P<first>.+)")  # a screen's score name, as ``screen_name`` writes it
SUBSETS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "band": lambda t: t["in_band"],
    "band-choose": lambda t: t["half"] == "choose",
    "band-report": lambda t: t["half"] == "report",
    "paper": lambda t: t["kind"] == "paper",
    "all": lambda t: pd.Series(True, index=t.index),
}


def per_seed(lines: list[dict[str, str]], prefix: str, value: str) -> pd.DataFrame:
    """Ledger lines -> one column per seed (``<prefix>@<seed>``), indexed by arch id."""
    if not lines:
        return pd.DataFrame()
    frame = pd.DataFrame(lines)
    frame["seed"] = frame["seed"].astype(int)
    frame[value] = frame[value].astype(float)
    wide = frame.pivot_table(index="id", columns="seed", values=value, aggfunc="last")
    wide.columns = [f"{prefix}@{seed}" for seed in wide.columns]
    return wide


def is_truth(name: str) -> bool:
    """A ground truth (tier 1, tier 2 or another setting's tier 1), never a candidate score."""
    return name in (TRUTH, "tier2") or name.startswith(OTHER_TRUTH)


def table(rows: list[Row], tier1: list[dict[str, str]], tier2: list[dict[str, str]], scores: list[dict[str, str]],
          others: dict[str, list[dict[str, str]]] | None = None) -> pd.DataFrame:
    """One line per row: what the rows file knows, tier 1 per seed and its mean (``tier1``),
    tier 2's mean, the mean of each other setting's tier 1 (``others``: label -> its ledger lines;
    column ``tier1 in <label>``), and every scorer per seed and as the mean of two seeds
    (``<scorer>@mean2``, only where both of the first two seeds are there)."""
    base = pd.DataFrame([{"row": r.row, "id": r.id, "name": r.name, "kind": r.kind, "in_band": r.in_band, "half": r.half,
                          "latency_ms": r.latency_ms, **{c: int(getattr(r, c)) for c in CHEAP}} for r in rows]).set_index("id")
    truths = {TRUTH: tier1, "tier2": tier2, **{OTHER_TRUTH + label: lines for label, lines in (others or {}).items()}}
    parts = [base, *(per_seed([line for line in lines if line["id"] in base.index], name, "val_accuracy") for name, lines in truths.items())]
    for name in sorted({line["scorer"] for line in scores}):
        parts.append(per_seed([line for line in scores if line["scorer"] == name], name, "score"))
    out = pd.concat([p for p in parts if not p.empty], axis=1)
    for prefix in [*truths, *sorted({line["scorer"] for line in scores})]:
        columns = sorted(c for c in out.columns if c.startswith(prefix + "@"))
        if not columns:
            continue
        if is_truth(prefix):
            out[prefix] = out[columns].mean(axis=1)
        elif len(columns) >= 2:
            out[f"{prefix}@mean2"] = out[columns[:2]].mean(axis=1, skipna=False)
    return out.sort_values("row")


def costs(tier2: list[dict[str, str]], scores: list[dict[str, str]],
          others: dict[str, list[dict[str, str]]] | None = None) -> dict[str, float]:
    """Mean CPU seconds per candidate of each score column (cheap counts: 0; tier 2: per run;
    another setting's tier 1: all its seeds' runs of a row)."""
    cost = {column: 0.0 for column in CHEAP}
    if tier2:
        cost["tier2"] = float(np.mean([float(line["cpu_seconds"]) for line in tier2]))
    for label, lines in (others or {}).items():
        if lines:
            cost[OTHER_TRUTH + label] = sum(float(line["cpu_seconds"]) for line in lines) / len({line["id"] for line in lines})
    for name in {line["scorer"] for line in scores}:
        lines = [line for line in scores if line["scorer"] == name]
        one = float(np.mean([float(line["cpu_seconds"]) for line in lines]))
        for seed in {int(line["seed"]) for line in lines}:
            cost[f"{name}@{seed}"] = one
        cost[f"{name}@mean2"] = 2 * one
    return cost


def screened(cheap: pd.Series, expensive: pd.Series, keep: float) -> pd.Series:
    """The order a screening search gives: the top ``keep`` share by ``cheap`` ranked by
    ``expensive``, above the rest ranked by ``cheap`` (higher is better on both)."""
    kept = cheap.rank(method="first", ascending=False) <= max(1, math.ceil(keep * len(cheap)))
    order = cheap[~kept].rank(pct=True)
    return pd.concat([order, 2 + expensive[kept].rank(pct=True)]).reindex(cheap.index)


def screen_name(second: str, keep: float, first: str) -> str:
    return f"{second} on top {keep:.0%} by {first}"


def score_series(rows: pd.DataFrame, score: str) -> pd.Series:
    """A score's values over ``rows`` where it has one: a column, or for a screen's name the
    order ``screened`` gives the rows that have both of its stages."""
    parts = SCREENED.fullmatch(score)
    if parts is None:
        return rows[score].dropna()
    both = rows[[parts["first"], parts["second"]]].dropna()
    return screened(both[parts["first"]], both[parts["second"]], int(parts["keep"]) / 100)


def truth_rows(frame: pd.DataFrame, subset: str) -> pd.DataFrame:
    """The rows of ``subset`` that have a tier-1 result: what every tau is computed over."""
    return frame[SUBSETS[subset](frame) & frame[TRUTH].notna()]


def ranking(frame: pd.DataFrame, cost: dict[str, float], *, resamples: int, seed: int = 0,
            keep: float = PREFILTER_KEEP) -> pd.DataFrame:
    """Kendall tau of every score column against tier 1's mean, per subset, with a bootstrap
    interval (tier 1's own seeds are left out: they are part of the mean); then every proxy
    recipe as a second stage after each cheap ranker kept its top ``keep`` share of the subset
    (``screened``; its interval resamples the screened order's rows)."""
    if TRUTH not in frame:
        return pd.DataFrame(columns=["score", "subset", "rows", "tau", "low", "high", "cpu_seconds_per_candidate"])
    columns = [c for c in frame.columns if c in CHEAP or ("@" in c and not is_truth(c.rsplit("@", 1)[0]))
               or ("@" not in c and is_truth(c) and c != TRUTH)]
    cheap = [c for c in columns if c in PREFILTERS or c.split("@")[0] in PREFILTERS and c.endswith("@0")]
    proxies = [c for c in columns if c.startswith("proxy-")]
    lines = []

    def add(name: str, values: pd.Series, subset: str, cpu: float) -> None:
        x, y = values.tolist(), frame.loc[values.index, TRUTH].tolist()
        low, high = bootstrap_interval(x, y, resamples=resamples, seed=seed)
        lines.append({"score": name, "subset": subset, "rows": len(values), "tau": tau(x, y), "low": low, "high": high,
                      "cpu_seconds_per_candidate": cpu})

    for subset in SUBSETS:
        rows = truth_rows(frame, subset)
        for column in columns:
            add(column, score_series(rows, column), subset, cost.get(column, math.nan))
        for first in cheap:
            for second in proxies:
                name = screen_name(second, keep, first)
                add(name, score_series(rows, name), subset, cost.get(first, math.nan) + keep * cost.get(second, math.nan))
    return pd.DataFrame(lines)


@dataclass(frozen=True)
class Progress:
    """How far tier 1 is: runs done of planned, CPU seconds per run, and the rest extrapolated
    (per row: its own finished run if any, else a straight-line fit of CPU seconds on the
    task's MACs over finished runs)."""

    done: int
    planned: int
    cpu_per_run_median: float
    cpu_done: float
    cpu_left_estimate: float


def progress(frame: pd.DataFrame, tier1: list[dict[str, str]], seeds: list[int]) -> Progress:
    planned = len(frame) * len(seeds)
    if not tier1:
        return Progress(0, planned, math.nan, 0.0, math.nan)
    runs = pd.DataFrame(tier1)
    runs["cpu_seconds"] = runs["cpu_seconds"].astype(float)
    per_row = runs.groupby("id")["cpu_seconds"].mean()
    macs = frame["macs_task"]
    known = macs[per_row.index]
    if known.nunique() >= 2:
        slope, intercept = np.polyfit(known.to_numpy(), per_row.to_numpy(), 1)
        if slope < 0:  # noise over a narrow range of MACs: a flat guess is the safer one
            slope, intercept = 0.0, float(per_row.mean())
    else:
        slope, intercept = 0.0, float(per_row.mean())
    done = {(line["id"], int(line["seed"])) for line in tier1}
    left = sum(per_row.get(arch, intercept + slope * macs[arch]) for arch in frame.index for seed in seeds if (arch, seed) not in done)
    done_planned = sum((arch, seed) in done for arch in frame.index for seed in seeds)
    return Progress(done_planned, planned, float(runs["cpu_seconds"].median()), float(runs["cpu_seconds"].sum()), float(left))


def noise_by_subset(frame: pd.DataFrame) -> dict[str, Noise]:
    seeds = sorted(c for c in frame.columns if c.startswith(TRUTH + "@"))
    if len(seeds) < 2:
        return {}
    out = {}
    for subset, pick in SUBSETS.items():
        part = frame[pick(frame) & frame[seeds[0]].notna() & frame[seeds[1]].notna()]
        out[subset] = noise(part[seeds[0]].tolist(), part[seeds[1]].tolist())
    return out


def score_order(ranks: pd.DataFrame) -> list[str]:
    """The report's order of scores: the best band tau first among those that cover the most
    band rows, then the less covered (a partial score's tau over two rows is +-1 and says
    nothing yet); an undefined tau last in its group."""
    band = ranks[ranks["subset"] == "band"].set_index("score")
    return band.assign(tau=band["tau"].fillna(-math.inf)).sort_values(["rows", "tau"], ascending=False).index.tolist()


TODAY = "proxy-today@0"  # what the search scores a candidate with today: the default preset, one seed
TARGET_BAND_TAU = 0.6  # the issue's targets for the chosen proxy (band: or within 0.1 of tier 1's own seed tau)
TARGET_PAPER_TAU = 0.85


CHOICE_SUBSET = "band"  # the rule chooses on every band row; rows drawn afterwards test the pick (``choice_test_section``)
SEED = re.compile(r"@\d+$")


def _trained_part(score: str, change: Callable[[str], str]) -> str:
    """``score`` with ``change`` applied to the part that is trained: the whole name, or a
    screen's second stage (its cheap first stage is left as it is)."""
    parts = SCREENED.fullmatch(score)
    return change(score) if parts is None else change(parts["second"]) + score[parts.end("second"):]


def recipe(score: str) -> str:
    """The recipe a score stands for. A search cannot choose its training seed, so one seed's
    score (``proxy-x@1``) stands for ``proxy-x@seed``, as do its other seeds; a mean of seeds
    (``@mean2``), a cheap count, and a screen's first stage (always seed 0) stay as they are."""
    return _trained_part(score, lambda name: SEED.sub("@seed", name))


def as_run(recipe_name: str) -> str:
    """The score column a recipe is read from on new rows: the search's seed, 0."""
    return _trained_part(recipe_name, lambda name: name.replace("@seed", "@0"))


@dataclass(frozen=True)
class Choice:
    """The proxy recipe chosen on ``subset``: the highest tau there, a recipe's seeds counting as
    one contender with the mean of their taus, among the scores that cover every row of it with
    a tier-1 result; a tie (to 3 decimals) goes to the cheaper. Ground truths (``is_truth``) are
    not candidates. ``contenders``: how many recipes competed, the size of the search that
    flatters ``tau``."""

    recipe: str
    tau: float
    contenders: int
    subset: str


def choose(ranks: pd.DataFrame, subset: str = CHOICE_SUBSET) -> Choice | None:
    lines = ranks[(ranks["subset"] == subset) & ~ranks["score"].map(is_truth) & ranks["tau"].notna()]
    if lines.empty:
        return None
    covered = lines[lines["rows"] == lines["rows"].max()]
    merit = covered.assign(recipe=covered["score"].map(recipe)).groupby("recipe").agg(
        tau=("tau", "mean"), cost=("cpu_seconds_per_candidate", "mean"))
    best = merit.assign(rounded=merit["tau"].round(3)).sort_values(["rounded", "cost"], ascending=[False, True], kind="stable")
    return Choice(str(best.index[0]), float(best["tau"].iloc[0]), len(merit), subset)


def _line(ranks: pd.DataFrame, score: str, subset: str) -> pd.Series | None:
    hit = ranks[(ranks["score"] == score) & (ranks["subset"] == subset)]
    return None if hit.empty else hit.iloc[0]


def _cell(ranks: pd.DataFrame, score: str, subset: str) -> str:
    """A score's tau on a subset as the report shows it: value [low, high] (n=rows), or '-'."""
    line = _line(ranks, score, subset)
    if line is None or math.isnan(line["tau"]):
        return "-"
    return f"{line['tau']:.2f} [{line['low']:.2f}, {line['high']:.2f}] (n={line['rows']})"


def _cost(ranks: pd.DataFrame, score: str) -> str:
    cost = ranks[ranks["score"] == score]["cpu_seconds_per_candidate"]
    return "-" if cost.empty or math.isnan(cost.iloc[0]) else f"{cost.iloc[0]:.1f}"


def _targets(noises: dict[str, Noise]) -> tuple[float, float, float, float]:
    """The issue's targets and the ceilings they bend to: band target, band ceiling, paper target, paper ceiling."""
    band_ceiling = noises["band"].seed_tau if "band" in noises else math.nan
    paper_ceiling = noises["paper"].seed_tau if "paper" in noises else math.nan
    band_target = min(TARGET_BAND_TAU, band_ceiling - 0.1) if not math.isnan(band_ceiling) else TARGET_BAND_TAU
    paper_target = min(TARGET_PAPER_TAU, paper_ceiling) if not math.isnan(paper_ceiling) else TARGET_PAPER_TAU
    return band_target, band_ceiling, paper_target, paper_ceiling


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def choice_section(ranks: pd.DataFrame, noises: dict[str, Noise], complete: bool) -> list[str]:
    """The recipe the rule chooses on these rows, beside today's recipe and #params, and the
    paper-width target checked (once tier 1 is complete). Its band figure is flattered by the
    choice: rows drawn afterwards test it (``analyse --chosen-in``)."""
    picked = choose(ranks)
    lines = [f"## The proxy chosen on `{CHOICE_SUBSET}`", ""]
    if picked is None:
        return lines + [f"No score has a tau on `{CHOICE_SUBSET}` yet.", ""]
    shown = as_run(picked.recipe)
    lines += [f"Rule: the highest tau on `{picked.subset}` among the {picked.contenders} recipes covering all its rows, a recipe's "
              f"seeds counting as one with the mean of their taus (a search cannot choose its seed); a tie to 3 decimals goes to "
              f"the cheaper. Chosen: **{picked.recipe}** (tau {picked.tau:.2f}). That figure is flattered by the choice: the test "
              f"is on rows drawn after it (`python -m nas.fidelity analyse --rows NEW_ROWS --dir NEW_DIR --chosen-in THIS_DIR`).", "",
              f"| score | CPU s / candidate | {picked.subset} | paper | all |", "|---|---|---|---|---|"]
    for score in dict.fromkeys([shown, TODAY, "params_task"]):
        lines.append(f"| {score} | {_cost(ranks, score)} | " + " | ".join(_cell(ranks, score, subset) for subset in (picked.subset, "paper", "all")) + " |")
    lines.append("")
    paper = _line(ranks, shown, "paper")
    if not complete or paper is None:
        return lines + ["The paper-width target is checked once tier 1 is complete.", ""]
    _, _, paper_target, paper_ceiling = _targets(noises)
    return lines + [f"- paper tau of {shown} {paper['tau']:.2f} against a target of {paper_target:.2f} (0.85, or tier 1's own seed "
                    f"tau over the paper widths {paper_ceiling:.2f} when lower): {_met(paper['tau'] >= paper_target)}.", ""]


SCREEN_OF_TODAY = screen_name(TODAY, PREFILTER_KEEP, "naswot@0")


def choice_test_section(frame: pd.DataFrame, ranks: pd.DataFrame, noises: dict[str, Noise], picked: Choice, source: str,
                        *, complete: bool, resamples: int, seed: int = 0) -> list[str]:
    """The test of a recipe chosen on other rows (``source``) on these rows, as the fresh rows'
    README fixed it before their results: its tau on this folder's band beside today's recipe,
    today's on NASWOT's top half, NASWOT and #params; the target; and the paired bootstrap of
    its difference from today's recipe."""
    shown = as_run(picked.recipe)
    lines = [f"## The proxy chosen in `{source}`, tested on these rows", "",
             f"Chosen there on `{picked.subset}` among {picked.contenders} recipes: **{picked.recipe}** (tau {picked.tau:.2f} there); "
             f"read here as `{shown}`. Kendall tau-b against tier 1's seed mean on this folder's `band` rows, 95 % bootstrap interval:", "",
             "| score | CPU s / candidate | band |", "|---|---|---|"]
    named = list(dict.fromkeys([shown, TODAY, SCREEN_OF_TODAY, "naswot@0", "params_task"]))
    for score in named:
        lines.append(f"| {score} | {_cost(ranks, score)} | {_cell(ranks, score, 'band')} |")
    lines.append("")
    found = {score: _line(ranks, score, "band") for score in named}
    if not complete or any(line is None or math.isnan(line["tau"]) for line in found.values()):
        return lines + ["The test is decided once tier 1 is complete and every score above covers these rows.", ""]
    band_target, band_ceiling, _, _ = _targets(noises)
    tau_pick, tau_params = found[shown]["tau"], found["params_task"]["tau"]
    passes = tau_pick >= band_target and tau_pick > tau_params
    rows = truth_rows(frame, "band")
    pick_values, today_values = score_series(rows, shown), score_series(rows, TODAY)
    common = pick_values.index.intersection(today_values.index)
    difference, low, high = paired_difference(pick_values[common].tolist(), today_values[common].tolist(), rows.loc[common, TRUTH].tolist(),
                                              resamples=resamples, seed=seed)
    better = "better than" if low > 0 else "worse than" if high < 0 else "not distinguishable from"
    default = "becomes the pick" if passes else "stays today's recipe"
    return lines + [
        f"- Target: tau {tau_pick:.2f} against {band_target:.2f} (0.6, or tier 1's own seed tau here {band_ceiling:.2f} less 0.1 "
        f"when that is lower): {_met(tau_pick >= band_target)}; above #params' {tau_params:.2f}: {_met(tau_pick > tau_params)}. "
        f"**The pick {'passes' if passes else 'fails'}.**",
        f"- Against today's recipe ({TODAY}): tau difference {difference:+.2f} [{low:+.2f}, {high:+.2f}] (paired bootstrap over "
        f"{len(common)} rows, 95 %): **{better} today's**.",
        f"- By the rule fixed before these results, the search's default {default}.",
        "",
    ]


def _points(fraction: float) -> str:
    return "-" if math.isnan(fraction) else f"{100 * fraction:.2f} pt"


def _fixed(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def report(frame: pd.DataFrame, ranks: pd.DataFrame, noises: dict[str, Noise], state: Progress, *, rows_path: Path,
           ledgers: Path, lut_note: str, command: str, choice: list[str] | None = None) -> str:
    """The Markdown report; ``choice`` replaces the section that chooses on these rows (with the
    test of a choice made elsewhere, ``choice_test_section``)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    partial = state.done < state.planned
    lines = [
        "# Does the proxy rank like real training? (fidelity study)",
        "",
        f"Generated {stamp} by `{command}` from `{rows_path}` and the ledgers in `{ledgers}`.",
        "",
        f"**{'PARTIAL: ' if partial else ''}tier 1 has {state.done} of {state.planned} runs.** "
        + ("Every figure below covers only the finished runs; rerun the analysis as runs land." if partial else ""),
        "",
        f"Rows: {len(frame)} ({int(frame['in_band'].sum())} in the band: {int((frame['half'] == 'choose').sum())} choose, "
        f"{int((frame['half'] == 'report').sum())} report; {int((frame['kind'] == 'paper').sum())} paper widths). {lut_note}",
        "",
        "## Tier 1 cost",
        "",
        f"CPU seconds per run: median {state.cpu_per_run_median:.0f}; spent {state.cpu_done / 3600:.2f} CPU-hours; "
        f"left (extrapolated) {state.cpu_left_estimate / 3600:.2f} CPU-hours.",
        "",
        "## Tier 1 against itself (seed 0 vs seed 1)",
        "",
    ]
    if noises:
        lines += ["| subset | rows | Kendall tau | mean abs diff | worst | one run's sd | sd of row means | range of means | architecture share |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for subset, n in noises.items():
            figures = (_fixed(n.seed_tau, 3), *(_points(v) for v in (n.mean_abs_diff, n.worst_abs_diff, n.within_sd, n.between_sd, n.range_of_means)),
                       _fixed(n.architecture_share, 2))
            lines.append(f"| {subset} | {n.rows} | " + " | ".join(figures) + " |")
        lines += ["", "Architecture share: the part of one run's variance that is the architecture's, not the seed's."]
    else:
        lines.append("No row has both seeds yet.")
    lines += ["", "## Scores against tier 1 (mean of its seeds), Kendall tau-b with a 95 % bootstrap interval", ""]
    if ranks.empty:
        lines.append("No tier-1 result yet.")
    else:
        order = score_order(ranks)
        lines += ["| score | CPU s / candidate | " + " | ".join(SUBSETS) + " |", "|---|---|" + "---|" * len(SUBSETS)]
        for score in order:
            lines.append(f"| {score} | {_cost(ranks, score)} | " + " | ".join(_cell(ranks, score, subset) for subset in SUBSETS) + " |")
    lines += ["", "The halves `band-choose` and `band-report` are fixed in the rows file.", ""]
    if not ranks.empty:
        lines += choice if choice is not None else choice_section(ranks, noises, complete=not partial)
    seeds = sorted(c for c in frame.columns if c.startswith(TRUTH + "@"))
    trained = frame[frame[TRUTH].notna()].sort_values(TRUTH, ascending=False) if TRUTH in frame else frame.iloc[:0]
    if not trained.empty:
        lines += [f"## Tier-1 accuracy per row{' so far' if partial else ''} (validation, %)", "",
                  "| row | latency ms | params (task) | " + " | ".join(seeds) + " | mean |", "|---|---|---|" + "---|" * (len(seeds) + 1)]
        for _, r in trained.iterrows():
            cells = " | ".join("-" if pd.isna(r[c]) else f"{100 * r[c]:.2f}" for c in seeds)
            lines.append(f"| {r['name']} | {r['latency_ms']:.1f} | {int(r['params_task']):,} | {cells} | {100 * r[TRUTH]:.2f} |")
        lines.append("")
    return "\n".join(lines)


def lut_note(rows: list[Row], lut: Path | None) -> str:
    shas = sorted({row.lut_sha256 for row in rows})
    note = f"Latencies as drawn, from the LUT with sha256 {', '.join(shas)}"
    if lut is None or not lut.is_file():
        return note + "."
    current = file_sha256(lut)
    return note + (f" (still {lut})." if current in shas else f"; {lut} has changed since (sha256 {current}): the rows keep the pinned values.")
