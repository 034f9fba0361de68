"""The cheapest architecture of a space under an additive per-part cost (a latency table).

Exact, without enumerating the space: a shortest path over the walk of ``space.walk``. Given
the width, a stage's out ratio and its input channels, each block's own decisions only change
that block's part, so each block takes its cheapest option independently; stages are joined
through the set of reachable channel counts.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from repghost.config import BlockSpec, PartSpec

from .schema import SpaceData
from .walk import walk


def fastest(data: SpaceData, part_ms: Callable[[PartSpec], float]) -> tuple[float, dict[str, Any]]:
    """Lowest sum of ``part_ms`` over an architecture's parts (stem, blocks, head), and the
    decisions of one architecture reaching it (every decision of its blocks, fixed or not: pass
    them through ``SearchSpace.params_of`` for the asked ones). Ties go to the earlier choice in
    the file. Add any constant the predictor adds on top yourself."""
    cache: dict[PartSpec, float] = {}

    def cost(spec: PartSpec) -> float:
        if spec not in cache:
            value = part_ms(spec)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"part_ms must return a finite number of ms, got {value!r} for {spec}")
            cache[spec] = float(value)
        return cache[spec]

    best: tuple[float, dict[str, Any]] | None = None
    for view in walk(data, branches=False):
        # reachable input channels -> (cheapest cost so far, decisions that reach it)
        states: dict[int, tuple[float, dict[str, Any]]] = {view.stem.out: (cost(view.stem), {"width": view.width})}
        for rows in view.stages:
            reached: dict[int, tuple[float, dict[str, Any]]] = {}
            for in_chs, (start_ms, start_params) in states.items():
                for row in rows:
                    total_ms, params, channels = start_ms, {**start_params, f"{row.stage.name}.out": row.out_ratio}, in_chs
                    for position, step in enumerate(row.steps):
                        choices = [(cost(BlockSpec(config.deploy_key(channels), channels, step.size)), option, config.out) for option, config in step.options]
                        block_ms, option, channels = min(choices, key=lambda choice: choice[0])
                        total_ms += block_ms
                        params.update(option.params(step.block.name, stride=step.block.stride))
                        if step.may_end_stage:
                            kept = {**params, f"{row.stage.name}.depth": position + 1}
                            if channels not in reached or total_ms < reached[channels][0]:
                                reached[channels] = (total_ms, kept)
            states = reached
        for in_chs, (total_ms, params) in states.items():
            total_ms += cost(view.head(in_chs))
            if best is None or total_ms < best[0]:
                best = (total_ms, params)
    if best is None:
        raise ValueError(f"space {data.path} has no architecture")
    return best
