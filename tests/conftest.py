"""Fixtures shared across test modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
TINY_SPACE = DATA / "tiny_space.yaml"


@pytest.fixture(scope="session")
def tiny_lut_path(tmp_path_factory) -> Path:
    """A latency table of the tiny space built by the real builder on the deterministic engine
    (costs a known function of each graph): whatever reads it gets the same figures every run."""
    from latency.build_lut import main as build_lut

    out = tmp_path_factory.mktemp("lut") / "tiny.json"
    code = build_lut(["--device", "host", "--space", str(TINY_SPACE), "--out", str(out), "--calibration-nets", "6", "--engine", "deterministic"])
    assert code == 0
    return out


@dataclass(frozen=True)
class TinyStudy:
    """A finished ``nas.search`` study: its folder (outputs and study.db), storage and name."""

    folder: Path
    storage_url: str
    name: str
    lut: Path
    budget_ms: float


@pytest.fixture(scope="session")
def budget_ms(tiny_lut_path) -> float:
    """A budget near the middle of the tiny space's predicted latencies: some candidates fit."""
    import random

    from latency import load_lut
    from space import load_space

    lut, space = load_lut(tiny_lut_path), load_space(TINY_SPACE)
    rng = random.Random(0)
    latencies = sorted(lut.predict(space.sample(rng)) for _ in range(200))
    return round(latencies[len(latencies) // 2], 6)  # round-trips exactly through f"{budget_ms}ms"


@pytest.fixture(scope="session")
def tiny_study(tiny_lut_path, budget_ms, tmp_path_factory) -> TinyStudy:
    """A small real search (tiny space, synthetic data, baselines, 6 evaluated candidates of 2
    epochs at 16 px: quick, and accuracies differ) with every output written. Read it; copy it to change it."""
    from nas.search import main as search

    results = tmp_path_factory.mktemp("study")
    code = search(["--budget", f"{budget_ms}ms", "--lut", str(tiny_lut_path), "--space", str(TINY_SPACE), "--data", "synthetic",
                   "--quick", "--epochs", "2", "--resolution", "16", "--threads", "1", "--trials", "6", "--results", str(results), "--study", "t"])
    assert code == 0
    folder = results / "t"
    return TinyStudy(folder, f"sqlite:///{folder / 'study.db'}", "t", tiny_lut_path, budget_ms)
