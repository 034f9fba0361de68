"""The timing agent as the remote board gets it, run policies, and the device CLI's refusals
(the contract of every engine and device is tests/test_latency_contract.py)."""

from __future__ import annotations

import ast
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import repghost
from latency import RunPolicy, get_device
from latency.build_lut import main as build_main
from latency.remote import AGENT_FILES, agent_files
from latency.overhead import trivial_onnx

ROOT = Path(__file__).resolve().parents[1]
SMALL_BLOCK = repghost.BlockConfig(kernel=3, mid=48, out=24, stride=1)
BIG_BLOCK = repghost.BlockConfig(kernel=5, mid=192, out=64, stride=2, se_ratio=0.25)


def export_block(block: repghost.BlockConfig, in_chs: int, size: int, path: Path) -> tuple[str, tuple[int, ...]]:
    spec = repghost.BlockSpec(block.deploy_key(in_chs), in_chs, size)
    repghost.export_onnx(repghost.build_part(spec), path, input_shape=spec.input_shape())
    return str(path), spec.input_shape()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine-models")
    return {
        "trivial": (trivial_onnx(folder / "trivial.onnx"), (1, 1)),
        "small": export_block(SMALL_BLOCK, 24, 16, folder / "small.onnx"),
        "big": export_block(BIG_BLOCK, 32, 56, folder / "big.onnx"),
    }


def test_run_policy_validates():
    with pytest.raises(ValueError, match="rounds"):
        RunPolicy(rounds=0)
    with pytest.raises(ValueError, match="warmup_runs"):
        RunPolicy(warmup_runs=-1)
    with pytest.raises(ValueError, match="clock"):
        RunPolicy(clock="cpu")
    with pytest.raises(ValueError, match="not this protocol's.*older protocol must be rebuilt"):
        RunPolicy.from_dict({"min_runs": 3})


def test_shipped_files_import_only_stdlib_numpy_and_each_other():
    """What the remote board gets needs only Python, numpy and an engine's own package
    (imported when the engine is made), and imports nothing of the project it is not sent."""
    shipped = set(AGENT_FILES)
    for name in AGENT_FILES:
        tree = ast.parse((ROOT / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.ImportFrom):
                base = Path(name).parent
                for _ in range(node.level - 1):
                    base = base.parent
                target = base / (node.module or "").replace(".", "/")
                assert f"{target}.py" in shipped or f"{target}/__init__.py" in shipped, f"{name} imports {target}, which is not shipped"
                continue
            else:
                continue
            third_party = {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names)
            assert third_party <= {"numpy", "__future__"}, f"{name} imports {third_party}"


def ship(folder: Path) -> None:
    for name, data in agent_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def run_agent(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    """``python -m latency.agent`` run as the remote runs it, in the folder it was shipped to."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "latency.agent", *arguments], capture_output=True, text=True, cwd=folder, env=env)


def test_agent_runs_as_shipped(models, tmp_path):
    """The shipped files alone in a folder (as on a remote machine) time a job and print JSON lines."""
    ship(tmp_path)
    shutil.copy(models["small"][0], tmp_path / "small.onnx")
    job = {
        "engine": "ort",
        "engine_settings": {"threads": 1},
        "policy": {"rounds": 2, "burst_runs": 5},
        "items": [{"key": "small", "onnx": "small.onnx", "input_shape": list(models["small"][1])}],
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    result = run_agent(tmp_path, "job.json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["key"] for line in lines] == ["small"]
    assert 0 < lines[0]["min_ms"] <= lines[0]["median_ms"] and lines[0]["runs"] == 10

    code = "import sys, latency.agent; print(latency.agent.__file__, 'repghost' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.split() == [str(tmp_path / "latency" / "agent.py"), "False"]  # the shipped copy, alone

    result = run_agent(tmp_path, "--fingerprint")
    assert result.returncode == 0, result.stderr
    fingerprint = json.loads(result.stdout)
    assert fingerprint["arch"] == platform.machine() and fingerprint["engine"] == "ort"
    assert {"cpu_model", "cores", "os", "engine_version"} <= set(fingerprint)

    result = run_agent(tmp_path, "--fingerprint", "--engine", "nope")
    assert result.returncode == 2 and result.stderr.startswith("error: unknown engine")


@pytest.mark.skipif(platform.machine().lower() in ("aarch64", "arm64"), reason="this machine is ARM: --device arm is local here")
def test_arm_device_on_x86_says_what_to_do(capsys, tmp_path):
    code = build_main(["--device", "arm", "--space", "tests/data/tiny_space.yaml", "--out", str(tmp_path / "arm.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: --device arm needs an ARM CPU") and "--remote user@host[:port]" in err
    assert "paper-phone" in err and "results/lut/paper-phone.json" in err
    assert not (tmp_path / "arm.json").exists()


def test_remote_is_not_silently_ignored():
    """A remote device is made without contacting anything (tests/test_latency_remote.py
    measures through a real SSH server); SSH options without --remote are an error."""
    from latency.remote import RemoteDevice

    for name in ("host", "arm"):
        device = get_device(name, remote="pi@raspberry:2222")
        assert isinstance(device, RemoteDevice) and device.name == name and device.require_arm == (name == "arm")
        assert (device.target.user, device.target.host, device.target.port) == ("pi", "raspberry", 2222)
    with pytest.raises(ValueError, match="--remote user@host"):
        get_device("host", ssh_options=["IdentityFile=key"])
    with pytest.raises(ValueError, match="not user@host"):
        get_device("arm", remote="pi@rasp berry")
