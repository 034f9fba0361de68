"""``python -m nas.search --workers N``: N local worker processes on one study.

Each worker is ``python -m nas.search`` with the same arguments on the same storage, its own
sampler seed and a share of the cores; it prints its own progress lines. The parent trains the
baselines first, waits for the workers, then writes the outputs. Ctrl-C or SIGTERM on the
parent reaches each worker once, as Ctrl-C: a trial in progress is marked failed, finished
ones stay in the storage. A worker whose parent dies ends after its current trial.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Callable

import optuna


def worker_commands(argv: list[str], *, workers: int, storage_url: str, study: str, threads: int, max_trials: int) -> list[list[str]]:
    """The command of each worker: the parent's arguments, then the ones that make it a worker
    (argparse keeps the last value of a repeated option)."""
    per_worker = max(1, math.ceil(max_trials / workers))
    return [
        [
            sys.executable, "-m", "nas.search", *argv,
            "--storage", storage_url, "--study", study, "--threads", str(threads),
            "--max-trials", str(per_worker), "--workers", "1", "--worker-index", str(index), "--worker-count", str(workers),
        ]
        for index in range(workers)
    ]


def run_workers(commands: list[list[str]], log: Callable[[str], None] = print) -> list[int]:
    """Start every worker, wait for all, and return their exit codes. An interrupted parent
    passes the interrupt on, waits for the workers to record it, and exits with code 130."""
    processes = [subprocess.Popen(command, start_new_session=True) for command in commands]
    log(f"started {len(processes)} workers (pids {', '.join(str(p.pid) for p in processes)})")
    interrupted = []

    def forward(signum: int, frame: FrameType | None) -> None:
        interrupted.append(signum)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [process.wait() for process in processes]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if interrupted:
        log("interrupted: the workers' finished trials are kept in the storage, the running ones marked failed and their candidates queued again; rerun the same command to resume")
        raise SystemExit(130)
    return codes


class ParentWatch:
    """Study callback of a worker: stop after the current trial once the parent is gone."""

    def __init__(self) -> None:
        self.parent = os.getppid()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if os.getppid() != self.parent:
            study.stop()
