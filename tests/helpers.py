"""Shared test utilities."""

from __future__ import annotations

import torch
from torch import nn


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, so that a fusion that
    mishandles any of them changes the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) * 2 - 1)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) - 0.5)
    return model


def with_branch(config, branch: str):
    """``config`` with every reparam block's branch set to ``branch``."""
    import dataclasses

    return dataclasses.replace(
        config,
        blocks=tuple(
            tuple(b if b.reuse == "concat" else dataclasses.replace(b, branch=branch) for b in group)
            for group in config.blocks
        ),
    )
