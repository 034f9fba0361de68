"""200 random architectures of the default space: each builds, runs, fuses to the same outputs
and survives a JSON round trip."""

from __future__ import annotations

import os
import random

import pytest
import torch
from torch import nn

from repghost import NetConfig, build, reparameterize
from space import arch_id, load_space

N_SAMPLES = int(os.environ.get("SPACE_SAMPLES", "200"))


def _randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial BN statistics and affine terms, so that fusion errors cannot hide."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) * 0.2 - 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                module.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                module.bias.copy_(torch.rand(n, generator=generator) * 0.2 - 0.1)


@pytest.fixture(scope="module")
def samples():
    space = load_space()
    rng = random.Random(20261128)
    return [space.sample(rng) for _ in range(N_SAMPLES)]


def test_samples_are_varied(samples):
    # Uniform draws over ~10^27 networks: a repeat would mean the sampler ignores decisions.
    assert len({arch_id(config) for config in samples}) == N_SAMPLES
    assert len({config.final_conv for config in samples}) == 8  # every width drawn
    assert len({len(config.flat_blocks()) for config in samples}) > 1
    reuses = {block.reuse for config in samples for block in config.flat_blocks()}
    assert reuses == {"reparam", "concat"}


def test_samples_round_trip_through_json(samples):
    for config in samples:
        again = NetConfig.from_json(config.to_json())
        assert again == config
        assert arch_id(again) == arch_id(config)


@pytest.fixture
def one_thread():
    # Tiny convolutions at 64x64: a second thread only adds contention on a shared machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@torch.no_grad()
def test_samples_build_run_and_fuse_to_equal_outputs(samples, one_thread):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 64, 64, generator=generator)
    for config in samples:
        model = build(config).eval()
        _randomize_batchnorm(model, generator)
        expected = model(x)
        assert expected.shape == (1, config.num_classes)
        assert torch.isfinite(expected).all()
        fused = reparameterize(model, inplace=True)  # in place: a copy per sample costs time
        got = fused(x)
        scale = expected.abs().max().item()
        assert scale > 0
        difference = (got - expected).abs().max().item()
        assert difference <= 1e-4 * max(1.0, scale), f"{arch_id(config)}: fused output differs by {difference:.2e} (scale {scale:.2e})"
