"""Measuring on another machine over SSH: the ARM board a search targets, reached from a workstation.

The system's OpenSSH client (``ssh``) does all the work. One master connection (ControlMaster)
is opened and reused by every later command; the timing agent (``AGENT_FILES``: the
agent, the timing protocol and the engines package, which need only Python, numpy and the
engine's package there) is copied to a temporary folder on the remote; then
each batch of jobs goes in one ssh call: its ONNX files and a job file are piped in as a tar
stream (unpacked by the remote's Python, so the remote needs no SFTP server, which ``scp`` needs
since OpenSSH 9), the agent times them and prints one JSON line per result, and each line is
handed to the caller as soon as it arrives, so a connection lost mid-batch keeps everything that
was printed before.

SSH runs with ``BatchMode=yes`` (a password prompt would hang a build: use a key, e.g.
``--ssh-option IdentityFile=~/.ssh/board``); host keys are checked as the user's SSH configuration
says. The fingerprint is the remote machine's, as its agent reports it.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from .devices import ARM_MACHINES, Device, Job, chunked
from .engines import Engine
from .timing import Measurement, RunPolicy

CONTROL_PERSIST_S = 60
# Run by the remote Python: unpack the tar stream on stdin into the folder named by argv[1].
UNPACK = (
    "import sys, tarfile; t = tarfile.open(fileobj=sys.stdin.buffer, mode='r|'); "
    "t.extractall(sys.argv[1], **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))"
)
CONNECT_TIMEOUT_S = 15
ALIVE_INTERVAL_S = 5

HERE = Path(__file__).resolve().parent
# The files a remote machine needs, relative to the folder that holds the ``latency`` package.
AGENT_FILES = (
    "latency/agent.py",
    "latency/machine.py",
    "latency/timing.py",
    *sorted(f"latency/engines/{path.name}" for path in (HERE / "engines").glob("*.py")),
)


def agent_files() -> dict[str, bytes]:
    """``AGENT_FILES`` and their contents, plus the empty package file that makes them importable there."""
    files = {name: (HERE.parent / name).read_bytes() for name in AGENT_FILES}
    files["latency/__init__.py"] = b'"""The timing agent\'s share of the latency package (copied by the host)."""\n'
    return files


class RemoteError(ValueError):
    """The SSH connection was lost after it was made (a failure to connect is a plain ValueError)."""


@dataclass(frozen=True)
class RemoteTarget:
    """``user@host[:port]`` (user and port optional; an IPv6 host goes in brackets)."""

    user: str | None
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> "RemoteTarget":
        match = re.fullmatch(r"(?:([^@\s:/]+)@)?(\[[0-9A-Fa-f:.]+\]|[^@\s:/\[\]]+)(?::(\d+))?", text or "")
        if match is None or match.group(2).startswith("-"):
            raise ValueError(f"--remote {text!r} is not user@host[:port] (e.g. pi@192.168.1.20 or pi@board.local:2222)")
        port = int(match.group(3)) if match.group(3) else None
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"--remote {text!r}: port {port} is not between 1 and 65535")
        return cls(match.group(1), match.group(2).strip("[]"), port)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{self.user}@" if self.user else "") + host + (f":{self.port}" if self.port else "")


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """The SSH options of a CLI that takes ``--remote`` (which the CLI defines itself)."""
    parser.add_argument(
        "--ssh-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra ssh option for --remote, passed as -o OPTION (repeatable), e.g. IdentityFile=~/.ssh/board",
    )
    parser.add_argument("--remote-python", default=None, help="Python on the --remote machine that has numpy and the engine (default python3)")


def remote_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``get_device`` keyword arguments from the options added by :func:`add_remote_arguments`."""
    return {"ssh_options": tuple(args.ssh_option), "remote_python": args.remote_python}


def _tail(lines: Iterable[str], default: str) -> str:
    useful = [line.strip() for line in lines if line.strip()]
    errors = [line for line in useful if line.startswith("error:") or "Error" in line or "ssh:" in line]
    return (errors or useful or [default])[-1]


class _State:
    """What a remote device holds open; closed by :func:`_close` (also at exit)."""

    def __init__(self) -> None:
        self.folder: str | None = None
        self.base: list[str] = []
        self.destination = ""
        self.remote_dir: str | None = None
        self.connected = False


def _close(state: _State) -> None:
    if state.connected:
        quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 20}
        try:
            if state.remote_dir:
                subprocess.run(["ssh", *state.base, state.destination, f"rm -rf {shlex.quote(state.remote_dir)}"], **quiet)
            subprocess.run(["ssh", *state.base, "-O", "exit", state.destination], **quiet)
        except (OSError, subprocess.SubprocessError):
            pass
        state.connected = False
    if state.folder:
        shutil.rmtree(state.folder, ignore_errors=True)
        state.folder = None


class RemoteDevice(Device):
    """A machine reached over SSH (``--remote user@host[:port]``).

    Nothing is contacted until the first fingerprint or measurement. With ``require_arm`` the
    remote must report an ARM CPU (``--device arm``); ``--device host --remote`` takes any CPU.

    Args:
        name: the device name recorded in the fingerprint (``arm`` or ``host``).
        remote: ``user@host[:port]``.
        ssh_options: extra ``-o`` options for ssh.
        remote_python: the Python to run the agent with there.
        require_arm: refuse a remote that is not ARM.
    """

    def __init__(
        self,
        name: str,
        remote: str,
        *,
        ssh_options: Iterable[str] = (),
        remote_python: str | None = None,
        require_arm: bool = False,
    ) -> None:
        self.name = name
        self.target = RemoteTarget.parse(remote)
        self.ssh_options = tuple(ssh_options)
        for option in self.ssh_options:
            if "=" not in option and " " not in option.strip():
                raise ValueError(f"--ssh-option {option!r} is not an ssh option such as IdentityFile=~/.ssh/key")
        self.remote_python = remote_python or "python3"
        self.require_arm = require_arm
        self._state = _State()
        self._finalizer = weakref.finalize(self, _close, self._state)
        self._fingerprints: dict[str, dict[str, Any]] = {}
        self._batches = itertools.count()

    # -- connection -------------------------------------------------------------------------

    def _port(self, flag: str) -> list[str]:
        return [flag, str(self.target.port)] if self.target.port else []

    def _connect(self) -> None:
        state = self._state
        if state.connected:
            return
        if shutil.which("ssh") is None:
            raise ValueError("--remote needs the OpenSSH client (ssh) on this machine (e.g. apt-get install openssh-client)")
        state.folder = tempfile.mkdtemp(prefix="rg-ssh-")
        state.destination = self.target.destination
        state.base = [
            "-o", "BatchMode=yes",
            "-o", f"ControlPath={state.folder}/cm",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
            "-o", f"ServerAliveInterval={ALIVE_INTERVAL_S}",
            "-o", "ServerAliveCountMax=3",
            "-o", "LogLevel=ERROR",
        ]
        for option in self.ssh_options:
            state.base += ["-o", option]
        log = Path(state.folder) / "master.log"
        with open(log, "w") as handle:
            code = subprocess.run(
                ["ssh", *state.base, *self._port("-p"), "-o", "ControlMaster=yes", "-o", f"ControlPersist={CONTROL_PERSIST_S}", "-N", "-f", state.destination],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=handle,
            ).returncode
        if code != 0:
            detail = _tail(log.read_text(errors="replace").splitlines(), f"ssh exit code {code}")
            raise ValueError(f"cannot connect to {self.target} over SSH: {detail}")
        state.connected = True
        script = 'd=$(mktemp -d "${TMPDIR:-/tmp}/repghost-agent.XXXXXX") && echo "$d"'
        made = self._ssh(f"sh -c {shlex.quote(script)}")
        lines = made.stdout.decode(errors="replace").split()
        if made.returncode != 0 or not lines:
            detail = _tail(made.stderr.decode(errors="replace").splitlines(), f"exit code {made.returncode}")
            raise RemoteError(f"cannot make a temporary folder for the timing agent on {self.target}: {detail}")
        state.remote_dir = lines[-1]
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for name, data in sorted(agent_files().items()):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        copied = self._ssh(f"{shlex.quote(self.remote_python)} -c {shlex.quote(UNPACK)} {shlex.quote(state.remote_dir)}", stdin=archive.getvalue())
        if copied.returncode != 0:
            raise self._agent_failure(copied.returncode, copied.stderr.decode(errors="replace").splitlines())

    def close(self) -> None:
        """Remove the remote folder and close the master connection (also done at exit)."""
        self._finalizer()

    def __enter__(self) -> "RemoteDevice":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _ssh(self, command: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        """Run ``command`` there (bytes in, bytes out); exit code 255 (ssh's own) is a RemoteError."""
        state = self._state
        result = subprocess.run(
            ["ssh", *state.base, *self._port("-p"), state.destination, command],
            input=stdin if stdin is not None else b"", capture_output=True,
        )
        if result.returncode == 255:
            detail = _tail(result.stderr.decode(errors="replace").splitlines(), "ssh exit code 255")
            raise RemoteError(f"lost the connection to {self.target}: {detail}")
        return result

    def _agent_command(self, arguments: str, then: str = "", before: str = "") -> str:
        """A POSIX sh command (whatever the remote login shell) that runs ``before`` and the agent
        in the remote folder, then ``then``, and exits with the agent's code."""
        folder = shlex.quote(self._state.remote_dir or ".")
        script = f"cd {folder} || exit 3; {before} {shlex.quote(self.remote_python)} -m latency.agent {arguments}; code=$?; {then} exit $code"
        return f"sh -c {shlex.quote(script)}"

    def _agent_failure(self, code: int, stderr_lines: Iterable[str]) -> ValueError:
        lines = list(stderr_lines)
        text = "\n".join(lines)
        if code == 127 or ("No such file or directory" in text and self.remote_python in text):
            return ValueError(f"there is no {self.remote_python} on {self.target}; pass --remote-python PATH (a Python with numpy and the engine)")
        missing = re.search(r"No module named '([^']+)'", text)
        if missing:
            return ValueError(f"{self.remote_python} on {self.target} lacks the package {missing.group(1)} (install it there, or pass --remote-python PATH)")
        detail = _tail(lines, f"exit code {code}")
        return ValueError(f"the timing agent on {self.target} failed: {detail.removeprefix('error: ')}")

    # -- Device -----------------------------------------------------------------------------

    def fingerprint(self, engine: Engine) -> dict[str, Any]:
        settings = engine.constructor_settings()
        cache_key = json.dumps([engine.name, settings], sort_keys=True)
        if cache_key not in self._fingerprints:
            self._connect()
            result = self._ssh(self._agent_command(
                f"--fingerprint --engine {shlex.quote(engine.name)} --engine-settings {shlex.quote(json.dumps(settings))}"
            ))
            stdout = result.stdout.decode(errors="replace")
            if result.returncode != 0:
                raise self._agent_failure(result.returncode, result.stderr.decode(errors="replace").splitlines())
            try:
                info = json.loads(stdout.strip().splitlines()[-1])
            except (json.JSONDecodeError, IndexError):
                raise ValueError(f"the timing agent on {self.target} printed no fingerprint: {stdout[-200:]!r}") from None
            if self.require_arm and str(info.get("arch", "")).lower() not in ARM_MACHINES:
                raise ValueError(
                    f"--device arm --remote {self.target}: that machine is {info.get('arch')}, not ARM; "
                    f"use --device host --remote {self.target} to measure it anyway"
                )
            self._fingerprints[cache_key] = {"device": self.name, **info, "via": "ssh", "remote": str(self.target), "remote_python": self.remote_python}
        return dict(self._fingerprints[cache_key])

    def measure_stream(self, jobs: Iterable[Job], engine: Engine, policy: RunPolicy) -> Iterator[tuple[Job, Measurement]]:
        self._connect()
        # One remote call per chunk: the agent times a chunk's items together, as the host does.
        for batch in chunked(jobs, policy.chunk_items):
            yield from self._run_batch(batch, engine, policy)

    def _run_batch(self, batch: list[Job], engine: Engine, policy: RunPolicy) -> Iterator[tuple[Job, Measurement]]:
        state = self._state
        name = f"batch-{next(self._batches)}"
        items = []
        for index, job in enumerate(batch):
            if not os.path.isfile(job.onnx_path):
                raise ValueError(f"no ONNX file at {job.onnx_path}")
            items.append({"key": str(index), "onnx": f"{index:04d}.onnx", "input_shape": list(job.input_shape)})
        document = {
            "engine": engine.name,
            "engine_settings": engine.constructor_settings(),
            "policy": policy.to_dict(),
            "items": items,
        }
        payload = Path(state.folder) / f"{name}.tar"
        with tarfile.open(payload, "w") as archive:
            for job, item in zip(batch, items):
                archive.add(job.onnx_path, arcname=item["onnx"])
            data = json.dumps(document).encode("utf-8")
            info = tarfile.TarInfo("job.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        python = shlex.quote(self.remote_python)
        command = self._agent_command(
            f"{name}/job.json", then=f"rm -rf {name};", before=f"{python} -c {shlex.quote(UNPACK)} {name} || exit 4;"
        )
        try:
            with open(payload, "rb") as stdin:
                process = subprocess.Popen(
                    ["ssh", *state.base, *self._port("-p"), state.destination, command],
                    stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                )
        finally:
            payload.unlink(missing_ok=True)  # ssh holds it open
        stderr_tail: deque[str] = deque(maxlen=40)
        reader = threading.Thread(target=lambda: stderr_tail.extend(process.stderr), daemon=True)
        reader.start()
        received: set[int] = set()
        try:
            for line in process.stdout:
                try:
                    record = json.loads(line)
                    index = int(record["key"])
                    measurement = Measurement.from_dict(record)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # not a result line
                if 0 <= index < len(batch) and index not in received:
                    received.add(index)
                    yield batch[index], measurement
            code = process.wait()
            reader.join(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if len(received) == len(batch) and code == 0:
            return
        if code == 255 or code < 0:
            raise RemoteError(
                f"lost the connection to {self.target} after {len(received)} of {len(batch)} models of a batch: "
                f"{_tail(stderr_tail, f'ssh exit code {code}')}"
            )
        raise self._agent_failure(code, stderr_tail)
