"""Which statistic a LUT should predict with: held-out error and pass-to-pass agreement of each.

A LUT keeps every statistic of each entry and calibration network (minimum, 10th percentile,
median), and a validation pass keeps every statistic of each network, so one build and two
passes answer the question for all three: the correction is refitted on the calibration
networks read as each statistic, and the validation networks (held out) are predicted and
compared with the same statistic of their own samples; two passes over the same networks give
each statistic's agreement with itself.

    python benchmarks/latency_statistic.py --lut results/lut/host-ort-t1.json \
        --passes results/lut/host-ort-t1.pass1.csv results/lut/host-ort-t1.pass2.csv
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latency.corrections import fit_correction  # noqa: E402
from latency.lut import LUT  # noqa: E402
from latency.lut_format import read_lut_file  # noqa: E402
from latency.timing import STATISTICS  # noqa: E402
from repghost import NetConfig  # noqa: E402


def lut_as(path: str, statistic: str) -> LUT:
    """The LUT at ``path`` read as ``statistic``: entries, and calibration refitted on it. (The
    session call is the build's, measured as the LUT's own statistic: a small constant.)"""
    data = copy.deepcopy(read_lut_file(path))
    data.fingerprint.statistic = statistic
    for net in data.calibration.nets.values():
        net.measured_ms = float(getattr(net, f"{statistic}_ms"))
    data.correction = fit_correction(data, int(data.fingerprint.resolution))
    return LUT(data, path)


def held_out(lut_path: str, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    rows = {}
    for statistic in STATISTICS:
        lut = lut_as(lut_path, statistic)
        measured = frame[f"measured_{statistic}_ms"].to_numpy(dtype=float)
        predicted = np.array([lut.predict(NetConfig.from_json(text)) for text in frame["config"]])
        errors = np.abs(predicted / measured - 1) * 100
        rows[statistic] = {
            "correction": lut.correction.model,
            "mean_abs_err_pct": round(float(errors.mean()), 2),
            "within_5pct": round(float(np.mean(errors <= 5)), 3),
            "within_10pct": round(float(np.mean(errors <= 10)), 3),
            "max_abs_err_pct": round(float(errors.max()), 2),
        }
    return rows


def agreement(first: pd.DataFrame, second: pd.DataFrame) -> dict[str, dict[str, float]]:
    both = first.merge(second, on="arch_id", suffixes=("_1", "_2"))
    rows = {}
    for statistic in STATISTICS:
        ratio = both[f"measured_{statistic}_ms_2"].to_numpy(dtype=float) / both[f"measured_{statistic}_ms_1"].to_numpy(dtype=float)
        deviation = np.abs(ratio - 1) * 100
        rows[statistic] = {
            "n": int(len(both)),
            "within_5pct": round(float(np.mean(deviation <= 5)), 3),
            "mean_abs_dev_pct": round(float(deviation.mean()), 2),
            "worst_pct": round(float(deviation.max()), 2),
            "median_ratio": round(float(np.median(ratio)), 4),
        }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lut", required=True)
    parser.add_argument("--passes", nargs="+", required=True, help="validation CSVs of the LUT (one or two passes)")
    args = parser.parse_args()
    frames = [pd.read_csv(path) for path in args.passes]
    report = {"held_out": {path: held_out(args.lut, frame[frame["kind"] == "random"]) for path, frame in zip(args.passes, frames)}}
    if len(frames) == 2:
        report["pass_to_pass"] = agreement(frames[0], frames[1])
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
