"""Scores to rank rows by, each a candidate for how the search could judge an architecture:
proxy recipes (``nas.proxy.train_proxy`` with today's default and variants of it) and two
training-free scores computed at initialization.

- synflow (Tanaka et al. 2020): with every weight replaced by its absolute value (float64, eval
  mode), the sum over weights of |weight x gradient| of the summed output for an all-ones
  input; reported as its natural log (the order is what counts).
- naswot (Mellor et al. 2021): over a batch of training images in train mode, the binary code
  of which inputs of each ReLU are positive; K[i, j] counts the units on which images i and j
  agree; the score is log |det K|.

The mean of two seeds of any scorer is formed by the analysis from the per-seed lines.
"""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import torch

from repghost import NetConfig

from ..errors import UserError, user_input
from ..proxy import DEFAULT as PROXY_DEFAULT
from ..proxy import ProxyConfig, build_for, normalizer, split_for, train_proxy
from .ledger import append_line, read_lines
from .rows import Row
from .tiers import plan, settings_id

SCORE_FIELDS = ("scorer", "row", "id", "name", "seed", "score", "cpu_seconds", "wall_seconds", "settings_id", "finished_utc")
NASWOT_BATCH = 64

# Proxy recipes: today's default and one change at a time.
PROXY_RECIPES: dict[str, dict] = {
    "proxy-today": {},
    "proxy-images4x": {"train_size": 15_000},
    "proxy-epochs3x": {"epochs": 6},
    "proxy-val10k": {"val_size": 10_000},
    "proxy-64px": {"resolution": 64},
}
TRAINING_FREE = ("synflow", "naswot")
SCORERS = (*PROXY_RECIPES, *TRAINING_FREE)


def proxy_config(name: str, *, data: str, split_seed: int, seed: int, threads: int, base: ProxyConfig = PROXY_DEFAULT) -> ProxyConfig:
    return dataclasses.replace(base, **PROXY_RECIPES.get(name, {}), data=data, split_seed=split_seed, seed=seed, threads=threads)


def synflow_of(model: torch.nn.Module, input_shape: tuple[int, ...]) -> float:
    """log of sum |weight x d(sum of outputs)/d(weight)| with every weight made positive, in
    float64 and eval mode, for an all-ones input (``model`` is changed: pass a fresh one)."""
    model = model.double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.abs_()
    model(torch.ones(input_shape, dtype=torch.float64)).sum().backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def naswot_of(model: torch.nn.Module, images: torch.Tensor) -> float:
    """log |det K|, K[i, j] = the ReLU inputs on whose sign images i and j agree, over every
    ``nn.ReLU`` of ``model`` (forward in the model's current mode)."""
    count = int(images.shape[0])
    kernel = torch.zeros(count, count, dtype=torch.float64)

    def record(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes = (inputs[0].detach().reshape(count, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def _fresh(config: NetConfig, proxy: ProxyConfig) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(proxy.seed)
        return build_for(config, split_for(proxy))


def synflow(config: NetConfig, proxy: ProxyConfig) -> float:
    """synflow of ``config`` at initialization (seed ``proxy.seed``), at the proxy's resolution."""
    return synflow_of(_fresh(config, proxy), (1, split_for(proxy).channels, proxy.resolution, proxy.resolution))


def naswot(config: NetConfig, proxy: ProxyConfig, batch: int = NASWOT_BATCH) -> float:
    """NASWOT of ``config`` at initialization, in train mode, over ``batch`` of the proxy's
    training images (seed ``proxy.seed`` picks them and the initialization)."""
    data = split_for(proxy)
    generator = torch.Generator().manual_seed(proxy.seed)
    pick = torch.randperm(int(data.train_images.shape[0]), generator=generator)[:batch]
    mean, std = normalizer(data.train_images)
    return naswot_of(_fresh(config, proxy).train(), (data.train_images[pick].float() - mean) / std)


def score(name: str, config: NetConfig, proxy: ProxyConfig) -> float:
    if name == "synflow":
        return synflow(config, proxy)
    if name == "naswot":
        return naswot(config, proxy)
    return train_proxy(config, proxy).accuracy


def run_scorer(name: str, rows: list[Row], ledger: Path, *, seeds: Iterable[int], data: str = "fashion-mnist",
               split_seed: int = 0, threads: int = 1, order_seed: int = 0, limit: int | None = None,
               base: ProxyConfig = PROXY_DEFAULT, log: Callable[[str], None] = print) -> int:
    """Score every (row, seed) the ledger lacks for scorer ``name`` (a proxy recipe is ``base``
    with the scorer's changes); one line each. Returns the count scored."""
    if name not in SCORERS:
        raise UserError(f"unknown scorer {name!r}; known: {', '.join(SCORERS)}")
    with user_input():
        lines = read_lines(ledger, SCORE_FIELDS)
    base = proxy_config(name, data=data, split_seed=split_seed, seed=0, threads=threads, base=base)
    sid = settings_id({"scorer": name, **{k: v for k, v in base.to_dict().items() if k != "seed"}})
    other = sorted({line["settings_id"] for line in lines if line["scorer"] == name} - {sid})
    if other:
        raise UserError(f"{ledger} holds {name} scores of other settings ({', '.join(other)}, here {sid}): pass another --out")
    done = {(line["id"], int(line["seed"])) for line in lines if line["scorer"] == name}
    work = [(row, seed) for row, seed in plan(rows, seeds, order_seed) if (row.id, seed) not in done]
    log(f"{name} ({sid}): {len(done)} score(s) in {ledger}, {len(work)} to do")
    count = 0
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if work[:limit]:
            split_for(base)  # the images are loaded once, outside every row's time
        for row, seed in work[:limit]:
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            value = score(name, row.arch, dataclasses.replace(base, seed=seed))
            line = {"scorer": name, "row": row.row, "id": row.id, "name": row.name, "seed": seed, "score": value,
                    "cpu_seconds": round(time.process_time() - cpu_start, 2), "wall_seconds": round(time.perf_counter() - wall_start, 2),
                    "settings_id": sid, "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            append_line(ledger, SCORE_FIELDS, line)
            count += 1
            log(f"{name} {row.name} seed {seed}: {value:.4f} ({line['cpu_seconds']:.1f} CPU s)")
    finally:
        torch.set_num_threads(previous_threads)
    return count
