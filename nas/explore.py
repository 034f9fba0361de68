"""What the notebooks show, computed as DataFrames (so it is tested without a notebook too):
which study to open, what each decision weighs, where a network's latency goes, and what each
choice of the space costs on the LUT's device."""

from __future__ import annotations

import math
import random
import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from latency import LUT
from repghost import NetConfig
from space import SearchSpace

from .stored_study import load_stored_study
from .study import default_storage_url, latest_study_dir
from .vocabulary import TrialAttr, is_scored


def open_any_study(storage_url: str | None, study_name: str | None, results: Path) -> tuple[optuna.Study, str]:
    """The study at ``storage_url`` (any Optuna storage URL, or ``journal:PATH``), by default
    the one under ``results`` whose storage changed last; returns it with its URL."""
    if storage_url is not None:
        return load_stored_study(storage_url, study_name), storage_url
    folder = latest_study_dir(results)
    url = default_storage_url(folder)
    return load_stored_study(url, study_name, folder), url


def _lower_is_better_accuracy(trial: FrozenTrial) -> float:
    return -float(trial.values[0]) if is_scored(trial) else math.nan


def _latency(trial: FrozenTrial) -> float:
    return float(trial.user_attrs.get(TrialAttr.LATENCY_MS, math.nan))


# Optuna's importance targets are "lower is better": accuracy enters negated.
IMPORTANCE_TARGETS: dict[str, Callable[[FrozenTrial], float]] = {"proxy accuracy": _lower_is_better_accuracy, "predicted latency": _latency}


def decision_importances(study: optuna.Study) -> tuple[pd.DataFrame, list[str]]:
    """Importance of each decision (Optuna's default evaluator, PED-ANOVA) for reaching a high
    proxy accuracy (scored trials) and a low predicted latency (every trial); returns the table
    and a note per target it could not rank (fewer than two distinct values)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    columns, notes = {}, []
    for name, target in IMPORTANCE_TARGETS.items():
        values = [v for v in map(target, trials) if np.isfinite(v)]
        if len(set(values)) < 2:
            notes.append(f"{name}: {len(values)} trial(s) with {len(set(values))} distinct value(s), nothing to rank")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the "lower target is better" reminder: the targets above are
            columns[name] = pd.Series(optuna.importance.get_param_importances(study, target=target))
    frame = pd.DataFrame(columns)
    if not frame.empty:
        frame = frame.sort_values(frame.columns[0], ascending=False)
    return frame, notes


def latency_breakdown(lut: LUT, config: NetConfig) -> pd.DataFrame:
    """One row per part of the network (stem, blocks, head, then the fitted offset): its share
    of the predicted latency, in ms and percent."""
    frame = pd.DataFrame(lut.breakdown(config), columns=["part", "ms"])
    frame["percent"] = 100.0 * frame["ms"] / frame["ms"].sum()
    return frame


def _kind(decision_name: str) -> str:
    """Per-block decisions (``b07.kernel``) pool over blocks as their kind (``kernel``); stage
    and global ones (``s3.depth``, ``width``) stay apart, their choices differ by stage."""
    match = re.fullmatch(r"b\d+\.(\w+)", decision_name)
    return match.group(1) if match else decision_name


def choice_costs(space: SearchSpace, predict_ms: Callable[[NetConfig], float], *, samples: int = 50, seed: int = 0) -> pd.DataFrame:
    """What each choice costs on the device: for random architectures, every decision set in
    turn to each of its choices, the predicted latency against the decision's first choice;
    averaged per kind of decision (width, depth, out, mid, se, reuse, branch, kernel) and choice."""
    decisions = {d.name: d for d in space.decisions}
    rng = random.Random(seed)
    rows = []
    for _ in range(samples):
        params, _ = space.sample_params(rng)
        for name in params:
            decision = decisions.get(name)
            if decision is None:
                continue
            latencies = []
            for choice in decision.choices:
                changed = {**params, name: choice}
                # A decision that the change activates (a deeper stage's blocks) takes its first choice.
                _, config = space.params_of(lambda d: changed[d.name] if d.name in changed else d.choices[0])
                latencies.append(predict_ms(config))
            for choice, ms in zip(decision.choices, latencies):
                rows.append({"decision": _kind(name), "choice": str(choice), "order": decision.choices.index(choice), "delta_ms": ms - latencies[0], "delta_pct": 100.0 * (ms / latencies[0] - 1.0)})
    frame = pd.DataFrame(rows, columns=["decision", "choice", "order", "delta_ms", "delta_pct"])
    table = frame.groupby(["decision", "choice"], as_index=False).agg(
        order=("order", "min"), mean_delta_ms=("delta_ms", "mean"), mean_delta_pct=("delta_pct", "mean"), cases=("delta_ms", "size")
    )
    return table.sort_values(["decision", "order"]).drop(columns="order").reset_index(drop=True)


def validation_quartiles(summary: dict) -> pd.DataFrame:
    """The per-quartile rows of ``latency.validate.summarize`` (random architectures, q1 the
    fastest) as a table; empty when there were fewer than four."""
    rows = []
    for label in ("q1", "q2", "q3", "q4"):
        stats = summary.get(f"random_{label}")
        if stats is None:
            continue
        low, high = stats["measured_ms_range"]
        rows.append({"quartile": label, "measured_ms_from": low, "measured_ms_to": high, "n": stats["n"], "mean_err_pct": stats["mean_err_pct"], "mean_abs_err_pct": stats["mean_abs_err_pct"], "within_10pct": stats["within_10pct"]})
    return pd.DataFrame(rows, columns=["quartile", "measured_ms_from", "measured_ms_to", "n", "mean_err_pct", "mean_abs_err_pct", "within_10pct"])
