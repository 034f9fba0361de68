"""Contract tests run against every registered latency engine, plus the agent run as a script."""

from __future__ import annotations

import ast
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import repghost
from latency import ENGINES, Measurement, RunPolicy, get_device, get_engine
from latency.agent import __file__ as AGENT_FILE
from latency.build_lut import main as build_main
from latency.overhead import trivial_onnx

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


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_measures_with_spread(name, models):
    engine = get_engine(name, threads=1)
    policy = RunPolicy(min_runs=15, max_runs=60)
    measurement = engine.measure(*models["small"], policy)
    assert isinstance(measurement, Measurement)
    assert 0 < measurement.median_ms < 1000
    assert 0 <= measurement.iqr_ms < 10 * measurement.median_ms
    assert policy.min_runs <= measurement.runs <= policy.max_runs * policy.attempts
    assert measurement.meta["engine"] == name


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_orders_work(name, models):
    """A block doing about 100x the work of another must time slower, and the one-node graph
    (the session-call cost) faster than both."""
    engine = get_engine(name)
    trivial = engine.measure(*models["trivial"]).median_ms
    small = engine.measure(*models["small"]).median_ms
    big = engine.measure(*models["big"]).median_ms
    assert trivial < small < big


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_settings_are_recorded(name):
    settings = get_engine(name, threads=1, inter_op_threads=1, opt_level="extended").settings()
    assert settings["engine"] == name and settings["threads"] == 1 and settings["opt_level"] == "extended"
    assert settings["engine_version"]


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_rejects_bad_input(name, tmp_path):
    with pytest.raises(ValueError, match="threads"):
        get_engine(name, threads=0)
    with pytest.raises(ValueError, match="opt_level"):
        get_engine(name, opt_level="max")
    with pytest.raises(ValueError, match="no ONNX file"):
        get_engine(name).measure(str(tmp_path / "missing.onnx"), (1, 1))


def test_unknown_engine_lists_known_ones():
    with pytest.raises(ValueError, match="unknown engine 'tflite'; known engines: mnn, ort"):
        get_engine("tflite")


def test_run_policy_validates():
    with pytest.raises(ValueError, match="max_runs"):
        RunPolicy(min_runs=50, max_runs=10)
    with pytest.raises(ValueError, match="clock"):
        RunPolicy(clock="cpu")
    with pytest.raises(ValueError, match="unknown run policy settings"):
        RunPolicy.from_dict({"min_run": 3})


def test_agent_imports_only_stdlib_numpy_and_engines():
    tree = ast.parse(Path(AGENT_FILE).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the agent must not import relative modules"
            imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names}
    assert third_party == {"numpy"}


def test_agent_runs_as_a_copied_script(models, tmp_path):
    """The agent alone in a folder (as on a remote machine) times a job and prints JSON lines."""
    agent = tmp_path / "agent.py"
    shutil.copy(AGENT_FILE, agent)
    shutil.copy(models["small"][0], tmp_path / "small.onnx")
    job = {
        "engine": "ort",
        "engine_settings": {"threads": 1},
        "policy": {"min_runs": 10, "max_runs": 20},
        "items": [{"key": "small", "onnx": "small.onnx", "input_shape": list(models["small"][1])}],
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    result = subprocess.run([sys.executable, "-I", str(agent), str(tmp_path / "job.json")], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["key"] for line in lines] == ["small"]
    assert lines[0]["median_ms"] > 0 and lines[0]["runs"] >= 10

    result = subprocess.run([sys.executable, "-I", str(agent), "--fingerprint"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fingerprint = json.loads(result.stdout)
    assert fingerprint["arch"] == platform.machine() and fingerprint["engine"] == "ort"
    assert {"cpu_model", "cores", "os", "engine_version"} <= set(fingerprint)

    result = subprocess.run([sys.executable, "-I", str(agent), "--fingerprint", "--engine", "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown engine")


def test_unknown_device_lists_known_ones():
    with pytest.raises(ValueError, match="unknown device 'gpu'; known devices: arm, host"):
        get_device("gpu")


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
