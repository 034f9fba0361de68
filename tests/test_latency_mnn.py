"""The MNN engine: same outputs as ONNX Runtime on real exports, its settings, the agent script
with MNN (stdout stays JSON), and a tiny LUT built and validated with it.

The engine contract (tests/test_latency_contract.py) runs against MNN as well; these tests need
the optional extra: ``pip install -e .[mnn]``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import repghost
import space
from latency.engines import engine_from_settings, get_engine
from test_latency_engines import run_agent, ship
from latency.build_lut import main as build_main
from latency.validate import main as validate_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_space.yaml"

BLOCKS = {
    "se-stride2-k5": (repghost.BlockConfig(kernel=5, mid=192, out=64, stride=2, se_ratio=0.25), 32, 28),
    "reparam": (repghost.BlockConfig(kernel=3, mid=72, out=24), 24, 28),
    "concat": (repghost.BlockConfig(kernel=3, mid=144, out=24, reuse="concat", branch="none"), 24, 28),
}


def ort_output(path: Path, data: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"input": data})[0]


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_mnn_matches_onnx_runtime_on_a_block(name, tmp_path):
    block, in_chs, size = BLOCKS[name]
    spec = repghost.BlockSpec(block.deploy_key(in_chs), in_chs, size)
    path = tmp_path / f"{name}.onnx"
    repghost.export_onnx(repghost.build_part(spec), path, input_shape=spec.input_shape())
    data = np.random.default_rng(1).standard_normal(spec.input_shape()).astype(np.float32)
    expected = ort_output(path, data)
    got = get_engine("mnn", threads=1).run(str(path), data)
    assert got.shape == expected.shape
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_mnn_matches_onnx_runtime_on_a_whole_network(tmp_path):
    cfg = space.load_space(TINY).sample(random.Random(3))
    path = tmp_path / "net.onnx"
    shape = (1, 3, 64, 64)
    repghost.export_onnx(repghost.build(cfg, deploy=True), path, input_shape=shape)
    data = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(get_engine("mnn").run(str(path), data), ort_output(path, data), atol=1e-4, rtol=1e-4)


def test_mnn_settings_are_explicit():
    settings = get_engine("mnn", threads=2).settings()
    assert settings["precision"] == "fp32" and settings["mnn_precision_mode"] == "normal" and settings["threads"] == 2
    assert settings["engine_version"].count(".") >= 1
    half = get_engine("mnn", precision="fp16")
    assert half.settings()["mnn_precision_mode"] == "low"
    assert engine_from_settings(half.settings()).settings() == half.settings()
    with pytest.raises(ValueError, match="precision must be one of"):
        get_engine("mnn", precision="int8")
    with pytest.raises(ValueError, match="does not take these settings"):
        get_engine("ort", precision="fp16")


def test_agent_script_with_mnn_prints_json_only(tmp_path):
    """MNN's native code prints to stdout; the copied agent must keep stdout to JSON lines (and
    the converter's log of every model out of the user's terminal)."""
    ship(tmp_path)
    block, in_chs, size = BLOCKS["reparam"]
    spec = repghost.BlockSpec(block.deploy_key(in_chs), in_chs, size)
    repghost.export_onnx(repghost.build_part(spec), tmp_path / "block.onnx", input_shape=spec.input_shape())
    job = {
        "engine": "mnn",
        "engine_settings": {"threads": 1, "precision": "fp32"},
        "policy": {"rounds": 2, "burst_runs": 5},
        "items": [{"key": k, "onnx": "block.onnx", "input_shape": list(spec.input_shape())} for k in ("a", "b")],
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    result = run_agent(tmp_path, "job.json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["key"] for line in lines] == ["a", "b"] and all(line["meta"]["engine"] == "mnn" for line in lines)
    assert "Converted" not in result.stdout + result.stderr  # MNN's conversion log is kept out of sight

    result = run_agent(tmp_path, "--fingerprint", "--engine", "mnn", "--engine-settings", '{"precision": "fp16"}')
    assert result.returncode == 0, result.stderr
    fingerprint = json.loads(result.stdout)
    assert fingerprint["engine"] == "mnn" and fingerprint["precision"] == "fp16" and fingerprint["mnn_precision_mode"] == "low"


def test_mnn_lut_builds_and_validates(tmp_path, capsys):
    out = tmp_path / "tiny-mnn.json"
    code = build_main(
        ["--device", "host", "--engine", "mnn", "--space", str(TINY), "--out", str(out), "--calibration-nets", "6", "--rounds", "3"]
    )
    assert code == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    fingerprint = data["fingerprint"]
    assert fingerprint["engine"] == "mnn" and fingerprint["precision"] == "fp32" and fingerprint["mnn_backend"] == "CPU"
    assert set(data["entries"]) == {repghost.part_key(p) for p in space.load_space(TINY).parts()}
    assert all(0 < entry["min_ms"] <= entry["median_ms"] and entry["runs"] == 3 * 4 for entry in data["entries"].values())

    # Another precision is another fingerprint: the file is not touched.
    before = out.read_text()
    assert build_main(["--device", "host", "--engine", "mnn", "--precision", "fp16", "--space", str(TINY), "--out", str(out)]) == 2
    assert "precision" in capsys.readouterr().err and out.read_text() == before

    assert validate_main(["--lut", str(out), "--n", "3"]) == 0
    report = json.loads(out.with_name("tiny-mnn.validation.json").read_text())
    assert report["summary"]["random"]["n"] == 3
    assert np.isfinite(report["summary"]["random"]["mean_abs_err_pct"])


def test_a_model_mnn_cannot_convert_is_a_one_line_error_with_the_converters_reason(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_text("this is not an ONNX model")
    with pytest.raises(ValueError, match=r"MNN's converter could not convert .*broken\.onnx: .*(?i:onnx model)") as raised:
        get_engine("mnn").measure(str(broken), (1, 3, 8, 8))
    assert "\n" not in str(raised.value)
