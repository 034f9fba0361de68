"""Does interleaving read cache-cold parts? Sums of parts timed three ways, per network.

An earlier trial of round-robin bursts read sums of parts 9-52 % higher than timing each part
alone: a part's first call after the others ran finds its weights out of cache. The protocol
(``latency.timing``) discards the first ``warmup_runs`` calls of each burst. Per network, its
parts are timed

- ``interleaved``: the protocol as a LUT build runs it (bursts round-robin, warm-up discarded),
- ``cold``: round-robin bursts of one timed call and no warm-up (every sample cache-cold),
- ``alone``: each part by itself, one long contiguous burst after a warm-up,

and the sums of the minimum (less one session call per part) are compared, with the whole
network timed by the protocol beside them.

    python benchmarks/latency_protocol.py --networks 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import repghost  # noqa: E402
from latency import RunPolicy, get_engine  # noqa: E402
from latency.overhead import trivial_onnx  # noqa: E402
from space import load_space  # noqa: E402

MODES = {
    "interleaved": RunPolicy(),
    "cold": RunPolicy(rounds=20, burst_runs=1, warmup_runs=0),
    "alone": RunPolicy(rounds=1, burst_runs=20, warmup_runs=10),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=10, help="random networks of the default space (plus RepGhostNet 0.5x and 1.0x)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    space = load_space(None)
    rng = random.Random(args.seed)
    configs = [("repghostnet_0.5x", repghost.repghostnet_config(0.5)), ("repghostnet_1.0x", repghost.repghostnet_config(1.0))]
    configs += [(f"random_{i}", space.sample(rng)) for i in range(args.networks)]
    engine = get_engine("ort", threads=1)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        trivial = (trivial_onnx(Path(folder) / "trivial.onnx"), (1, 1))
        for name, cfg in configs:
            parts = []
            for index, spec in enumerate(cfg.parts(space.resolution)):
                path = Path(folder) / f"{name}-{index}.onnx"
                repghost.export_onnx(repghost.build_part(spec, deploy=True), path, input_shape=spec.input_shape())
                parts.append((str(path), tuple(spec.input_shape())))
            whole = Path(folder) / f"{name}.onnx"
            shape = (1, 3, space.resolution, space.resolution)
            repghost.export_onnx(repghost.build(cfg, deploy=True), whole, input_shape=shape)
            row = {"network": name, "parts": len(parts)}
            for mode, policy in MODES.items():
                if mode == "alone":
                    measured = [engine.measure_many([item], policy)[0] for item in [trivial, *parts]]
                else:
                    measured = engine.measure_many([trivial, *parts], policy)
                session = measured[0].min_ms
                row[f"{mode}_sum_ms"] = round(sum(m.min_ms - session for m in measured[1:]), 4)
                if mode == "interleaved":
                    row["first_warmup_over_min"] = round(float(np.median([m.meta["first_warmup_ms"] / m.min_ms for m in measured[1:]])), 3)
            row["whole_ms"] = round(engine.measure_many([(str(whole), shape), trivial], RunPolicy())[0].min_ms, 4)
            for mode in ("interleaved", "cold"):
                row[f"{mode}_over_alone"] = round(row[f"{mode}_sum_ms"] / row["alone_sum_ms"], 4)
            row["whole_over_interleaved"] = round(row["whole_ms"] / row["interleaved_sum_ms"], 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {
        key: {"mean": round(float(np.mean([r[key] for r in rows])), 4), "min": min(r[key] for r in rows), "max": max(r[key] for r in rows)}
        for key in ("interleaved_over_alone", "cold_over_alone", "whole_over_interleaved", "first_warmup_over_min")
    }
    print(json.dumps({"summary": summary, "load_average_before": load_before, "load_average_after": os.getloadavg()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
