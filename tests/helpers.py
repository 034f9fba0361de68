"""Shared test utilities."""

from __future__ import annotations

from pathlib import Path

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


def search_args(results: Path, lut: Path, budget_ms: float, *extra: str) -> list[str]:
    """``nas.search``'s arguments for a quick search of the tiny space on synthetic data, study
    ``t`` in ``results``."""
    from conftest import TINY_SPACE

    return ["--budget", f"{budget_ms}ms", "--lut", str(lut), "--space", str(TINY_SPACE), "--data", "synthetic",
            "--quick", "--threads", "1", "--results", str(results), "--study", "t", *extra]


def search_error(capsys, argv: list[str]) -> str:
    """``nas.search``'s one-line error for ``argv`` (exit status 2)."""
    from nas.search import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err
