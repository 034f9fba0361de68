"""Devices by name: ``get_device("host")``, ``get_device("arm", remote="pi@board")``.

Adding a kind of device is adding an entry to ``DEVICES``. Here, above both ``latency.devices``
(this machine) and ``latency.remote`` (another machine over SSH), so neither imports the other.
"""

from __future__ import annotations

from typing import Iterable

from .devices import ArmDevice, Device, HostDevice
from .remote import RemoteDevice

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
    return RemoteDevice(name, remote, ssh_options=ssh_options, remote_python=remote_python, require_arm=name == "arm")
