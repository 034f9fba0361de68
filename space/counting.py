"""Counting a space without enumerating it: its size and every distinct deployable part.

Both fold the one walk of ``space.walk``. The set of reachable input channels is propagated
block by block (within a stage, one out ratio fixes both a block's input and output), which
lists every part some architecture contains and nothing else, in milliseconds.
"""

from __future__ import annotations

import math

from repghost.config import BlockSpec, PartSpec, part_key

from .schema import SpaceData
from .walk import walk


def count_assignments(data: SpaceData) -> int:
    """Number of distinct decision assignments (inactive decisions not counted)."""
    views = walk(data)
    view = next(views)
    total = len(data.widths)
    for rows in view.stages:
        per_block = [len(step.options) for step in rows[0].steps]
        total *= len(rows) * sum(math.prod(per_block[:depth]) for depth in rows[0].stage.depths)
    return total


def count_networks(data: SpaceData) -> int:
    """Number of distinct networks. Widths are told apart by their stem and final conv (the
    loader checks this); given the width, stages are independent, a stage's out ratios that give
    the same output channels are the same choice, and a block's distinct configs are counted
    directly (rounding can merge mid ratios at small widths)."""
    total = 0
    for view in walk(data):
        per_width = 1
        for rows in view.stages:
            # The out ratio changes every option's ``out`` alike, so one row counts the variants.
            variants = [len({config for _, config in step.options}) for step in rows[0].steps]
            stage_total = 0
            for depth in rows[0].stage.depths:
                outs = {tuple(step.options[0][1].out for step in row.steps[:depth]) for row in rows}
                stage_total += len(outs) * math.prod(variants[:depth])
            per_width *= stage_total
        total += per_width
    return total


def reachable_parts(data: SpaceData) -> list[PartSpec]:
    """Every distinct part some architecture of the space contains, sorted by ``part_key``."""
    parts: set[PartSpec] = set()
    for view in walk(data, branches=False):
        parts.add(view.stem)
        in_set = {view.stem.out}
        for rows in view.stages:
            next_in: set[int] = set()
            for row in rows:
                ins = in_set
                for step in row.steps:
                    for _, config in step.options:
                        for in_chs in ins:
                            parts.add(BlockSpec(config.deploy_key(in_chs), in_chs, step.size))
                    ins = {step.options[0][1].out}
                    if step.may_end_stage:
                        next_in |= ins
            in_set = next_in
        for in_chs in in_set:
            parts.add(view.head(in_chs))
    return sorted(parts, key=part_key)
