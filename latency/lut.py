"""The latency lookup table: the predictor over a LUT file, and the space the LUT belongs to.

Entries hold what was measured (a part alone, one session call each). A whole network is one
session call, so the predictor takes the session-call cost out of every entry, sums, and applies
the correction fitted at build time on whole networks measured end to end. The file format is
``latency.lut_format``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from repghost import NetConfig, PartSpec, part_key
from space import SearchSpace, load_space, record_path, resolve_record

from .lut_format import Correction, LutFile, read_lut_file
from .timing import DEFAULT_STATISTIC, RunPolicy

BUILD_LUT_POLICY_OPTIONS = ("rounds", "burst_runs", "warmup_runs", "chunk_items", "clock")  # the run policy settings build_lut takes


def fill_command(path: str | Path, lut: LutFile) -> str:
    """The command that (re)builds the LUT at ``path`` with everything its fingerprint says."""
    fp = lut.fingerprint
    if lut.provenance is not None:
        return f"python -m latency.paper_phone --base {lut.provenance.base_lut} --out {path}"
    space = os.path.relpath(resolve_record(fp.space_file))
    parts = [f"python -m latency.build_lut --device {fp.device}"]
    if fp.remote:
        parts.append(f"--remote {fp.remote}")
        if fp.remote_python and fp.remote_python != "python3":
            parts.append(f"--remote-python {fp.remote_python}")
    parts.append(f"--space {space if not space.startswith('..') else resolve_record(fp.space_file)}")
    parts.append(f"--engine {fp.engine} --threads {fp.threads}")
    if fp.inter_op_threads not in (None, 1):
        parts.append(f"--inter-op-threads {fp.inter_op_threads}")
    if fp.opt_level not in (None, "all"):
        parts.append(f"--opt-level {fp.opt_level}")
    if fp.precision is not None:
        parts.append(f"--precision {fp.precision}")
    if fp.opset not in (None, 17):
        parts.append(f"--opset {fp.opset}")
    if fp.statistic != DEFAULT_STATISTIC:
        parts.append(f"--statistic {fp.statistic}")
    default = RunPolicy()
    recorded = fp.run_policy or {}
    for name in BUILD_LUT_POLICY_OPTIONS if set(recorded) <= set(default.to_dict()) else ():  # an older protocol's: today's
        value = recorded.get(name, getattr(default, name))
        if value != getattr(default, name):
            parts.append(f"--{name.replace('_', '-')} {value}")
    parts.append(f"--out {path}")
    return " ".join(parts)


class LUT:
    """Predicts a network's latency from its parts' measured latencies.

    Build with :func:`load_lut`. ``predict`` and ``breakdown`` take a ``NetConfig``; its parts
    and their keys are derived once per config and cached.
    """

    def __init__(self, file: LutFile, path: str | Path = "<memory>") -> None:
        self.path = str(path)
        self.file = file
        # As the file has it (fields the device did not report left out); typed: ``file.fingerprint``.
        self.fingerprint: dict[str, Any] = file.to_json()["fingerprint"]
        self.resolution = int(file.fingerprint.resolution)
        self.session_call_ms = float(file.overhead.session_call_ms) if file.overhead else 0.0
        self.statistic = file.fingerprint.statistic
        if file.correction is None:
            raise ValueError(f"LUT {path} has no correction (its build did not finish); resume it with {fill_command(path, file)}")
        self.correction: Correction = file.correction
        c = self.correction
        if c.ms_per_weight_mb and any(entry.weight_bytes is None for entry in file.entries.values()):
            raise ValueError(f"LUT {path} has a weight term but entries without weight_bytes; rebuild it")
        # Each part's share of a prediction, computed once per entry.
        self._part = {
            key: c.scale * (entry.value(self.statistic) - self.session_call_ms)
            + c.ms_per_part
            + c.ms_per_weight_mb * float(entry.weight_bytes or 0) / 1e6
            for key, entry in file.entries.items()
        }
        self._raw = {key: entry.value(self.statistic) - self.session_call_ms for key, entry in file.entries.items()}
        self._keys_cache: dict[NetConfig, tuple[str, ...]] = {}
        self._total_cache: dict[NetConfig, float] = {}

    @property
    def estimated(self) -> bool:
        """True when the entries are an estimate rather than measurements."""
        return self.file.estimated

    @property
    def older_protocol(self) -> bool:
        """True for a measured LUT timed before interleaved bursts (one contiguous attempt per part)."""
        recorded = self.file.fingerprint.run_policy
        return not self.estimated and not (recorded and set(recorded) <= set(RunPolicy().to_dict()))

    def warnings(self, shown_as: str | None = None) -> list[str]:
        """One line each for whoever loads this LUT: a build marked ``quality: poor``, an older
        protocol. ``shown_as`` names the file in them (default: the path it was loaded from)."""
        path = shown_as or self.path
        lines = []
        if self.file.quality == "poor":
            rebuild = "rebuild its base on a quieter machine, then this estimate" if self.estimated else "rebuild it on a quieter machine"
            lines.append(
                f"warning: LUT {path} is marked quality: poor ({'; '.join(self.file.quality_notes)}): its predictions may be "
                f"off by more than its validation shows; {rebuild}"
            )
        if self.older_protocol:
            lines.append(
                f"warning: LUT {path} was timed with an older protocol (one contiguous attempt per part, not interleaved "
                f"bursts), which reads a busy machine's noise as latency; rebuild it: {fill_command(path, self.file)}"
            )
        return lines

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
                f"measured for; build a LUT for a space that contains it ({fill_command('NEW.json', self.file)})"
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

    # -- the space it belongs to ----------------------------------------------------------------

    @property
    def space_path(self) -> Path:
        """The space file the LUT was built for (``space.resolve_record`` of its record)."""
        return resolve_record(self.file.fingerprint.space_file)

    def space(self, asked: str | Path | None = None) -> SearchSpace:
        """The space to use with this LUT: ``asked`` (a path; None: the LUT's own), which must be
        the one the LUT was built for (same file hash). One-line ValueError otherwise."""
        return lut_space(self.path, self.file, asked)


def lut_space(path: str | Path, file: LutFile, asked: str | Path | None = None) -> SearchSpace:
    """The rule every reader follows for the space of a LUT: the recorded file (relative to the
    project, see ``space.record_path``), or ``asked``, whose hash must equal the recorded one."""
    recorded = file.fingerprint.space_file
    if asked is None:
        try:
            space = load_space(resolve_record(recorded))
        except ValueError as error:
            raise ValueError(f"LUT {path} was built for the space {recorded}, which cannot be read here ({error}); pass it with --space") from None
        if space.file_hash() != file.fingerprint.space_hash:
            raise ValueError(
                f"LUT {path} was built for another version of {recorded} (sha256 {file.fingerprint.space_hash[:12]}..., "
                f"the file is {space.file_hash()[:12]}... now): rebuild it with {fill_command(path, file)}"
            )
        return space
    space = load_space(asked)
    if space.file_hash() != file.fingerprint.space_hash:
        raise ValueError(
            f"LUT {path} was built for another space ({recorded}, sha256 {file.fingerprint.space_hash[:12]}...) than "
            f"{record_path(asked)} ({space.file_hash()[:12]}...): pass --space {recorded}, or a LUT built for {record_path(asked)}"
        )
    return space


def load_lut(path: str | Path) -> LUT:
    """Read a finished LUT; a missing, corrupt, older or unfinished file is a one-line ValueError."""
    file = read_lut_file(path)
    if not file.complete:
        raise ValueError(f"LUT {path} is unfinished (its build was interrupted); resume it with {fill_command(path, file)}")
    return LUT(file, path)
