"""Building a LUT: measure every part, the session-call cost and a few whole networks, then fit.

The work is resumable: the LUT file is rewritten atomically at most every ``SAVE_EVERY_S``
seconds and when the build stops for any reason, so a killed build loses at most that much and
its rerun times only what the file lacks. A file with another fingerprint is never touched.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from repghost import NetConfig, PartSpec, part_key
from space import arch_id

from .corrections import fit_correction
from .devices import Device, Job
from .engines import Engine
from .exporter import Exported, ExportTask, export_stream
from .lut_format import (
    CalibrationNet,
    Drift,
    Entry,
    Fingerprint,
    LutFile,
    Overhead,
    fingerprint_difference,
    fingerprint_from_measurement,
    read_lut_file,
    write_lut_file,
)
from .overhead import trivial_onnx
from .timing import RunPolicy

SAVE_EVERY_S = 2.0


@dataclass
class BuildSettings:
    """How a LUT is built (everything but the device, the engine and the parts).

    Attributes:
        opset: ONNX opset of every export.
        policy: runs per entry.
        export_worker: export parts in a second process while this one times (faster; see
            benchmarks/latency_build_cost.py for whether it disturbs the timings).
        calibration: whole networks measured end to end to fit the correction (may be empty).
        calibration_how: how ``calibration`` was chosen (recorded in the LUT).
        overhead_every: re-measure the session-call cost every this many entries.
        calibration_rounds: measurements of each calibration network, in shuffled rounds (the
            median counts).
    """

    opset: int = 17
    policy: RunPolicy = field(default_factory=RunPolicy)
    export_worker: bool = False
    calibration: list[NetConfig] = field(default_factory=list)
    calibration_how: str = ""
    overhead_every: int = 250
    calibration_rounds: int = 3


class Progress:
    """One line every few seconds: done/total, rate, ETA."""

    def __init__(self, label: str, total: int, *, stream=sys.stderr, every_s: float = 5.0) -> None:
        self.label, self.total, self.stream, self.every_s = label, total, stream, every_s
        self.start = self.last = time.monotonic()
        self.done = 0

    def step(self, force: bool = False) -> None:
        self.done += 1
        now = time.monotonic()
        if force or self.done == self.total or now - self.last >= self.every_s:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(
                f"{self.label}: {self.done}/{self.total} done, {rate:.2f}/s, ETA {_duration(eta)}",
                file=self.stream,
                flush=True,
            )


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def make_fingerprint(device: Device, engine: Engine, settings: BuildSettings, space_info: dict[str, Any]) -> Fingerprint:
    record = {
        **device.fingerprint(engine),
        "opset": settings.opset,
        "run_policy": settings.policy.to_dict(),
        **space_info,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return fingerprint_from_measurement(record, f"the {device.name} device")


def open_lut_file(out: Path, fingerprint: Fingerprint) -> LutFile:
    """The LUT data to continue: the existing file's when it has the same fingerprint, a new one
    otherwise. Fails (one line, nothing written) on a corrupt file or another fingerprint, and
    makes sure ``out`` is writable before anything is measured."""
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file path such as {out}/NAME.json")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create folder {out.parent} for --out: {error.strerror}") from None
    if out.exists():
        data = read_lut_file(out)
        differ = fingerprint_difference(data.fingerprint, fingerprint)
        if differ:
            field_name = differ[0]
            raise ValueError(
                f"{out} was measured with another fingerprint ({', '.join(differ)} differ, e.g. {field_name}: "
                f"{getattr(data.fingerprint, field_name)!r} there vs {getattr(fingerprint, field_name)!r} now); "
                "choose another --out, or delete the file to rebuild"
            )
    else:
        data = LutFile(fingerprint=fingerprint)
    try:
        write_lut_file(out, data)
    except OSError as error:
        raise ValueError(f"cannot write {out}: {error.strerror}") from None
    return data


class _Saver:
    def __init__(self, out: Path, data: LutFile) -> None:
        self.out, self.data, self.last = out, data, time.monotonic()

    def maybe(self) -> None:
        if time.monotonic() - self.last >= SAVE_EVERY_S:
            self.now()

    def now(self) -> None:
        write_lut_file(self.out, self.data)
        self.last = time.monotonic()


OVERHEAD_HOW = (
    "median over the build of the median time of one session call on a one-node graph (Identity "
    "on a 1x1 tensor), measured like every entry; subtracted from every entry, and a whole "
    "network pays it once (inside the correction's offset)"
)
DRIFT_HOW = "the reference part timed at the start, every overhead_every entries and at the end: [entries done, median ms]"


def _measure_overhead(device: Device, engine: Engine, policy: RunPolicy, path: str, data: LutFile) -> None:
    measurement = device.measure(Job("(session call)", path, (1, 1)), engine, policy)
    samples = [*(data.overhead.samples_ms if data.overhead else []), round(measurement.median_ms, 6)]
    data.overhead = Overhead(session_call_ms=sorted(samples)[len(samples) // 2], how=OVERHEAD_HOW, samples_ms=samples)


def _measure_reference(device: Device, engine: Engine, policy: RunPolicy, reference: Job, data: LutFile) -> None:
    """Time one fixed part again: its spread over the build shows how much the machine drifted
    (validation times it once more to compare the machine then and now)."""
    measurement = device.measure(reference, engine, policy)
    if data.drift is None:
        data.drift = Drift(reference_key=reference.key.removeprefix("(reference) "), how=DRIFT_HOW)
    drift = data.drift
    drift.samples.append([len(data.entries), round(measurement.median_ms, 6)])
    values = sorted(sample[1] for sample in drift.samples)
    drift.reference_ms = values[len(values) // 2]
    drift.max_over_min = round(values[-1] / values[0], 4)


def build(
    parts: Iterable[PartSpec],
    out: str | Path,
    *,
    device: Device,
    engine: Engine,
    space_info: dict[str, Any],
    settings: BuildSettings | None = None,
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> LutFile:
    """Measure what ``out`` lacks for ``parts`` (and the calibration networks), fit the
    correction, mark the LUT complete and return its data."""
    settings = settings or BuildSettings()
    out = Path(out)
    fingerprint = make_fingerprint(device, engine, settings, space_info)
    data = open_lut_file(out, fingerprint)
    entries = data.entries
    saver = _Saver(out, data)
    resolution = int(space_info.get("resolution", 224))
    unique: dict[str, PartSpec] = {}
    for spec in parts:
        unique.setdefault(part_key(spec), spec)
    if not unique:
        raise ValueError("the space has no parts to measure")
    todo = [ExportTask(key, spec=spec) for key, spec in unique.items() if key not in entries]
    nets = data.calibration.nets
    calibration = {arch_id(cfg): cfg for cfg in settings.calibration}
    net_todo = [ExportTask(key, config=cfg, resolution=resolution) for key, cfg in calibration.items() if key not in nets]
    log(
        f"LUT {out}: {len(unique)} parts ({len(unique) - len(todo)} already measured), "
        f"{len(calibration)} calibration networks ({len(calibration) - len(net_todo)} already measured)"
    )
    policy = settings.policy
    try:
        with tempfile.TemporaryDirectory(prefix="lut-") as folder:
            trivial = trivial_onnx(Path(folder) / "trivial.onnx", opset=settings.opset)
            reference_key = data.drift.reference_key if data.drift else next(iter(unique))
            (Path(folder) / "reference").mkdir()
            reference_task = ExportTask(reference_key, spec=unique[reference_key])
            exported = list(export_stream([reference_task], Path(folder) / "reference", opset=settings.opset, worker=False))[0]
            reference = Job(f"(reference) {reference_key}", exported.onnx_path, exported.input_shape)

            def probe() -> None:
                _measure_overhead(device, engine, policy, trivial, data)
                _measure_reference(device, engine, policy, reference, data)

            probe()
            progress = Progress("parts", len(todo))
            stream = export_stream(todo, folder, opset=settings.opset, worker=settings.export_worker)
            weight_bytes: dict[str, int] = {}
            jobs = (_job(e, weight_bytes) for e in stream)
            for job, measurement in device.measure_stream(jobs, engine, policy):
                entries[job.key] = Entry(
                    median_ms=round(measurement.median_ms, 6),
                    iqr_ms=round(measurement.iqr_ms, 6),
                    runs=measurement.runs,
                    weight_bytes=weight_bytes.pop(job.key),
                )
                Path(job.onnx_path).unlink(missing_ok=True)
                progress.step()
                if progress.done % settings.overhead_every == 0:
                    probe()
                saver.maybe()
            if todo:
                probe()
            saver.now()
            # Whole networks: all exported first, then timed in shuffled rounds with nothing
            # else running here; a network counts once all its rounds are done.
            pending = data.calibration.pending
            rounds = settings.calibration_rounds
            exported = list(export_stream(net_todo, folder, opset=settings.opset, worker=False))
            progress = Progress("calibration networks (measurements)", sum(rounds - len(pending.get(e.key, [])) for e in exported))
            rng = random.Random(len(nets))
            for round_index in range(rounds):
                order = [e for e in exported if len(pending.get(e.key, [])) <= round_index and e.key not in nets]
                rng.shuffle(order)
                for job, measurement in device.measure_stream((_job(e, {}) for e in order), engine, policy):
                    done = pending.setdefault(job.key, [])
                    done.append([round(measurement.median_ms, 6), round(measurement.iqr_ms, 6), measurement.runs])
                    if len(done) >= rounds:
                        nets[job.key] = CalibrationNet(
                            config=calibration[job.key].to_json(),
                            measured_ms=round(float(statistics.median(m[0] for m in done)), 6),
                            round_medians_ms=[m[0] for m in done],
                            iqr_ms=round(float(statistics.median(m[1] for m in done)), 6),
                            runs=sum(m[2] for m in done),
                        )
                        del pending[job.key]
                    progress.step()
                    saver.now()
        data.calibration.how = settings.calibration_how
        data.export_worker = settings.export_worker
        data.correction = fit_correction(data, resolution)
        data.complete = True
        data.completed_date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        saver.now()
    return data


def _job(exported: Exported, weight_bytes: dict[str, int]) -> Job:
    weight_bytes[exported.key] = exported.weight_bytes
    return Job(exported.key, exported.onnx_path, exported.input_shape)
