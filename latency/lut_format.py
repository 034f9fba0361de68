"""The LUT file format, defined once: typed records, one strict reader, one writer.

A LUT file is JSON: ``{"format": FORMAT, "fingerprint": {...}, "complete": bool, "entries":
{part_key: {...}}, ...}``, each object below a dataclass of this module. ``read_lut_file``
refuses, in one line naming the file and the field, anything it does not know, anything that
is missing and a file of an older format (with the command that converts it); ``write_lut_file``
is the only way a LUT is written (by ``latency.lut_builder``, ``latency.paper_phone`` and
``latency.convert_lut``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .timing import STATISTICS

FORMAT = "repghost-nas-lut/3"
OLDER_FORMATS = ("repghost-nas-lut/1", "repghost-nas-lut/2")
QUALITIES = ("good", "poor")


class LutFormatError(ValueError):
    """A LUT file that is not in this format (one line: the file, the field, the fix)."""


@dataclass
class Fingerprint:
    """Where and how the entries were measured; a build resumes only on an equal fingerprint
    (``date`` and ``remote``, the address the machine had, aside).

    The first group is required; the rest is recorded when the device and engine have it.
    ``space_file`` follows ``space.record_path`` (relative to the project, or absolute).
    ``statistic`` is the figure of each item's samples the LUT predicts with (``min``, ``p10``
    or ``median``, see ``latency.timing``); entries, overhead, calibration and a validation's
    ground truth all use it.
    """

    device: str
    engine: str
    engine_version: str
    threads: int
    space_file: str
    space_hash: str
    resolution: int
    date: str
    statistic: str
    cpu_model: str | None = None
    arch: str | None = None
    cores: int | None = None
    os: str | None = None
    python: str | None = None
    numpy: str | None = None
    agent_version: int | None = None
    inter_op_threads: int | None = None
    opt_level: str | None = None
    opset: int | None = None
    run_policy: dict[str, Any] | None = None
    precision: str | None = None
    mnn_precision_mode: str | None = None
    mnn_backend: str | None = None
    mnn_converter_optimize_level: int | None = None
    via: str | None = None
    remote: str | None = None
    remote_python: str | None = None


NOT_COMPARED = ("date", "remote")


@dataclass
class Entry:
    """One part in its own session: the statistics of ``runs`` timed calls and its weights'
    bytes. An estimated entry holds the estimate in ``median_ms`` and the host figure it came
    from in ``host_median_ms`` instead of statistics of its own."""

    median_ms: float
    iqr_ms: float | None = None
    runs: int | None = None
    weight_bytes: int | None = None
    host_median_ms: float | None = None
    min_ms: float | None = None
    p10_ms: float | None = None

    def value(self, statistic: str) -> float:
        """The figure a LUT of ``statistic`` uses (an estimate has one figure only)."""
        if self.host_median_ms is not None:
            return float(self.median_ms)
        return float(getattr(self, f"{statistic}_ms"))


@dataclass
class Overhead:
    """The cost of one session call alone, taken out of every entry."""

    session_call_ms: float
    how: str
    samples_ms: list[float] = field(default_factory=list)


@dataclass
class Correction:
    """``whole_ms = sum over parts of (scale * (entry_ms - session_call_ms) + ms_per_part +
    ms_per_weight_mb * weight_mb) + offset_ms``, with how it was chosen and how well it fits."""

    model: str
    scale: float
    ms_per_part: float
    ms_per_weight_mb: float
    offset_ms: float
    how: str
    fit: dict[str, Any] | None = None
    candidates: dict[str, Any] | None = None


@dataclass
class CalibrationNet:
    """A whole network measured end to end, interleaved with the other calibration networks:
    ``measured_ms`` is the LUT's statistic, the others are kept beside it."""

    config: str
    measured_ms: float
    iqr_ms: float
    runs: int
    median_ms: float | None = None
    min_ms: float | None = None
    p10_ms: float | None = None
    round_medians_ms: list[float] | None = None


@dataclass
class Calibration:
    """The whole networks the correction is fitted on (measured together, in one job);
    ``attempts``: how many times that job ran (a bad fit is measured again)."""

    how: str = ""
    nets: dict[str, CalibrationNet] = field(default_factory=dict)
    attempts: int | None = None


@dataclass
class Drift:
    """One fixed part timed in every chunk of the build: how much the machine's speed moved
    (``samples``: [entries done, the statistic]; a chunk that moved it by more than the limit
    is measured again)."""

    reference_key: str
    how: str
    samples: list[list[float]] = field(default_factory=list)
    reference_ms: float | None = None
    max_over_min: float | None = None


@dataclass
class Provenance:
    """What an estimated LUT is an estimate of, and what it was made from."""

    estimate_of: str
    base_lut: str
    base_fingerprint: dict[str, Any]
    calibration: dict[str, Any]
    leave_one_out: dict[str, Any]


@dataclass
class LutFile:
    """A whole LUT file. ``complete`` is false while a build runs (or was interrupted)."""

    fingerprint: Fingerprint
    complete: bool = False
    entries: dict[str, Entry] = field(default_factory=dict)
    overhead: Overhead | None = None
    correction: Correction | None = None
    calibration: Calibration = field(default_factory=Calibration)
    drift: Drift | None = None
    export_worker: bool | None = None
    completed_date: str | None = None
    provenance: Provenance | None = None
    quality: str | None = None
    quality_notes: list[str] = field(default_factory=list)

    @property
    def estimated(self) -> bool:
        return self.provenance is not None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **_dump(self)}

    @classmethod
    def from_json(cls, data: Any, path: str | Path) -> "LutFile":
        """The file's records; a LutFormatError naming ``path`` and the field otherwise."""
        if not isinstance(data, dict) or "format" not in data:
            raise LutFormatError(f"{path} is not a LUT file (no 'format' field; expected {FORMAT!r}); choose another file")
        version = data["format"]
        if version in OLDER_FORMATS:
            raise LutFormatError(
                f"LUT {path} is in the older format {version!r}: convert it with python -m latency.convert_lut {path} "
                "(or delete it and rebuild it with python -m latency.build_lut)"
            )
        if version != FORMAT:
            raise LutFormatError(f"{path} is not a LUT file of this version (format {version!r}, expected {FORMAT!r}); choose another file")
        body = {key: value for key, value in data.items() if key != "format"}
        lut = _load(cls, body, "", str(path))
        lut.check(path)
        return lut

    def check(self, path: str | Path) -> None:
        """What the types cannot say: measured entries have their statistics, an estimate's
        entries their host entry; a weight term has weights to work on."""
        statistic = self.fingerprint.statistic
        if statistic not in STATISTICS:
            raise LutFormatError(f"LUT file {path}: 'fingerprint.statistic' must be one of {', '.join(STATISTICS)}, got {statistic!r}; rebuild the LUT")
        if self.quality is not None and self.quality not in QUALITIES:
            raise LutFormatError(f"LUT file {path}: 'quality' must be one of {', '.join(QUALITIES)}, got {self.quality!r}; rebuild the LUT")
        needed = ("host_median_ms",) if self.estimated else ("iqr_ms", "runs", "weight_bytes", f"{statistic}_ms")
        for key, entry in self.entries.items():
            for name in needed:
                if getattr(entry, name) is None:
                    kind = "estimated" if self.estimated else "measured"
                    raise LutFormatError(f"LUT file {path}: entry {key!r} lacks the field '{name}' that every {kind} entry has; rebuild the LUT")
        if self.complete and (self.overhead is None or self.correction is None):
            raise LutFormatError(f"LUT file {path} is marked complete but lacks '{'overhead' if self.overhead is None else 'correction'}'; rebuild the LUT")


def _dump(record: Any) -> Any:
    if dataclasses.is_dataclass(record):
        return {f.name: _dump(getattr(record, f.name)) for f in dataclasses.fields(record) if getattr(record, f.name) is not None}
    if isinstance(record, dict):
        return {key: _dump(value) for key, value in record.items()}
    if isinstance(record, list):
        return [_dump(value) for value in record]
    return record


def _load(cls: type, data: Any, where: str, path: str) -> Any:
    """``cls`` from the JSON object ``data`` at key path ``where``: every field checked."""
    label = where or "the top level"
    if not isinstance(data, dict):
        raise LutFormatError(f"LUT file {path}: {label} must be an object, got {type(data).__name__}; rebuild the LUT")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise LutFormatError(f"LUT file {path}: unknown field '{_join(where, unknown[0])}' (known at {label}: {', '.join(fields)}); remove it or rebuild the LUT")
    values = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise LutFormatError(f"LUT file {path}: missing field '{_join(where, name)}'; rebuild the LUT")
            continue
        values[name] = _value(hints[name], data[name], _join(where, name), path)
    return cls(**values)


def _value(hint: Any, value: Any, where: str, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None:
            return None
        return _value(options[0], value, where, path)
    if dataclasses.is_dataclass(hint):
        return _load(hint, value, where, path)
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise LutFormatError(f"LUT file {path}: '{where}' must be an object; rebuild the LUT")
        return {key: _value(item, v, f"{where}.{key}", path) for key, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise LutFormatError(f"LUT file {path}: '{where}' must be a list; rebuild the LUT")
        (item,) = typing.get_args(hint)
        return [_value(item, v, f"{where}[{i}]", path) for i, v in enumerate(value)]
    if hint is Any:
        return value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise LutFormatError(f"LUT file {path}: '{where}' must be {hint.__name__}, got {value!r}; rebuild the LUT")
    return value


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def read_lut_file(path: str | Path) -> LutFile:
    """The records of the LUT file at ``path``; one-line ValueError when it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no LUT file at {path}; build one with python -m latency.build_lut --device host (or --device arm "
                         f"--remote USER@BOARD, on the board) --out {path}") from None
    except OSError as error:
        raise ValueError(f"cannot read LUT file {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"LUT file {path} is corrupt (not JSON: {error.msg} at line {error.lineno}); delete it and rebuild") from None
    return LutFile.from_json(data, path)


def write_lut_file(path: str | Path, lut: LutFile) -> None:
    """Replace ``path`` atomically (write a temporary file beside it, then rename)."""
    path = Path(path)
    data = lut.to_json()
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


def fingerprint_difference(old: Fingerprint, new: Fingerprint) -> list[str]:
    """Fields on which two fingerprints differ (``NOT_COMPARED`` aside)."""
    return sorted(f.name for f in dataclasses.fields(Fingerprint) if f.name not in NOT_COMPARED and getattr(old, f.name) != getattr(new, f.name))


def fingerprint_from_measurement(record: dict[str, Any], where: str) -> Fingerprint:
    """A fingerprint from what a device reports plus what the build adds (strict: an unknown
    field is a new fact to add to ``Fingerprint``, not to drop)."""
    return _load(Fingerprint, record, "fingerprint", where)
