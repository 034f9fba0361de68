"""The exported deploy form runs in ONNX Runtime and agrees with PyTorch."""

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch

from helpers import randomize_bn
from repghost import BlockConfig, NetConfig, build, build_part, export_onnx, ghostnet_config, repghostnet_config


def _mixed_config() -> NetConfig:
    """Every option at once: concat and reparam modules, all branches, SE, kernels 3/5/7, no shortcut."""
    blocks = (
        (BlockConfig(3, 16, 16, branch="identity", shortcut=False),),
        (BlockConfig(5, 48, 24, 0.25, 2, reuse="concat", branch="none"),),
        (BlockConfig(7, 36, 24, 0.0, 1, branch="bn+identity"), BlockConfig(3, 60, 40, 0.25, 2, branch="none")),
        (BlockConfig(3, 90, 41, 0.0, 1, reuse="concat", branch="none"),),
    )
    return NetConfig(stem=16, blocks=blocks, final_conv=120, head=256, num_classes=10)


def _ort_run(path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize(
    "config,resolution",
    [(repghostnet_config(0.5), 224), (ghostnet_config(0.5), 224), (_mixed_config(), 96)],
    ids=["repghostnet_0.5", "ghostnet_0.5", "mixed"],
)
def test_onnx_matches_torch(tmp_path, config, resolution):
    model = randomize_bn(build(config)).eval()
    path = export_onnx(model, tmp_path / "model.onnx", resolution)
    x = torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    got = _ort_run(path, x.numpy())
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4


def test_parts_chain_to_the_whole_network():
    """Stem, each bottleneck and the head, built alone and given the network's weights, compose
    to the network: the parts a latency table times are the network's own layers."""
    config = dataclasses.replace(repghostnet_config(0.58), num_classes=7)
    model = randomize_bn(build(config)).eval()
    state = model.state_dict()
    final = f"blocks.{len(model.blocks) - 1}."
    specs = config.parts(128)
    x = torch.randn(1, 3, 128, 128)
    y = x
    with torch.no_grad():
        for index, spec in enumerate(specs):
            part = build_part(spec, deploy=False).eval()
            if index == 0:
                part.load_state_dict({k: v for k, v in state.items() if k.startswith(("conv_stem.", "bn1."))})
            elif index == len(specs) - 1:
                renamed = {k.replace(final, "final."): v for k, v in state.items()}
                part.load_state_dict({k: v for k, v in renamed.items() if k.startswith(("final.", "conv_head.", "classifier."))})
            else:
                part.load_state_dict(model.bottlenecks()[index - 1].state_dict())
            assert tuple(y.shape) == spec.input_shape()
            y = part(y)
        assert (y - model(x)).abs().max().item() < 1e-4


def test_export_into_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        export_onnx(build(repghostnet_config(0.5)), tmp_path / "nope" / "m.onnx")
