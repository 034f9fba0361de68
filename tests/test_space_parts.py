"""The space's distinct deployable parts and its size, checked against real architectures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from repghost import BlockSpec, HeadSpec, StemSpec, make_divisible, part_key
from space import load_space

TINY = Path(__file__).parent / "data" / "tiny_space.yaml"


@pytest.fixture(scope="module")
def default_space():
    return load_space()


def test_tiny_space_parts_equal_brute_force_enumeration():
    space = load_space(TINY)
    seen = set()
    networks = set()
    for params in space.iter_params():
        config = space.decode(params)
        networks.add(config.to_json())
        seen |= set(config.parts(space.resolution))
    assert set(space.parts()) == seen
    assert len(space.parts()) == len(seen)
    assert space.size() == len(networks)
    assert space.n_assignments() == sum(1 for _ in space.iter_params())
    assert space.count_blocks() == sum(isinstance(p, BlockSpec) for p in seen)
    assert 10 <= len(seen) <= 20  # small enough for a latency table built in seconds


# Variants of the tiny space, each brute-forced: mid ratios that round together at width 0.5
# (16 x 0.5 x 0.75 and 16 x 0.5 x 1.0 both give 8 channels, so size() < assignments), and a
# stage whose depth changes the next part's input (b02 widens to 32 channels, out ratios).
VARIANTS = {
    "rounding": [("mid: [1.0]", "mid: [0.75, 1.0]")],
    "depth feeds the head": [
        ("out: 24, se: false, stride: 1}", "out: 32, se: false, stride: 1}"),
        ("  - depth: [1, 2]", "  - depth: [1, 2]\n    out: [0.75, 1.0]"),
        ("se: [false]", "se: [false, true]"),
    ],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_parts_and_size_equal_brute_force(tmp_path, variant):
    text = TINY.read_text()
    for old, new in VARIANTS[variant]:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "space.yaml"
    path.write_text(text)
    space = load_space(path)
    networks, seen, assignments = set(), set(), 0
    for params in space.iter_params():
        config = space.decode(params)
        networks.add(config.to_json())
        seen |= set(config.parts(space.resolution))
        assignments += 1
    assert set(space.parts()) == seen
    assert space.size() == len(networks)
    assert space.n_assignments() == assignments
    if variant == "rounding":
        assert space.size() < assignments
    else:
        # The head sees the output of b01 (depth 1) or of b02 (depth 2).
        expected = {make_divisible(out * w * r) for out in (24, 32) for w in (0.5, 1.0) for r in (0.75, 1.0)}
        assert {p.in_chs for p in seen if isinstance(p, HeadSpec)} == expected


def test_parts_are_sorted_distinct_and_deploy_normalized(default_space):
    parts = default_space.parts()
    keys = [part_key(p) for p in parts]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys) == len(set(parts))
    blocks = [p for p in parts if isinstance(p, BlockSpec)]
    assert default_space.count_blocks() == len(blocks)
    assert all(p.block.branch in ("bn", "none") for p in blocks)  # branch never multiplies entries
    widths = next(d.choices for d in default_space.decisions if d.name == "width")
    assert {p.out for p in parts if isinstance(p, StemSpec)} == {make_divisible(16 * w) for w in widths}
    assert all(isinstance(p, (StemSpec, BlockSpec, HeadSpec)) for p in parts)
    assert len(blocks) <= 8000  # the latency table's budget (see space/repghost.yaml)


def test_every_sampled_architecture_uses_only_listed_parts(default_space):
    listed = set(default_space.parts())
    rng = random.Random(3)
    used = set()
    for _ in range(2000):
        parts = set(default_space.sample(rng).parts(default_space.resolution))
        missing = parts - listed
        assert not missing, f"parts() lacks {sorted(part_key(p) for p in missing)[:3]}"
        used |= parts
    # Random draws reach a good share of the listed parts (a superset full of unreachable
    # parts would cost latency-table time for nothing; the tiny-space test checks equality).
    assert len(used) > 0.5 * len(listed)


def test_paper_models_use_only_listed_parts(default_space):
    listed = set(default_space.parts())
    for width in (0.5, 1.0, 2.0):
        config = default_space.decode(default_space.paper_point(width))
        assert set(config.parts(224)) <= listed
