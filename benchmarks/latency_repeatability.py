"""Does the ground truth repeat? Agreement between validation passes over the same networks.

Every pair of passes (``python -m latency.validate ... --name NAME`` writes one CSV each) is
compared network by network: the share within 5 %, the mean and worst absolute difference, and
the median ratio (a shift of the whole machine). With four passes, the minimum over two passes
is compared with the minimum over the other two as well: does spreading a ground truth over
more time make it repeat?

    python benchmarks/latency_repeatability.py results/lut/repeatability/host-ort-t1.repeat-*.csv
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd


def agreement(a: pd.Series, b: pd.Series) -> dict[str, float]:
    ratio = (b / a).dropna()
    diff = np.abs(ratio - 1.0) * 100.0
    return {"within_5pct": round(float(np.mean(diff <= 5.0)), 3), "mean_abs_pct": round(float(diff.mean()), 2),
            "worst_pct": round(float(diff.max()), 2), "median_ratio": round(float(ratio.median()), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("passes", nargs="+", type=Path, help="validation CSVs of the same networks, in time order")
    args = parser.parse_args()
    if len(args.passes) < 2:
        parser.error("give at least two validation CSVs")
    measured = {path.name: pd.read_csv(path).set_index("arch_id")["measured_ms"] for path in args.passes}
    names = list(measured)
    report: dict[str, object] = {
        f"{a} vs {b}": agreement(measured[a], measured[b]) for a, b in itertools.combinations(names, 2)
    }
    if len(names) >= 4:
        first, second = names[:4:2], names[1:4:2]  # interleaved halves of the first four: 1+3 against 2+4
        for left, right in ((names[:2], names[2:4]), (first, second)):
            low = lambda group: np.minimum(measured[group[0]], measured[group[1]])  # noqa: E731
            report[f"min({' + '.join(left)}) vs min({' + '.join(right)})"] = agreement(low(left), low(right))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
