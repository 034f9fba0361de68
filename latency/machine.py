"""What this machine is: the part of a LUT's fingerprint that the machine itself reports.

Standard library and numpy only: shipped to a remote board with the engines, so the board
describes itself with the same code as the host.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

from .engines.base import Engine

AGENT_VERSION = 2  # 2: interleaved bursts, several statistics per item


def cpu_model() -> str:
    """The CPU's marketing name, from the OS; 'unknown' when it does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_fingerprint(engine: Engine | None = None) -> dict[str, Any]:
    """What this machine is: CPU model, architecture, cores, OS, Python, numpy, and the engine."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "agent_version": AGENT_VERSION,
    }
    if engine is not None:
        info.update(engine.settings())
    return info
