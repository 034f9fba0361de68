"""Building a LUT: measure every part, the session-call cost and a few whole networks, then fit.

Parts are timed in chunks by the protocol of ``latency.timing`` (interleaved bursts over the
chunk's parts, the session-call probe and the drift reference); a chunk whose drift reference
moved by more than ``DRIFT_LIMIT``, or a calibration whose fit is worse than
``CALIBRATION_LOO_LIMIT_PCT``, is measured again; after ``TRIES`` the LUT is written anyway,
marked ``quality: poor`` with the reasons in ``quality_notes``. A chunk of parts that failed
its tries is measured once more after all the others (a slow spell of a shared machine can
last a minute, longer than the pause between tries) and replaced when it then holds still.

The work is resumable: the LUT file is rewritten atomically at most every ``SAVE_EVERY_S``
seconds and when the build stops for any reason, so a killed build loses at most that much and
its rerun times only what the file lacks. A file with another fingerprint is never touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
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
from .devices import Device, Job, chunked
from .engines import Engine, TimedEngine
from .exporter import Exported, ExportTask, export_stream
from .lut_format import (
    CalibrationNet,
    Correction,
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
from .timing import DEFAULT_STATISTIC, STATISTICS, Measurement, RunPolicy

SAVE_EVERY_S = 2.0


DRIFT_LIMIT = 0.03  # a chunk whose drift reference moved more than this is measured again
CALIBRATION_LOO_LIMIT_PCT = 5.0  # a calibration whose leave-one-out mean error is above this, too
TRIES = 2  # measurements of a chunk at most; then the LUT is written with quality: poor
RETRY_PAUSE_S = 5.0  # before measuring a chunk again: a busy spell of the machine may pass


@dataclass
class BuildSettings:
    """How a LUT is built (everything but the device, the engine and the parts).

    Attributes:
        opset: ONNX opset of every export.
        policy: the timing protocol (``latency.timing``): rounds, bursts, chunk size.
        statistic: the figure of each item's samples the LUT predicts with.
        export_worker: export parts in a second process while this one times (faster; see
            benchmarks/latency_build_cost.py for whether it disturbs the timings).
        calibration: whole networks measured end to end to fit the correction (may be empty).
        calibration_how: how ``calibration`` was chosen (recorded in the LUT).
    """

    opset: int = 17
    policy: RunPolicy = field(default_factory=RunPolicy)
    statistic: str = DEFAULT_STATISTIC
    export_worker: bool = False
    calibration: list[NetConfig] = field(default_factory=list)
    calibration_how: str = ""


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
        "statistic": settings.statistic,
        **space_info,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return fingerprint_from_measurement(record, f"the {device.name} device")


# The CPU a table was measured on, which names a second build's default file.
CPU_FIELDS = ("cpu_model", "arch", "cores")


def default_out(device_name: str, engine: Engine, device: Device, folder: str = "results/lut") -> Path:
    """``<folder>/<device>-<engine>-t<threads>.json``; when that file exists and was measured on
    another machine, the same name ending in this machine's CPU (a first build just works and
    leaves the other machine's table alone)."""
    base = Path(folder) / f"{device_name}-{engine.name}-t{engine.threads}.json"
    if not base.exists():
        return base
    try:
        there = read_lut_file(base).fingerprint
    except ValueError:
        return base  # the build says what is wrong with it
    here = device.fingerprint(engine)
    if all(getattr(there, name) == here.get(name) for name in CPU_FIELDS):
        return base
    slug = re.sub(r"[^a-z0-9]+", "-", str(here.get("cpu_model", "unknown")).lower()).strip("-")[:40]
    return base.with_name(f"{base.stem}-{slug}.json")


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
                f"choose another --out (for example {out.with_name(out.stem + '-new.json')}), or delete the file to rebuild"
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
    "median over the build's chunks of the time of one session call on a one-node graph (Identity "
    "on a 1x1 tensor), timed in every chunk like its parts (the LUT's statistic); subtracted from "
    "every entry, and a whole network pays it once (inside the correction's offset)"
)
DRIFT_HOW = (
    "the reference part timed in every chunk (the LUT's statistic): [entries done, ms]; a chunk that "
    f"moved it by more than {DRIFT_LIMIT:.0%} from the median of the chunks before is measured again"
)


@dataclass
class _Probes:
    """The session-call probe and the drift reference, timed in every chunk."""

    trivial: Job
    reference: Job

    def jobs(self, items: list[Job]) -> list[Job]:
        return [self.trivial, self.reference, *items]


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _measure_chunk(device: Device, engine: Engine, policy: RunPolicy, statistic: str, probes: _Probes, items: list[Job], data: LutFile, label: str,
                   accept: Callable[[list[Measurement]], str | None] | None = None, log: Callable[[str], None] = print,
                   attempts: int = TRIES) -> list[Measurement]:
    """Time ``items`` with the probes in one interleaved job, again when the drift reference moved
    (or ``accept`` returns an error above its limit); the try with the least movement is kept, and
    a chunk that never settles is noted in ``data.quality_notes``. Records the probes."""
    jobs = probes.jobs(items)
    chunk_policy = dataclasses.replace(policy, chunk_items=len(jobs))
    before = [sample[1] for sample in data.drift.samples] if data.drift else []
    baseline = _median(before) if before else None
    tries = []
    for attempt in range(1, attempts + 1):
        if attempt > 1 and isinstance(engine, TimedEngine):  # a clock-free engine has no busy spell to wait out
            time.sleep(RETRY_PAUSE_S)
        measurements = [m for _, m in device.measure_stream(jobs, engine, chunk_policy)]
        reference = measurements[1].value(statistic)
        moved = abs(reference / baseline - 1.0) if baseline else 0.0
        problem = accept(measurements[2:]) if accept else None
        tries.append((moved > DRIFT_LIMIT or problem is not None, moved, measurements, problem))
        if not tries[-1][0]:
            break
        why = f"drift reference moved {moved:.1%}" if moved > DRIFT_LIMIT else problem
        log(f"{label}: {why}; " + ("measuring it again" if attempt < attempts else "keeping the better try (quality: poor)" if attempts > 1 else "still moving"))
    bad, moved, measurements, problem = min(tries, key=lambda t: (t[0], t[1]))
    if bad:
        why = f"the drift reference moved {moved:.1%} (limit {DRIFT_LIMIT:.0%})" if moved > DRIFT_LIMIT else problem
        data.quality_notes.append(f"{label}: {why} in each of {attempts} tries")
    if data.drift is None:
        data.drift = Drift(reference_key=probes.reference.key.removeprefix("(reference) "), how=DRIFT_HOW)
    drift = data.drift
    drift.samples.append([len(data.entries), round(measurements[1].value(statistic), 6)])
    values = sorted(sample[1] for sample in drift.samples)
    drift.reference_ms = _median(values)
    drift.max_over_min = round(values[-1] / values[0], 4)
    samples = [*(data.overhead.samples_ms if data.overhead else []), round(measurements[0].value(statistic), 6)]
    data.overhead = Overhead(session_call_ms=round(_median(samples), 6), how=OVERHEAD_HOW, samples_ms=samples)
    return measurements[2:]


def _stats(measurement: Measurement) -> dict[str, float]:
    return {name: round(float(getattr(measurement, name)), 6) for name in ("median_ms", "min_ms", "p10_ms", "iqr_ms")}


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
    if settings.statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {settings.statistic!r}; known: {', '.join(STATISTICS)}")
    if settings.policy.chunk_items < 3:
        raise ValueError(f"--chunk-items must be at least 3 for a build (two of a chunk's items are the probes), got {settings.policy.chunk_items}")
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
    log(
        f"LUT {out}: {len(unique)} parts ({len(unique) - len(todo)} already measured), "
        f"{len(calibration)} calibration networks ({len(calibration) if nets else 0} already measured)"
    )
    policy, statistic = settings.policy, settings.statistic
    per_chunk = policy.chunk_items - 2
    try:
        with tempfile.TemporaryDirectory(prefix="lut-") as folder:
            trivial = Job("(session call)", trivial_onnx(Path(folder) / "trivial.onnx", opset=settings.opset), (1, 1))
            reference_key = data.drift.reference_key if data.drift else next(iter(unique))
            (Path(folder) / "reference").mkdir()
            exported = list(export_stream([ExportTask(reference_key, spec=unique[reference_key])], Path(folder) / "reference", opset=settings.opset, worker=False))[0]
            probes = _Probes(trivial, Job(f"(reference) {reference_key}", exported.onnx_path, exported.input_shape))
            progress = Progress("parts", len(todo))
            stream = export_stream(todo, folder, opset=settings.opset, worker=settings.export_worker)
            weight_bytes: dict[str, int] = {}
            unsettled: list[tuple[str, list[Job]]] = []
            for chunk in chunked((_job(e, weight_bytes) for e in stream), per_chunk):
                label = f"chunk at entry {len(entries)}"
                notes = len(data.quality_notes)
                for job, measurement in zip(chunk, _measure_chunk(device, engine, policy, statistic, probes, chunk, data, label, log=log)):
                    entries[job.key] = Entry(runs=measurement.runs, weight_bytes=weight_bytes.pop(job.key), **_stats(measurement))
                    progress.step()
                if len(data.quality_notes) > notes:
                    unsettled.append((data.quality_notes[-1], chunk))  # its files are kept for the later try
                else:
                    _remove(chunk)
                saver.maybe()
            for note, chunk in unsettled:
                _measure_later(device, engine, policy, statistic, probes, chunk, data, note, log)
                _remove(chunk)
                saver.maybe()
            saver.now()
            if calibration and not nets:
                _measure_calibration(device, engine, settings, probes, calibration, data, folder, resolution, log)
                saver.now()
        data.calibration.how = settings.calibration_how
        data.export_worker = settings.export_worker
        data.correction = fit_correction(data, resolution)
        data.quality = "poor" if data.quality_notes else "good"
        data.complete = True
        data.completed_date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        saver.now()
    return data


def _remove(jobs: list[Job]) -> None:
    for job in jobs:
        Path(job.onnx_path).unlink(missing_ok=True)


def _measure_later(device: Device, engine: Engine, policy: RunPolicy, statistic: str, probes: _Probes, chunk: list[Job], data: LutFile,
                   note: str, log: Callable[[str], None]) -> None:
    """One more try of a chunk that did not hold still, after the others: its entries and note
    are replaced when the drift reference now stays within the limit, kept otherwise."""
    label = note.split(":")[0]
    log(f"{label}: measuring it once more, after the other chunks")
    notes = len(data.quality_notes)
    measurements = _measure_chunk(device, engine, policy, statistic, probes, chunk, data, f"{label} (later)", log=log, attempts=1)
    if len(data.quality_notes) > notes:
        del data.quality_notes[notes:]  # still moving: the first tries' entries stand
        data.quality_notes[data.quality_notes.index(note)] = f"{note}, and once more after the other chunks"
        return
    data.quality_notes.remove(note)
    for job, measurement in zip(chunk, measurements):
        data.entries[job.key] = Entry(runs=measurement.runs, weight_bytes=data.entries[job.key].weight_bytes, **_stats(measurement))
    log(f"{label}: held still this time; its entries replaced")


def _measure_calibration(device: Device, engine: Engine, settings: BuildSettings, probes: _Probes, calibration: dict[str, NetConfig],
                         data: LutFile, folder: str, resolution: int, log: Callable[[str], None]) -> None:
    """The calibration networks, all exported first, then timed together in one chunk (with the
    probes); measured again when the fit on them is bad (leave-one-out mean above the limit)."""
    tasks = [ExportTask(key, config=cfg, resolution=resolution) for key, cfg in calibration.items()]
    jobs = [_job(e, {}) for e in export_stream(tasks, folder, opset=settings.opset, worker=False)]
    log(f"calibration: {len(jobs)} whole networks, timed together")
    tries = 0

    def fill(measurements: list[Measurement]) -> None:
        data.calibration.nets = {
            job.key: CalibrationNet(config=calibration[job.key].to_json(), measured_ms=round(m.value(settings.statistic), 6), runs=m.runs, **_stats(m))
            for job, m in zip(jobs, measurements)
        }

    def accept(measurements: list[Measurement]) -> str | None:
        nonlocal tries
        tries += 1
        fill(measurements)
        error = prediction_error_pct(fit_correction(data, resolution))
        if error is not None and error > CALIBRATION_LOO_LIMIT_PCT:
            return f"calibration fit leave-one-out mean {error:.1f} % (limit {CALIBRATION_LOO_LIMIT_PCT:g} %)"
        return None

    fill(_measure_chunk(device, engine, settings.policy, settings.statistic, probes, jobs, data, "calibration", accept=accept, log=log))
    data.calibration.attempts = tries


def prediction_error_pct(correction: Correction) -> float | None:
    """How far the correction predicts a calibration network it was not fitted on: the fit's
    leave-one-out mean error, or, when no fit beat the plain sum, the plain sum's error."""
    if correction.fit:
        return float(correction.fit["leave_one_out_mean_abs_err_pct"])
    if correction.candidates:
        return float(next(iter(correction.candidates.values()))["uncorrected_mean_abs_err_pct"])
    return None


def _job(exported: Exported, weight_bytes: dict[str, int]) -> Job:
    weight_bytes[exported.key] = exported.weight_bytes
    return Job(exported.key, exported.onnx_path, exported.input_shape)
