"""Writes every output of a study into its folder: trials.csv, pareto.csv, baselines.csv,
best.json, best.onnx, pareto.png and summary.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from scipy.stats import kendalltau

from repghost import reference

from .baselines import Baseline
from .outputs import baselines_frame, best_within, export_best, pareto_front, plot_data, render_plot, trials_frame


def latency_label(lut_info: dict[str, Any]) -> str:
    device = lut_info.get("device", "?")
    if lut_info.get("estimated"):
        return f"predicted latency, ms (estimated: {device})"
    return f"predicted latency, ms ({device}, measured LUT)"


def proxy_fidelity(baselines: pd.DataFrame) -> tuple[float, float]:
    """Kendall tau (and p-value) between the baselines' proxy accuracies and their published
    ImageNet top-1 (the reference figures): does the proxy rank the paper's models as ImageNet does?"""
    published = [reference()["repghostnet"][str(w)][3] for w in baselines["width"]]
    tau, p_value = kendalltau(baselines["accuracy"], published)
    return float(tau), float(p_value)


def write_report(folder: Path, study: optuna.Study, baselines: list[Baseline], settings: dict[str, Any], lut_info: dict[str, Any]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    budget_ms = float(settings["budget_ms"])
    frame = trials_frame(study)
    base = baselines_frame(baselines)
    front = pareto_front(frame)
    paths = {
        "trials": folder / "trials.csv",
        "pareto": folder / "pareto.csv",
        "baselines": folder / "baselines.csv",
        "plot": folder / "pareto.png",
        "summary": folder / "summary.md",
    }
    frame.to_csv(paths["trials"], index=False)
    front.to_csv(paths["pareto"], index=False)
    base.to_csv(paths["baselines"], index=False)
    label = latency_label(lut_info)
    render_plot(plot_data(frame, base, budget_ms, label), paths["plot"])
    best = best_within(frame, budget_ms)
    if best is not None:
        paths["best"] = folder / "best.json"
        paths["best_onnx"] = folder / "best.onnx"
        best_record = {
            "trial": int(best["number"]),
            "arch_id": best["arch_id"],
            "architecture": json.loads(best["arch"]),
            "params": int(best["params"]),
            "macs": int(best["macs"]),
            "latency_ms": float(best["latency_ms"]),
            "latency_estimated": bool(lut_info.get("estimated", False)),
            "latency_device": lut_info.get("device"),
            "proxy_accuracy": float(best["accuracy"]),
            "budget_ms": budget_ms,
        }
        paths["best"].write_text(json.dumps(best_record, indent=2) + "\n")
        export_best(best["arch"], paths["best_onnx"], int(settings.get("resolution", 224)))
    paths["summary"].write_text(summary_text(frame, base, best, settings, lut_info))
    return paths


def summary_text(frame: pd.DataFrame, base: pd.DataFrame, best: pd.Series | None, settings: dict[str, Any], lut_info: dict[str, Any]) -> str:
    budget_ms = float(settings["budget_ms"])
    estimated = " (estimated)" if lut_info.get("estimated") else ""
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    lines = [
        f"# Study {settings.get('study', '')}",
        "",
        f"- budget: {budget_ms:g} ms{estimated}, latency from `{settings.get('lut')}` ({lut_info.get('device')}, {lut_info.get('engine', '')})",
        f"- space: `{settings.get('space')}`; proxy: {settings.get('proxy_summary', settings.get('proxy_id'))}",
        f"- trials: {len(frame)} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})",
        "",
    ]
    within = base[base["latency_ms"] <= budget_ms]
    if best is not None:
        lines.append(f"Best within budget: trial {int(best['number'])}, proxy accuracy {best['accuracy']:.4f}, {best['latency_ms']:.2f} ms{estimated}, {best['params'] / 1e6:.2f} M params, {best['macs'] / 1e6:.1f} M MACs.")
        if not within.empty:
            top = within.sort_values("accuracy", ascending=False).iloc[0]
            lines.append(f"Best paper baseline within budget: {top['model']}, proxy accuracy {top['accuracy']:.4f}, {top['latency_ms']:.2f} ms{estimated} (difference {best['accuracy'] - top['accuracy']:+.4f}).")
        else:
            lines.append("No paper baseline fits within the budget.")
    else:
        lines.append("No scored candidate within the budget yet.")
    lines += ["", f"## Paper baselines (same proxy){estimated}", "", "| model | latency (ms) | params (M) | MACs (M) | proxy accuracy |", "| --- | ---: | ---: | ---: | ---: |"]
    for _, row in base.iterrows():
        lines.append(f"| {row['model']} | {row['latency_ms']:.2f} | {row['params'] / 1e6:.2f} | {row['macs'] / 1e6:.1f} | {row['accuracy']:.4f} |")
    if len(base) >= 3:
        tau, p_value = proxy_fidelity(base)
        lines += ["", f"Proxy fidelity: Kendall tau between the baselines' proxy accuracies and their published ImageNet top-1 = {tau:.3f} (p = {p_value:.3f})."]
    lines += ["", "Files: trials.csv, pareto.csv, baselines.csv, best.json, best.onnx (deploy form, untrained weights, for timing on a device), pareto.png.", ""]
    return "\n".join(lines)
