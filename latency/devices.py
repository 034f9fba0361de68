"""Where timings are taken: a device turns exported ONNX files into measurements.

A device is named on the command line (``--device host``). It says what machine it measures on
(its fingerprint) and times a stream of jobs, yielding each result as soon as it exists, so the
builder can write it before the next one starts (a remote device batching jobs over SSH fits
the same shape). Adding a device is adding an entry to ``DEVICES``. With ``remote`` any device
is measured on another machine over SSH (``latency.remote.RemoteDevice``).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from .agent import Engine, Measurement, RunPolicy, machine_fingerprint

ARM_MACHINES = ("aarch64", "arm64", "armv8l", "armv7l")


@dataclass(frozen=True)
class Job:
    """One model to time: a LUT key, its exported ONNX file and the input shape."""

    key: str
    onnx_path: str
    input_shape: tuple[int, ...]


class Device:
    """Base class: ``fingerprint`` and ``measure_stream``."""

    name = ""

    def fingerprint(self, engine: Engine) -> dict[str, Any]:
        raise NotImplementedError

    def measure_stream(self, jobs: Iterable[Job], engine: Engine, policy: RunPolicy) -> Iterator[tuple[Job, Measurement]]:
        raise NotImplementedError

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
        for job in jobs:
            yield job, engine.measure(job.onnx_path, job.input_shape, policy)


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


DEVICES: dict[str, type[Device]] = {"host": HostDevice, "arm": ArmDevice}


def get_device(
    name: str,
    *,
    remote: str | None = None,
    ssh_options: Iterable[str] = (),
    remote_python: str | None = None,
) -> Device:
    """The device called ``name``, on this machine, or with ``remote`` (``user@host[:port]``)
    on that machine over SSH (``ssh_options``: extra ``-o`` options; ``remote_python``: the
    Python there). ``arm`` with ``remote`` checks that the remote is ARM; ``host`` does not."""
    device_type = DEVICES.get(name)
    if device_type is None:
        raise ValueError(f"unknown device {name!r}; known devices: {', '.join(sorted(DEVICES))}")
    if remote is None:
        if tuple(ssh_options) or remote_python is not None:
            raise ValueError("--ssh-option and --remote-python apply to --remote user@host[:port], which is missing")
        return device_type()
    from .remote import RemoteDevice

    return RemoteDevice(name, remote, ssh_options=ssh_options, remote_python=remote_python, require_arm=name == "arm")
