"""A stable short id per architecture: a hash of its canonical JSON."""

from __future__ import annotations

import hashlib

from repghost.config import NetConfig


def arch_id(config: NetConfig) -> str:
    """First 12 hex digits of the sha256 of ``config.to_json()``; equal configs, equal ids."""
    if not isinstance(config, NetConfig):
        raise ValueError(f"config must be a NetConfig, got {type(config).__name__}")
    return hashlib.sha256(config.to_json().encode()).hexdigest()[:12]
