"""Fixtures shared across test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
TINY_SPACE = DATA / "tiny_space.yaml"


@pytest.fixture(scope="session")
def tiny_lut_path(tmp_path_factory) -> Path:
    """A real latency table of the tiny space, measured on this machine (a few seconds)."""
    from latency.build_lut import main as build_lut

    out = tmp_path_factory.mktemp("lut") / "tiny.json"
    code = build_lut(["--device", "host", "--space", str(TINY_SPACE), "--out", str(out), "--calibration-nets", "6", "--calibration-rounds", "1"])
    assert code == 0
    return out
