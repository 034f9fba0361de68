"""Train form and deploy form give the same outputs, for every width and every branch choice."""

import pytest
import torch

from helpers import randomize_bn, with_branch
from repghost import REPGHOST_WIDTHS, build, ghostnet_config, reparameterize, repghostnet_config
from repghost.config import BRANCHES
from repghost.modules import RepGhostModule


@pytest.mark.parametrize("branch", BRANCHES)
@pytest.mark.parametrize("width", REPGHOST_WIDTHS)
def test_deploy_matches_train(width, branch):
    config = with_branch(repghostnet_config(width), branch)
    model = randomize_bn(build(config), seed=int(width * 100)).eval()
    deploy = reparameterize(model)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = model(x), deploy(x)
    assert expected.abs().max() > 0.1  # the comparison is between non-trivial logits
    assert (expected - got).abs().max().item() < 1e-4


def test_reparameterize_leaves_input_and_is_idempotent():
    model = randomize_bn(build(repghostnet_config(0.5))).eval()
    deploy = reparameterize(model)
    assert any(isinstance(m, RepGhostModule) and not m.deploy for m in model.modules())
    assert all(m.deploy for m in deploy.modules() if isinstance(m, RepGhostModule))
    again = reparameterize(deploy)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(deploy(x), again(x))


@pytest.mark.parametrize("width", [0.5, 1.3])
def test_deploy_flag_builds_the_same_structure(width):
    fused = reparameterize(build(repghostnet_config(width))).state_dict()
    direct = build(repghostnet_config(width), deploy=True).state_dict()
    assert {k: v.shape for k, v in fused.items()} == {k: v.shape for k, v in direct.items()}


def test_concat_model_unchanged_by_reparameterize():
    model = randomize_bn(build(ghostnet_config(0.5))).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(model(x), reparameterize(model)(x))
