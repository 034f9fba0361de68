"""The paper-phone calibration: fits what it should, leaves points out honestly, labels its LUT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latency import load_lut
from latency.paper_phone import Calibration, _fit, leave_one_out, main, reference_points
from repghost import ghostnet_config, repghostnet_config
from space import load_space

ROOT = Path(__file__).resolve().parents[1]


def _networks(rng: np.random.Generator, n: int) -> list[list[tuple[str, float]]]:
    """Networks made of a few parts of each kind with random host costs."""
    return [
        [("stem:x", rng.uniform(0.1, 0.5)), ("head:x", rng.uniform(0.2, 1.0))]
        + [(f"block:reparam-{i}", rng.uniform(0.1, 2.0)) for i in range(rng.integers(3, 8))]
        + [(f"block:concat-{i}", rng.uniform(0.1, 2.0)) for i in range(rng.integers(0, 4))]
        for _ in range(n)
    ]


def test_per_kind_fit_recovers_a_known_calibration():
    truth = Calibration("per-kind", {"reparam": 3.0, "concat": 5.0, "other": 2.0}, 1.0, 1.5)
    parts = _networks(np.random.default_rng(0), 10)
    published = np.array([truth.predict(p) for p in parts])
    fitted = _fit("per-kind", parts, published)
    for kind, value in truth.scale.items():
        assert fitted.scale[kind] == pytest.approx(value, rel=1e-6)
    assert fitted.offset_ms == pytest.approx(1.5, rel=1e-6)
    np.testing.assert_allclose(leave_one_out("per-kind", parts, published), published, rtol=1e-6)


def test_leave_one_out_does_not_see_the_point_it_predicts():
    truth = Calibration("scale", {"reparam": 4.0, "concat": 4.0, "other": 4.0}, 1.0, 2.0)
    parts = _networks(np.random.default_rng(1), 9)
    published = np.array([truth.predict(p) for p in parts])
    published[4] *= 1.5  # one point the calibration cannot explain
    in_sample = _fit("scale", parts, published).predict(parts[4])
    held_out = leave_one_out("scale", parts, published)[4]
    assert abs(held_out / published[4] - 1) > abs(in_sample / published[4] - 1)


def test_reference_points_are_the_published_ten():
    points = reference_points()
    assert [p.name for p in points][-2:] == ["GhostNet 0.5x", "GhostNet 1.0x"]
    assert points[0].config == repghostnet_config(0.5) and points[0].published_ms == 25.1
    assert points[-1].config == ghostnet_config(1.0) and points[-1].published_ms == 75


def test_base_without_the_reference_networks_is_a_clear_error(tiny_lut_path, tmp_path, capsys):
    assert main(["--base", str(tiny_lut_path), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: LUT") and "has no entry for" in err and err.count("\n") == 1
    assert not (tmp_path / "p.json").exists()


def test_shipped_paper_phone_lut_is_labelled_and_covers_the_default_space():
    lut = load_lut(ROOT / "results" / "lut" / "paper-phone.json")
    assert lut.estimated and lut.fingerprint["device"] == "paper-phone"
    assert lut.fingerprint["space_hash"] == load_space().file_hash()
    provenance = lut.file.provenance
    assert "RepGhostNet readme" in provenance.estimate_of and provenance.calibration["name"] in provenance.leave_one_out["chosen"]
    base = load_lut(ROOT / provenance.base_lut)  # the measured LUT it came from ships beside it
    assert not base.estimated and base.fingerprint["space_hash"] == lut.fingerprint["space_hash"]
    space = load_space()
    assert len(lut) == len(space.parts())
    assert 0 < lut.predict(repghostnet_config(0.5)) < lut.predict(repghostnet_config(2.0))


def test_an_estimate_from_a_poor_base_is_poor_and_says_what_to_rebuild(tmp_path):
    """A phone estimate transforms its base's entries, so a base marked poor makes it poor too,
    and whoever loads the estimate is told to rebuild the base first."""
    base = json.loads((ROOT / "results" / "lut" / "host-mnn-t1-reference.json").read_text())
    base.update(quality="poor", quality_notes=["chunk at entry 3: the drift reference moved 9.0% (limit 3%) in each of 2 tries"])
    base_path = tmp_path / "base.json"
    base_path.write_text(json.dumps(base))
    out = tmp_path / "phone.json"
    assert main(["--base", str(base_path), "--out", str(out)]) == 0
    estimate = load_lut(out)
    assert estimate.file.quality == "poor"
    assert estimate.file.quality_notes == [f"its base {base_path}: chunk at entry 3: the drift reference moved 9.0% (limit 3%) in each of 2 tries"]
    (warning,) = estimate.warnings()
    assert warning.startswith(f"warning: LUT {out} is marked quality: poor (its base {base_path}") and warning.endswith("rebuild its base on a quieter machine, then this estimate")


def test_the_shipped_estimate_carries_its_base_quality():
    lut = load_lut(ROOT / "results" / "lut" / "paper-phone.json")
    base = load_lut(ROOT / lut.file.provenance.base_lut)
    assert lut.file.quality == base.file.quality and len(lut.file.quality_notes) == len(base.file.quality_notes)
