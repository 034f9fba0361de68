"""Has the reference recipe trained to a plateau? Trains with ``python -m nas.train`` (resumable:
rerun the same command after a kill) and prints the validation curve and the gain of the last
20 % of epochs, which the recipe wants below 0.3 points.

    mkdir -p results/train && nohup .venv/bin/python benchmarks/train_plateau.py > results/train/plateau.log 2>&1 &
    .venv/bin/python benchmarks/train_plateau.py --report   # the curve so far, no training

Extra arguments go to nas.train (``--augment none`` for the comparison without augmentation;
give it its own ``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from nas.train import main as train
from nas.training import METRICS_FILE

DEFAULT_OUT = "results/train/plateau-repghostnet-0.5x-fashion-mnist-seed0"
PLATEAU_POINTS = 0.3


def plateau_gain(accuracies: list[float], epochs: int) -> tuple[int, float] | None:
    """(epoch the last 20 % starts after, gain in points from there to the last epoch), once the
    run is complete; None before."""
    if len(accuracies) < epochs or epochs < 5:
        return None
    start = epochs - math.ceil(0.2 * epochs)
    return start, 100 * (accuracies[-1] - accuracies[start - 1])


def report(out: Path) -> None:
    path = out / METRICS_FILE
    if not path.is_file():
        print(f"{path}: no epoch finished yet")
        return
    metrics = json.loads(path.read_text())
    epochs = metrics["settings"]["recipe"]["epochs"]
    accuracies = metrics["val_accuracies"]
    print(f"{out}: {len(accuracies)}/{epochs} epochs, {metrics['train_images_per_second']} img/s (training steps, wall clock), "
          f"{metrics['cpu_seconds']:.0f} CPU s, resumed after {metrics['resumed_after_epochs'] or 'never'}")
    for epoch, accuracy in enumerate(accuracies, 1):
        print(f"  epoch {epoch:3d}: {accuracy:.4f}")
    gain = plateau_gain(accuracies, epochs)
    if gain is not None:
        start, points = gain
        verdict = "plateau" if points < PLATEAU_POINTS else "NOT a plateau"
        print(f"last 20 % (epochs {start + 1}-{epochs}) gained {points:+.2f} points ({verdict}: threshold {PLATEAU_POINTS})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT, help="nas.train output folder")
    parser.add_argument("--report", action="store_true", help="only print the curve so far")
    args, rest = parser.parse_known_args(argv)
    out = Path(args.out)
    if not args.report:
        print(f"load average at start: {os.getloadavg()}", flush=True)
        code = train(["--width", "0.5", "--data", "fashion-mnist", "--threads", "1", "--out", str(out), *rest])
        print(f"load average at end: {os.getloadavg()}", flush=True)
        if code:
            return code
    report(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
