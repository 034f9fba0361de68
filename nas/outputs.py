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

from .baselines import Baseline

TRIAL_COLUMNS = ["number", "state", "status", "accuracy", "latency_ms", "feasible", "params", "macs", "arch_id", "cached_from", "epoch_accuracies", "duration_s"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, decisions as ``param_<name>`` columns."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        status = attrs.get("status", trial.state.name.lower())
        if trial.state == optuna.trial.TrialState.PRUNED and status != "surplus":
            status = "pruned"
        accuracy = trial.values[0] if trial.values and status in ("trained", "cached") else np.nan
        duration = trial.duration.total_seconds() if trial.duration is not None else np.nan
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "status": status,
            "accuracy": accuracy,
            "latency_ms": attrs.get("latency_ms", np.nan),
            "feasible": all(v <= 0 for v in trial.constraints.values()) if trial.constraints else np.nan,
            "params": attrs.get("params"),
            "macs": attrs.get("macs"),
            "arch_id": attrs.get("arch_id"),
            "cached_from": attrs.get("cached_from", ""),
            "epoch_accuracies": json.dumps(attrs.get("epoch_accuracies", [])),
            "duration_s": duration,
        }
        row.update({f"param_{k}": v for k, v in trial.params.items()})
        row["arch"] = attrs.get("arch", "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=TRIAL_COLUMNS + ["arch"])
    return frame


BASELINE_COLUMNS = ["model", "width", "accuracy", "latency_ms", "params", "macs", "arch_id"]


def baselines_frame(baselines: list[Baseline]) -> pd.DataFrame:
    return pd.DataFrame(
        columns=BASELINE_COLUMNS,
        data=[
            {
                "model": f"RepGhostNet {b.width}x",
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


def scored(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials with a proxy accuracy (trained now or found in the cache)."""
    if frame.empty:
        return frame
    return frame[frame["status"].isin(["trained", "cached"])]


def pareto_front(frame: pd.DataFrame) -> pd.DataFrame:
    """Scored trials that no other is at least as good as in both accuracy and latency (and
    better in one); one row per architecture."""
    points = scored(frame).drop_duplicates("arch_id").sort_values(["latency_ms", "accuracy"], ascending=[True, False])
    keep, best_accuracy = [], -np.inf
    for index, row in points.iterrows():
        if row["accuracy"] > best_accuracy:
            keep.append(index)
            best_accuracy = row["accuracy"]
    return points.loc[keep]


def best_within(frame: pd.DataFrame, budget_ms: float) -> pd.Series | None:
    candidates = scored(frame)
    candidates = candidates[candidates["latency_ms"] <= budget_ms]
    if candidates.empty:
        return None
    return candidates.sort_values(["accuracy", "latency_ms"], ascending=[False, True]).iloc[0]


@dataclass(frozen=True)
class PlotData:
    """What the Pareto plot shows, computed apart from drawing it."""

    trials: pd.DataFrame
    front: pd.DataFrame
    baselines: pd.DataFrame
    budget_ms: float
    latency_label: str


def plot_data(frame: pd.DataFrame, baselines: pd.DataFrame, budget_ms: float, latency_label: str) -> PlotData:
    return PlotData(scored(frame), pareto_front(frame), baselines, budget_ms, latency_label)


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
    """Candidates, Pareto front, paper baselines and budget on a matplotlib ``Axes`` (the
    report's PNG and the notebooks draw the same figure)."""
    ax.scatter(data.trials["latency_ms"], data.trials["accuracy"], s=18, color="0.65", label="searched candidates")
    if not data.front.empty:
        ax.plot(data.front["latency_ms"], data.front["accuracy"], "o-", color="tab:blue", label="Pareto front (search)")
    if not data.baselines.empty:
        ax.plot(data.baselines["latency_ms"], data.baselines["accuracy"], "s--", color="tab:red", label="RepGhostNet (paper widths)")
        for _, row in data.baselines.iterrows():
            ax.annotate(f"{row['width']:g}x", (row["latency_ms"], row["accuracy"]), textcoords="offset points", xytext=(4, -10), fontsize=8, color="tab:red")
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
