"""What one LUT entry costs, the projected build time of a space, and whether exporting in a
second process disturbs the timings.

    python benchmarks/latency_build_cost.py [--space PATH] [--sample 40] [--rounds 3]

1. Cost: exports and times ``--sample`` random parts of the space in this process (export,
   session + timing, each in seconds), and projects the build time both inline (export + timing
   per entry) and with the export worker (the slower of the two per entry).
2. Disturbance: times a fixed set of exported parts in interleaved rounds, A with the other core
   idle (as far as this benchmark goes), B with a process exporting parts on the other core, and
   reports the B/A ratio of medians per part (1.0 = no disturbance).
Prints the load average before and after: on a busy machine the figures mean little.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import repghost
import space
from latency import RunPolicy, get_engine
from latency.exporter import ExportTask, export_task, worker_cpus


def _busy_exporter(specs, folder: str, stop, cpu) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import torch

    torch.set_num_threads(1)
    index = 0
    while not stop.is_set():
        export_task(ExportTask("busy", spec=specs[index % len(specs)]), folder, 17, 100000 + index % 4)
        index += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--space", default=None)
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    the_space = space.load_space(args.space)
    parts = the_space.parts()
    rng = random.Random(args.seed)
    sample = rng.sample(parts, min(args.sample, len(parts)))
    engine = get_engine("ort", threads=1)
    policy = RunPolicy()
    import torch

    torch.set_num_threads(1)
    export_s, timing_s, medians = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        exported = []
        for index, spec in enumerate(sample):
            t0 = time.perf_counter()
            item = export_task(ExportTask(repghost.part_key(spec), spec=spec), folder, 17, index)
            t1 = time.perf_counter()
            medians.append(engine.measure(item.onnx_path, item.input_shape, policy).median_ms)
            t2 = time.perf_counter()
            export_s.append(t1 - t0)
            timing_s.append(t2 - t1)
            exported.append(item)
        n = len(parts)
        e, t = statistics.mean(export_s), statistics.mean(timing_s)
        print(f"space {the_space.path}: {n} distinct parts; sample of {len(sample)}")
        print(f"per entry: export {e * 1000:.0f} ms (median {statistics.median(export_s) * 1000:.0f}), timing {t * 1000:.0f} ms (median {statistics.median(timing_s) * 1000:.0f}); entry median latency {statistics.median(medians):.3f} ms")
        print(f"projected build: inline {n * (e + t) / 60:.1f} min, with export worker {n * max(e, t) / 60:.1f} min (+ calibration networks)")

        cpus = worker_cpus()
        if cpus is None:
            print("one core only: no disturbance test")
            return 0
        os.sched_setaffinity(0, cpus[1])
        subset = exported[:20]
        context = multiprocessing.get_context("spawn")
        results: dict[str, list[float]] = {"A": [], "B": []}
        per_part: dict[str, list[list[float]]] = {"A": [[] for _ in subset], "B": [[] for _ in subset]}
        for round_index in range(args.rounds):
            for mode in ("A", "B") if round_index % 2 == 0 else ("B", "A"):
                stop = context.Event()
                worker = None
                if mode == "B":
                    worker = context.Process(target=_busy_exporter, args=(sample, folder, stop, cpus[0]), daemon=True)
                    worker.start()
                    time.sleep(3.0)  # let it import torch and start exporting
                for i, item in enumerate(subset):
                    per_part[mode][i].append(engine.measure(item.onnx_path, item.input_shape, policy).median_ms)
                if worker is not None:
                    stop.set()
                    worker.join(timeout=30)
        ratios = [statistics.median(b) / statistics.median(a) for a, b in zip(per_part["A"], per_part["B"])]
        print(f"disturbance B/A over {len(subset)} parts, {args.rounds} interleaved rounds: median ratio {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
