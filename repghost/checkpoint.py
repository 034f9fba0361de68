"""Loading checkpoints saved in the official release's key layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

WRAPPERS = ("state_dict_ema", "state_dict", "model")


def unwrap_state_dict(checkpoint: Any) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint saved raw or wrapped (``state_dict_ema`` preferred, then
    ``state_dict``, then ``model``), with any ``module.`` prefix (DataParallel) removed.
    """
    if isinstance(checkpoint, dict):
        for key in WRAPPERS:
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError("checkpoint holds no state dict: expected a dict of tensors, or one under 'state_dict' / 'state_dict_ema'")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in checkpoint.items()}


def load_checkpoint(path: str | Path, model: nn.Module) -> nn.Module:
    """Load ``path`` into ``model`` (strictly: every key, every shape) and return ``model``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); is it a complete torch.save file?") from None
    state = unwrap_state_dict(raw)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        hint = ""
        if any(k.endswith("cheap_operation.weight") for k in state) != any(k.endswith("cheap_operation.weight") for k in own):
            hint = " (one side is the deploy form: build the model with the matching deploy flag)"
        raise ValueError(
            f"checkpoint {path} does not match the model{hint}: "
            f"{len(missing)} missing keys {_head(missing)}, {len(unexpected)} unexpected keys {_head(unexpected)}"
        )
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise ValueError(f"checkpoint {path} has {len(wrong)} tensors of the wrong shape (another width?): {_head(wrong)}")
    model.load_state_dict(state)
    return model


def _head(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return f"[{shown}{', ...' if len(items) > n else ''}]"
