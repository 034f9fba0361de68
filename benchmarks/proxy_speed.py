"""Training-step throughput (images/s) of the proxy on this machine, for a few variants.

Each variant is a (resolution, batch size, memory format) triple; all are built first and
warmed up, then timed in interleaved rounds (A B C A B C ...) so that drift on a shared machine
hits every variant alike. Prints median and spread (min..max) per variant, and the load average.

    python benchmarks/proxy_speed.py --width 1.0 --variants 32:64:contiguous 32:64:channels_last
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import torch
import torch.nn.functional as F

import repghost


def make_step(width: float, resolution: int, batch_size: int, memory_format: str, seed: int = 0):
    """One SGD training step of RepGhostNet ``width`` on random 1-channel data, 10 classes."""
    torch.manual_seed(seed)
    cfg = dataclasses.replace(repghost.repghostnet_config(width), in_chans=1, num_classes=10)
    model = repghost.build(cfg).train()
    x = torch.randn(batch_size, 1, resolution, resolution)
    y = torch.randint(0, 10, (batch_size,))
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def parse_variant(text: str) -> tuple[int, int, str]:
    try:
        res, batch, fmt = text.split(":")
        if fmt not in ("contiguous", "channels_last"):
            raise ValueError
        return int(res), int(batch), fmt
    except ValueError:
        raise argparse.ArgumentTypeError(f"variant must be RES:BATCH:contiguous|channels_last, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--width", type=float, default=1.0, help="RepGhostNet width")
    parser.add_argument("--variants", nargs="+", type=parse_variant,
                        default=[parse_variant(v) for v in ("32:64:contiguous", "32:64:channels_last", "32:128:contiguous", "28:64:contiguous")])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="steps per variant per round")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {v: make_step(args.width, *v) for v in args.variants}
    for step in steps.values():  # warm-up: oneDNN primitive creation, allocator
        step(), step()
    rates: dict[tuple, list[float]] = {v: [] for v in args.variants}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for variant, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[variant].append(args.steps * variant[1] / (time.perf_counter() - start))
    load_after = os.getloadavg()[0]
    print(f"RepGhostNet {args.width}x, {args.threads} threads, {args.rounds} rounds x {args.steps} steps, "
          f"torch {torch.__version__}, load average {load_before:.2f} -> {load_after:.2f}")
    print(f"{'resolution':>10} {'batch':>5} {'format':>13} {'median img/s':>12} {'min..max':>13}")
    for (res, batch, fmt), values in rates.items():
        print(f"{res:>10} {batch:>5} {fmt:>13} {statistics.median(values):>12.0f} {min(values):>6.0f}..{max(values):<6.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
