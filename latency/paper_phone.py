"""An estimated LUT of the paper's ARM phone, calibrated from host measurements.

The readme of RepGhostNet publishes ARM latencies of its eight widths, and its figure gives
GhostNet 0.5x and 1.0x on the same phone. Those ten networks are points of our space. Each
entry of the estimated LUT stays a measured host cost of its part, transformed by a calibration
of a few parameters fitted on those ten points, so that SE, kernel, width and concat choices keep
their measured relative costs. Every figure that comes out of it is an estimate, and says so.

    python -m latency.paper_phone --base results/lut/host-mnn-t1.json \
        --compare ort=results/lut/host-ort-t1.json --out results/lut/paper-phone.json

Several calibration forms are fitted; the written one has the lowest leave-one-out error over
the ten points, and the figure that judges that choice is the nested leave-one-out (the form
chosen inside each fold from the other nine points alone), reported as ``<base>-nested``.

The paper timed with MNN, and MNN-measured host entries transfer better than ONNX Runtime ones
(``paper-phone.loo.json`` has the leave-one-out table of both); ``--compare`` judges another
base, which needs entries only for the ten networks (``space/paper_reference.yaml``'s LUT).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from repghost import NetConfig, build, count, ghostnet_config, part_key, reference, repghostnet_config

from space import record_path

from .cli import DefaultsFormatter
from .lut import load_lut, lut_space
from .lut_format import Correction as LutCorrection
from .lut_format import Entry, Fingerprint, LutFile, Overhead, Provenance, read_lut_file, write_lut_file

KINDS = ("reparam", "concat", "other")
GAMMAS = tuple(np.round(np.arange(0.70, 1.301, 0.05), 2))


@dataclass(frozen=True)
class Point:
    """A network with a published latency on the paper's phone."""

    name: str
    config: NetConfig
    published_ms: float
    source: str


def reference_points() -> list[Point]:
    """The eight RepGhostNets of the readme, and GhostNet 0.5x/1.0x read off the readme's figure
    (the figure's GhostNet points are matched to widths by their published top-1)."""
    ref = reference()
    points = [
        Point(f"RepGhostNet {w}x", repghostnet_config(float(w)), float(row[2]), "readme")
        for w, row in ref["repghostnet"].items()
    ]
    for width in ("0.5", "1.0"):
        top1 = ref["ghostnet_paper"][width][2]
        latency_ms, _ = min(ref["ghostnet_fig"], key=lambda row: abs(row[1] - top1))
        points.append(Point(f"GhostNet {width}x", ghostnet_config(float(width)), float(latency_ms), "readme figure (approximate)"))
    return points


def kind_of(key: str) -> str:
    if key.startswith("block:reparam"):
        return "reparam"
    if key.startswith("block:concat"):
        return "concat"
    return "other"


@dataclass(frozen=True)
class Calibration:
    """``phone entry = scale[kind] * host_entry ** gamma``; a network adds ``offset_ms`` once.
    ``host_entry`` is the measured part minus the cost of a session call."""

    name: str
    scale: dict[str, float]
    gamma: float
    offset_ms: float

    def entry_ms(self, key: str, host_ms: float) -> float:
        return self.scale[kind_of(key)] * max(host_ms, 0.0) ** self.gamma

    def predict(self, host_parts: list[tuple[str, float]]) -> float:
        return sum(self.entry_ms(k, v) for k, v in host_parts) + self.offset_ms


# Which scale each kind of part shares, per calibration model (the offset is always fitted).
COLUMNS = {
    "scale": {"reparam": 0, "concat": 0, "other": 0},
    "concat-scale": {"reparam": 0, "other": 0, "concat": 1},
    "per-kind": {"reparam": 0, "concat": 1, "other": 2},
    "power": {"reparam": 0, "concat": 0, "other": 0},
}


def _fit(model: str, parts: list[list[tuple[str, float]]], published: np.ndarray) -> Calibration:
    """Least squares on relative error. Models: ``scale`` (one scale + offset), ``concat-scale``
    (concat blocks get their own scale), ``per-kind`` (blocks, concat blocks, stem and head each
    their own scale), ``power`` (one scale and an exponent on every entry)."""
    columns = COLUMNS[model]
    n_scales = max(columns.values()) + 1
    gammas = GAMMAS if model == "power" else (1.0,)
    best: tuple[float, Calibration] | None = None
    for gamma in gammas:
        design = np.zeros((len(parts), n_scales + 1))
        for row, network in enumerate(parts):
            for key, host_ms in network:
                design[row, columns[kind_of(key)]] += max(host_ms, 0.0) ** gamma
            design[row, -1] = 1.0
        weighted = design / published[:, None]
        used = np.flatnonzero(np.abs(weighted).sum(axis=0) > 0)
        solution = np.zeros(design.shape[1])
        solution[used] = np.linalg.lstsq(weighted[:, used], np.ones(len(parts)), rcond=None)[0]
        # A scale no network of the fit exercises (e.g. concat, with no GhostNet left) takes the
        # mean of the fitted ones.
        fitted = [i for i in used if i < n_scales]
        for i in range(n_scales):
            if i not in used:
                solution[i] = float(np.mean(solution[fitted]))
        scale = {kind: float(solution[columns[kind]]) for kind in KINDS}
        calibration = Calibration(model, scale, float(gamma), float(solution[-1]))
        error = float(np.sum((np.array([calibration.predict(p) for p in parts]) / published - 1) ** 2))
        if best is None or error < best[0]:
            best = (error, calibration)
    return best[1]


MODELS = tuple(COLUMNS)


def leave_one_out(model: str, parts: list[list[tuple[str, float]]], published: np.ndarray) -> np.ndarray:
    """Each point predicted by a calibration fitted on all the others."""
    predictions = np.zeros(len(parts))
    for i in range(len(parts)):
        keep = [j for j in range(len(parts)) if j != i]
        calibration = _fit(model, [parts[j] for j in keep], published[keep])
        predictions[i] = calibration.predict(parts[i])
    return predictions


def choose_model(parts: list[list[tuple[str, float]]], published: np.ndarray) -> str:
    """The calibration form with the lowest leave-one-out mean error on these points (the rule
    that picks the written LUT's form)."""
    errors = {model: float(np.mean(np.abs(leave_one_out(model, parts, published) / published - 1))) for model in MODELS}
    return min(MODELS, key=lambda model: errors[model])


def nested_leave_one_out(parts: list[list[tuple[str, float]]], published: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each point predicted by the whole procedure run without it: the form chosen by
    leave-one-out on the other points alone, then fitted on them. Choosing the best of several
    forms on the same points that judge it flatters it; this does not."""
    predictions, chosen = np.zeros(len(parts)), []
    for i in range(len(parts)):
        keep = [j for j in range(len(parts)) if j != i]
        model = choose_model([parts[j] for j in keep], published[keep])
        predictions[i] = _fit(model, [parts[j] for j in keep], published[keep]).predict(parts[i])
        chosen.append(model)
    return predictions, chosen


@functools.lru_cache(maxsize=None)
def _mmacs(config: NetConfig) -> float:
    """fvcore's MACs of a network, in millions: seconds each at 224 px, so counted once per process."""
    return count(build(config)).macs / 1e6


def macs_baseline(points: list[Point]) -> np.ndarray:
    """The structure-blind baseline: ms = a * MMACs + b, fitted on the RepGhostNets only (the
    published FLOPs fit), leave-one-out for each of them, plain fit for the GhostNets."""
    macs = np.array([_mmacs(p.config) for p in points])
    published = np.array([p.published_ms for p in points])
    rep = [i for i, p in enumerate(points) if p.name.startswith("RepGhostNet")]
    predictions = np.zeros(len(points))
    for i in range(len(points)):
        fit_on = [j for j in rep if j != i]
        a, b = np.polyfit(macs[fit_on], published[fit_on], 1)
        predictions[i] = a * macs[i] + b
    return predictions


def host_parts(config: NetConfig, entry_ms: Callable[[str], float], resolution: int) -> list[tuple[str, float]]:
    return [(key, entry_ms(key)) for key in (part_key(s) for s in config.parts(resolution))]


def error_table(points: list[Point], predictions: dict[str, np.ndarray]) -> list[dict]:
    rows = []
    for i, point in enumerate(points):
        row = {"network": point.name, "published_ms": point.published_ms}
        for name, values in predictions.items():
            row[f"{name}_ms"] = round(float(values[i]), 2)
            row[f"{name}_err_pct"] = round(100 * (float(values[i]) / point.published_ms - 1), 1)
        rows.append(row)
    return rows


def summarize(points: list[Point], values: np.ndarray) -> dict[str, float]:
    errors = np.abs(values / np.array([p.published_ms for p in points]) - 1) * 100
    rep = np.array([p.name.startswith("RepGhostNet") for p in points])
    return {
        "mean_err_pct_all": round(float(errors.mean()), 2),
        "mean_err_pct_repghost": round(float(errors[rep].mean()), 2),
        "max_err_pct_repghost": round(float(errors[rep].max()), 2),
        "max_err_pct_ghostnet": round(float(errors[~rep].max()), 2),
    }


def estimated_lut(base: LutFile, base_path: str, calibration: Calibration, loo: dict) -> LutFile:
    """The phone LUT: every base entry transformed; session cost folded into the offset."""
    session_ms = float(base.overhead.session_call_ms)
    entries = {
        key: Entry(median_ms=round(calibration.entry_ms(key, e.value(base.fingerprint.statistic) - session_ms), 6), host_median_ms=e.value(base.fingerprint.statistic))
        for key, e in base.entries.items()
    }
    fp = base.fingerprint
    fingerprint = Fingerprint(
        device="paper-phone",
        engine=f"estimate from {fp.engine}",
        engine_version=fp.engine_version,
        threads=fp.threads,
        space_file=fp.space_file,
        space_hash=fp.space_hash,
        resolution=fp.resolution,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        statistic=fp.statistic,
    )
    provenance = Provenance(
        estimate_of="the ARM phone of the RepGhostNet readme (ONNX -> MNN; phone, threads and MNN version not published)",
        base_lut=record_path(base_path),
        base_fingerprint={k: getattr(fp, k) for k in ("device", "cpu_model", "arch", "engine", "engine_version", "threads", "opt_level", "statistic", "date")},
        calibration={"name": calibration.name, "scale": calibration.scale, "gamma": calibration.gamma, "offset_ms": calibration.offset_ms},
        leave_one_out=loo,
    )
    return LutFile(
        fingerprint=fingerprint,
        complete=True,
        entries=entries,
        overhead=Overhead(session_call_ms=0.0, how="folded into the calibration offset"),
        correction=LutCorrection(
            model=f"paper-phone {calibration.name}",
            scale=1.0,
            ms_per_part=0.0,
            ms_per_weight_mb=0.0,
            offset_ms=calibration.offset_ms,
            how="entries are scale[kind] * (host entry - host session call) ** gamma; offset added once per network",
        ),
        provenance=provenance,
        **carried_quality(base, base_path),
    )


def carried_quality(base: LutFile, base_path: str) -> dict:
    """The quality mark of an estimate: its base's, with the base named in each reason (an
    estimate is no better than the host entries it transforms)."""
    return {"quality": base.quality, "quality_notes": [f"its base {record_path(base_path)}: {note}" for note in base.quality_notes]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latency.paper_phone", description=__doc__.splitlines()[0], formatter_class=DefaultsFormatter)
    parser.add_argument("--base", required=True, help="host LUT whose entries are calibrated (must cover the space)")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=LUT", help="another base to compare (e.g. mnn=results/lut/x.json); it needs entries only for the ten reference networks")
    parser.add_argument("--out", default="results/lut/paper-phone.json", help="estimated LUT to write")
    parser.add_argument("--report", default=None, help="leave-one-out table as JSON (default: beside --out, .loo.json)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    base = read_lut_file(args.base)
    if not base.complete or base.estimated:
        raise ValueError(f"--base {args.base} must be a finished, measured LUT")
    lut_space(args.base, base)  # the space it records is still the one it was built for
    bases = {base.fingerprint.engine: (args.base, base)}
    for item in args.compare:
        name, _, path = item.partition("=")
        if not path:
            raise ValueError(f"--compare takes NAME=LUT, got {item!r}")
        bases[name] = (path, read_lut_file(path))
    points = reference_points()
    published = np.array([p.published_ms for p in points])
    predictions = {"macs": macs_baseline(points)}
    summary = {"macs": summarize(points, predictions["macs"])}
    fitted: dict[str, tuple] = {}
    folds: dict[str, list[str]] = {}
    for name, (path, data) in bases.items():
        session_ms = float(data.overhead.session_call_ms) if data.overhead else 0.0
        resolution = int(data.fingerprint.resolution)

        def entry(key: str, data: LutFile = data, session_ms: float = session_ms, path: str = path) -> float:
            if key not in data.entries:
                raise ValueError(f"LUT {path} has no entry for {key} (a part of a reference network)")
            return data.entries[key].value(data.fingerprint.statistic) - session_ms

        parts = [host_parts(p.config, entry, resolution) for p in points]
        label = f"{name}-nested"
        predictions[label], folds[label] = nested_leave_one_out(parts, published)
        summary[label] = summarize(points, predictions[label])
        for model in MODELS:
            label = f"{name}-{model}"
            predictions[label] = leave_one_out(model, parts, published)
            summary[label] = summarize(points, predictions[label])
            fitted[label] = (name, model, parts)
    base_name = next(iter(bases))
    parts = fitted[f"{base_name}-{MODELS[0]}"][2]
    model = choose_model(parts, published)
    chosen = f"{base_name}-{model}"
    calibration = _fit(model, parts, published)
    loo = {
        "chosen": chosen,
        "evidence": f"{base_name}-nested",
        "how": (
            "the written form is the one of lowest leave-one-out mean error over the ten points; the figure that judges "
            f"that procedure is '{base_name}-nested' (the form chosen inside each fold, on the nine other points alone); "
            "the per-form rows are leave-one-out with the form fixed, for comparison"
        ),
        "nested_forms_chosen": folds,
        "summary": summary,
        "table": error_table(points, predictions),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_lut_file(out, estimated_lut(base, args.base, calibration, loo))
    report = Path(args.report) if args.report else out.with_suffix(".loo.json")
    report.write_text(json.dumps(loo, indent=2) + "\n")
    load_lut(out)  # the written file loads as a LUT
    print(f"{'calibration':<22} {'mean % (all)':>12} {'mean % (rep)':>12} {'max % (rep)':>11} {'max % (ghost)':>13}")
    for label, row in summary.items():
        mark = "  <- written" if label == chosen else "  <- the evidence (form chosen inside each fold)" if label == loo["evidence"] else ""
        print(f"{label:<22} {row['mean_err_pct_all']:12.2f} {row['mean_err_pct_repghost']:12.2f} {row['max_err_pct_repghost']:11.2f} {row['max_err_pct_ghostnet']:13.2f}{mark}")
    print(f"wrote {out} (estimated, {len(base.entries)} entries, calibration {calibration.name}: scale {calibration.scale}, gamma {calibration.gamma:g}, offset {calibration.offset_ms:.2f} ms) and {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

