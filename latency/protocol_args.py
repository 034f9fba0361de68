"""The timing protocol's command-line options, shared by every command that measures."""

from __future__ import annotations

import argparse

from .timing import CLOCKS, DEFAULT_STATISTIC, STATISTICS, RunPolicy


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rounds --burst-runs --warmup-runs --chunk-items --clock --statistic``."""
    default = RunPolicy()
    parser.add_argument("--rounds", type=int, default=default.rounds, help="passes over the items of a chunk (one burst per item per round)")
    parser.add_argument("--burst-runs", type=int, default=default.burst_runs, help="timed calls per burst")
    parser.add_argument("--warmup-runs", type=int, default=default.warmup_runs, help="untimed calls at the start of each burst")
    parser.add_argument("--chunk-items", type=int, default=default.chunk_items, help="items timed together (interleaved) at most")
    parser.add_argument("--clock", default=default.clock, choices=sorted(CLOCKS), help="wall time, or CPU time of the timing thread (1 thread only)")
    parser.add_argument(
        "--statistic", default=DEFAULT_STATISTIC, choices=STATISTICS,
        help="which figure of each item's samples predicts and is compared (benchmarks/README.md: how the choice was measured)",
    )


def policy_from_args(args: argparse.Namespace) -> RunPolicy:
    """The run policy the options describe (a one-line ValueError when one is out of range)."""
    return RunPolicy(rounds=args.rounds, burst_runs=args.burst_runs, warmup_runs=args.warmup_runs, chunk_items=args.chunk_items, clock=args.clock)
