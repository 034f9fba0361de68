"""One walk over the whole space, width by width and stage by stage, without enumerating it.

Given the width, a block's config depends only on its own decisions and its stage's out ratio;
its deploy-form part also depends on its input channels (the previous block's output). So the
space unfolds into, per width, a stem, then per stage and out ratio a row of blocks each with
its options, then a head. Counting the space (``space.counting``), listing every reachable part
and finding the cheapest architecture (``space.fastest``) are each a different fold over this
one walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from repghost.config import BlockConfig, HeadSpec, StemSpec, conv_out_size, make_divisible

from .blocks import BlockOption, block_config, block_options
from .schema import BaseBlock, SpaceData, Stage


@dataclass(frozen=True)
class BlockStep:
    """One block position of a stage row: its input feature-map size, each of its options with
    the config it gives, and whether a depth choice may end the stage after it."""

    block: BaseBlock
    size: int
    options: tuple[tuple[BlockOption, BlockConfig], ...]
    may_end_stage: bool


@dataclass(frozen=True)
class StageRow:
    """A stage at one width and one out ratio: its blocks up to the largest depth."""

    stage: Stage
    out_ratio: float
    steps: tuple[BlockStep, ...]


@dataclass(frozen=True)
class WidthWalk:
    """Everything the space holds at one width."""

    width: float
    stem: StemSpec
    stages: tuple[tuple[StageRow, ...], ...]  # per stage, one row per out ratio
    final_conv: int
    head_size: int
    data: SpaceData

    def head(self, in_chs: int) -> HeadSpec:
        """The head part after a last block with ``in_chs`` output channels."""
        return HeadSpec(in_chs, self.final_conv, self.data.head, self.data.num_classes, self.head_size)


def block_sizes(data: SpaceData) -> list[int]:
    """Input feature-map size of every base block, then the head's (strides are fixed; depth
    drops only stride-1 blocks, so sizes do not depend on the decisions)."""
    size = conv_out_size(data.resolution, 2)
    sizes = []
    for block in data.blocks():
        sizes.append(size)
        size = conv_out_size(size, block.stride)
    sizes.append(size)
    return sizes


def walk(data: SpaceData, *, branches: bool = True) -> Iterator[WidthWalk]:
    """The space, one width at a time, in file order (``branches=False``: one training branch
    stands for all, which is all that deploy forms need)."""
    sizes = block_sizes(data)
    options = {block.name: block_options(block, branches=branches) for block in data.blocks()}
    for width in data.widths:
        stages = []
        index = 0
        for stage in data.stages:
            rows = []
            for ratio in stage.out_ratios:
                steps = tuple(
                    BlockStep(
                        block,
                        sizes[index + position],
                        tuple((option, block_config(data, block, width, ratio, option)) for option in options[block.name]),
                        position + 1 in stage.depths,
                    )
                    for position, block in enumerate(stage.blocks[: max(stage.depths)])
                )
                rows.append(StageRow(stage, ratio, steps))
            stages.append(tuple(rows))
            index += len(stage.blocks)
        yield WidthWalk(
            width=width,
            stem=StemSpec(3, make_divisible(data.stem * width), data.resolution),
            stages=tuple(stages),
            final_conv=make_divisible(data.final_conv * width),
            head_size=sizes[-1],
            data=data,
        )
