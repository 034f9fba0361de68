"""A study's outputs: tables first (pandas), then CSV, JSON, ONNX, plot and summary from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from repghost import NetConfig, build, export_onnx

from .baselines import Baseline, baseline_label
from .vocabulary import SCORED, Status, TrialAttr, status_of

TRIAL_COLUMNS = ["number", "state", "status", "accuracy", "latency_ms", "feasible", "params", "macs", "arch_id", "cached_from", "screen_score", "epoch_accuracies", "duration_s"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, decisions as ``param_<name>`` columns; ``params`` and ``macs`` stay
    integers (empty where a trial failed before counting them)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        recorded = status_of(trial)
        status = str(recorded) if recorded is not None else trial.state.name.lower()
        if trial.state == optuna.trial.TrialState.PRUNED and recorded not in (Status.SURPLUS, Status.SCREENED):
            status = str(Status.PRUNED)
        accuracy = trial.values[0] if trial.values and recorded in SCORED else np.nan
        duration = trial.duration.total_seconds() if trial.duration is not None else np.nan
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "status": status,
            "accuracy": accuracy,
            "latency_ms": attrs.get(TrialAttr.LATENCY_MS, np.nan),
            "feasible": all(v <= 0 for v in trial.constraints.values()) if trial.constraints else np.nan,
            "params": attrs.get(TrialAttr.PARAMS),
            "macs": attrs.get(TrialAttr.MACS),
            "arch_id": attrs.get(TrialAttr.ARCH_ID),
            "cached_from": attrs.get(TrialAttr.CACHED_FROM, ""),
            "screen_score": attrs.get(TrialAttr.SCREEN_SCORE, np.nan),
            "epoch_accuracies": json.dumps(attrs.get(TrialAttr.EPOCH_ACCURACIES, [])),
            "duration_s": duration,
        }
        row.update({f"param_{k}": v for k, v in trial.params.items()})
        row["arch"] = attrs.get(TrialAttr.ARCH, "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=TRIAL_COLUMNS + ["arch"])
    return frame.astype({"params": "Int64", "macs": "Int64"})


BASELINE_COLUMNS = ["model", "width", "accuracy", "latency_ms", "params", "macs", "arch_id"]


def baselines_frame(baselines: list[Baseline]) -> pd.DataFrame:
    return pd.DataFrame(
        columns=BASELINE_COLUMNS,
        data=[
            {
                "model": baseline_label(b),
                "width": b.width,
                "accuracy": b.evaluation.accuracy,
                "latency_ms": b.candidate.latency_ms,
                "params": b.candidate.params,
                "macs": b.candidate.macs,
                "arch_id": b.candidate.arch_id,
            }
            for b in baselines
        ]
    )


CONFIRMED_COLUMNS = ["confirmed_mean", "confirmed_std", "confirmed_seeds"]


def with_confirmed(frame: pd.DataFrame, confirmed: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` (trials or baselines) with each architecture's confirmation (mean, std, seed
    count; 0 seeds where not confirmed) and ``score``: the confirmed mean where there is one,
    else the search's single accuracy. Outputs rank by ``score``."""
    out = frame.copy()
    by_arch = (confirmed if confirmed is not None else pd.DataFrame(columns=["arch_id", *CONFIRMED_COLUMNS])).drop_duplicates("arch_id").set_index("arch_id")
    for column in CONFIRMED_COLUMNS:
        out[column] = out["arch_id"].map(by_arch[column]) if not out.empty else pd.Series(dtype=float)
    out["confirmed_seeds"] = out["confirmed_seeds"].fillna(0).astype(int)
    out["score"] = out["confirmed_mean"].where(out["confirmed_seeds"] > 0, out["accuracy"]).astype(float)
    return out


def _score(frame: pd.DataFrame) -> str:
    return "score" if "score" in frame.columns else "accuracy"


def scored(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials with a proxy accuracy (trained now or found in the cache)."""
    if frame.empty:
        return frame
    return frame[frame["status"].isin([str(s) for s in SCORED])]


def pareto_front(frame: pd.DataFrame) -> pd.DataFrame:
    """Scored trials that no other is at least as good as in both score (confirmed mean where
    confirmed, else accuracy) and latency (and better in one); one row per architecture."""
    score = _score(frame)
    points = scored(frame).drop_duplicates("arch_id").sort_values(["latency_ms", score], ascending=[True, False])
    keep, best = [], -np.inf
    for index, row in points.iterrows():
        if row[score] > best:
            keep.append(index)
            best = row[score]
    return points.loc[keep]


def best_within(frame: pd.DataFrame, budget_ms: float) -> pd.Series | None:
    """The best scored trial within the budget: by confirmed mean among the confirmed ones when
    there are any (a single score is optimistic for the trial picked by it), else by accuracy."""
    candidates = scored(frame)
    candidates = candidates[candidates["latency_ms"] <= budget_ms]
    if "confirmed_seeds" in candidates.columns and (candidates["confirmed_seeds"] > 0).any():
        candidates = candidates[candidates["confirmed_seeds"] > 0]
    if candidates.empty:
        return None
    return candidates.sort_values([_score(candidates), "latency_ms", "number"], ascending=[False, True, True]).iloc[0]


@dataclass(frozen=True)
class PlotData:
    """What the Pareto plot shows, computed apart from drawing it."""

    trials: pd.DataFrame
    front: pd.DataFrame
    baselines: pd.DataFrame
    budget_ms: float
    latency_label: str
    confirmed: pd.DataFrame  # nas.confirmation.table: mean +- std per confirmed architecture


def plot_data(frame: pd.DataFrame, baselines: pd.DataFrame, budget_ms: float, latency_label: str, confirmed: pd.DataFrame | None = None) -> PlotData:
    shown = confirmed[confirmed["confirmed_seeds"] > 0] if confirmed is not None and not confirmed.empty else pd.DataFrame(columns=["model", "kind", "latency_ms", "confirmed_mean", "confirmed_std", "confirmed_seeds"])
    return PlotData(scored(frame), pareto_front(frame), baselines, budget_ms, latency_label, shown)


def render_plot(data: PlotData, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    draw_plot(data, ax)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_plot(data: PlotData, ax: Any) -> None:
    """Candidates, Pareto front, paper baselines, confirmations and budget on a matplotlib ``Axes`` (the
    report's PNG and the notebooks draw the same figure)."""
    ax.scatter(data.trials["latency_ms"], data.trials["accuracy"], s=18, color="0.65", label="searched candidates")
    if not data.front.empty:
        ax.plot(data.front["latency_ms"], data.front[_score(data.front)], "o-", color="tab:blue", label="Pareto front (confirmed mean where confirmed)")
    if not data.baselines.empty:
        ax.plot(data.baselines["latency_ms"], data.baselines["accuracy"], "s--", color="tab:red", label="RepGhostNet (paper widths)")
        for _, row in data.baselines.iterrows():
            ax.annotate(f"{row['width']:g}x", (row["latency_ms"], row["accuracy"]), textcoords="offset points", xytext=(4, -10), fontsize=8, color="tab:red")
    for kind, color, marker in (("candidate", "tab:blue", "D"), ("baseline", "tab:red", "s")):
        rows = data.confirmed[data.confirmed["kind"] == kind]
        if not rows.empty:
            seeds = int(rows["confirmed_seeds"].max())
            ax.errorbar(rows["latency_ms"], rows["confirmed_mean"], yerr=rows["confirmed_std"].fillna(0.0), fmt=marker, color=color, mfc="white",
                        capsize=3, label=f"confirmed {kind}s: mean +- std over {seeds} seeds")
    ax.axvline(data.budget_ms, color="k", linestyle=":", label=f"budget {data.budget_ms:g} ms")
    ax.set_xlabel(data.latency_label)
    ax.set_ylabel("proxy accuracy (validation split)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def export_best(arch_json: str, path: Path, resolution: int = 224) -> Path:
    """Export the deploy form of the best architecture (ImageNet input and classes, untrained
    weights: the file is for timing on the device) and check it runs in ONNX Runtime."""
    import onnxruntime as ort

    config = NetConfig.from_json(arch_json)
    model = build(config).eval()
    export_onnx(model, path, resolution=resolution)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    output = session.run(None, {"input": np.zeros((1, config.in_chans, resolution, resolution), np.float32)})[0]
    if output.shape != (1, config.num_classes):
        raise RuntimeError(f"{path}: ONNX Runtime gave output shape {output.shape}, expected {(1, config.num_classes)}")
    return path
