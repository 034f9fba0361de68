"""Checkpoints in the official release's key layout: loading any of them into a model, and
saving ours with the network config beside the tensors, so that they rebuild on their own.

Our format (``save_checkpoint``): ``{"state_dict": tensors, "config": NetConfig JSON, "deploy":
bool}``; a plain ``torch.load(..., weights_only=True)`` reads it, and tools that know only the
official layout find the tensors under ``state_dict``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import NetConfig
from .model import RepGhostNet, build

WRAPPERS = ("state_dict_ema", "state_dict", "model")
CONFIG_KEY = "config"
DEPLOY_KEY = "deploy"


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


def save_checkpoint(model: RepGhostNet, path: str | Path) -> Path:
    """Write ``model``'s tensors (official key layout) with its config and form to ``path``,
    through a temporary file renamed into place: a killed writer leaves the old file or none."""
    if not isinstance(model, RepGhostNet):
        raise ValueError(f"model must be a RepGhostNet (it carries its config), got {type(model).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {path.parent} does not exist")
    payload = {"state_dict": model.state_dict(), CONFIG_KEY: model.config.to_json(), DEPLOY_KEY: bool(model.deploy)}
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load ``path`` into ``model`` (strictly: every key, every shape) and return ``model``.
    Without ``model``, build it from the config the checkpoint carries (``save_checkpoint``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); is it a complete torch.save file?") from None
    if model is None:
        if not isinstance(raw, dict) or not isinstance(raw.get(CONFIG_KEY), str):
            raise ValueError(f"checkpoint {path} carries no network config: build the model from its config and pass it as model")
        model = build(NetConfig.from_json(raw[CONFIG_KEY]), deploy=bool(raw.get(DEPLOY_KEY, False)))
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
