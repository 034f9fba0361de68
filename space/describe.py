"""Print what a search space contains: decisions, size, distinct deploy-form blocks, the paper
models it holds and a few random architectures, with params and MACs counted by fvcore.

    python -m space.describe [space/repghost.yaml] [--sample N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import defaultdict

from repghost import (
    GHOSTNET_WIDTHS,
    REPGHOST_WIDTHS,
    BlockSpec,
    HeadSpec,
    NetConfig,
    StemSpec,
    build,
    count,
    ghostnet_config,
    repghostnet_config,
)

from . import arch_id, load_space
from .search_space import DEFAULT_SPACE, SearchSpace


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m space.describe",
        description="Describe a search-space file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default=str(DEFAULT_SPACE), help="space file")
    parser.add_argument("--sample", type=int, default=3, metavar="N", help="random architectures to list")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random architectures")
    return parser


def decision_lines(space: SearchSpace) -> list[str]:
    """Decisions grouped by kind and choice list, naming their owners; then when the
    conditional ones are asked, then the fixed stage decisions."""
    groups: dict[tuple[str, tuple], list[str]] = defaultdict(list)
    by_depth: dict[str, str] = {}
    by_reuse: list[str] = []
    for decision in space.decisions:
        owner, _, kind = decision.name.rpartition(".")
        groups[(kind, decision.choices)].append(owner or kind)
        if "depth" in decision.when:
            by_depth[owner] = decision.when
        if decision.when.endswith("reuse == reparam"):
            by_reuse.append(owner)
    lines = []
    for (kind, choices), owners in groups.items():
        names = "" if owners == [kind] else " " + " ".join(owners)
        lines.append(f"  {kind}{names}: {list(choices)}")
    if by_depth:
        lines.append(f"  decisions of a block are asked only when its stage keeps it: {', '.join(f'{owner} ({when})' for owner, when in by_depth.items())}")
    if by_reuse:
        lines.append(f"  branch is asked only when reuse is reparam: {' '.join(by_reuse)}")
    for name, value in space.fixed.items():
        if name.split(".")[-1] in ("out", "depth", "width"):
            lines.append(f"  {name} fixed: {value!r}")
    return lines


def _summary(config: NetConfig, resolution: int) -> str:
    model = build(config)
    counts = count(model, resolution)
    blocks = config.flat_blocks()
    concat = sum(b.reuse == "concat" for b in blocks)
    se = sum(b.has_se for b in blocks)
    return f"{counts.params / 1e6:7.3f} M params {counts.macs / 1e6:8.1f} M MACs   {len(blocks)} blocks, {se} with SE, {concat} concat"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.sample < 0:
        print("error: --sample must be 0 or more", file=sys.stderr)
        return 2
    try:
        space = load_space(args.path)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    parts = space.parts()
    size = space.size()
    print(f"space: {space.path}")
    print(f"sha256: {space.file_hash()}")
    print(f"resolution: {space.resolution}   classes: {space.num_classes}")
    print(f"decisions ({len(space.decisions)} asked):")
    print("\n".join(decision_lines(space)))
    print(f"size: {size} distinct networks (10^{math.log10(size):.2f}); {space.n_assignments()} decision assignments")
    n_stems = sum(isinstance(p, StemSpec) for p in parts)
    n_heads = sum(isinstance(p, HeadSpec) for p in parts)
    n_blocks = sum(isinstance(p, BlockSpec) for p in parts)
    print(f"distinct deploy-form parts: {len(parts)} ({n_blocks} blocks, {n_stems} stems, {n_heads} heads)")
    print("paper points: the base network at each paper width, all ratios 1.0 (train-form params;")
    print("MACs by fvcore, conv+linear, one multiply-add = one MAC):")
    presets = {"repghost": (REPGHOST_WIDTHS, repghostnet_config), "ghostnet": (GHOSTNET_WIDTHS, ghostnet_config)}
    for family, (widths, preset) in presets.items():
        for width in widths:
            try:
                config = space.decode(space.paper_point(width, family=family))
            except ValueError:
                print(f"  {family} {width:g}x: not in this space")
                continue
            same = config == preset(width, num_classes=space.num_classes)
            label = f"{family} {width:g}x" + ("" if same else " (base)")
            print(f"  {label:<21} {arch_id(config)} {_summary(config, space.resolution)}")
    if args.sample:
        print(f"{args.sample} random architectures (seed {args.seed}):")
        rng = random.Random(args.seed)
        for _ in range(args.sample):
            params, config = space.sample_params(rng)
            width = params.get("width", space.fixed.get("width"))
            print(f"  {'width ' + format(width, 'g'):<21} {arch_id(config)} {_summary(config, space.resolution)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
