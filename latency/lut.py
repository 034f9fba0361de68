"""The latency lookup table: measured parts, where they were measured, and the predictor.

A LUT file is JSON::

    {"format": "repghost-nas-lut/1",
     "fingerprint": {device, cpu_model, arch, cores, os, engine, engine_version, threads,
                     inter_op_threads, opt_level, opset, space_file, space_hash, resolution,
                     run_policy, date, ...},
     "complete": true,
     "overhead": {"session_call_ms": ..., "how": ...},
     "calibration": {"how": ..., "nets": {arch_id: {"measured_ms", "round_medians_ms", "config", ...}}},
     "drift": {"reference_key", "samples", ...},
     "correction": {"model": ..., "scale": ..., "ms_per_part": ..., "ms_per_weight_mb": ...,
                    "offset_ms": ..., "how": ..., "fit": {...}},
     "entries": {part_key: {"median_ms", "iqr_ms", "runs", ...}}}

Entries hold what was measured (a part alone, one session call each). A whole network is one
session call, so the predictor takes the session-call cost out of every entry, sums, and applies
the correction fitted at build time on whole networks measured end to end.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repghost import NetConfig, PartSpec, part_key

FORMAT = "repghost-nas-lut/1"
# Fingerprint fields that may differ between a build and its resumption.
NOT_COMPARED = ("date",)


def fill_command(path: str | Path, fingerprint: dict[str, Any]) -> str:
    """The command that (re)builds the LUT at ``path``."""
    space = fingerprint.get("space_file") or "SPACE.yaml"
    return (
        f"python -m latency.build_lut --device {fingerprint.get('device', 'host')} --space {space} "
        f"--threads {fingerprint.get('threads', 1)} --engine {fingerprint.get('engine', 'ort')} --out {path}"
    )


def read_lut_data(path: str | Path) -> dict[str, Any]:
    """The raw JSON of a LUT file, checked for shape; one-line ValueError when it is not a LUT."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no LUT file at {path}; build one with python -m latency.build_lut --device host --out {path}") from None
    except OSError as error:
        raise ValueError(f"cannot read LUT file {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"LUT file {path} is corrupt (not JSON: {error.msg} at line {error.lineno}); delete it and rebuild"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a LUT file (expected format {FORMAT!r}); delete it or choose another --out")
    for name, kind in (("fingerprint", dict), ("entries", dict)):
        if not isinstance(data.get(name), kind):
            raise ValueError(f"LUT file {path} is corrupt: '{name}' is missing or not an object; delete it and rebuild")
    for key, entry in data["entries"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("median_ms"), (int, float)):
            raise ValueError(f"LUT file {path} is corrupt: entry {key!r} has no median_ms; delete it and rebuild")
    return data


def write_lut_data(path: str | Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically (write a temporary file beside it, then rename)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fingerprint_difference(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Fields on which two fingerprints differ (``date`` aside)."""
    keys = (set(old) | set(new)) - set(NOT_COMPARED)
    return sorted(key for key in keys if old.get(key) != new.get(key))


@dataclass(frozen=True)
class Correction:
    """``whole_ms = sum over parts of (scale * (entry_ms - session_call_ms) + ms_per_part +
    ms_per_weight_mb * weight_mb) + offset_ms``."""

    scale: float = 1.0
    ms_per_part: float = 0.0
    ms_per_weight_mb: float = 0.0
    offset_ms: float = 0.0


class LUT:
    """Predicts a network's latency from its parts' measured latencies.

    Build with :func:`load_lut`. ``predict`` and ``breakdown`` take a ``NetConfig``; its parts
    and their keys are derived once per config and cached.
    """

    def __init__(self, data: dict[str, Any], path: str | Path = "<memory>") -> None:
        self.path = str(path)
        self.data = data
        self.fingerprint: dict[str, Any] = data["fingerprint"]
        self.resolution = int(self.fingerprint.get("resolution", 224))
        self.session_call_ms = float((data.get("overhead") or {}).get("session_call_ms", 0.0))
        correction = data.get("correction") or {}
        self.correction = Correction(
            float(correction.get("scale", 1.0)),
            float(correction.get("ms_per_part", 0.0)),
            float(correction.get("ms_per_weight_mb", 0.0)),
            float(correction.get("offset_ms", self.session_call_ms)),
        )
        c = self.correction
        # Each part's share of a prediction, computed once per entry.
        self._part = {
            key: c.scale * (float(entry["median_ms"]) - self.session_call_ms)
            + c.ms_per_part
            + c.ms_per_weight_mb * float(entry.get("weight_bytes", 0)) / 1e6
            for key, entry in data["entries"].items()
        }
        self._raw = {key: float(entry["median_ms"]) - self.session_call_ms for key, entry in data["entries"].items()}
        self._keys_cache: dict[NetConfig, tuple[str, ...]] = {}
        self._total_cache: dict[NetConfig, float] = {}

    @property
    def estimated(self) -> bool:
        """True when the entries are an estimate rather than measurements."""
        return bool(self.fingerprint.get("estimated", False))

    def __len__(self) -> int:
        return len(self._part)

    def __contains__(self, key: str) -> bool:
        return key in self._part

    def keys(self, cfg: NetConfig) -> tuple[str, ...]:
        """The LUT keys of ``cfg``'s parts, in order."""
        keys = self._keys_cache.get(cfg)
        if keys is None:
            if not isinstance(cfg, NetConfig):
                raise ValueError(f"predict takes a NetConfig, got {type(cfg).__name__}")
            keys = tuple(part_key(spec) for spec in cfg.parts(self.resolution))
            if len(self._keys_cache) > 100_000:
                self._keys_cache.clear()
            self._keys_cache[cfg] = keys
        return keys

    def _part_ms(self, key: str, table: dict[str, float] | None = None) -> float:
        try:
            return (self._part if table is None else table)[key]
        except KeyError:
            raise ValueError(
                f"LUT {self.path} has no entry for {key}: the architecture is outside the space the LUT was "
                f"measured for; build a LUT for a space that contains it ({fill_command('NEW.json', self.fingerprint)})"
            ) from None

    def sum_ms(self, cfg: NetConfig) -> float:
        """Sum of the parts' entries, each without its session-call cost (no correction)."""
        return sum(self._part_ms(key, self._raw) for key in self.keys(cfg))

    def predict(self, cfg: NetConfig) -> float:
        """Predicted latency of the whole network, in milliseconds."""
        total = self._total_cache.get(cfg)
        if total is None:
            total = sum(self._part_ms(key) for key in self.keys(cfg)) + self.correction.offset_ms
            if len(self._total_cache) > 100_000:
                self._total_cache.clear()
            self._total_cache[cfg] = total
        return total

    def part_ms(self, spec: PartSpec) -> float:
        """One part's share of a prediction (a network adds ``correction.offset_ms`` once)."""
        return self._part_ms(part_key(spec))

    def breakdown(self, cfg: NetConfig) -> list[tuple[str, float]]:
        """Per-part contributions in ms, in network order, then one ``"(offset)"`` line (the
        network's own session call and the fitted offset); they add up to ``predict(cfg)``."""
        rows = [(key, self._part_ms(key)) for key in self.keys(cfg)]
        rows.append(("(offset)", self.correction.offset_ms))
        return rows


def load_lut(path: str | Path) -> LUT:
    """Read a finished LUT; a missing, corrupt or unfinished file is a one-line ValueError."""
    data = read_lut_data(path)
    if not data.get("complete"):
        raise ValueError(
            f"LUT {path} is unfinished (its build was interrupted); resume it with {fill_command(path, data['fingerprint'])}"
        )
    return LUT(data, path)
