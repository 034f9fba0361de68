"""Writes every output of a study into its folder: trials.csv, pareto.csv, baselines.csv,
confirmation.csv, best.json, best.onnx, pareto.png and summary.md (tables first, from the
storage alone, then files from them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from . import confirmation
from .baselines import Baseline
from .lut_info import latency_label
from .outputs import baselines_frame, best_within, export_best, pareto_front, plot_data, render_plot, trials_frame, with_confirmed
from .summary import summary_text
from .vocabulary import BASELINES_FILE, BEST_FILE, TRIALS_FILE


def confirmation_table(study: optuna.Study, frame: pd.DataFrame, baselines: list[Baseline], settings: dict[str, Any]) -> tuple[pd.DataFrame | None, confirmation.Plan | None]:
    """The study's confirmation (``nas.confirmation.table``) and its plan; (None, None) when the
    study was never confirmed."""
    plan = confirmation.stored_plan(study)
    if plan is None:
        return None, None
    chosen = confirmation.targets(frame, baselines, float(settings["budget_ms"]), plan.top_k)
    return confirmation.table(study, settings["proxy_id"], plan, chosen), plan


def best_record(best: pd.Series, confirmed: pd.DataFrame | None, settings: dict[str, Any], lut_info: dict[str, Any]) -> dict[str, Any]:
    record = {
        "trial": int(best["number"]),
        "arch_id": best["arch_id"],
        "architecture": json.loads(best["arch"]),
        "params": int(best["params"]),
        "macs": int(best["macs"]),
        "latency_ms": float(best["latency_ms"]),
        "latency_estimated": bool(lut_info.get("estimated", False)),
        "latency_device": lut_info.get("device"),
        "proxy_accuracy": float(best["accuracy"]),
        "budget_ms": float(settings["budget_ms"]),
        "seed": int(settings.get("seed", 0)),  # drew the validation split: nas.train holds it out
    }
    rows = confirmed[confirmed["arch_id"] == best["arch_id"]] if confirmed is not None else pd.DataFrame()
    if not rows.empty:
        row = rows.iloc[0]
        record["confirmation"] = {
            "model": row["model"],
            "accuracies": [float(a) for a in row["accuracies"]],
            "mean": float(row["confirmed_mean"]),
            "std": None if pd.isna(row["confirmed_std"]) else float(row["confirmed_std"]),
            "verdict": row["verdict"] and f"{row['verdict']} against {row['versus']}",
            "test": confirmation.TEST,
        }
    return record


def write_report(folder: Path, study: optuna.Study, baselines: list[Baseline], settings: dict[str, Any], lut_info: dict[str, Any]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    budget_ms = float(settings["budget_ms"])
    raw = trials_frame(study)
    confirmed, plan = confirmation_table(study, raw, baselines, settings)
    frame = with_confirmed(raw, confirmed)
    base = with_confirmed(baselines_frame(baselines), confirmed)
    front = pareto_front(frame)
    paths = {
        "trials": folder / TRIALS_FILE,
        "pareto": folder / "pareto.csv",
        "baselines": folder / BASELINES_FILE,
        "plot": folder / "pareto.png",
        "summary": folder / "summary.md",
    }
    frame.to_csv(paths["trials"], index=False)
    front.to_csv(paths["pareto"], index=False)
    base.to_csv(paths["baselines"], index=False)
    if confirmed is not None:
        paths["confirmation"] = folder / "confirmation.csv"
        confirmed.assign(accuracies=confirmed["accuracies"].map(json.dumps)).to_csv(paths["confirmation"], index=False)
    render_plot(plot_data(frame, base, budget_ms, latency_label(lut_info), confirmed), paths["plot"])
    best = best_within(frame, budget_ms)
    if best is not None:
        paths["best"] = folder / BEST_FILE
        paths["best_onnx"] = folder / "best.onnx"
        paths["best"].write_text(json.dumps(best_record(best, confirmed, settings, lut_info), indent=2) + "\n")
        export_best(best["arch"], paths["best_onnx"], int(settings.get("resolution", 224)))
    paths["summary"].write_text(summary_text(frame, base, best, settings, lut_info, confirmed, plan))
    return paths
