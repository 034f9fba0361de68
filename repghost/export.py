"""ONNX export of the deploy form, the form that runs on the device."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from .model import reparameterize

OPSET = 17


def export_onnx(
    model: nn.Module,
    path: str | Path,
    resolution: int = 224,
    *,
    input_shape: tuple[int, ...] | None = None,
    opset: int = OPSET,
) -> Path:
    """Write the deploy form of ``model`` (fused first if needed; ``model`` is left as it was) to
    ``path`` with a fixed batch-1 input named ``input``. ``input_shape`` overrides the default
    ``(1, in_chans, resolution, resolution)``, so a single block exports the same way.
    """
    path = Path(path)
    if not path.parent.exists():
        raise ValueError(f"cannot write {path}: folder {path.parent} does not exist")
    deploy = reparameterize(model).eval()
    if input_shape is None:
        in_chans = getattr(getattr(model, "config", None), "in_chans", 3)
        input_shape = (1, in_chans, resolution, resolution)
    dummy = torch.zeros(*input_shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            deploy,
            (dummy,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return path
