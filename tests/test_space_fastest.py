"""``SearchSpace.fastest``: the cheapest architecture under an additive per-part cost."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from repghost import part_key
from space import load_space

TINY = Path(__file__).parent / "data" / "tiny_space.yaml"


def pseudo_ms(spec) -> float:
    """A fixed, irregular cost per part (not monotone in size), so a greedy guess can fail."""
    digest = hashlib.sha256(part_key(spec).encode()).digest()
    return 0.1 + int.from_bytes(digest[:4], "big") / 2**32


def _total(space, config) -> float:
    return sum(pseudo_ms(p) for p in config.parts(space.resolution))


@pytest.mark.parametrize("edits", [[], [("se: [false]", "se: [false, true]"), ("out: 24, se: false, stride: 1}", "out: 32, se: false, stride: 1}"), ("  - depth: [1, 2]", "  - depth: [1, 2]\n    out: [0.75, 1.0]")]])
def test_fastest_equals_brute_force_on_tiny_spaces(tmp_path, edits):
    text = TINY.read_text()
    for old, new in edits:
        text = text.replace(old, new)
    path = tmp_path / "space.yaml"
    path.write_text(text)
    space = load_space(path)
    brute = min(_total(space, space.decode(params)) for params in space.iter_params())
    best_ms, params = space.fastest(pseudo_ms)
    assert best_ms == pytest.approx(brute, rel=1e-12)
    assert _total(space, space.decode(params)) == pytest.approx(best_ms, rel=1e-12)


def test_fastest_of_the_default_space_beats_samples_and_papers():
    space = load_space()
    best_ms, params = space.fastest(pseudo_ms)
    config = space.decode(params)
    assert _total(space, config) == pytest.approx(best_ms, rel=1e-12)
    rng = random.Random(5)
    for _ in range(300):
        assert _total(space, space.sample(rng)) >= best_ms
    for width in (0.5, 1.0):
        assert _total(space, space.decode(space.paper_point(width))) >= best_ms


def test_fastest_rejects_a_cost_that_is_not_a_number():
    space = load_space(TINY)
    with pytest.raises(ValueError, match="part_ms must return a finite number of ms, got None"):
        space.fastest(lambda spec: None)
    with pytest.raises(ValueError, match="got nan"):
        space.fastest(lambda spec: float("nan"))
