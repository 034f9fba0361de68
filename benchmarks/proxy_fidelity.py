"""Proxy fidelity: does the proxy rank the paper's eight RepGhostNet widths as ImageNet does?

Trains every width in ``repghost.REPGHOST_WIDTHS`` with one proxy recipe, prints a table
(width, published ImageNet top-1, proxy accuracy per epoch, seconds), the Kendall tau between
proxy accuracy and published top-1, and the seed-to-seed spread of one baseline (several
training seeds of the same width, same split).

    python benchmarks/proxy_fidelity.py --preset default --spread-width 1.0 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys

import torch
from scipy.stats import kendalltau

import repghost
from nas.proxy import PRESETS, train_proxy

OVERRIDABLE = ("train_size", "val_size", "resolution", "epochs", "batch_size", "lr", "weight_decay",
               "optimizer", "label_smoothing", "warmup_steps", "bn_recalibration", "data", "threads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help=f"override recipe fields: {', '.join(OVERRIDABLE)}")
    parser.add_argument("--widths", nargs="*", type=float, default=list(repghost.REPGHOST_WIDTHS))
    parser.add_argument("--spread-width", type=float, default=1.0, help="width trained with every --seeds")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    proxy = PRESETS[args.preset]
    for item in args.set:
        field, _, value = item.partition("=")
        if field not in OVERRIDABLE or not value:
            print(f"error: --set takes FIELD=VALUE with FIELD in {', '.join(OVERRIDABLE)}, got {item!r}", file=sys.stderr)
            return 2
        try:
            proxy = dataclasses.replace(proxy, **{field: type(getattr(proxy, field))(value)})
        except ValueError as exc:
            print(f"error: --set {item}: {exc}", file=sys.stderr)
            return 2
    top1 = {float(w): row[3] for w, row in repghost.reference()["repghostnet"].items()}
    print(f"recipe {proxy.proxy_id()}: {json.dumps(proxy.to_dict())}")
    print(f"torch {torch.__version__}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"{'width':>6} {'top1':>5} {'proxy acc per epoch':>28} {'train s':>8} {'img/s':>6} {'load':>5}")

    rows = []
    for width in args.widths:
        result = train_proxy(repghost.repghostnet_config(width), proxy)
        load = os.getloadavg()[0]
        rows.append({"width": width, "top1": top1[width], "seed": proxy.seed, **result.to_dict(), "load": load})
        accs = " ".join(f"{a:.3f}" for a in result.val_accuracies)
        print(f"{width:>6} {top1[width]:>5} {accs:>28} {result.train_seconds:>8.1f} {result.images_per_second:>6.0f} {load:>5.2f}", flush=True)

    tau = kendalltau([r["top1"] for r in rows], [r["accuracy"] for r in rows]) if len(rows) > 1 else None
    if tau is not None:
        print(f"Kendall tau (proxy accuracy vs published top-1, {len(rows)} widths): {tau.statistic:.3f} (p={tau.pvalue:.3f})")

    spread = []
    for seed in args.seeds:
        known = next((r for r in rows if r["width"] == args.spread_width and r["seed"] == seed), None)
        if known is None:
            result = train_proxy(repghost.repghostnet_config(args.spread_width), dataclasses.replace(proxy, seed=seed))
            known = {"width": args.spread_width, "seed": seed, **result.to_dict(), "load": os.getloadavg()[0]}
        spread.append(known)
        print(f"seed {seed}: width {args.spread_width} accuracy {known['accuracy']:.4f} ({known['train_seconds']:.1f} s)", flush=True)
    if len(spread) > 1:
        accs = [r["accuracy"] for r in spread]
        print(f"seed spread of width {args.spread_width}: mean {statistics.mean(accs):.4f}, "
              f"std {statistics.stdev(accs):.4f}, range {max(accs) - min(accs):.4f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"proxy": proxy.to_dict(), "proxy_id": proxy.proxy_id(), "widths": rows, "seeds": spread,
                       "kendall_tau": tau.statistic if tau is not None else None}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
