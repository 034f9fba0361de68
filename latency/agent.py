"""The timing agent: times the ONNX files a job lists and prints one JSON line per result.

Run by the host's remote devices on the machine they measure (an ARM board over SSH, say):
``python -m latency.agent job.json`` prints each result as soon as it is measured (a lost
connection keeps what was printed), and ``python -m latency.agent --fingerprint [--engine ort]
[--engine-settings JSON]`` prints what the machine is. The board gets this module, the timing
protocol, the machine fingerprint and the engines package as files (``latency.remote.AGENT_FILES``)
under an empty ``latency/__init__.py``: it needs only Python, numpy and the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from .engines import ENGINES, get_engine
from .machine import machine_fingerprint
from .timing import RunPolicy

def run_job(job: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> None:
    """Time the items of ``job`` by the protocol of ``latency.timing`` (interleaved, in chunks of
    the policy's ``chunk_items``, as on the host) and ``emit`` one result dict per item, in order.

    A job is ``{"engine": "ort", "engine_settings": {...}, "policy": {...}, "items": [{"key":
    ..., "onnx": path, "input_shape": [...]}]}``; relative ONNX paths are taken from the job
    file's folder by the script entry point.
    """
    if not isinstance(job, dict) or not isinstance(job.get("items"), list):
        raise ValueError("a job must be a JSON object with an 'items' list")
    engine = get_engine(job.get("engine", "ort"), **job.get("engine_settings", {}))
    policy = RunPolicy.from_dict(job.get("policy", {}))
    items = job["items"]
    for start in range(0, len(items), policy.chunk_items):
        chunk = items[start : start + policy.chunk_items]
        measurements = engine.measure_many([(item["onnx"], tuple(item["input_shape"])) for item in chunk], policy)
        for item, measurement in zip(chunk, measurements):
            emit({"key": item["key"], **measurement.to_dict()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m latency.agent",
        description="Time ONNX models on this machine and print JSON lines.",
    )
    parser.add_argument("job", nargs="?", help="job JSON file (ONNX paths relative to it)")
    parser.add_argument("--fingerprint", action="store_true", help="print what this machine is and exit")
    parser.add_argument("--engine", default="ort", help=f"engine for --fingerprint: {', '.join(sorted(ENGINES))} (default ort)")
    parser.add_argument("--engine-settings", default="{}", help="engine settings for --fingerprint, as JSON (default: the engine's own)")
    args = parser.parse_args(argv)

    def emit(record: dict[str, Any]) -> None:
        print(json.dumps(record, sort_keys=True), flush=True)

    try:
        if args.fingerprint:
            try:
                settings = json.loads(args.engine_settings)
            except json.JSONDecodeError as error:
                raise ValueError(f"--engine-settings is not JSON: {error.msg}") from None
            if not isinstance(settings, dict):
                raise ValueError("--engine-settings must be a JSON object")
            emit(machine_fingerprint(get_engine(args.engine, **settings)))
            return 0
        if not args.job:
            raise ValueError("give a job file, or --fingerprint")
        try:
            with open(args.job, encoding="utf-8") as handle:
                job = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read job file {args.job}: {error}") from None
        base = os.path.dirname(os.path.abspath(args.job))
        for item in job.get("items", []) if isinstance(job, dict) else []:
            if isinstance(item, dict) and "onnx" in item:
                item["onnx"] = os.path.join(base, item["onnx"])
        run_job(job, emit)
    except (ValueError, KeyError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
