"""Writes every output of a study into its folder: trials.csv, pareto.csv, baselines.csv,
best.json, best.onnx, pareto.png and summary.md.

``python -m nas.report results/<study>`` writes them again from the study's storage alone
(settings, trials, evaluations, baselines and LUT description are all kept there), so a study
run on a cluster can be reported anywhere; the LUT file is not needed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import optuna
import pandas as pd

from latency import LUT, load_lut
from repghost import NetConfig, reference
from space import load_space

from .baselines import Baseline, stored_baselines
from .cli import DefaultsFormatter
from .evaluations import all_evaluations
from .objective import Candidate, describe
from .outputs import baselines_frame, best_within, export_best, pareto_front, plot_data, render_plot, trials_frame
from .study import STORAGE_FILES, default_storage_url, open_storage

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LUT_INFO_ATTR = "lut_info"


def lut_info(lut: LUT) -> dict[str, Any]:
    """What the outputs say of the latencies: device, engine, and whether they are estimated."""
    return fingerprint_info(lut.fingerprint, lut.estimated)


def fingerprint_info(fingerprint: dict[str, Any], estimated: bool) -> dict[str, Any]:
    return {
        "device": fingerprint.get("device"),
        "engine": f"{fingerprint.get('engine')} {fingerprint.get('engine_version')}, {fingerprint.get('threads')} thread(s)",
        "estimated": estimated,
    }


def latency_label(lut_info: dict[str, Any]) -> str:
    device = lut_info.get("device", "?")
    if lut_info.get("estimated"):
        return f"predicted latency, ms (estimated: {device})"
    return f"predicted latency, ms ({device}, measured LUT)"


def proxy_fidelity(baselines: pd.DataFrame) -> tuple[float, float]:
    """Kendall tau (and p-value) between the baselines' proxy accuracies and their published
    ImageNet top-1 (the reference figures): does the proxy rank the paper's models as ImageNet does?"""
    from scipy.stats import kendalltau  # here: scipy.stats takes seconds to import, and each search worker imports this module

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


# python -m nas.report ------------------------------------------------------------------------


def project_path(shown: str) -> Path:
    """A path as the settings show it (relative to the project when inside it) made usable here."""
    path = Path(shown)
    return path if path.is_absolute() else PROJECT_ROOT / path


def try_lut(settings: dict[str, Any], log: Callable[[str], None]) -> LUT | None:
    path = project_path(str(settings.get("lut", "")))
    try:
        return load_lut(path)
    except ValueError:
        log(f"LUT {settings.get('lut')} is not available here: the report uses the predicted latencies stored in the study")
        return None


def legacy_baselines(study: optuna.Study, settings: dict[str, Any], lut: LUT | None, log: Callable[[str], None]) -> list[Baseline]:
    """Baselines of a study made before baseline records were stored: each evaluation made for
    a paper width, with its candidate from the LUT and space when both are here, else from the
    trial it was enqueued as (baselines outside the budget have none: left out, with a line)."""
    space = None
    if lut is not None:
        try:
            space = load_space(project_path(str(settings.get("space", ""))))
        except ValueError:
            space = None
    trials = {t.user_attrs.get("arch_id"): t for t in study.get_trials(deepcopy=False) if "arch" in t.user_attrs}
    baselines, missing = [], []
    for arch, evaluation in all_evaluations(study, settings["proxy_id"]).items():
        match = re.fullmatch(r"baseline ([0-9.]+)x", evaluation.source)
        if match is None:
            continue
        width = float(match.group(1))
        candidate: Candidate | None = None
        if space is not None and lut is not None and space.file_hash() == settings.get("space_sha256"):
            candidate = describe(space.decode(space.paper_point(width)), lut.predict, space.resolution)
        elif arch in trials:
            attrs = trials[arch].user_attrs
            candidate = Candidate(NetConfig.from_json(attrs["arch"]), arch, float(attrs["latency_ms"]), int(attrs["params"]), int(attrs["macs"]))
        if candidate is None:
            missing.append(f"{width:g}x")
            continue
        baselines.append(Baseline(width, candidate, evaluation))
    if missing:
        log(f"baselines {', '.join(missing)} left out: their latency needs the LUT and space, which are not here")
    return sorted(baselines, key=lambda b: b.width)


def pick_study_name(storage: optuna.storages.BaseStorage, wanted: str | None, folder: Path | None) -> str:
    names = optuna.get_all_study_names(storage=storage)
    if wanted is not None:
        if wanted not in names:
            raise ValueError(f"no study {wanted!r} in the storage (it has {names}): pass one of them with --study")
        return wanted
    if len(names) == 1:
        return names[0]
    if folder is not None and folder.name in names:
        return folder.name
    raise ValueError(f"the storage holds {len(names)} studies {names}: pick one with --study")


def load_stored_study(storage_url: str, study_name: str | None, folder: Path | None = None) -> optuna.Study:
    """A study made by ``nas.search``, opened read-only (no stale trial is failed here)."""
    storage = open_storage(storage_url)
    name = pick_study_name(storage, study_name, folder)
    study = optuna.load_study(study_name=name, storage=storage)
    if "settings" not in study.user_attrs:
        raise ValueError(f"study {name!r} has no stored settings: it was not made by python -m nas.search")
    return study


def report_inputs(study: optuna.Study, log: Callable[[str], None] = print) -> tuple[dict[str, Any], dict[str, Any], list[Baseline]]:
    """Settings, LUT description and baselines of a study, from its storage (and, for studies
    made before baselines and LUT description were stored, from the LUT when it is here)."""
    settings = study.user_attrs["settings"]
    lut = try_lut(settings, log)
    info = study.user_attrs.get(LUT_INFO_ATTR)
    if info is None and lut is not None:  # a study made before the LUT description was stored
        info = lut_info(lut)
    elif info is None:  # ... and reported without its LUT: estimated LUTs name their engine "estimate from ..."
        fingerprint = settings.get("lut_fingerprint") or {}
        info = fingerprint_info(fingerprint, estimated=str(fingerprint.get("engine", "")).startswith("estimate"))
    baselines = stored_baselines(study, settings["proxy_id"]) or legacy_baselines(study, settings, lut, log)
    return settings, info, baselines


def report_study(folder: Path, storage_url: str, study_name: str | None = None, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Every output of a study, from its storage, into ``folder``."""
    study = load_stored_study(storage_url, study_name, folder)
    settings, info, baselines = report_inputs(study, log)
    return write_report(folder, study, baselines, settings, info)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m nas.report",
        description="Write every output of a study (CSV, plot, summary, best ONNX) again from its storage alone.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("folder", help="the study's folder, e.g. results/budget-30ms-fashion-mnist: outputs go there")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: study.db or study.journal in the folder)")
    parser.add_argument("--study", default=None, help="study name (default: the storage's only study, or the folder's name)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(args.folder)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if args.storage is None and not any((folder / name).is_file() for name in STORAGE_FILES):
            raise ValueError(f"no study storage in {folder} (study.db or study.journal): pass its URL with --storage")
        paths = report_study(folder, args.storage or default_storage_url(folder), args.study)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"outputs in {folder}: " + ", ".join(p.name for p in paths.values()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
