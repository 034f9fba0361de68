"""The cheapest architecture of a space under an additive per-part cost (a latency table).

Exact, without enumerating the space: a shortest path over the same reachable states that
``space.counting.reachable_parts`` walks. Given the width, a stage's out ratio and its input
channels, each block's own decisions only change that block's part, so each block takes its
cheapest option independently; stages are joined through the set of reachable channel counts.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from repghost.config import BlockSpec, HeadSpec, PartSpec, StemSpec, make_divisible

from .counting import _block_options, block_sizes
from .search_space import SearchSpace, block_config


def fastest(space: SearchSpace, part_ms: Callable[[PartSpec], float]) -> tuple[float, dict[str, Any]]:
    """Lowest sum of ``part_ms`` over an architecture's parts (stem, blocks, head), and the
    params of one architecture reaching it (``space.decode`` builds it). Ties go to the
    earlier choice in the file. Add any constant the predictor adds on top yourself."""
    data = space.data
    sizes = block_sizes(data)
    cache: dict[PartSpec, float] = {}

    def cost(spec: PartSpec) -> float:
        if spec not in cache:
            value = part_ms(spec)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"part_ms must return a finite number of ms, got {value!r} for {spec}")
            cache[spec] = float(value)
        return cache[spec]

    options = {block.name: _block_options(data, block, branches=False) for block in data.blocks()}
    best: tuple[float, dict[str, Any]] | None = None
    for width in data.widths:
        stem = make_divisible(data.stem * width)
        # reachable input channels -> (cheapest cost so far, decisions that reach it)
        states: dict[int, tuple[float, dict[str, Any]]] = {stem: (cost(StemSpec(3, stem, data.resolution)), {"width": width})}
        index = 0
        for stage in data.stages:
            reached: dict[int, tuple[float, dict[str, Any]]] = {}
            for in_chs, (start_ms, start_params) in states.items():
                for ratio in stage.out_ratios:
                    total_ms, params, channels = start_ms, {**start_params, f"{stage.name}.out": ratio}, in_chs
                    for position, block in enumerate(stage.blocks[: max(stage.depths)]):
                        size = sizes[index + position]
                        choices = []
                        for option in options[block.name]:
                            config = block_config(data, block, width, ratio, **option)
                            choices.append((cost(BlockSpec(config.deploy_key(channels), channels, size)), option, config.out))
                        block_ms, option, channels = min(choices, key=lambda choice: choice[0])
                        total_ms += block_ms
                        params.update(_block_params(block.name, option))
                        if position + 1 in stage.depths:
                            kept = {**params, f"{stage.name}.depth": position + 1}
                            if channels not in reached or total_ms < reached[channels][0]:
                                reached[channels] = (total_ms, kept)
            states = reached
            index += len(stage.blocks)
        final_conv = make_divisible(data.final_conv * width)
        for in_chs, (total_ms, params) in states.items():
            total_ms += cost(HeadSpec(in_chs, final_conv, data.head, data.num_classes, sizes[-1]))
            if best is None or total_ms < best[0]:
                best = (total_ms, params)
    assert best is not None  # every space has a width and a stage (the loader checks)
    total_ms, full = best
    params, _ = space.params_of(lambda decision: full[decision.name])
    return total_ms, params


def _block_params(name: str, option: dict[str, Any]) -> dict[str, Any]:
    params = {f"{name}.reuse": option["reuse"], f"{name}.mid": option["mid_ratio"], f"{name}.se": option["se"], f"{name}.kernel": option["kernel"]}
    if option["reuse"] == "reparam":
        params[f"{name}.branch"] = option["branch"]
    return params
