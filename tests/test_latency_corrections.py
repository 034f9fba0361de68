"""The correction fit on known numbers, the predictor's arithmetic, and the package layout."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

import repghost
import space
from latency.corrections import fit_correction
from latency.lut import LUT
from latency.lut_format import CalibrationNet, Entry, Fingerprint, LutFile, Overhead

TINY = Path(__file__).resolve().parent / "data" / "tiny_space.yaml"
SESSION_CALL_MS = 0.01


def synthetic_lut(truth, n_nets: int = 12) -> LutFile:
    """LUT data for the tiny space with made-up entry times, and calibration networks whose
    'measured' time is ``truth(sum_ms, weight_mb)``."""
    the_space = space.load_space(TINY)
    rng = random.Random(0)
    entries = {
        repghost.part_key(spec): Entry(SESSION_CALL_MS + rng.uniform(0.05, 1.0), iqr_ms=0.0, runs=1, weight_bytes=rng.randrange(10_000, 2_000_000))
        for spec in the_space.parts()
    }
    nets = {}
    sample_rng = random.Random(1)
    while len(nets) < n_nets:
        cfg = the_space.sample(sample_rng)
        keys = [repghost.part_key(spec) for spec in cfg.parts(the_space.resolution)]
        sum_ms = sum(entries[k].median_ms - SESSION_CALL_MS for k in keys)
        weight_mb = sum(entries[k].weight_bytes for k in keys) / 1e6
        measured_ms = truth(sum_ms, weight_mb)
        nets[cfg.to_json()] = CalibrationNet(cfg.to_json(), measured_ms, iqr_ms=0.0, runs=1)
    fingerprint = Fingerprint("host", "synthetic", "0", 1, str(TINY), the_space.file_hash(), the_space.resolution, "2026-01-01T00:00:00Z", "median")
    lut = LutFile(fingerprint, complete=True, entries=entries, overhead=Overhead(SESSION_CALL_MS, "made up"))
    lut.calibration.nets = nets
    return lut


def test_fit_recovers_an_affine_law():
    data = synthetic_lut(lambda s, w: 1.2 * s + 0.5)
    correction = fit_correction(data, 64)
    assert correction.scale == pytest.approx(1.2, rel=1e-3)
    assert correction.offset_ms == pytest.approx(0.5, abs=1e-3)
    assert correction.ms_per_weight_mb == pytest.approx(0.0, abs=1e-3)
    assert correction.fit["leave_one_out_mean_abs_err_pct"] < 0.1


def test_fit_finds_a_weight_cost_and_the_predictor_uses_it():
    data = synthetic_lut(lambda s, w: 1.1 * s + 0.3 * w + 0.2)
    correction = fit_correction(data, 64)
    assert correction.model == "affine+weights"
    assert correction.ms_per_weight_mb == pytest.approx(0.3, rel=1e-2)
    data.correction = correction
    lut = LUT(data)
    for net in data.calibration.nets.values():
        cfg = repghost.NetConfig.from_json(net.config)
        assert lut.predict(cfg) == pytest.approx(net.measured_ms, rel=1e-3)
        assert sum(ms for _, ms in lut.breakdown(cfg)) == pytest.approx(lut.predict(cfg))


def test_fit_finds_a_cost_per_part():
    data = synthetic_lut(lambda s, w: 0.9 * s + 0.3, n_nets=12)
    for net in data.calibration.nets.values():
        cfg = repghost.NetConfig.from_json(net.config)
        net.measured_ms -= 0.02 * len(cfg.parts(64))  # each part timed alone costs 0.02 ms more
    correction = fit_correction(data, 64)
    assert correction.model == "affine+parts"
    assert correction.ms_per_part == pytest.approx(-0.02, abs=1e-3)
    data.correction = correction
    lut = LUT(data)
    for net in data.calibration.nets.values():
        assert lut.predict(repghost.NetConfig.from_json(net.config)) == pytest.approx(net.measured_ms, rel=1e-3)


def test_fit_ignores_one_network_slowed_by_a_busy_moment():
    data = synthetic_lut(lambda s, w: 1.2 * s + 0.5)
    first = next(iter(data.calibration.nets.values()))
    first.measured_ms *= 1.6
    correction = fit_correction(data, 64)
    assert correction.scale == pytest.approx(1.2, rel=0.03)


@pytest.mark.parametrize("n_nets", [2, 4])
def test_too_few_networks_means_no_fit(n_nets):
    data = synthetic_lut(lambda s, w: 2 * s, n_nets=n_nets)
    correction = fit_correction(data, 64)
    assert correction.model == "none" and correction.scale == 1.0 and correction.offset_ms == SESSION_CALL_MS
    assert f"{n_nets} calibration networks (a fit needs 5)" in correction.how


def test_five_networks_fit_the_affine_law():
    correction = fit_correction(synthetic_lut(lambda s, w: 1.2 * s + 0.5, n_nets=5), 64)
    assert correction.model == "affine" and correction.scale == pytest.approx(1.2, rel=1e-3)


def test_package_does_not_import_its_tools():
    code = "import sys, latency; print(sorted(m for m in sys.modules if m.startswith('latency.')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = result.stdout
    for tool in ("latency.build_lut", "latency.validate", "latency.paper_phone", "latency.convert_lut", "latency.agent"):
        assert tool not in loaded


def test_a_fit_never_drops_the_measurements():
    """Calibration networks whose times have nothing to do with their parts (a very busy
    machine) must not yield a correction that predicts one constant for every network."""
    noise = random.Random(7)
    correction = fit_correction(synthetic_lut(lambda s, w: noise.uniform(0.5, 1.5), n_nets=8), 64)
    assert correction.scale >= 0.5
    data = synthetic_lut(lambda s, w: 1.2 * s + 0.5, n_nets=8)
    data.correction = correction
    lut = LUT(data)
    predictions = {lut.predict(repghost.NetConfig.from_json(net.config)) for net in data.calibration.nets.values()}
    assert len(predictions) > 1
