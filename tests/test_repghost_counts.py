"""Parameters and FLOPs of every paper model against the reference implementation's exact counts."""

import pytest

from repghost import GHOSTNET_WIDTHS, REPGHOST_WIDTHS, build, count, ghostnet_config, reference, reparameterize, repghostnet_config

REF = reference()


@pytest.mark.parametrize("width", REPGHOST_WIDTHS)
def test_repghostnet_counts_match_reference_exactly(width):
    params_train, params_deploy, macs = REF["repghostnet_exact"][str(width)]
    model = build(repghostnet_config(width))
    train = count(model)
    deploy = count(reparameterize(model))
    assert train.params == params_train
    assert deploy.params == params_deploy
    assert train.macs == macs
    assert deploy.macs == macs  # fusing adds no conv work: the BN branch folds into the cheap op
    assert train.fvcore_total > train.macs  # fvcore's total also counts BN and pooling


@pytest.mark.parametrize("width", REPGHOST_WIDTHS)
def test_repghostnet_counts_round_to_readme(width):
    params_m, flops_m = REF["repghostnet"][str(width)][:2]
    params_train, _, macs = REF["repghostnet_exact"][str(width)]
    train = count(build(repghostnet_config(width)))
    assert round(train.params / 1e6, 1) == params_m
    assert round(train.macs / 1e6) == flops_m


@pytest.mark.parametrize("width", GHOSTNET_WIDTHS)
def test_ghostnet_counts_match_reference_exactly(width):
    params, macs = REF["ghostnet_exact"][str(width)]
    model = build(ghostnet_config(width))
    counts = count(model)
    assert counts.params == params
    assert counts.macs == macs
    # Concatenation modules have nothing to fuse.
    assert count(reparameterize(model)).params == params


def test_preset_table_is_the_reference_table():
    config = repghostnet_config(1.0)
    rows = [[b.kernel, b.mid, b.out, b.se_ratio, b.stride] for b in config.flat_blocks()]
    assert rows == [[k, m, o, float(se), s] for k, m, o, se, s in REF["blocks_1_0x"]]
    assert config.stem == 16 and config.final_conv == 960 and config.head == 1280
