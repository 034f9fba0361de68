"""A real OpenSSH server on 127.0.0.1 for the tests that measure over SSH: a high port, keys
made by the test, the current user. Needs Debian's ``openssh-server`` (``make sshd``); the tests
fail, they do not skip, when it is missing. Import the fixtures ``ssh_keys`` and ``servers``."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class Server:
    """One sshd on 127.0.0.1:port that accepts the test's client key for the current user."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.log = open(folder / f"sshd-{self.port}.log", "w")
        command = [
            SSHD, "-D", "-e", "-f", "/dev/null", "-p", str(self.port), "-h", str(folder / "host_key"),
            "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={folder / 'authorized_keys'}",
            "-o", "StrictModes=no", "-o", f"PidFile={folder / f'sshd-{self.port}.pid'}",
            "-o", "PermitRootLogin=yes", "-o", "UsePAM=no",
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited ({self.process.returncode}): {(folder / f'sshd-{self.port}.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not start listening within 15 s") from None
                time.sleep(0.05)

    @property
    def remote(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1:{self.port}"

    def kill(self) -> None:
        """The server and every session it started (the remote agents among them), at once."""
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def ssh_keys(tmp_path_factory) -> Path:
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: these tests need an OpenSSH server (apt-get install -y openssh-server)")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.fail("the OpenSSH client is missing (apt-get install -y openssh-client)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # Debian's sshd wants its privilege separation folder
    folder = tmp_path_factory.mktemp("ssh")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    return folder


def _agent_folders() -> set[Path]:
    return set(Path("/tmp").glob("repghost-agent.*"))  # the remote login has no TMPDIR


@pytest.fixture
def servers(ssh_keys):
    """Starts servers; at the end kills them and removes the remote folders that a killed
    session could not remove (the "remote" is this machine)."""
    started: list[Server] = []
    before = _agent_folders()

    def start() -> Server:
        started.append(Server(ssh_keys))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.kill()
    for folder in _agent_folders() - before:
        shutil.rmtree(folder, ignore_errors=True)


def ssh_options(keys: Path) -> list[str]:
    return [f"IdentityFile={keys / 'client_key'}", "UserKnownHostsFile=/dev/null", "StrictHostKeyChecking=no"]


def ssh_args(keys: Path, python: str = sys.executable) -> list[str]:
    return [*(arg for option in ssh_options(keys) for arg in ("--ssh-option", option)), "--remote-python", python]
