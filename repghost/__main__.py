"""``python -m repghost``: print a paper model's layout, parameters and FLOPs; optionally export it."""

from __future__ import annotations

import argparse
import sys

from .config import NetConfig
from .counting import count
from .export import export_onnx
from .model import build, reparameterize
from .presets import GHOSTNET_WIDTHS, REPGHOST_WIDTHS, ghostnet_config, repghostnet_config


def describe(config: NetConfig, resolution: int = 224) -> list[str]:
    """One line per bottleneck: where it sits, its channels and options."""
    lines = [f"{'block':>8} {'in':>5} {'mid':>5} {'out':>5} {'k':>2} {'s':>2} {'se':>5} {'reuse':>8} {'branch':>12} {'input':>8}"]
    lines.append(f"{'stem':>8} {config.in_chans:5d} {'':>5} {config.stem:5d} {3:2d} {2:2d} {'':>5} {'':>8} {'':>12} {resolution:>4}^2")
    parts = config.parts(resolution)[1:-1]
    index = 0
    for g, group in enumerate(config.blocks):
        for j, block in enumerate(group):
            spec = parts[index]
            se = f"{block.se_ratio:g}" if block.has_se else "-"
            lines.append(
                f"{f'{g}.{j}':>8} {spec.in_chs:5d} {block.mid:5d} {block.out:5d} {block.kernel:2d} {block.stride:2d} "
                f"{se:>5} {block.reuse:>8} {block.branch:>12} {spec.size:>4}^2"
            )
            index += 1
    head = config.parts(resolution)[-1]
    lines.append(f"{'head':>8} {head.in_chs:5d} {config.final_conv:5d} {config.head:5d} {'':>2} {'':>2} {'':>5} {'':>8} {'':>12} {head.size:>4}^2")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m repghost",
        description="Show a RepGhostNet (or GhostNet) paper model: layout, parameters, FLOPs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--family", choices=("repghost", "ghostnet"), default="repghost", help="model family")
    parser.add_argument("--width", type=float, default=1.0, help=f"width multiplier: {list(REPGHOST_WIDTHS)} (ghostnet: {list(GHOSTNET_WIDTHS)})")
    parser.add_argument("--all", action="store_true", help="print the summary table of every width instead")
    parser.add_argument("--deploy", action="store_true", help="count the deploy (fused) form")
    parser.add_argument("--resolution", type=int, default=224, help="input resolution for FLOPs")
    parser.add_argument("--export", metavar="PATH", help="also export the deploy form to this ONNX file")
    args = parser.parse_args(argv)
    make = repghostnet_config if args.family == "repghost" else ghostnet_config
    widths = REPGHOST_WIDTHS if args.family == "repghost" else GHOSTNET_WIDTHS
    try:
        if args.resolution < 32:
            raise ValueError(f"--resolution must be at least 32, got {args.resolution}")
        if args.all:
            print(f"{'width':>6} {'params_train':>13} {'params_deploy':>14} {'MACs_train (conv+linear)':>25} {'fvcore_total_train':>19}")
            for width in widths:
                model = build(make(width))
                train, deploy = count(model, args.resolution), count(reparameterize(model), args.resolution)
                print(f"{width!s:>6} {train.params:13,d} {deploy.params:14,d} {train.macs:25,d} {train.fvcore_total:19,d}")
            return 0
        config = make(args.width)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = build(config)
    if args.deploy:
        model = reparameterize(model)
    counts = count(model, args.resolution)
    form = "deploy" if args.deploy else "train"
    print(f"{args.family} {args.width:g}x ({form} form, {args.resolution}x{args.resolution})")
    print("\n".join(describe(config, args.resolution)))
    print(f"params: {counts.params:,d} ({counts.params / 1e6:.2f} M)")
    print(f"FLOPs: {counts.macs:,d} MACs in conv+linear ({counts.macs / 1e6:.1f} M); fvcore total {counts.fvcore_total:,d}")
    if args.export:
        try:
            path = export_onnx(model, args.export, args.resolution)
        except (ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"exported deploy form to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
