"""One block's own decisions and the config they give: the channel rule, in one place.

The lowest floor of ``space/`` above the file reader: decoding (``space.search_space``) and the
walk over the whole space (``space.walk``) both build block configs here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from repghost.config import BlockConfig, make_divisible

from .schema import BaseBlock, SpaceData


@dataclass(frozen=True)
class BlockOption:
    """One combination of a block's own decisions (``branch`` is ``none`` unless ``reparam``)."""

    reuse: str
    mid_ratio: float
    se: bool
    branch: str
    kernel: int

    def params(self, block_name: str, *, stride: int) -> dict[str, object]:
        """The decision names and values this option stands for (inactive ones left out)."""
        params: dict[str, object] = {f"{block_name}.reuse": self.reuse, f"{block_name}.mid": self.mid_ratio, f"{block_name}.se": self.se}
        if self.reuse == "reparam":
            params[f"{block_name}.branch"] = self.branch
        if stride == 2:
            params[f"{block_name}.kernel"] = self.kernel
        return params


def block_options(block: BaseBlock, *, branches: bool = True) -> list[BlockOption]:
    """Every combination of one block's own decisions, in file order (branch only for
    ``reparam``; with ``branches=False`` the first branch stands for all, enough for deploy
    forms, which drop the training-only branch)."""
    options = []
    for reuse, mid_ratio, se, kernel in itertools.product(block.reuses, block.mid_ratios, block.se_choices, block.kernels):
        reparam_branches = block.branches if branches else block.branches[:1]
        for branch in reparam_branches if reuse == "reparam" else ("none",):
            options.append(BlockOption(reuse, mid_ratio, se, branch, kernel))
    return options


def block_config(data: SpaceData, block: BaseBlock, width: float, out_ratio: float, option: BlockOption) -> BlockConfig:
    """The channel rule: ``make_divisible(base * width * ratio, 4)``."""
    base_mid = block.mid if option.reuse == "reparam" else block.concat_mid
    return BlockConfig(
        kernel=option.kernel,
        mid=make_divisible(base_mid * width * option.mid_ratio),
        out=make_divisible(block.out * width * out_ratio),
        se_ratio=data.se_ratio if option.se else 0.0,
        stride=block.stride,
        branch=option.branch,
        reuse=option.reuse,
    )
