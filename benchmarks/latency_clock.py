"""Wall clock or thread clock: which ground truth repeats when a training shares the machine?

The same networks are timed by the protocol (``latency.timing``, interleaved bursts, the
minimum kept) with each clock: after an untimed pass, on the machine as it is, then with a
two-thread torch training running beside them (RepGhostNet 0.5x on random 32 px images,
started and stopped by this script), then as it is again. Per clock and pair of readings: the
share of networks that agree within 5 %, the mean and worst change, and the median/min ratio of
each reading (how much the samples scatter).

    python benchmarks/latency_clock.py --networks 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import repghost  # noqa: E402
from latency import RunPolicy, get_engine  # noqa: E402
from space import load_space  # noqa: E402

CLOCKS = ("wall", "thread")
TRAINING = """
import torch, repghost
torch.set_num_threads(2)
torch.manual_seed(0)
net = repghost.build(repghost.repghostnet_config(0.5, num_classes=10))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
while True:
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
"""


def measure(engine, items, policy: RunPolicy) -> dict[str, list[float]]:
    """Per clock, each item's minimum and median/min (the clocks alternate, so both see the same weather)."""
    out = {clock: [] for clock in CLOCKS}
    for clock in CLOCKS:
        for m in engine.measure_many(items, RunPolicy(**{**policy.to_dict(), "clock": clock})):
            out[clock].append((m.min_ms, m.median_ms / m.min_ms))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--networks", type=int, default=20, help="random networks of the default space (plus RepGhostNet 0.5x and 1.0x)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    parser.add_argument("--rounds", type=int, default=RunPolicy().rounds, help="rounds of the protocol (samples per item: rounds x burst runs)")
    parser.add_argument("--warm-s", type=float, default=20.0, help="seconds the training runs before the loaded reading")
    args = parser.parse_args()
    space = load_space(None)
    rng = random.Random(args.seed)
    configs = [repghost.repghostnet_config(0.5), repghost.repghostnet_config(1.0)] + [space.sample(rng) for _ in range(args.networks)]
    engine = get_engine("ort", threads=1)
    policy = RunPolicy(rounds=args.rounds, chunk_items=len(configs))
    readings = {}
    with tempfile.TemporaryDirectory() as folder:
        items = []
        for i, cfg in enumerate(configs):
            path = Path(folder) / f"{i}.onnx"
            shape = (1, 3, space.resolution, space.resolution)
            repghost.export_onnx(repghost.build(cfg, deploy=True), path, input_shape=shape)
            items.append((str(path), shape))
        measure(engine, items, policy)  # untimed pass: the process's first sessions pay one-time costs
        readings["quiet 1"] = (os.getloadavg(), measure(engine, items, policy), os.getloadavg())
        training = subprocess.Popen([sys.executable, "-c", TRAINING], cwd=Path(__file__).resolve().parents[1])
        try:
            time.sleep(args.warm_s)
            readings["training beside"] = (os.getloadavg(), measure(engine, items, policy), os.getloadavg())
        finally:
            training.kill()
            training.wait()
        time.sleep(args.warm_s)
        readings["quiet 2"] = (os.getloadavg(), measure(engine, items, policy), os.getloadavg())
    report = {"networks": len(configs), "policy": policy.to_dict(), "statistic": "min"}
    for label, (before, got, after) in readings.items():
        report[label] = {
            "load_before": [round(x, 2) for x in before],
            "load_after": [round(x, 2) for x in after],
            **{f"{clock}_median_over_min_mean": round(float(np.mean([r for _, r in got[clock]])), 3) for clock in CLOCKS},
        }
    for first, second in (("quiet 1", "quiet 2"), ("quiet 2", "training beside")):
        for clock in CLOCKS:
            a, b = readings[first][1][clock], readings[second][1][clock]
            change = np.array([y / x - 1.0 for (x, _), (y, _) in zip(a, b)]) * 100.0
            report[f"{clock}: {second} vs {first}"] = {
                "within_5pct_share": round(float(np.mean(np.abs(change) <= 5.0)), 3),
                "mean_change_pct": round(float(change.mean()), 2),
                "worst_change_pct": round(float(change[np.argmax(np.abs(change))]), 2),
                # what stays once the common shift (a slower or faster machine state) is taken out
                "within_5pct_share_shift_removed": round(float(np.mean(np.abs((1 + change / 100) / np.median(1 + change / 100) - 1) <= 0.05)), 3),
            }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
