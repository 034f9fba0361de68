"""Counting a space without enumerating it: its size and every distinct deployable part.

Both work stage by stage. Given the width, a block's config depends only on its own decisions
and its stage's out ratio; its deploy-form part also depends on its input channels, which are
the previous block's output. So the set of reachable input channels is propagated block by
block (within a stage, one out ratio fixes both a block's input and output), which lists every
part some architecture contains and nothing else, in milliseconds.
"""

from __future__ import annotations

import itertools
import math

from repghost.config import BlockSpec, HeadSpec, PartSpec, StemSpec, conv_out_size, make_divisible, part_key

from .schema import BaseBlock, SpaceData
from .search_space import block_config


def _block_options(data: SpaceData, block: BaseBlock, *, branches: bool = True) -> list[dict]:
    """Every combination of one block's own decisions (branch only for ``reparam``; with
    ``branches=False`` one branch stands for all, enough for deploy forms)."""
    options = []
    for reuse, mid_ratio, se, kernel in itertools.product(block.reuses, block.mid_ratios, block.se_choices, block.kernels):
        reparam_branches = block.branches if branches else block.branches[:1]
        for branch in reparam_branches if reuse == "reparam" else ("none",):
            options.append({"reuse": reuse, "mid_ratio": mid_ratio, "se": se, "branch": branch, "kernel": kernel})
    return options


def count_assignments(data: SpaceData) -> int:
    """Number of distinct decision assignments (inactive decisions not counted)."""
    total = len(data.widths)
    for stage in data.stages:
        per_block = [len(_block_options(data, block)) for block in stage.blocks]
        total *= len(stage.out_ratios) * sum(math.prod(per_block[:depth]) for depth in stage.depths)
    return total


def count_networks(data: SpaceData) -> int:
    """Number of distinct networks. Widths are told apart by their stem and final conv (the
    loader checks this); given the width, stages are independent, a stage's out ratios that give
    the same output channels are the same choice, and a block's distinct configs are counted
    directly (rounding can merge mid ratios at small widths)."""
    total = 0
    for width in data.widths:
        per_width = 1
        for stage in data.stages:
            variants = []
            for block in stage.blocks:
                configs = {block_config(data, block, width, 1.0, **option) for option in _block_options(data, block)}
                variants.append(len(configs))
            stage_total = 0
            for depth in stage.depths:
                outs = {tuple(make_divisible(b.out * width * r) for b in stage.blocks[:depth]) for r in stage.out_ratios}
                stage_total += len(outs) * math.prod(variants[:depth])
            per_width *= stage_total
        total += per_width
    return total


def block_sizes(data: SpaceData) -> list[int]:
    """Input feature-map size of every base block (strides are fixed; depth drops only
    stride-1 blocks, so sizes do not depend on the decisions)."""
    size = conv_out_size(data.resolution, 2)
    sizes = []
    for block in data.blocks():
        sizes.append(size)
        size = conv_out_size(size, block.stride)
    sizes.append(size)
    return sizes


def reachable_parts(data: SpaceData) -> list[PartSpec]:
    """Every distinct part some architecture of the space contains, sorted by ``part_key``."""
    sizes = block_sizes(data)
    parts: set[PartSpec] = set()
    # The branch is training-only (deploy_key drops it), so one branch per block is enough.
    options = {block.name: _block_options(data, block, branches=False) for block in data.blocks()}
    for width in data.widths:
        stem = make_divisible(data.stem * width)
        parts.add(StemSpec(3, stem, data.resolution))
        in_set = {stem}
        index = 0
        for stage in data.stages:
            next_in: set[int] = set()
            for ratio in stage.out_ratios:
                previous_out = None
                for position, block in enumerate(stage.blocks[: max(stage.depths)]):
                    ins = in_set if position == 0 else {previous_out}
                    for option in options[block.name]:
                        config = block_config(data, block, width, ratio, **option)
                        for in_chs in ins:
                            parts.add(BlockSpec(config.deploy_key(in_chs), in_chs, sizes[index + position]))
                    previous_out = config.out
                    if position + 1 in stage.depths:
                        next_in.add(config.out)
            index += len(stage.blocks)
            in_set = next_in
        final_conv = make_divisible(data.final_conv * width)
        for in_chs in in_set:
            parts.add(HeadSpec(in_chs, final_conv, data.head, data.num_classes, sizes[-1]))
    return sorted(parts, key=part_key)
