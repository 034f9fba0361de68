"""Paper models as exact points of the default space; decoding, sampling and ids."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from repghost import GHOSTNET_WIDTHS, REPGHOST_WIDTHS, build, count_params, ghostnet_config, reference, repghostnet_config
from space import arch_id, load_space

TINY = Path(__file__).parent / "data" / "tiny_space.yaml"


def _published(table: str, width: float) -> list:
    return next(row for key, row in reference()[table].items() if float(key) == width)


@pytest.fixture(scope="module")
def space():
    return load_space()


@pytest.mark.parametrize("width", REPGHOST_WIDTHS)
def test_repghost_paper_point_decodes_to_the_preset(space, width):
    config = space.decode(space.paper_point(width))
    assert config == repghostnet_config(width)
    assert config.to_json() == repghostnet_config(width).to_json()
    params_train, params_deploy, _ = _published("repghostnet_exact", width)
    assert count_params(build(config)) == params_train
    assert count_params(build(config, deploy=True)) == params_deploy


@pytest.mark.parametrize("width", GHOSTNET_WIDTHS)
def test_ghostnet_is_a_point_too(space, width):
    # Concat blocks take GhostNet's mids, so GhostNet is the all-concat twin of RepGhostNet.
    config = space.decode(space.paper_point(width, family="ghostnet"))
    assert config == ghostnet_config(width)
    params, _ = _published("ghostnet_exact", width)
    assert count_params(build(config)) == params


def test_paper_point_names_are_readable_and_complete(space):
    params = space.paper_point(1.0)
    assert params["width"] == 1.0
    assert params["s3.out"] == 1.0
    assert params["s4.depth"] == 6
    assert params["b07.mid"] == 1.0 and params["b07.branch"] == "bn" and params["b07.reuse"] == "reparam"
    assert params["b03.se"] is True and params["b07.se"] is False
    assert params["b05.kernel"] == 3 and params["b11.kernel"] == 5
    assert set(params) == {d.name for d in space.decisions}  # every decision asked at full depth
    ghost = space.paper_point(1.0, family="ghostnet")
    assert not any(name.endswith(".branch") for name in ghost)  # concat has no branch


def test_paper_point_outside_the_space_is_refused(tmp_path):
    tiny = load_space(TINY)
    with pytest.raises(ValueError, match=r"repghost model at width 2 is not in .*tiny_space\.yaml: width choices \[0\.5, 1\.0\] lack 2"):
        tiny.paper_point(2.0)
    text = TINY.read_text().replace("branch: [bn, none]", "branch: [identity]")
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"b00\.branch is fixed to 'identity', the paper uses 'bn'"):
        load_space(path).paper_point(1.0)
    with pytest.raises(ValueError, match="family must be"):
        tiny.paper_point(1.0, family="mobilenet")


def test_decode_rejects_bad_params(space):
    params = space.paper_point(1.0)
    with pytest.raises(ValueError, match=r"params lack 'b07\.mid'"):
        space.decode({k: v for k, v in params.items() if k != "b07.mid"})
    with pytest.raises(ValueError, match=r"b07\.mid=0\.9 is not a choice; use one of \[0\.75, 1\.0, 1\.25\]"):
        space.decode({**params, "b07.mid": 0.9})
    with pytest.raises(ValueError, match=r"unknown decision 'b07\.midd'"):
        space.decode({**params, "b07.midd": 1.0})
    with pytest.raises(ValueError, match=r"b03\.se=1 is not a choice"):
        space.decode({**params, "b03.se": 1})  # True and 1 are kept apart
    concat = {**params, "b07.reuse": "concat"}
    with pytest.raises(ValueError, match=r"'b07\.branch' is inactive .*b07\.reuse == reparam"):
        space.decode(concat)
    shallow = {**params, "s4.depth": 5}
    with pytest.raises(ValueError, match=r"'b10\.\w+' is inactive .*s4\.depth >= 6"):
        space.decode(shallow)
    with pytest.raises(ValueError, match="params must be a dict"):
        space.decode([("width", 1.0)])


def test_decode_of_a_changed_point_changes_the_network(space):
    params = space.paper_point(1.0)
    base = space.decode(params)
    blocks = space.decode({**params, "s4.out": 1.25}).flat_blocks()
    assert [b.out for b in blocks[5:11]] == [100, 100, 100, 100, 140, 140]
    assert blocks[11] == base.flat_blocks()[11]  # s5 keeps its own widths
    concat = space.decode({k: v for k, v in params.items() if k != "b07.branch"} | {"b07.reuse": "concat"}).flat_blocks()[7]
    assert (concat.reuse, concat.branch, concat.mid) == ("concat", "none", 184)
    shallow = space.decode({k: v for k, v in params.items() if not k.startswith(("b14.", "b15."))} | {"s5.depth": 3})
    assert [len(group) for group in shallow.blocks] == [1, 1, 1, 1, 1, 1, 5, 1, 2]
    mid = space.decode({**params, "b03.mid": 1.25, "b03.kernel": 3, "b03.se": False}).flat_blocks()[3]
    assert (mid.mid, mid.kernel, mid.se_ratio) == (44, 3, 0.0)


def test_dropped_group_stays_in_place():
    tiny = load_space(TINY)
    params = next(p for p in tiny.iter_params() if p["s2.depth"] == 1)
    config = tiny.decode(params)
    assert [len(group) for group in config.blocks] == [1, 1]
    assert len(config.flat_blocks()) == 2


def test_sample_is_reproducible_and_decodable(space):
    first = [space.sample_params(random.Random(7)) for _ in range(2)]
    assert first[0] == first[1]
    params, config = first[0]
    assert space.decode(params) == config
    assert space.sample(random.Random(7)) == config
    with pytest.raises(ValueError, match="rng must be a random.Random"):
        space.sample(7)


def test_arch_id_is_short_stable_and_distinct():
    a, b = repghostnet_config(1.0), repghostnet_config(1.3)
    assert arch_id(a) == arch_id(repghostnet_config(1.0))
    assert len(arch_id(a)) == 12 and int(arch_id(a), 16) >= 0
    assert arch_id(a) != arch_id(b)
    with pytest.raises(ValueError, match="config must be a NetConfig"):
        arch_id({"stem": 16})
