"""The paper's models as data: a width-1.0 block table and a width rule.

The block tables (RepGhostNet's and GhostNet's, ``[kernel, mid, out, se_ratio, stride]`` per
bottleneck) live in ``reference.yaml`` beside this file, with their sources. Every width is the
width-1.0 table with each channel count scaled by ``make_divisible(c * width, 4)``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from .config import BlockConfig, NetConfig, make_divisible

REPGHOST_WIDTHS = (0.5, 0.58, 0.8, 1.0, 1.11, 1.3, 1.5, 2.0)
GHOSTNET_WIDTHS = (0.5, 1.0, 1.3)
# Bottlenecks per group in the official module layout (blocks.0 ... blocks.8); 16 in all.
GROUP_SIZES = (1, 1, 1, 1, 1, 1, 5, 1, 4)
STEM = 16
FINAL_CONV = 960
HEAD = 1280


@lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    """The published figures this project checks itself against (see the file for sources)."""
    text = resources.files(__package__).joinpath("reference.yaml").read_text()
    return yaml.safe_load(text)


def block_table(family: str = "repghost") -> list[tuple[int, int, int, float, int]]:
    """Width-1.0 rows ``(kernel, mid, out, se_ratio, stride)`` of ``repghost`` or ``ghostnet``."""
    key = {"repghost": "blocks_1_0x", "ghostnet": "ghostnet_blocks_1_0x"}.get(family)
    if key is None:
        raise ValueError(f"family must be 'repghost' or 'ghostnet', got {family!r}")
    return [tuple(row) for row in reference()[key]]


def group(blocks: list[BlockConfig]) -> tuple[tuple[BlockConfig, ...], ...]:
    """Split 16 bottlenecks into the official groups."""
    if len(blocks) != sum(GROUP_SIZES):
        raise ValueError(f"blocks must hold {sum(GROUP_SIZES)} bottlenecks to match the official layout, got {len(blocks)}")
    groups, start = [], 0
    for size in GROUP_SIZES:
        groups.append(tuple(blocks[start : start + size]))
        start += size
    return tuple(groups)


def _check_width(width: float, allowed: tuple[float, ...], family: str) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or float(width) not in allowed:
        raise ValueError(f"width must be one of {list(allowed)} for {family}, got {width!r}")
    return float(width)


def repghostnet_config(width: float = 1.0, *, num_classes: int = 1000) -> NetConfig:
    """RepGhostNet at one of the paper's widths (BN re-parameterization branch, shortcuts on)."""
    width = _check_width(width, REPGHOST_WIDTHS, "repghostnet")
    return _scaled("repghost", width, reuse="reparam", branch="bn", num_classes=num_classes)


def ghostnet_config(width: float = 1.0, *, num_classes: int = 1000) -> NetConfig:
    """GhostNet (concatenation in every module) at one of its published widths."""
    width = _check_width(width, GHOSTNET_WIDTHS, "ghostnet")
    return _scaled("ghostnet", width, reuse="concat", branch="none", num_classes=num_classes)


def _scaled(family: str, width: float, *, reuse: str, branch: str, num_classes: int) -> NetConfig:
    blocks = [
        BlockConfig(
            kernel=k,
            mid=make_divisible(mid * width),
            out=make_divisible(out * width),
            se_ratio=float(se),
            stride=stride,
            branch=branch,
            reuse=reuse,
        )
        for k, mid, out, se, stride in block_table(family)
    ]
    return NetConfig(
        stem=make_divisible(STEM * width),
        blocks=group(blocks),
        final_conv=make_divisible(FINAL_CONV * width),
        head=HEAD,
        num_classes=num_classes,
    )
