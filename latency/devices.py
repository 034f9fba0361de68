"""Where timings are taken: a device turns exported ONNX files into measurements.

A device is named on the command line (``--device host``). It says what machine it measures on
(its fingerprint) and times a stream of jobs, yielding each result as soon as it exists, so the
builder can write it before the next one starts (a remote device batching jobs over SSH fits
the same shape). The kinds of device and their names are in ``latency.device_registry``; with
``--remote`` any of them is measured on another machine over SSH (``latency.remote``).
"""

from __future__ import annotations

import abc
import platform
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from .engines import Engine
from .machine import machine_fingerprint
from .timing import Measurement, RunPolicy

ARM_MACHINES = ("aarch64", "arm64", "armv8l", "armv7l")


@dataclass(frozen=True)
class Job:
    """One model to time: a LUT key, its exported ONNX file and the input shape."""

    key: str
    onnx_path: str
    input_shape: tuple[int, ...]


def chunked(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    """``jobs`` in lists of ``size`` (the last one shorter)."""
    chunk: list[Job] = []
    for job in jobs:
        chunk.append(job)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Device(abc.ABC):
    """Base class: ``fingerprint`` and ``measure_stream``."""

    name = ""

    @abc.abstractmethod
    def fingerprint(self, engine: Engine) -> dict[str, Any]:
        """What the machine and ``engine`` are (the measuring part of a LUT's fingerprint)."""

    @abc.abstractmethod
    def measure_stream(self, jobs: Iterable[Job], engine: Engine, policy: RunPolicy) -> Iterator[tuple[Job, Measurement]]:
        """Each job with its measurement, in order: jobs are timed together (interleaved) in
        chunks of ``policy.chunk_items``, and a chunk's results come as soon as it is done."""

    def measure(self, job: Job, engine: Engine, policy: RunPolicy) -> Measurement:
        """One job, timed now."""
        for _, measurement in self.measure_stream([job], engine, policy):
            return measurement
        raise RuntimeError(f"device {self.name} returned nothing for {job.key}")


class LocalDevice(Device):
    """Times in this process, on this machine's CPU."""

    def fingerprint(self, engine: Engine) -> dict[str, Any]:
        return {"device": self.name, **machine_fingerprint(engine)}

    def measure_stream(self, jobs: Iterable[Job], engine: Engine, policy: RunPolicy) -> Iterator[tuple[Job, Measurement]]:
        for chunk in chunked(jobs, policy.chunk_items):
            yield from zip(chunk, engine.measure_many([(job.onnx_path, job.input_shape) for job in chunk], policy))


class HostDevice(LocalDevice):
    """This machine, whatever its architecture."""

    name = "host"


class ArmDevice(LocalDevice):
    """An ARM CPU: this machine when it is ARM (another one is reached with ``--remote``)."""

    name = "arm"

    def __init__(self) -> None:
        machine = platform.machine().lower()
        if machine not in ARM_MACHINES:
            raise ValueError(
                f"--device arm needs an ARM CPU and this machine is {machine}: measure on an ARM machine over SSH "
                "with --remote user@host[:port], or use the estimated device paper-phone "
                "(results/lut/paper-phone.json, an estimate of the RepGhost paper's ARM phone)"
            )
