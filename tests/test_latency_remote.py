"""Measuring over SSH, for real: an OpenSSH server started by the test on 127.0.0.1 (a high port,
keys made by the test) stands in for an ARM board; the tiny space's LUT is built through
``--device host --remote``, checked, interrupted by killing the server, and resumed.

Needs Debian's ``openssh-server`` (``apt-get install -y openssh-server``); the test fails, it does
not skip, when it is missing.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import pytest

import repghost
import space
from latency import get_device, get_engine
from latency.build_lut import main as build_main
from latency.remote import RemoteError, RemoteTarget
from latency.validate import main as validate_main
from sshd import Server, servers, ssh_args, ssh_keys, ssh_options  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_space.yaml"
FAST = ["--calibration-nets", "2", "--rounds", "2", "--burst-runs", "3"]


def tiny_keys() -> set[str]:
    return {repghost.part_key(spec) for spec in space.load_space(TINY).parts()}


def test_lut_built_over_ssh_has_the_remote_fingerprint_and_resumes(servers, ssh_keys, tmp_path, capsys):
    server = servers()
    out = tmp_path / "remote.json"
    command = ["--device", "host", "--remote", server.remote, *ssh_args(ssh_keys), "--space", str(TINY), "--out", str(out), *FAST]
    assert build_main(command) == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["complete"] and set(data["entries"]) == tiny_keys()
    assert all(entry["median_ms"] > 0 and entry["runs"] == 6 for entry in data["entries"].values())
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
    assert validate_main(["--lut", str(out), "--n", "2", "--remote", server.remote, *ssh_args(ssh_keys)]) == 0
    report = json.loads(out.with_name("remote.validation.json").read_text())
    assert report["summary"]["random"]["n"] == 2


def test_connection_lost_mid_build_keeps_what_was_measured(servers, ssh_keys, tmp_path, capsys, monkeypatch):
    """Kill the server (and its connection) when the build's third chunk starts, two chunks of
    three parts being measured; the build stops with a one-line error, those six entries are in
    the file, and a rerun through a new server measures only the rest. (The deterministic
    engine, run by the agent over SSH like any other: no drift re-measures a chunk.)"""
    import latency.build_lut as build_lut

    out = tmp_path / "cut.json"

    def command(server: Server) -> list[str]:
        return ["--device", "host", "--remote", server.remote, *ssh_args(ssh_keys), "--space", str(TINY), "--out", str(out),
                "--engine", "deterministic", "--calibration-nets", "0", "--chunk-items", "5"]

    server = servers()
    real_get_device = build_lut.get_device

    def cut_at_third_chunk(*args, **kwargs):
        device = real_get_device(*args, **kwargs)
        stream, calls = device.measure_stream, []

        def measure_stream(jobs, engine, policy):
            calls.append(len(calls))
            if len(calls) == 3:
                server.kill()
            return stream(jobs, engine, policy)

        device.measure_stream = measure_stream
        return device

    monkeypatch.setattr(build_lut, "get_device", cut_at_third_chunk)
    assert build_main(command(server)) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: lost the connection to") and "rerun the same command to resume" in last
    first = json.loads(out.read_text())
    kept = first["entries"]
    assert len(kept) == 6 and not first["complete"]

    monkeypatch.setattr(build_lut, "get_device", real_get_device)
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
