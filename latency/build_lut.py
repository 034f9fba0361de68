"""Build a latency LUT for a search space: ``python -m latency.build_lut --device host``.

Every distinct deploy-form part the space can produce is exported with repghost and timed on the
device; the session-call cost and a correction fitted on a few whole networks make the sums
predict whole networks. Rerunning the same command resumes an interrupted build.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from space import SearchSpace, arch_id, load_space, record_path

from .cli import DefaultsFormatter
from .device_registry import DEVICES, get_device
from .engines import ENGINES, OPT_LEVELS, PRECISIONS, get_engine
from .lut_builder import BuildSettings, build
from .remote import RemoteError, add_remote_arguments, remote_settings
from .lut_builder import default_out
from .protocol_args import add_protocol_arguments, policy_from_args


def space_info(space: SearchSpace) -> dict[str, Any]:
    """What the fingerprint records about the space (its file by ``space.record_path``)."""
    return {"space_file": record_path(space.path), "space_hash": space.file_hash(), "resolution": int(space.resolution)}


def sample_distinct(space: Any, n: int, seed: int) -> list:
    """``n`` distinct architectures from ``space`` (fewer if the space is smaller), seeded."""
    rng = random.Random(seed)
    found: dict[str, Any] = {}
    for _ in range(max(20 * n, 100)):
        if len(found) >= n:
            break
        cfg = space.sample(rng)
        found.setdefault(arch_id(cfg), cfg)
    return list(found.values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m latency.build_lut",
        description=__doc__.splitlines()[0],
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--device", default="host", choices=sorted(DEVICES), help="where to measure")
    parser.add_argument("--remote", default=None, help="user@host[:port] of the machine to measure on over SSH")
    add_remote_arguments(parser)
    parser.add_argument("--space", default=None, help="search space YAML (default: the package's default space)")
    parser.add_argument("--engine", default="ort", choices=sorted(ENGINES), help="inference engine (deterministic: a known cost, for tests)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--precision", default=None, choices=PRECISIONS, help="arithmetic of engines that have the setting (mnn; default fp32)")
    parser.add_argument("--inter-op-threads", type=int, default=1, help="inter-op threads")
    parser.add_argument("--opt-level", default="all", choices=OPT_LEVELS, help="graph optimization level")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset of the exports")
    parser.add_argument("--out", default=None, help="LUT file (default results/lut/<device>-<engine>-t<threads>.json, or, when that file was measured on another machine, the same name ending in this machine's CPU)")
    parser.add_argument("--calibration-nets", type=int, default=24, help="whole networks measured to fit the correction")
    parser.add_argument("--calibration-seed", type=int, default=1_000_003, help="seed of the calibration networks' sampling")
    parser.add_argument("--export-worker", action="store_true", help="export parts in a second process while this one times (faster, may disturb timings)")
    add_protocol_arguments(parser)
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if threading.current_thread() is not threading.main_thread():
        return _main(args)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a plain `kill` saves what was measured, as Ctrl-C does
    try:
        return _main(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    try:
        device = get_device(args.device, remote=args.remote, **remote_settings(args))
        precision = {"precision": args.precision} if args.precision is not None else {}
        engine = get_engine(args.engine, threads=args.threads, inter_op_threads=args.inter_op_threads, opt_level=args.opt_level, **precision)
        if args.calibration_nets < 0:
            raise ValueError("--calibration-nets must be 0 or more")
        policy = policy_from_args(args)
        space = load_space(args.space)
        out = Path(args.out) if args.out else default_out(args.device, engine, device)
        calibration = sample_distinct(space, args.calibration_nets, args.calibration_seed)
        settings = BuildSettings(
            opset=args.opset,
            policy=policy,
            export_worker=args.export_worker,
            calibration=calibration,
            statistic=args.statistic,
            calibration_how=f"{len(calibration)} distinct architectures sampled from the space with seed {args.calibration_seed}",
        )
        data = build(space.parts(), out, device=device, engine=engine, space_info=space_info(space), settings=settings)
    except RemoteError as error:
        print(f"error: {error}; what was measured is saved: rerun the same command to resume", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was measured is saved; rerun the same command to resume", file=sys.stderr)
        return 130
    correction = data.correction
    coefficients = ", ".join(f"{name} {getattr(correction, name):.4g}" for name in ("scale", "ms_per_part", "ms_per_weight_mb", "offset_ms"))
    print(
        f"wrote {out}: {len(data.entries)} entries ({data.fingerprint.statistic} of {policy.samples} samples each), session call "
        f"{data.overhead.session_call_ms:.4f} ms, correction {correction.model} ({coefficients})" + (f", fit {correction.fit}" if correction.fit else "")
    )
    if data.quality == "poor":
        print(f"quality: poor (the machine would not hold still): {'; '.join(data.quality_notes)}. Rebuild it on a quieter machine (delete {out} first)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
