"""The study's ``summary.md``: settings, the best candidate by confirmed mean with its verdict
against the strongest paper baseline, the confirmation and its test, the baselines' table and
the proxy's agreement with the published ImageNet ranking."""

from __future__ import annotations

from typing import Any

import pandas as pd

from repghost import reference, repghostnet_config
from space import arch_id

from .confirmation import ALPHA, TEST, Plan


def proxy_fidelity(baselines: pd.DataFrame) -> tuple[float, float]:
    """Kendall tau (and p-value) between the baselines' proxy accuracies and their published
    ImageNet top-1 (the reference figures): does the proxy rank the paper's models as ImageNet does?"""
    from scipy.stats import kendalltau  # here: scipy.stats takes seconds to import, and each search worker imports this module

    published = [reference()["repghostnet"][str(w)][3] for w in baselines["width"]]
    tau, p_value = kendalltau(baselines["accuracy"], published)
    return float(tau), float(p_value)


def named_baselines(base: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The baselines with a name that is true, and which of them are the paper's models: in a
    space that cannot hold RepGhostNet at a width, the baseline is only its counterpart there."""
    is_paper = pd.Series([arch_id(repghostnet_config(float(w))) == a for w, a in zip(base["width"], base["arch_id"])], index=base.index, dtype=bool)
    names = [m if p else f"{w:g}x counterpart (RepGhostNet {w:g}x is not a point of this space)" for m, w, p in zip(base["model"], base["width"], is_paper)]
    return base.assign(model=names), is_paper




def _pm(mean: float, std: float) -> str:
    return f"{mean:.4f} +- {std:.4f}" if pd.notna(std) else f"{mean:.4f}"


def confirmation_lines(confirmed: pd.DataFrame, plan: Plan, search_seed: Any, estimated: str) -> list[str]:
    """The summary's confirmation section: the test, then every confirmed architecture, best
    confirmed mean first."""
    seeds = ", ".join(map(str, plan.seeds))
    lines = [
        "",
        f"## Confirmation over {len(plan.seeds)} fresh seeds",
        "",
        f"The top {plan.top_k} searched candidates within the budget and every paper baseline within it, trained again "
        f"with seeds {seeds} (the search used seed {search_seed}; same proxy, same data split). Ranked by mean accuracy.",
        f"Test: {TEST}. A candidate is called better only when that p is below {ALPHA}; otherwise it is tied within noise.",
    ]
    if plan.reduced:
        lines.append(f"Quick run: {len(plan.seeds)} seeds per architecture, fewer than the default run's; with so few the test rarely finds a difference, so read \"tied\" as \"not shown\".")
    lines += ["", f"| rank | model | latency (ms){estimated} | accuracy, mean +- std | seeds | verdict |", "| ---: | --- | ---: | ---: | ---: | --- |"]
    for rank, row in enumerate(confirmed.itertuples(), 1):
        verdict = f"{row.verdict} against {row.versus}" if row.verdict else ("paper baseline" if row.kind == "baseline" else "no baseline to compare with")
        mean = _pm(row.confirmed_mean, row.confirmed_std) if row.confirmed_seeds else "not trained yet"
        lines.append(f"| {rank} | {row.model} | {row.latency_ms:.2f} | {mean} | {row.confirmed_seeds}/{len(plan.seeds)} | {verdict} |")
    if (confirmed["confirmed_seeds"] < len(plan.seeds)).any():
        lines += ["", "The confirmation is unfinished: rerun the search command to complete it (finished seeds are kept)."]
    return lines


def summary_text(
    frame: pd.DataFrame,
    base: pd.DataFrame,
    best: pd.Series | None,
    settings: dict[str, Any],
    lut_info: dict[str, Any],
    confirmed: pd.DataFrame | None = None,
    plan: Plan | None = None,
) -> str:
    budget_ms = float(settings["budget_ms"])
    estimated = " (estimated)" if lut_info.get("estimated") else ""
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    lines = [
        f"# Study {settings.get('study', '')}",
        "",
        f"- budget: {budget_ms:g} ms{estimated}, latency from `{settings.get('lut')}` ({lut_info.get('device')}, {lut_info.get('engine', '')})",
        f"- space: `{settings.get('space')}`; proxy: {settings.get('proxy_summary', settings.get('proxy_id'))}"
        + (f"; sampler: {settings['sampler']}" if "sampler" in settings else "")  # stored only when not TPE
        + (f"; screen: {settings['screen']['score']}, top 1/{settings['screen']['factor']} trained" if "screen" in settings else ""),
        f"- trials: {len(frame)} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})",
        *(f"- {line}" for line in lut_info.get("warnings", [])),
        "",
    ]
    base, is_paper = named_baselines(base)
    paper = base[is_paper]
    within = paper[paper["latency_ms"] <= budget_ms]
    confirmed_best = confirmed[confirmed["arch_id"] == best["arch_id"]] if best is not None and confirmed is not None else pd.DataFrame()
    if not confirmed_best.empty and confirmed_best.iloc[0]["confirmed_seeds"] > 0:
        row = confirmed_best.iloc[0]
        named = row["model"] if row["model"] == f"trial {int(best['number'])}" else f"{row['model']} (trial {int(best['number'])})"
        lines.append(f"Best within budget, by confirmed mean: {named}, proxy accuracy {_pm(row['confirmed_mean'], row['confirmed_std'])} "
                     f"over {row['confirmed_seeds']} fresh seeds (search score {best['accuracy']:.4f}), {best['latency_ms']:.2f} ms{estimated}, "
                     f"{best['params'] / 1e6:.2f} M params, {best['macs'] / 1e6:.1f} M MACs.")
        if row["verdict"]:
            lines.append(f"Against {row['versus']}, the strongest paper baseline within the budget: {row['verdict']}.")
        elif row["kind"] == "baseline":
            lines.append("It is a paper model: no searched candidate within the budget had a higher confirmed mean.")
        else:
            lines.append("No paper baseline within the budget to compare with.")
    elif best is not None:
        lines.append(f"Best within budget: trial {int(best['number'])}, proxy accuracy {best['accuracy']:.4f}, {best['latency_ms']:.2f} ms{estimated}, {best['params'] / 1e6:.2f} M params, {best['macs'] / 1e6:.1f} M MACs.")
        if not within.empty:
            top = within.sort_values("accuracy", ascending=False).iloc[0]
            lines.append(f"Best paper baseline within budget: {top['model']}, proxy accuracy {top['accuracy']:.4f}, {top['latency_ms']:.2f} ms{estimated} (difference {best['accuracy'] - top['accuracy']:+.4f}).")
        elif paper.empty and not base.empty:
            lines.append("No paper model is a point of this space: the baselines below are their counterparts, not RepGhostNets.")
        else:
            lines.append("No paper baseline fits within the budget.")
    else:
        lines.append("No scored candidate within the budget yet.")
    if confirmed is not None and plan is not None:
        lines += confirmation_lines(confirmed, plan, settings.get("seed"), estimated)
    lines += ["", f"## Paper baselines (same proxy){estimated}", "", "| model | latency (ms) | params (M) | MACs (M) | proxy accuracy (search seed) | confirmed, mean +- std |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for _, row in base.iterrows():
        again = _pm(row["confirmed_mean"], row["confirmed_std"]) if row.get("confirmed_seeds", 0) else ""
        lines.append(f"| {row['model']} | {row['latency_ms']:.2f} | {row['params'] / 1e6:.2f} | {row['macs'] / 1e6:.1f} | {row['accuracy']:.4f} | {again} |")
    if len(paper) >= 3:
        tau, p_value = proxy_fidelity(paper)
        lines += ["", f"Proxy fidelity: Kendall tau between the baselines' proxy accuracies and their published ImageNet top-1 = {tau:.3f} (p = {p_value:.3f})."]
    lines += ["", "Files: trials.csv, pareto.csv, baselines.csv, confirmation.csv, best.json, best.onnx (deploy form, untrained weights, for timing on a device), pareto.png.", ""]
    return "\n".join(lines)
