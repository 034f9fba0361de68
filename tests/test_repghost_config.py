"""Bad configs fail with a ValueError naming the field; good ones round-trip through JSON."""

import pytest

from repghost import BlockConfig, NetConfig, ghostnet_config, make_divisible, repghostnet_config


def _block(**changes):
    fields = dict(kernel=3, mid=16, out=16, se_ratio=0.0, stride=1)
    fields.update(changes)
    return BlockConfig(**fields)


@pytest.mark.parametrize(
    "changes,field",
    [
        (dict(kernel=4), "kernel"),
        (dict(kernel=3.0), "kernel"),
        (dict(stride=3), "stride"),
        (dict(mid=-8), "mid"),
        (dict(out=0), "out"),
        (dict(se_ratio=1.5), "se_ratio"),
        (dict(se_ratio="0.25"), "se_ratio"),
        (dict(branch="bn+bn"), "branch"),
        (dict(reuse="add"), "reuse"),
        (dict(reuse="concat", branch="bn"), "branch"),
        (dict(shortcut="yes"), "shortcut"),
    ],
)
def test_bad_block_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        _block(**changes)


@pytest.mark.parametrize(
    "changes,field",
    [
        (dict(stem=-16), "stem"),
        (dict(final_conv=0), "final_conv"),
        (dict(num_classes=0), "num_classes"),
        (dict(dropout=1.0), "dropout"),
        (dict(blocks=((),)), "blocks"),
        (dict(blocks=(((3, 16, 16, 0, 1),),)), "blocks"),
    ],
)
def test_bad_network_names_the_field(changes, field):
    fields = dict(stem=16, blocks=((_block(),),), final_conv=64)
    fields.update(changes)
    with pytest.raises(ValueError, match=field):
        NetConfig(**fields)


@pytest.mark.parametrize("bad", [0.7, "1.0", None, True])
def test_unknown_width(bad):
    with pytest.raises(ValueError, match="width"):
        repghostnet_config(bad)
    with pytest.raises(ValueError, match="width"):
        ghostnet_config(bad)


@pytest.mark.parametrize("config", [repghostnet_config(1.11), ghostnet_config(1.3)])
def test_json_round_trip(config):
    assert NetConfig.from_json(config.to_json()) == config
    assert NetConfig.from_json(config.to_json()).to_json() == config.to_json()


def test_from_dict_rejects_unknown_fields():
    data = repghostnet_config(0.5).to_dict()
    data["blocks"][0][0]["expansion"] = 2
    with pytest.raises(ValueError, match="expansion"):
        NetConfig.from_dict(data)


def test_make_divisible_rule():
    assert make_divisible(16 * 0.58) == 12  # rounds to 8, which is more than 10 % below 9.28
    assert make_divisible(960 * 1.11) == 1064
    assert make_divisible(1.0) == 4


def test_parts_shapes_follow_strides():
    parts = repghostnet_config(1.0).parts(224)
    assert parts[0].input_shape() == (1, 3, 224, 224)
    assert [p.size for p in parts[1:-1]] == [112, 112, 56, 56, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7, 7, 7]
    assert parts[-1].input_shape() == (1, 160, 7, 7)
    # Training-only choices do not change what is deployed.
    assert all(p.block.branch == "bn" for p in parts[1:-1])
