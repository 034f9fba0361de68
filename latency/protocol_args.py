"""The timing protocol's command-line options, shared by every command that measures."""

from __future__ import annotations

import argparse

from .timing import CLOCKS, DEFAULT_STATISTIC, STATISTICS, RunPolicy


POLICY_OPTIONS = ("rounds", "burst_runs", "warmup_runs", "chunk_items", "clock")
PROTOCOL_OPTIONS = (*POLICY_OPTIONS, "statistic")


def protocol_defaults() -> dict[str, object]:
    """Each protocol option's default, by its argparse dest."""
    default = RunPolicy()
    return {**{name: getattr(default, name) for name in POLICY_OPTIONS}, "statistic": DEFAULT_STATISTIC}


def add_protocol_arguments(parser: argparse.ArgumentParser, unless: str | None = None) -> None:
    """``--rounds --burst-runs --warmup-runs --chunk-items --clock --statistic``. With ``unless``
    (a sentence such as "the LUT's with --lut") the parsed defaults are None, so that a command can
    tell an option given from one left out; ``fill_protocol_defaults`` then supplies them."""
    defaults = protocol_defaults()

    def add(flag: str, help: str, **kwargs: object) -> None:
        dest = flag[2:].replace("-", "_")
        if unless is None:
            parser.add_argument(flag, default=defaults[dest], help=help, **kwargs)
        else:
            parser.add_argument(flag, default=None, help=f"{help} (default: {unless}, else {defaults[dest]})", **kwargs)

    add("--rounds", "passes over the items of a chunk (one burst per item per round)", type=int)
    add("--burst-runs", "timed calls per burst", type=int)
    add("--warmup-runs", "untimed calls at the start of each burst", type=int)
    add("--chunk-items", "items timed together (interleaved) at most", type=int)
    add("--clock", "wall time, or CPU time of the timing thread (1 thread only)", choices=sorted(CLOCKS))
    add("--statistic", "which figure of each item's samples predicts and is compared (benchmarks/README.md: how the choice was measured)", choices=STATISTICS)


def fill_protocol_defaults(args: argparse.Namespace) -> None:
    """Set each protocol option left out (None) to its default."""
    for name, value in protocol_defaults().items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def policy_from_args(args: argparse.Namespace) -> RunPolicy:
    """The run policy the options describe (a one-line ValueError when one is out of range)."""
    return RunPolicy(rounds=args.rounds, burst_runs=args.burst_runs, warmup_runs=args.warmup_runs, chunk_items=args.chunk_items, clock=args.clock)
