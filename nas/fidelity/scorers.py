"""Scores to rank rows by, each a candidate for how the search could judge an architecture:
proxy recipes (``nas.proxy.train_proxy`` with today's default and variants of it) and two
training-free scores computed at initialization (``nas.screens``: synflow and NASWOT).

The mean of two seeds of any scorer is formed by the analysis from the per-seed lines.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import torch

from repghost import NetConfig

from ..errors import UserError, user_input
from ..proxy import DEFAULT as PROXY_DEFAULT
from ..proxy import ProxyConfig, split_for, train_proxy
from ..screens import naswot, synflow
from .ledger import append_line, read_lines
from .rows import Row
from .tiers import plan, settings_id

SCORE_FIELDS = ("scorer", "row", "id", "name", "seed", "score", "cpu_seconds", "wall_seconds", "settings_id", "finished_utc")

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
