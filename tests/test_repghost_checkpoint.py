"""Checkpoints in the official key layout load, wrapped or not; bad ones fail clearly; ours
carry their config and rebuild without one."""

import dataclasses

import pytest
import torch

from helpers import randomize_bn
from repghost import build, load_checkpoint, reparameterize, repghostnet_config, save_checkpoint

OFFICIAL_TRAIN_KEYS = [
    "conv_stem.weight",
    "bn1.running_var",
    "blocks.3.0.ghost1.primary_conv.0.weight",
    "blocks.3.0.ghost1.primary_conv.1.running_mean",
    "blocks.3.0.ghost1.fusion_bn.0.running_mean",
    "blocks.3.0.ghost1.cheap_operation.0.weight",
    "blocks.3.0.ghost1.cheap_operation.1.weight",
    "blocks.3.0.se.conv_reduce.weight",
    "blocks.3.0.conv_dw.weight",
    "blocks.3.0.bn_dw.weight",
    "blocks.3.0.shortcut.0.weight",
    "blocks.6.4.ghost2.fusion_bn.0.weight",
    "blocks.9.0.conv.weight",
    "blocks.9.0.bn1.weight",
    "conv_head.weight",
    "conv_head.bias",
    "classifier.weight",
    "classifier.bias",
]


def test_official_key_layout():
    train = build(repghostnet_config(1.0)).state_dict()
    deploy = build(repghostnet_config(1.0), deploy=True).state_dict()
    for key in OFFICIAL_TRAIN_KEYS:
        assert key in train, key
    assert "blocks.3.0.ghost1.cheap_operation.weight" in deploy
    assert "blocks.3.0.ghost1.cheap_operation.bias" in deploy
    assert not any("fusion_bn" in k for k in deploy)


@pytest.mark.parametrize("wrap", ["raw", "state_dict", "state_dict_ema", "module_prefix", "wrapped_module_prefix"])
def test_wrapped_checkpoints_load(tmp_path, wrap):
    source = randomize_bn(build(repghostnet_config(0.5)), seed=3).eval()
    state = source.state_dict()
    prefixed = {f"module.{k}": v for k, v in state.items()}
    payload = {
        "raw": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "state_dict_ema": {"state_dict_ema": state, "state_dict": {}, "epoch": 3},
        "module_prefix": prefixed,
        "wrapped_module_prefix": {"state_dict": prefixed},
    }[wrap]
    path = tmp_path / "ckpt.pth"
    torch.save(payload, path)
    target = load_checkpoint(path, build(repghostnet_config(0.5))).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(build(repghostnet_config(0.5)).state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(path, build(repghostnet_config(0.5)))


def test_other_width_names_the_shapes(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(build(repghostnet_config(0.5)).state_dict(), path)
    with pytest.raises(ValueError, match=r"wrong shape .*conv_stem.weight"):
        load_checkpoint(path, build(repghostnet_config(1.0)))


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = build(repghostnet_config(0.5)).state_dict()
    state.pop("classifier.bias")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"1 missing keys \[classifier.bias\], 1 unexpected keys \[extra.weight\]"):
        load_checkpoint(path, build(repghostnet_config(0.5)))


def test_deploy_checkpoint_into_train_model_says_so(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(build(repghostnet_config(0.5), deploy=True).state_dict(), path)
    with pytest.raises(ValueError, match="deploy flag"):
        load_checkpoint(path, build(repghostnet_config(0.5)))


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(ValueError, match="no state dict"):
        load_checkpoint(path, build(repghostnet_config(0.5)))
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth", build(repghostnet_config(0.5)))


@pytest.mark.parametrize("deploy", [False, True])
def test_a_saved_checkpoint_rebuilds_on_its_own(tmp_path, deploy):
    config = dataclasses.replace(repghostnet_config(0.5), in_chans=1, num_classes=10)
    source = randomize_bn(build(config), seed=5).eval()
    source = reparameterize(source) if deploy else source
    path = save_checkpoint(source, tmp_path / "model.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # the temporary file is gone
    assert torch.load(path, weights_only=True)["state_dict"].keys() == source.state_dict().keys()
    target = load_checkpoint(path).eval()
    assert target.config == config and target.deploy == deploy
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_a_checkpoint_without_its_config_needs_a_model(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": build(repghostnet_config(0.5)).state_dict()}, path)
    with pytest.raises(ValueError, match="carries no network config"):
        load_checkpoint(path)
