"""Check a LUT against whole networks measured end to end: ``python -m latency.validate --lut PATH``.

Samples N random architectures from the LUT's space (none of them a calibration network of the
LUT) plus the paper's eight RepGhostNets when the space contains them, measures each whole network
on the same device, engine, threads and run policy, and writes ``<lut>.validation.csv``,
``<lut>.validation.png`` and ``<lut>.validation.json`` beside the LUT.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
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
from .exporter import ExportTask, export_stream
from .lut import LUT, load_lut
from .lut_builder import Progress
from .remote import add_remote_arguments, remote_settings
from .timing import RunPolicy

MACHINE_FIELDS = ("device", "cpu_model", "arch", "cores", "engine", "engine_version", "threads", "inter_op_threads", "opt_level", "precision")


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


def measure_networks(
    rows: list[tuple[str, str, repghost.NetConfig]],
    lut: LUT,
    *,
    rounds: int,
    device_name: str,
    remote: str | None,
    seed: int,
    space_parts: list | None = None,
    drift_note: dict[str, Any] | None = None,
    remote_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Measure every network ``rounds`` times (each round in a new shuffled order, so drift hits
    all alike) on the LUT's device, engine and run policy; one row per network. With
    ``space_parts``, the LUT's drift reference part is timed before and after each round and
    ``drift_note`` gets the machine's speed now against at build time."""
    space_parts = space_parts or []
    drift_note = drift_note if drift_note is not None else {}
    fingerprint = lut.fingerprint
    device = get_device(device_name, remote=remote, **(remote_options or {}))
    engine = engine_from_settings(fingerprint)
    here = device.fingerprint(engine)
    differ = [name for name in MACHINE_FIELDS if here.get(name) != fingerprint.get(name)]
    if differ:
        name = differ[0]
        raise ValueError(
            f"this LUT was measured elsewhere ({', '.join(differ)} differ, e.g. {name}: {fingerprint.get(name)!r} "
            f"there vs {here.get(name)!r} here); validate on the device it was built on"
        )
    policy = RunPolicy.from_dict(fingerprint.get("run_policy") or {})
    resolution = lut.resolution
    tasks = [ExportTask(f"{i}", config=cfg, resolution=resolution) for i, (_, _, cfg) in enumerate(rows)]
    times: dict[str, list[tuple[float, float, int]]] = {task.key: [] for task in tasks}
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="lut-validate-") as folder:
        # All exported first, then timed in rounds with nothing else running here.
        opset = int(fingerprint.get("opset") or 17)
        progress = Progress("exporting networks", len(tasks))
        jobs = []
        for exported in export_stream(tasks, folder, opset=opset, worker=False):
            jobs.append(Job(exported.key, exported.onnx_path, exported.input_shape))
            progress.step()
        reference = _reference_job(lut, space_parts, folder, opset)
        reference_ms = [device.measure(reference, engine, policy).median_ms] if reference else []
        for round_index in range(1, rounds + 1):
            progress = Progress(f"measuring, round {round_index} of {rounds}", len(jobs))
            order = list(jobs)
            rng.shuffle(order)
            for job, measurement in device.measure_stream(order, engine, policy):
                times[job.key].append((measurement.median_ms, measurement.iqr_ms, measurement.runs))
                progress.step()
            if reference:
                reference_ms.append(device.measure(reference, engine, policy).median_ms)
    if reference_ms:
        build_ms = float(lut.file.drift.reference_ms)
        now_ms = float(np.median(reference_ms))
        drift_note.update(reference_key=reference.key.removeprefix("(reference) "), reference_build_ms=build_ms, reference_now_ms=now_ms, now_over_build=now_ms / build_ms)
    records = []
    for (kind, name, cfg), task in zip(rows, tasks):
        medians = [t[0] for t in times[task.key]]
        measured = float(np.median(medians))
        predicted = lut.predict(cfg)
        records.append(
            {
                "kind": kind,
                "name": name,
                "arch_id": arch_id(cfg),
                "predicted_ms": predicted,
                "measured_ms": measured,
                "measured_iqr_ms": float(np.median([t[1] for t in times[task.key]])),
                "round_medians_ms": " ".join(f"{m:.4f}" for m in medians),
                "sum_ms": lut.sum_ms(cfg),
                "error_pct": (predicted - measured) / measured * 100.0,
                "config": cfg.to_json(),
            }
        )
    return pd.DataFrame.from_records(records)


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


def repeatability(frame: pd.DataFrame) -> dict[str, Any]:
    """How well the measurement agrees with itself: per network, the spread of its round medians
    around their median. No prediction can match a measurement more closely than the
    measurement repeats, so this bounds what the error figures can show on this device."""
    rounds = [np.array(text.split(), dtype=float) for text in frame["round_medians_ms"]]
    rounds = [r for r in rounds if len(r) >= 2]
    if not rounds:
        return {}
    worst = np.array([np.max(np.abs(r / np.median(r) - 1.0)) for r in rounds]) * 100.0
    return {
        "n": len(rounds),
        "rounds_within_5pct_of_median": float(np.mean(worst <= 5.0)),
        "rounds_within_10pct_of_median": float(np.mean(worst <= 10.0)),
        "median_max_over_min": float(np.median([r.max() / r.min() for r in rounds])),
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


def render_plot(frame: pd.DataFrame, path: Path, title: str) -> None:
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
    ax.set_xlabel("measured latency (ms, end to end)")
    ax.set_ylabel("predicted latency (ms, LUT)")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def output_paths(lut_path: Path) -> dict[str, Path]:
    stem = lut_path.with_suffix("")
    return {ext: stem.parent / f"{stem.name}.validation.{ext}" for ext in ("csv", "png", "json")}


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
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling and of the measuring order")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per network, in shuffled rounds (the median is kept)")
    parser.add_argument("--space", default=None, help="space file (default: the one in the LUT's fingerprint)")
    parser.add_argument("--device", default=None, choices=sorted(DEVICES), help="device (default: the LUT's)")
    parser.add_argument("--remote", default=None, help="user@host[:port] for a device measured over SSH")
    add_remote_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.n < 1 or args.rounds < 1:
            raise ValueError("--n and --rounds must be at least 1")
        lut_path = Path(args.lut)
        lut = load_lut(lut_path)
        if lut.estimated:
            raise ValueError(f"LUT {lut_path} is an estimate (of {lut.file.provenance.estimate_of}): there is no device here to measure it on")
        space = lut.space(args.space)
        rows = candidates(space, lut, args.n, args.seed)
        load_before = os.getloadavg()
        drift: dict[str, Any] = {}
        frame = measure_networks(
            rows,
            lut,
            rounds=args.rounds,
            device_name=args.device or lut.fingerprint["device"],
            remote=args.remote,
            seed=args.seed,
            space_parts=space.parts(),
            drift_note=drift,
            remote_options=remote_settings(args),
        )
        load_after = os.getloadavg()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths = output_paths(lut_path)
    summary = summarize(frame)
    if drift:
        # A diagnostic, not the result: what the errors would be if the whole machine had merely
        # changed speed since the build by as much as the reference part did.
        adjusted = frame[frame["kind"] == "random"].copy()
        adjusted["predicted_ms"] = adjusted["predicted_ms"] * drift["now_over_build"]
        adjusted["error_pct"] = (adjusted["predicted_ms"] - adjusted["measured_ms"]) / adjusted["measured_ms"] * 100.0
        summary["random_if_drift_removed"] = error_stats(adjusted)
    fingerprint = lut.fingerprint
    report = {
        "lut": str(lut_path),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "n_random": args.n,
        "seed": args.seed,
        "rounds": args.rounds,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "drift": drift,
        "correction": {k: v for k, v in dataclasses.asdict(lut.file.correction).items() if k != "candidates" and v is not None},
        "summary": summary,
        "repeatability": repeatability(frame),
    }
    frame.to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    title = (
        f"{fingerprint.get('device')} {fingerprint.get('cpu_model')} {fingerprint.get('engine')} {fingerprint.get('engine_version')} "
        f"{fingerprint.get('threads')} thread(s), {fingerprint.get('resolution')}px\n"
        f"random n={summary['random']['n']}: {summary['random']['within_10pct']:.0%} within 10 %, "
        f"{summary['random']['within_5pct']:.0%} within 5 %"
    )
    render_plot(frame, paths["png"], title)
    for name, stats_row in summary.items():
        print(f"{name:24s} {_format(stats_row)}")
    if report["repeatability"]:
        again = report["repeatability"]
        print(
            f"repeatability: every round of a network within 5 % of its median for {again['rounds_within_5pct_of_median']:.0%} "
            f"of networks, within 10 % for {again['rounds_within_10pct_of_median']:.0%}; median max/min of rounds "
            f"{again['median_max_over_min']:.3f} (errors cannot be reliably smaller than this)"
        )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if drift:
        print(f"reference part {drift['reference_key']}: {drift['reference_now_ms']:.4f} ms now vs {drift['reference_build_ms']:.4f} ms at build ({drift['now_over_build']:.3f}x)")
    print(f"wrote {paths['csv']}, {paths['png']}, {paths['json']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
