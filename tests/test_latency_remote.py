"""Measuring over SSH, for real: an OpenSSH server started by the test on 127.0.0.1 (a high port,
keys made by the test) stands in for an ARM board; the tiny space's LUT is built through
``--device host --remote``, checked, interrupted by killing the server, and resumed.

Needs Debian's ``openssh-server`` (``apt-get install -y openssh-server``); the test fails, it does
not skip, when it is missing.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import repghost
import space
from latency import get_device, get_engine
from latency.build_lut import main as build_main
from latency.remote import RemoteError, RemoteTarget
from latency.validate import main as validate_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_space.yaml"
SSHD = "/usr/sbin/sshd"
FAST = ["--calibration-nets", "2", "--calibration-rounds", "1", "--min-runs", "10", "--max-runs", "30"]


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


def tiny_keys() -> set[str]:
    return {repghost.part_key(spec) for spec in space.load_space(TINY).parts()}


def test_lut_built_over_ssh_has_the_remote_fingerprint_and_resumes(servers, ssh_keys, tmp_path, capsys):
    server = servers()
    out = tmp_path / "remote.json"
    command = ["--device", "host", "--remote", server.remote, *ssh_args(ssh_keys), "--space", str(TINY), "--out", str(out), *FAST]
    assert build_main(command) == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["complete"] and set(data["entries"]) == tiny_keys()
    assert all(entry["median_ms"] > 0 and entry["runs"] >= 10 for entry in data["entries"].values())
    fingerprint = data["fingerprint"]
    assert fingerprint["via"] == "ssh" and fingerprint["remote_python"] == sys.executable and fingerprint["device"] == "host"
    assert fingerprint["arch"] == platform.machine() and fingerprint["engine"] == "ort" and fingerprint["engine_version"]
    assert fingerprint["cores"] == os.cpu_count() and fingerprint["cpu_model"] and fingerprint["os"]

    # Rerun: everything is there, nothing is measured again.
    capsys.readouterr()
    assert build_main(command) == 0
    assert f"{len(data['entries'])} parts ({len(data['entries'])} already measured)" in capsys.readouterr().err
    assert json.loads(out.read_text())["entries"] == data["entries"]

    # Validation on the same remote device.
    assert validate_main(["--lut", str(out), "--n", "2", "--rounds", "1", "--remote", server.remote, *ssh_args(ssh_keys)]) == 0
    report = json.loads(out.with_name("remote.validation.json").read_text())
    assert report["summary"]["random"]["n"] == 2


def test_connection_lost_mid_build_keeps_what_was_measured(servers, ssh_keys, tmp_path, capsys):
    """Kill the server (and its sessions) while parts are being timed; the build stops with a
    one-line error, the entries measured so far are in the file, and a rerun through a new
    server measures only the rest."""
    out = tmp_path / "cut.json"
    slow = ["--calibration-nets", "0", "--min-runs", "2000", "--max-runs", "2000"]  # parts take about 0.1 s each

    def command(server: Server) -> list[str]:
        return ["--device", "host", "--remote", server.remote, *ssh_args(ssh_keys), "--space", str(TINY), "--out", str(out), *slow]

    server = servers()
    result: list[int] = []
    build = threading.Thread(target=lambda: result.append(build_main(command(server))))
    build.start()
    deadline = time.monotonic() + 120
    saved = 0
    while time.monotonic() < deadline and build.is_alive() and saved < 1:
        time.sleep(0.05)
        try:
            saved = len(json.loads(out.read_text())["entries"])
        except (OSError, ValueError, KeyError):
            saved = 0
    assert build.is_alive(), f"the build ended before it could be interrupted: {capsys.readouterr().err}"
    server.kill()
    build.join(timeout=60)
    err = capsys.readouterr().err
    assert result == [1], err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: lost the connection to") and "rerun the same command to resume" in last
    first = json.loads(out.read_text())
    kept = first["entries"]
    assert 1 <= len(kept) < len(tiny_keys()) and not first["complete"]

    assert build_main(command(servers())) == 0
    assert f"{len(tiny_keys())} parts ({len(kept)} already measured)" in capsys.readouterr().err
    final = json.loads(out.read_text())
    assert set(final["entries"]) == tiny_keys()
    assert all(final["entries"][key] == entry for key, entry in kept.items())


def test_remote_errors_are_one_line(servers, ssh_keys, tmp_path, capsys):
    server = servers()
    options = ssh_args(ssh_keys)
    # The remote Python must exist...
    out = tmp_path / "x.json"
    bad_python = ssh_args(ssh_keys, python=str(tmp_path / "no-python"))
    assert build_main(["--device", "host", "--remote", server.remote, *bad_python, "--space", str(TINY), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--remote-python" in err and not out.exists()
    # ...--device arm checks that the remote is ARM...
    if platform.machine().lower() not in ("aarch64", "arm64"):
        assert build_main(["--device", "arm", "--remote", server.remote, *options, "--space", str(TINY), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "not ARM" in err and "--device host --remote" in err and not out.exists()
    # ...and a server that does not answer is named.
    server.kill()
    with pytest.raises(ValueError, match="cannot connect to") as caught:
        get_device("host", remote=server.remote, ssh_options=ssh_options(ssh_keys)).fingerprint(get_engine("ort"))
    assert not isinstance(caught.value, RemoteError)  # not a lost connection: nothing to resume


def test_remote_target_parsing():
    assert RemoteTarget.parse("pi@board.local:2222") == RemoteTarget("pi", "board.local", 2222)
    assert RemoteTarget.parse("ubuntu@10.0.0.5") == RemoteTarget("ubuntu", "10.0.0.5", None)
    assert RemoteTarget.parse("root@[::1]:22") == RemoteTarget("root", "::1", 22)
    assert str(RemoteTarget.parse("root@[::1]:22")) == "root@[::1]:22"
    for bad in ("pi@", "pi@host:0", "pi@host:99999", "pi@-oProxyCommand=x", "pi@a b", ""):
        with pytest.raises(ValueError, match="--remote"):
            RemoteTarget.parse(bad)
