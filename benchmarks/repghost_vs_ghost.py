"""Does dropping concatenation save real time? RepGhostNet vs GhostNet, and one block vs its concat twin.

    python benchmarks/repghost_vs_ghost.py [--engines ort mnn] [--rounds 5] [--json OUT.json]

The paper's claim (measured with MNN on an ARM phone): RepGhostNet 0.5x runs in 25.1 ms where
GhostNet 0.5x takes about 32 ms. Here, on this machine's CPU, one thread, for each engine:

1. Whole networks: RepGhostNet 0.5x/1.0x and GhostNet 0.5x/1.0x (``repghost.repghostnet_config``
   / ``ghostnet_config``, deploy form, exported with ``repghost.export_onnx`` at 224x224).
2. Blocks: four bottlenecks of RepGhostNet 1.0x (stride 1 and 2, with and without SE) against their concat twins
   (the same block with ``reuse="concat"`` and the middle width doubled, as in GhostNet, where
   the cheap operation's channels are concatenated to the primary ones instead of added), each
   at its input shape in the network.

Every model is timed once per round with the agent's protocol (warm-up, then runs until the
median is stable); rounds interleave the pair (A B A B ...), so drift hits both alike. Reported:
the median over rounds of each model's median, the median within-run IQR, the min..max of the
round medians, and the median over rounds of the paired ratio B/A. The load average is printed
before and after: on a busy machine the figures mean little.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import repghost
from latency import RunPolicy, get_engine, machine_fingerprint

RESOLUTION = 224
NETWORK_PAIRS = ((0.5, 0.5), (1.0, 1.0))  # (RepGhostNet width, GhostNet width)
BLOCK_INDICES = (2, 3, 10, 11)  # bottlenecks of RepGhostNet 1.0x: 56x56; k5 stride 2 + SE at 56 and 14; 14x14 + SE


def concat_twin(spec: repghost.BlockSpec) -> repghost.BlockSpec:
    """The same bottleneck with GhostNet's concatenation: middle width doubled, no branch."""
    block = dataclasses.replace(spec.block, reuse="concat", branch="none", mid=2 * spec.block.mid)
    return repghost.BlockSpec(block.deploy_key(spec.in_chs), spec.in_chs, spec.size)


def export_models(folder: Path) -> list[tuple[str, str, tuple[str, ...], tuple[tuple[int, ...], ...]]]:
    """(group, pair label, (path A, path B), (shape A, shape B)) for every pair to compare."""
    pairs = []
    shape = (1, 3, RESOLUTION, RESOLUTION)
    for rep_width, ghost_width in NETWORK_PAIRS:
        paths = []
        for name, cfg in ((f"repghostnet_{rep_width}", repghost.repghostnet_config(rep_width)), (f"ghostnet_{ghost_width}", repghost.ghostnet_config(ghost_width))):
            path = folder / f"{name}.onnx"
            repghost.export_onnx(repghost.build(cfg, deploy=True).eval(), path, input_shape=shape)
            paths.append(str(path))
        pairs.append(("network", f"RepGhostNet {rep_width}x vs GhostNet {ghost_width}x", tuple(paths), (shape, shape)))
    parts = [p for p in repghost.repghostnet_config(1.0).parts(RESOLUTION) if isinstance(p, repghost.BlockSpec)]
    for index in BLOCK_INDICES:
        spec = parts[index]
        twin = concat_twin(spec)
        paths = []
        for label, block_spec in (("reparam", spec), ("concat", twin)):
            path = folder / f"block{index}_{label}.onnx"
            repghost.export_onnx(repghost.build_part(block_spec, deploy=True).eval(), path, input_shape=block_spec.input_shape())
            paths.append(str(path))
        b = spec.block
        label = f"block {index}: k{b.kernel} mid {b.mid} vs {twin.block.mid} out {b.out} s{b.stride}{' SE' if b.se_ratio else ''} @{spec.size}x{spec.size}"
        pairs.append(("block", label, tuple(paths), (spec.input_shape(), twin.input_shape())))
    return pairs


def run(engines: list[str], rounds: int, policy: RunPolicy) -> dict:
    load_before = os.getloadavg()
    results = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "rounds": rounds, "policy": policy.to_dict(), "engines": {}}
    with tempfile.TemporaryDirectory(prefix="rg-vs-ghost-") as folder:
        pairs = export_models(Path(folder))
        for engine_name in engines:
            engine = get_engine(engine_name, threads=1)
            rows = []
            for group, label, paths, shapes in pairs:
                runs: list[list] = [[], []]
                for _ in range(rounds):
                    for side in (0, 1):
                        runs[side].append(engine.measure(paths[side], shapes[side], policy))
                        print(f"{engine_name} {label} {'AB'[side]}: {runs[side][-1].median_ms:.4f} ms", file=sys.stderr, flush=True)
                medians = [[m.median_ms for m in side] for side in runs]
                rows.append(
                    {
                        "group": group,
                        "pair": label,
                        "a_ms": statistics.median(medians[0]),
                        "b_ms": statistics.median(medians[1]),
                        "a_iqr_ms": statistics.median(m.iqr_ms for m in runs[0]),
                        "b_iqr_ms": statistics.median(m.iqr_ms for m in runs[1]),
                        "a_range_ms": [min(medians[0]), max(medians[0])],
                        "b_range_ms": [min(medians[1]), max(medians[1])],
                        "b_over_a": statistics.median(b / a for a, b in zip(*medians)),
                    }
                )
            results["engines"][engine_name] = {"settings": machine_fingerprint(engine), "rows": rows}
    results["load_average_before"] = [round(x, 2) for x in load_before]
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


def render(results: dict) -> str:
    lines = [f"{results['date']}, {results['rounds']} interleaved rounds, 1 thread, load average "
             f"{results['load_average_before'][0]} -> {results['load_average_after'][0]}", ""]
    lines.append("| engine | pair (A vs B) | A ms (IQR; rounds min..max) | B ms (IQR; rounds min..max) | B/A |")
    lines.append("|---|---|---:|---:|---:|")
    for name, engine in results["engines"].items():
        version = engine["settings"]["engine_version"]
        for row in engine["rows"]:
            a = f"{row['a_ms']:.3f} ({row['a_iqr_ms']:.3f}; {row['a_range_ms'][0]:.3f}..{row['a_range_ms'][1]:.3f})"
            b = f"{row['b_ms']:.3f} ({row['b_iqr_ms']:.3f}; {row['b_range_ms'][0]:.3f}..{row['b_range_ms'][1]:.3f})"
            lines.append(f"| {name} {version} | {row['pair']} | {a} | {b} | {row['b_over_a']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--engines", nargs="+", default=["ort", "mnn"], help="engines to compare")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per pair")
    parser.add_argument("--burst-runs", type=int, default=6, help="timed runs per burst of the timing protocol (5 rounds of bursts per measurement)")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        print("error: --rounds must be at least 1", file=sys.stderr)
        return 2
    try:
        results = run(args.engines, args.rounds, RunPolicy(burst_runs=args.burst_runs))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
