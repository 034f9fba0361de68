"""Parameters and FLOPs, counted by fvcore on the real module.

fvcore counts one fused multiply-add as one flop. ``macs`` is its count restricted to
convolutions and linear layers (the paper's FLOPs convention: no BN, activations or bias adds);
``fvcore_total`` is everything fvcore counts (it includes BatchNorm and pooling).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int
    fvcore_total: int


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count(model: nn.Module, resolution: int = 224, in_chans: int | None = None) -> Counts:
    """Count ``model`` on one ``resolution`` x ``resolution`` image."""
    from fvcore.nn import FlopCountAnalysis

    if in_chans is None:
        in_chans = getattr(getattr(model, "config", None), "in_chans", 3)
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, torch.zeros(1, in_chans, resolution, resolution))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        by_op = analysis.by_operator()
        total = int(analysis.total())
    finally:
        model.train(was_training)
    macs = int(by_op.get("conv", 0) + by_op.get("linear", 0))
    return Counts(params=count_params(model), macs=macs, fvcore_total=total)
