"""Latency budgets as users type them: ``30ms``, ``0.03s``, ``30000us``."""

from __future__ import annotations

import re

from .errors import UserError

_UNITS_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}
_PATTERN = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(ms|s|us)\s*$")


def parse_budget(text: str) -> float:
    """Return the budget in milliseconds, or raise UserError saying what is accepted."""
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise UserError(f"budget {text!r} is not a latency: write a number with a unit, e.g. 30ms, 0.03s or 30000us")
    value_ms = float(match.group(1)) * _UNITS_MS[match.group(2)]
    if value_ms <= 0:
        raise UserError(f"budget {text!r} must be above zero, e.g. 30ms")
    return value_ms
