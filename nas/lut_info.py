"""What the outputs say of the latencies (device, engine, estimated or measured), kept in the
study so that a report made without the LUT file says the same."""

from __future__ import annotations

from typing import Any

from latency import LUT


def lut_info(lut: LUT, shown_as: str | None = None) -> dict[str, Any]:
    """Device, engine, whether the latencies are estimated, and the LUT's warnings (a build
    marked poor), which the summary repeats naming the file ``shown_as``."""
    return {**fingerprint_info(lut.fingerprint, lut.estimated), "warnings": lut.warnings(shown_as)}


def fingerprint_info(fingerprint: dict[str, Any], estimated: bool) -> dict[str, Any]:
    return {
        "device": fingerprint.get("device"),
        "engine": f"{fingerprint.get('engine')} {fingerprint.get('engine_version')}, {fingerprint.get('threads')} thread(s)",
        "estimated": estimated,
    }


def latency_label(lut_info: dict[str, Any]) -> str:
    device = lut_info.get("device", "?")
    if lut_info.get("estimated"):
        return f"predicted latency, ms (estimated: {device})"
    return f"predicted latency, ms ({device}, measured LUT)"
