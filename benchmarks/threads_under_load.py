"""Proxy training throughput (images/s) at 1 and 2 torch threads, on a quiet machine and with
busy-looping processes beside it: which default thread count serves a shared machine.

The training step is the proxy's (RepGhostNet at 32 px, batch 64, SGD) on random data. For
each condition (number of hog processes), the thread counts are timed in interleaved rounds
of short bursts (1 2 1 2 ...), so that drift hits both alike; prints per thread count the best
and the median burst, and the load average before and after.

    python benchmarks/threads_under_load.py --hogs 0 1 --rounds 6
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time

import torch

from proxy_speed import make_step  # the same training step as the throughput benchmark beside it


def hog() -> None:
    """A CPU-bound neighbour: another job on the shared machine."""
    while True:
        sum(i * i for i in range(10_000))


def burst(step, threads: int, steps: int, batch_size: int) -> float:
    torch.set_num_threads(threads)
    step()  # the first step after a thread change pays for the pool
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--width", type=float, default=0.5, help="RepGhostNet width")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hogs", type=int, nargs="+", default=[0, 1], help="busy-looping processes beside the benchmark, per condition")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=4, help="training steps per burst")
    args = parser.parse_args(argv)
    batch_size = 64
    step = make_step(args.width, 32, batch_size, "contiguous")
    for _ in range(3):
        step()
    print(f"RepGhostNet {args.width}x, 32 px, batch {batch_size}; {os.cpu_count()} CPUs; torch {torch.__version__}")
    for hogs in args.hogs:
        processes = [multiprocessing.Process(target=hog, daemon=True) for _ in range(hogs)]
        for process in processes:
            process.start()
        try:
            time.sleep(1.0 if hogs else 0.0)
            load_before = os.getloadavg()[0]
            rates: dict[int, list[float]] = {t: [] for t in args.threads}
            for _ in range(args.rounds):
                for threads in args.threads:
                    rates[threads].append(burst(step, threads, args.steps, batch_size))
            load_after = os.getloadavg()[0]
        finally:
            for process in processes:
                process.terminate()
                process.join()
        print(f"{hogs} hog process(es), load average {load_before:.2f} -> {load_after:.2f}, {args.rounds} rounds x {args.steps} steps:")
        for threads, values in rates.items():
            print(f"  {threads} thread(s): best {max(values):6.1f} img/s, median {statistics.median(values):6.1f} img/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
