"""The contract every engine and every device kind keeps, written once and run against each.

Engines: every entry of ``latency.ENGINES`` (ONNX Runtime, MNN, the deterministic one). Devices:
this machine (``host``), this machine over SSH (``host --remote`` through a real OpenSSH server
on 127.0.0.1, ``tests/sshd.py``), and ``arm`` here, which must refuse on a machine that is not
ARM. Real engines are checked for what timing noise cannot change; the deterministic engine for
its exact figures, which must be the same wherever it runs (the host and the remote run the same
files).
"""

from __future__ import annotations

import dataclasses
import platform
import sys
from pathlib import Path

import pytest

import repghost
from latency import ENGINES, Job, Measurement, RunPolicy, get_device, get_engine
from latency.device_registry import DEVICES
from latency.engines import TimedEngine
from latency.engines.deterministic import CALL_MS, MS_PER_MB, MS_PER_MMAC, MS_PER_NODE, graph_cost
from latency.lut_format import Fingerprint, fingerprint_from_measurement
from latency.overhead import trivial_onnx
from sshd import Server, ssh_keys, ssh_options  # noqa: F401 (ssh_keys: a fixture)

SMALL_BLOCK = repghost.BlockConfig(kernel=3, mid=48, out=24, stride=1)
BIG_BLOCK = repghost.BlockConfig(kernel=5, mid=192, out=64, stride=2, se_ratio=0.25)
POLICY = RunPolicy(rounds=3, burst_runs=3, warmup_runs=1)
ON_ARM = platform.machine().lower() in ("aarch64", "arm64", "armv8l", "armv7l")


def export_block(block: repghost.BlockConfig, in_chs: int, size: int, path: Path) -> Job:
    spec = repghost.BlockSpec(block.deploy_key(in_chs), in_chs, size)
    repghost.export_onnx(repghost.build_part(spec), path, input_shape=spec.input_shape())
    return Job(path.stem, str(path), spec.input_shape())


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> dict[str, Job]:
    folder = tmp_path_factory.mktemp("contract-models")
    return {
        "trivial": Job("trivial", trivial_onnx(folder / "trivial.onnx"), (1, 1)),
        "small": export_block(SMALL_BLOCK, 24, 16, folder / "small.onnx"),
        "big": export_block(BIG_BLOCK, 32, 56, folder / "big.onnx"),
    }


@pytest.fixture(scope="module", params=["host", "host-over-ssh"])
def device(request, tmp_path_factory):
    """Each device kind that measures on this machine's CPU."""
    if request.param == "host":
        yield get_device("host")
        return
    keys = request.getfixturevalue("ssh_keys")
    server = request.getfixturevalue("module_server")
    remote = get_device("host", remote=server.remote, ssh_options=ssh_options(keys), remote_python=sys.executable)
    with remote:
        yield remote


@pytest.fixture(scope="module")
def module_server(ssh_keys):
    server = Server(ssh_keys)
    yield server
    server.kill()


# -- engines alone ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_measures_with_spread(name, jobs):
    engine = get_engine(name, threads=1)
    measurement = engine.measure(jobs["small"].onnx_path, jobs["small"].input_shape, POLICY)
    assert isinstance(measurement, Measurement) and measurement.meta["engine"] == name
    assert 0 < measurement.median_ms < 1000 and 0 <= measurement.iqr_ms < 10 * measurement.median_ms
    if isinstance(engine, TimedEngine):
        assert measurement.runs == POLICY.samples and 0 < measurement.min_ms <= measurement.p10_ms <= measurement.median_ms
    else:
        assert measurement.runs == 1 and measurement.iqr_ms == 0.0 and measurement.min_ms == measurement.p10_ms == measurement.median_ms


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_settings_are_recorded_and_complete(name):
    """What ``settings`` reports is a fingerprint the LUT format knows (strictly read)."""
    engine = get_engine(name, threads=1, inter_op_threads=1, opt_level="extended")
    settings = engine.settings()
    assert settings["engine"] == name and settings["threads"] == 1 and settings["opt_level"] == "extended" and settings["engine_version"]
    assert set(engine.constructor_settings()) == set(type(engine).SETTINGS)
    again = get_engine(name, **engine.constructor_settings())
    assert again.settings() == settings


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_rejects_bad_input(name, tmp_path):
    with pytest.raises(ValueError, match="threads"):
        get_engine(name, threads=0)
    with pytest.raises(ValueError, match="opt_level"):
        get_engine(name, opt_level="max")
    with pytest.raises(ValueError, match="no ONNX file"):
        get_engine(name).measure(str(tmp_path / "missing.onnx"), (1, 1))
    with pytest.raises(ValueError, match="does not take these settings"):
        get_engine(name, speed="max")


def test_unknown_engine_lists_known_ones():
    with pytest.raises(ValueError, match="unknown engine 'tflite'; known engines: deterministic, mnn, ort"):
        get_engine("tflite")


def test_deterministic_cost_is_the_stated_function_of_the_graph(jobs):
    """The cost is computed from MACs, bytes and nodes read off the graph: known by hand for
    the one-node graph, and checked against repghost's own MAC count for a block."""
    engine = get_engine("deterministic")
    trivial = graph_cost(jobs["trivial"].onnx_path, (1, 1))
    assert trivial == {"macs": 0, "bytes": 4, "nodes": 1}
    assert engine.measure(jobs["trivial"].onnx_path, (1, 1)).median_ms == CALL_MS + MS_PER_NODE + MS_PER_MB * 4 / 1e6
    small = jobs["small"]
    spec = repghost.BlockSpec(SMALL_BLOCK.deploy_key(24), 24, 16)
    module = repghost.build_part(spec, deploy=True)
    cost = graph_cost(small.onnx_path, small.input_shape)
    assert cost["macs"] == repghost.count(module, resolution=16, in_chans=24).macs  # fvcore, by another route
    expected = CALL_MS + MS_PER_NODE * cost["nodes"] + MS_PER_MMAC * cost["macs"] / 1e6 + MS_PER_MB * cost["bytes"] / 1e6
    assert engine.measure(small.onnx_path, small.input_shape).median_ms == expected
    assert get_engine("deterministic", threads=2).measure(small.onnx_path, small.input_shape).median_ms < expected


# -- every device kind, with every engine ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_device_fingerprint_is_a_known_fingerprint(device, name):
    engine = get_engine(name)
    record = device.fingerprint(engine)
    assert record["device"] == "host" and record["engine"] == name and record["arch"] == platform.machine()
    fingerprint = fingerprint_from_measurement({**record, "space_file": "x.yaml", "space_hash": "0", "resolution": 64, "date": "now", "statistic": "min"}, "test")
    assert isinstance(fingerprint, Fingerprint) and fingerprint.cores and fingerprint.cpu_model
    assert (fingerprint.via == "ssh") == (device.name == "host" and hasattr(device, "target"))


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_device_streams_every_job_in_order(device, name, jobs):
    """Each job comes back once, in order, as a measurement; work orders the timings."""
    engine = get_engine(name)
    order = [jobs["trivial"], jobs["small"], jobs["big"]]
    results = list(device.measure_stream(order, engine, POLICY))
    assert [job.key for job, _ in results] == ["trivial", "small", "big"]
    trivial, small, big = (m.median_ms for _, m in results)
    assert all(isinstance(m, Measurement) and m.median_ms > 0 for _, m in results)
    assert trivial < small < big  # about 100x the work apart: noise cannot reverse it


def test_deterministic_figures_are_the_same_on_every_device(device, jobs):
    """The host and the remote run the same engine files: the same graph costs the same there."""
    engine = get_engine("deterministic")
    local = {key: engine.measure(job.onnx_path, job.input_shape) for key, job in jobs.items()}
    for job, measurement in device.measure_stream(jobs.values(), engine, POLICY):
        assert measurement.median_ms == local[job.key].median_ms
        assert measurement.meta["macs"] == local[job.key].meta["macs"]


def test_device_kinds_are_named():
    assert sorted(DEVICES) == ["arm", "host"]
    with pytest.raises(ValueError, match="unknown device 'gpu'; known devices: arm, host"):
        get_device("gpu")


@pytest.mark.skipif(ON_ARM, reason="this machine is ARM: --device arm is local here")
def test_arm_device_refuses_on_this_machine():
    with pytest.raises(ValueError) as caught:
        get_device("arm")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and message.startswith("--device arm needs an ARM CPU")
    assert "--remote user@host[:port]" in message and "paper-phone" in message


def test_a_measurement_is_plain_data():
    measurement = Measurement(1.0, 0.1, 3, {"engine": "x"})
    assert dataclasses.asdict(measurement) == measurement.to_dict()
