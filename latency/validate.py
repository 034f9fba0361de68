"""Check a LUT against whole networks measured end to end: ``python -m latency.validate --lut PATH``.

Samples N random architectures from the LUT's space (none of them a calibration network of the
LUT) plus the paper's eight RepGhostNets when the space contains them, measures each whole network
on the same device, engine, threads and timing protocol, with the LUT's statistic as ground truth
(another is refused), and writes ``<lut>.<name>.csv``, ``.png`` and ``.json`` beside the LUT. The
LUT's calibration networks are measured in the same pass, for the MACs-only and MACs + bytes
fits reported beside the LUT (what a user without a LUT would predict with).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import repghost
from space import arch_id

from .cli import DefaultsFormatter
from .device_registry import DEVICES, get_device
from .devices import Job
from .engines import engine_from_settings
from .engines.deterministic import graph_cost
from .exporter import ExportTask, export_stream
from .lut import LUT, fill_command, load_lut
from .lut_builder import Progress
from .remote import add_remote_arguments, remote_settings
from .timing import Measurement, RunPolicy

# What a validation must share with the LUT's build: the machine, and the engine as it was set up.
SAME_SETUP_FIELDS = ("device", "cpu_model", "arch", "cores", "engine", "engine_version", "threads", "inter_op_threads", "opt_level", "precision")


def candidates(space: Any, lut: LUT, n: int, seed: int) -> list[tuple[str, str, repghost.NetConfig]]:
    """(kind, name, config): ``n`` distinct random architectures that are not calibration
    networks of ``lut``, then the paper's RepGhostNets whose parts are all in the LUT."""
    excluded = set(lut.file.calibration.nets)
    rng = random.Random(seed)
    found: dict[str, repghost.NetConfig] = {}
    for _ in range(max(50 * n, 200)):
        if len(found) >= n:
            break
        cfg = space.sample(rng)
        key = arch_id(cfg)
        if key not in excluded:
            found.setdefault(key, cfg)
    rows = [("random", key, cfg) for key, cfg in found.items()]
    for width in repghost.REPGHOST_WIDTHS:
        cfg = repghost.repghostnet_config(width)
        if all(key in lut for key in lut.keys(cfg)):
            rows.append(("paper", f"repghostnet_{width:g}x", cfg))
    return rows


def _reference_job(lut: LUT, space_parts: list, folder: str, opset: int) -> Job | None:
    key = lut.file.drift.reference_key if lut.file.drift else None
    spec = next((p for p in space_parts if repghost.part_key(p) == key), None)
    if spec is None:
        return None
    sub = Path(folder) / "reference"
    sub.mkdir()
    exported = list(export_stream([ExportTask(key, spec=spec)], sub, opset=opset, worker=False))[0]
    return Job(f"(reference) {key}", exported.onnx_path, exported.input_shape)


def lut_policy(lut: LUT) -> RunPolicy:
    """The run policy the LUT was measured with (a LUT of the older protocol cannot be compared)."""
    try:
        return RunPolicy.from_dict(lut.fingerprint.get("run_policy") or {})
    except ValueError as error:
        raise ValueError(f"LUT {lut.path}: {error} ({fill_command(lut.path, lut.file)})") from None


def measure_networks(
    rows: list[tuple[str, str, repghost.NetConfig]],
    lut: LUT,
    *,
    device_name: str,
    remote: str | None,
    space_parts: list | None = None,
    drift_note: dict[str, Any] | None = None,
    remote_options: dict[str, Any] | None = None,
    extra: list[tuple[str, repghost.NetConfig]] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure every network by the LUT's protocol on its device and engine: all exported first,
    then timed in interleaved chunks, each with the LUT's drift reference part (``drift_note``
    gets the machine's speed now against at build time). One row per network, with every
    statistic and the graph's MACs and bytes; ``extra`` (name, config) networks are measured
    alike and returned as the second frame (the calibration networks, for the baselines)."""
    space_parts = space_parts or []
    drift_note = drift_note if drift_note is not None else {}
    fingerprint = lut.fingerprint
    statistic = lut.statistic
    device = get_device(device_name, remote=remote, **(remote_options or {}))
    engine = engine_from_settings(fingerprint)
    here = device.fingerprint(engine)
    differ = [name for name in SAME_SETUP_FIELDS if here.get(name) != fingerprint.get(name)]
    if differ:
        name = differ[0]
        raise ValueError(
            f"this LUT was measured elsewhere ({', '.join(differ)} differ, e.g. {name}: {fingerprint.get(name)!r} "
            f"there vs {here.get(name)!r} here); validate on the device it was built on"
        )
    policy = lut_policy(lut)
    resolution = lut.resolution
    configs = [cfg for _, _, cfg in rows] + [cfg for _, cfg in extra]
    tasks = [ExportTask(f"{i}", config=cfg, resolution=resolution) for i, cfg in enumerate(configs)]
    measured: dict[str, Measurement] = {}
    costs: dict[str, dict[str, int]] = {}
    reference_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lut-validate-") as folder:
        opset = int(fingerprint.get("opset") or 17)
        progress = Progress("exporting networks", len(tasks))
        jobs = []
        for exported in export_stream(tasks, folder, opset=opset, worker=False):
            jobs.append(Job(exported.key, exported.onnx_path, exported.input_shape))
            costs[exported.key] = graph_cost(exported.onnx_path, exported.input_shape)
            progress.step()
        reference = _reference_job(lut, space_parts, folder, opset)
        probes = [reference] if reference else []
        per_chunk = policy.chunk_items - len(probes)
        order = list(jobs)
        random.Random(len(jobs)).shuffle(order)  # chunks mix small and large networks
        progress = Progress("measuring networks", len(order))
        for start in range(0, len(order), per_chunk):
            chunk = probes + order[start : start + per_chunk]
            results = list(device.measure_stream(chunk, engine, dataclasses.replace(policy, chunk_items=len(chunk))))
            for job, measurement in results[len(probes):]:
                measured[job.key] = measurement
                progress.step()
            if reference:
                reference_ms.append(results[0][1].value(statistic))
    if reference_ms:
        build_ms = float(lut.file.drift.reference_ms)
        now_ms = float(np.median(reference_ms))
        drift_note.update(reference_key=reference.key.removeprefix("(reference) "), reference_build_ms=build_ms, reference_now_ms=now_ms, now_over_build=now_ms / build_ms)

    def record(task: ExportTask, cfg: repghost.NetConfig) -> dict[str, Any]:
        m, cost = measured[task.key], costs[task.key]
        return {
            "statistic": statistic,
            "measured_ms": m.value(statistic),
            "measured_min_ms": m.min_ms,
            "measured_p10_ms": m.p10_ms,
            "measured_median_ms": m.median_ms,
            "measured_iqr_ms": m.iqr_ms,
            "runs": m.runs,
            "mmacs": cost["macs"] / 1e6,
            "mbytes": cost["bytes"] / 1e6,
            "arch_id": arch_id(cfg),
            "config": cfg.to_json(),
        }

    records = []
    for (kind, name, cfg), task in zip(rows, tasks):
        predicted = lut.predict(cfg)
        row = {"kind": kind, "name": name, **record(task, cfg), "predicted_ms": predicted, "sum_ms": lut.sum_ms(cfg)}
        row["error_pct"] = (predicted - row["measured_ms"]) / row["measured_ms"] * 100.0
        records.append(row)
    others = [{"kind": "calibration", "name": name, **record(task, cfg)} for (name, cfg), task in zip(extra, tasks[len(rows):])]
    return pd.DataFrame.from_records(records), pd.DataFrame.from_records(others)


BASELINES = {"macs": ("mmacs",), "macs+bytes": ("mmacs", "mbytes")}


def baseline_predictions(frame: pd.DataFrame, calibration: pd.DataFrame) -> dict[str, np.ndarray]:
    """What a user without a LUT would predict: ``ms = a * MMACs + b`` and ``ms = a * MMACs + c *
    MB + b`` (MB: weights and input), least squares on relative error over the LUT's calibration
    networks measured in the same pass (the same networks and statistic the LUT's correction had)."""
    predictions = {}
    for name, columns in BASELINES.items():
        design = np.column_stack([calibration[list(columns)].to_numpy(dtype=float), np.ones(len(calibration))])
        measured = calibration["measured_ms"].to_numpy(dtype=float)
        coefficients, *_ = np.linalg.lstsq(design / measured[:, None], np.ones(len(measured)), rcond=None)
        rows = np.column_stack([frame[list(columns)].to_numpy(dtype=float), np.ones(len(frame))])
        predictions[name] = rows @ coefficients
    return predictions


def budget_feasibility(frame: pd.DataFrame, predicted: str = "predicted_ms") -> dict[str, Any]:
    """With a budget at the median measured latency: of the networks predicted within it, the
    share that measure more than 5 % over it (what a budget search pays for a wrong prediction)."""
    budget = float(frame["measured_ms"].median())
    inside = frame[frame[predicted] <= budget]
    over = inside[inside["measured_ms"] > 1.05 * budget]
    return {
        "budget_ms": budget,
        "predicted_within": int(len(inside)),
        "of_them_measured_over_5pct": int(len(over)),
        "share": float(len(over) / len(inside)) if len(inside) else float("nan"),
    }


def error_stats(frame: pd.DataFrame) -> dict[str, Any]:
    """Share within 5 % and 10 %, RMSPE, mean, mean |.|, max |.| error (percent), Kendall tau and
    Spearman rho of predicted vs measured, over the rows of ``frame``."""
    from scipy import stats

    errors = frame["error_pct"].to_numpy(dtype=float)
    result: dict[str, Any] = {
        "n": int(len(frame)),
        "within_5pct": float(np.mean(np.abs(errors) <= 5.0)) if len(errors) else float("nan"),
        "within_10pct": float(np.mean(np.abs(errors) <= 10.0)) if len(errors) else float("nan"),
        "rmspe_pct": float(np.sqrt(np.mean(errors**2))) if len(errors) else float("nan"),
        "mean_err_pct": float(np.mean(errors)) if len(errors) else float("nan"),
        "mean_abs_err_pct": float(np.mean(np.abs(errors))) if len(errors) else float("nan"),
        "max_abs_err_pct": float(np.max(np.abs(errors))) if len(errors) else float("nan"),
    }
    if len(frame) >= 3:
        result["kendall_tau"] = float(stats.kendalltau(frame["predicted_ms"], frame["measured_ms"]).statistic)
        result["spearman_rho"] = float(stats.spearmanr(frame["predicted_ms"], frame["measured_ms"]).statistic)
    return result


def spread(frame: pd.DataFrame) -> dict[str, Any]:
    """How much each network's samples scatter (IQR over median): the weather the statistic
    has to see through. Pass-to-pass agreement is ``benchmarks/latency_passes.py``'s."""
    relative = frame["measured_iqr_ms"].to_numpy(dtype=float) / frame["measured_median_ms"].to_numpy(dtype=float)
    minimum_below_median = 1.0 - frame["measured_min_ms"].to_numpy(dtype=float) / frame["measured_median_ms"].to_numpy(dtype=float)
    return {
        "median_iqr_over_median": float(np.median(relative)),
        "median_min_below_median": float(np.median(minimum_below_median)),
    }


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """Stats over random architectures, over all, and per quartile of measured latency
    (random architectures; q1 is the fastest)."""
    random_rows = frame[frame["kind"] == "random"]
    summary: dict[str, Any] = {"random": error_stats(random_rows), "all": error_stats(frame)}
    if len(random_rows) >= 4:
        quartile = pd.qcut(random_rows["measured_ms"], 4, labels=["q1", "q2", "q3", "q4"])
        for label in ["q1", "q2", "q3", "q4"]:
            part = random_rows[quartile == label]
            stats_q = error_stats(part)
            stats_q["measured_ms_range"] = [float(part["measured_ms"].min()), float(part["measured_ms"].max())]
            summary[f"random_{label}"] = stats_q
    paper = frame[frame["kind"] == "paper"]
    if len(paper):
        summary["paper"] = error_stats(paper)
    return summary


def render_plot(frame: pd.DataFrame, path: Path, title: str, statistic: str) -> None:
    """Predicted vs measured, with y = x and the +-10 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    low = float(min(frame["measured_ms"].min(), frame["predicted_ms"].min())) * 0.9
    high = float(max(frame["measured_ms"].max(), frame["predicted_ms"].max())) * 1.1
    line = np.linspace(low, high, 100)
    ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15, label="+-10 %")
    ax.plot(line, line, color="black", linewidth=1, label="y = x")
    for kind, marker, color in (("random", "o", "tab:blue"), ("paper", "*", "tab:red")):
        rows = frame[frame["kind"] == kind]
        if len(rows):
            ax.scatter(rows["measured_ms"], rows["predicted_ms"], marker=marker, color=color, s=40 if kind == "paper" else 14, label=kind)
    ax.set_xlabel(f"measured latency (ms, end to end, {statistic} of the samples)")
    ax.set_ylabel(f"predicted latency (ms, LUT of the {statistic})")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def output_paths(lut_path: Path, name: str = "validation") -> dict[str, Path]:
    stem = lut_path.with_suffix("")
    return {ext: stem.parent / f"{stem.name}.{name}.{ext}" for ext in ("csv", "png", "json")}


def _format(stats_row: dict[str, Any]) -> str:
    text = (
        f"n={stats_row['n']:3d} within5={stats_row['within_5pct']:.0%} within10={stats_row['within_10pct']:.0%} "
        f"rmspe={stats_row['rmspe_pct']:.2f}% mean={stats_row['mean_err_pct']:+.2f}% max|e|={stats_row['max_abs_err_pct']:.2f}%"
    )
    if "kendall_tau" in stats_row:
        text += f" tau={stats_row['kendall_tau']:.3f} rho={stats_row['spearman_rho']:.3f}"
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m latency.validate", description=__doc__.splitlines()[0], formatter_class=DefaultsFormatter
    )
    parser.add_argument("--lut", required=True, help="LUT file to validate")
    parser.add_argument("--n", type=int, default=100, help="random architectures")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    parser.add_argument("--name", default="validation", help="outputs are <lut>.<name>.csv/.png/.json (e.g. pass1, pass2)")
    parser.add_argument("--statistic", default=None, help="must be the LUT's own (default: the LUT's; another is refused)")
    parser.add_argument("--space", default=None, help="space file (default: the one in the LUT's fingerprint)")
    parser.add_argument("--device", default=None, choices=sorted(DEVICES), help="device (default: the LUT's)")
    parser.add_argument("--remote", default=None, help="user@host[:port] for a device measured over SSH")
    add_remote_arguments(parser)
    return parser.parse_args(argv)


def estimate_note(lut_path: Path, lut: LUT) -> str:
    """Why an estimated LUT is not validated here, and where its evidence is."""
    loo = lut_path.with_suffix("").with_name(lut_path.with_suffix("").name + ".loo.json")
    where = f"{loo}" if loo.is_file() else f"written by python -m latency.paper_phone --base {lut.file.provenance.base_lut} --out {lut_path}"
    return (
        f"LUT {lut_path} is an estimate (of {lut.file.provenance.estimate_of}), not a measurement of a device here, so there is "
        f"nothing to time it against: an estimate is judged by its leave-one-out table over the published points ({where})"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.n < 1:
            raise ValueError("--n must be at least 1")
        lut_path = Path(args.lut)
        lut = load_lut(lut_path)
        if lut.estimated:
            raise ValueError(estimate_note(lut_path, lut))
        if args.statistic is not None and args.statistic != lut.statistic:
            raise ValueError(
                f"LUT {lut_path} predicts the {lut.statistic} of each item's samples; a ground truth of the {args.statistic} "
                f"would judge it by another measure: drop --statistic, or build a LUT with --statistic {args.statistic}"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
            raise ValueError(f"--name {args.name!r} must be letters, digits, '_', '.' or '-' (it becomes part of file names)")
        space = lut.space(args.space)
        rows = candidates(space, lut, args.n, args.seed)
        calibration = [(key, repghost.NetConfig.from_json(net.config)) for key, net in sorted(lut.file.calibration.nets.items())]
        load_before = os.getloadavg()
        started = dt.datetime.now(dt.timezone.utc)
        drift: dict[str, Any] = {}
        frame, calibration_frame = measure_networks(
            rows,
            lut,
            device_name=args.device or lut.fingerprint["device"],
            remote=args.remote,
            space_parts=space.parts(),
            drift_note=drift,
            remote_options=remote_settings(args),
            extra=calibration,
        )
        load_after = os.getloadavg()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths = output_paths(lut_path, args.name)
    summary = summarize(frame)
    random_rows = frame[frame["kind"] == "random"]
    feasibility = {"lut": budget_feasibility(random_rows)}
    baselines: dict[str, Any] = {}
    if len(calibration_frame) >= 3:
        for name, predicted in baseline_predictions(frame, calibration_frame).items():
            frame[f"{name}_predicted_ms"] = predicted
            other = frame.assign(predicted_ms=predicted, error_pct=(predicted - frame["measured_ms"]) / frame["measured_ms"] * 100.0)
            baselines[name] = summarize(other)
            feasibility[name] = budget_feasibility(other[other["kind"] == "random"])
    if drift:
        # A diagnostic, not the result: what the errors would be if the whole machine had merely
        # changed speed since the build by as much as the reference part did.
        adjusted = random_rows.copy()
        adjusted["predicted_ms"] = adjusted["predicted_ms"] * drift["now_over_build"]
        adjusted["error_pct"] = (adjusted["predicted_ms"] - adjusted["measured_ms"]) / adjusted["measured_ms"] * 100.0
        summary["random_if_drift_removed"] = error_stats(adjusted)
    fingerprint = lut.fingerprint
    report = {
        "lut": str(lut_path),
        "statistic": lut.statistic,
        "run_policy": fingerprint.get("run_policy"),
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1),
        "n_random": args.n,
        "seed": args.seed,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "drift": drift,
        "lut_quality": lut.file.quality,
        "correction": {k: v for k, v in dataclasses.asdict(lut.file.correction).items() if k != "candidates" and v is not None},
        "summary": summary,
        "baselines": baselines,
        "budget_feasibility": feasibility,
        "spread": spread(frame),
    }
    frame.to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    title = (
        f"{fingerprint.get('device')} {fingerprint.get('cpu_model')} {fingerprint.get('engine')} {fingerprint.get('engine_version')} "
        f"{fingerprint.get('threads')} thread(s), {fingerprint.get('resolution')}px, {lut.statistic}\n"
        f"random n={summary['random']['n']}: {summary['random']['within_10pct']:.0%} within 10 %, "
        f"{summary['random']['within_5pct']:.0%} within 5 %"
    )
    render_plot(frame, paths["png"], title, lut.statistic)
    print(f"latencies are the {lut.statistic} of each network's samples (the LUT's statistic)")
    for name, stats_row in summary.items():
        print(f"{name:24s} {_format(stats_row)}")
    for name, table in baselines.items():
        print(f"{name + ' fit, random':24s} {_format(table['random'])}")
    for name, row in feasibility.items():
        print(f"budget {row['budget_ms']:.3f} ms, {name}: {row['of_them_measured_over_5pct']} of {row['predicted_within']} predicted within measure over it by more than 5 %")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if drift:
        print(f"reference part {drift['reference_key']}: {drift['reference_now_ms']:.4f} ms now vs {drift['reference_build_ms']:.4f} ms at build ({drift['now_over_build']:.3f}x)")
    if lut.file.quality == "poor":
        print(f"note: the LUT is marked quality: poor ({'; '.join(lut.file.quality_notes)})")
    print(f"wrote {paths['csv']}, {paths['png']}, {paths['json']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
