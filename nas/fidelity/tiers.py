"""Ground truth for the fidelity study: each (row, seed) trained for real, with ``nas.train``'s
training code (``nas.training.Run``: model, optimizer, schedule, augmentation, batches).

- Tier 1, every row: the reference recipe of the data set (``nas.recipes``) shortened to
  ``epochs`` passes over ``train_images`` images (default 30 000 x 5 = 150 000 image passes,
  20x the default proxy's 3750 x 2). Validation on the first ``val_images`` images of the
  search's seeded permutation (``nas.data.split`` with the search's split seed): its first
  ``nas.proxy.DEFAULT.val_size`` images are exactly the search's validation split (its accuracy
  is recorded apart, ``search_split_accuracy``); the training images come after them. The test
  split is never read. One line per finished run; a kill loses the run in progress only.
- Tier 2, chosen rows: ``nas.training.train``, the full reference recipe (every training image
  but the search's validation split), checkpointed every epoch in its own folder.

Runs go seed by seed, and within a seed through the rows in a seeded shuffled order, so that a
partial ledger covers the band evenly. ``--shard K/N`` lets N processes share one ledger.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from tqdm import tqdm

from ..checkpointing import TrainingState
from ..data import load_dataset, split
from ..errors import UserError, user_input
from ..proxy import DEFAULT as PROXY_DEFAULT
from ..proxy import evaluate, normalizer
from ..recipes import Recipe, recipe_for
from ..training import Prepared, Run, finished_run, train
from .ledger import append_line, read_lines
from .rows import Row

RUN_FIELDS = ("row", "id", "name", "seed", "val_accuracy", "search_split_accuracy", "val_images", "train_images",
              "epochs", "cpu_seconds", "wall_seconds", "train_images_per_second", "load_1min", "threads",
              "settings_id", "finished_utc")
# after_epoch(lines appended by this process so far, epoch just finished): tests stop a run there.
EpochHook = Callable[[int, int], None]


@dataclass(frozen=True)
class Tier1:
    """The shortened reference recipe of tier 1 and the images it uses."""

    data: str = "fashion-mnist"
    train_images: int = 30_000
    epochs: int = 5
    val_images: int = 10_000
    split_seed: int = 0
    resolution: int | None = None  # None: the data set's reference resolution

    def __post_init__(self) -> None:
        if self.val_images < PROXY_DEFAULT.val_size:
            raise ValueError(f"val_images must hold the search's {PROXY_DEFAULT.val_size} validation images, got {self.val_images}")
        self.recipe()  # the recipe's own checks (a resolution of at least 8 px among them)

    def recipe(self) -> Recipe:
        recipe = dataclasses.replace(recipe_for(self.data), epochs=self.epochs)
        return recipe if self.resolution is None else dataclasses.replace(recipe, resolution=self.resolution)


def settings_id(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def tier1_settings(tier: Tier1, threads: int) -> dict[str, Any]:
    """What fixes a tier-1 result besides architecture and seed (threads too: torch sums in
    another order with another count)."""
    fields = {key: value for key, value in dataclasses.asdict(tier).items() if key != "resolution"}  # the recipe holds it
    return {"tier": 1, **fields, "search_val_images": PROXY_DEFAULT.val_size,
            "recipe": tier.recipe().to_dict(), "threads": threads}


def plan(rows: list[Row], seeds: Iterable[int], order_seed: int) -> list[tuple[Row, int]]:
    """Every (row, seed): seed by seed, rows in one seeded shuffled order."""
    order = list(rows)
    random.Random(order_seed).shuffle(order)
    return [(row, seed) for seed in seeds for row in order]


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N), 0 <= K < N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes K/N (e.g. 0/2 and 1/2 for two processes), got {text!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def finished(ledger: Path, settings: str, fields: Sequence[str] = RUN_FIELDS) -> set[tuple[str, int]]:
    """(arch id, seed) of the runs the ledger holds (columns ``fields``, among them id, seed and
    settings_id); refuses a ledger of other settings."""
    with user_input():
        lines = read_lines(ledger, fields)
    other = sorted({line["settings_id"] for line in lines} - {settings})
    if other:
        raise UserError(f"{ledger} holds runs of other settings ({', '.join(other)}, here {settings}): "
                         f"repeat their settings to resume, or pass another --out")
    return {(line["id"], int(line["seed"])) for line in lines}


def tier1_data(tier: Tier1) -> Prepared:
    """The tier's images, loaded and resized once per process."""
    recipe = tier.recipe()
    return _prepared(tier.data, tier.train_images, tier.val_images, tier.split_seed, recipe.resolution, recipe.batch_size)


@lru_cache(maxsize=2)
def _prepared(data: str, train_images: int, val_images: int, split_seed: int, resolution: int, batch_size: int) -> Prepared:
    with user_input():
        dataset = load_dataset(data)
    images = split(dataset, train_size=train_images, val_size=val_images, seed=split_seed, resolution=resolution)
    mean, std = normalizer(images.train_images)
    return Prepared(images, dataset, mean, std, min(batch_size, train_images))


def train_tier1(row: Row, seed: int, tier: Tier1, threads: int, after_epoch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train one (row, seed) with tier 1's recipe; returns its ledger line."""
    data, recipe = tier1_data(tier), tier.recipe()
    state = TrainingState({"seed": seed}, 0, {}, {}, {}, {}, [], 0.0, 0.0)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    try:
        images = data.steps_per_epoch * data.batch * recipe.epochs
        bar = tqdm(total=images, unit="img", unit_scale=True, desc=f"{row.name} seed {seed}", leave=False,
                   mininterval=1 if sys.stderr.isatty() else 60, dynamic_ncols=True)  # a run is minutes long
        with torch.random.fork_rng(devices=[]), bar:
            run = Run(row.arch, recipe, data, state, resume=False)
            for epoch in range(1, recipe.epochs + 1):
                run.train_epoch(bar)
                state.epoch = epoch
                if after_epoch is not None:
                    after_epoch(epoch)
            train_seconds = time.perf_counter() - wall_start
            search_n = PROXY_DEFAULT.val_size
            images, labels = data.split.val_images, data.split.val_labels
            search_accuracy = evaluate(run.model, images[:search_n], labels[:search_n], data.mean, data.std)
            rest = evaluate(run.model, images[search_n:], labels[search_n:], data.mean, data.std) if tier.val_images > search_n else 0.0
    finally:
        torch.set_num_threads(previous_threads)
    val_accuracy = (search_accuracy * search_n + rest * (tier.val_images - search_n)) / tier.val_images
    return {
        "row": row.row, "id": row.id, "name": row.name, "seed": seed, "val_accuracy": round(val_accuracy, 6),
        "search_split_accuracy": round(search_accuracy, 6), "val_images": tier.val_images, "train_images": tier.train_images,
        "epochs": recipe.epochs, "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "wall_seconds": round(time.perf_counter() - wall_start, 1),
        "train_images_per_second": round(data.steps_per_epoch * data.batch * recipe.epochs / train_seconds, 1),
        "load_1min": round(os.getloadavg()[0], 2), "threads": threads,
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def run_tier1(rows: list[Row], ledger: Path, *, seeds: Iterable[int], tier: Tier1 = Tier1(), threads: int = 1,
              order_seed: int = 0, shard: tuple[int, int] = (0, 1), limit: int | None = None,
              after_epoch: EpochHook | None = None, done_elsewhere: Iterable[tuple[str, int]] = (),
              log: Callable[[str], None] = print) -> int:
    """Train every (row, seed) of the plan that the ledger lacks (this shard's share), appending
    a line per finished run; ``done_elsewhere``: (arch id, seed) runs of the same settings that
    another ledger holds. Stops after ``limit`` runs when given. Returns the runs done."""
    sid = settings_id(tier1_settings(tier, threads))
    own = finished(ledger, sid)
    elsewhere = set(done_elsewhere) - own
    done = own | elsewhere
    work = [(i, row, seed) for i, (row, seed) in enumerate(plan(rows, seeds, order_seed))
            if i % shard[1] == shard[0] and (row.id, seed) not in done]
    held = f"{len(own)} run(s) in {ledger}" + (f" and {len(elsewhere)} in another ledger" if elsewhere else "")
    log(f"tier 1 ({sid}): {held}, {len(work)} to do" + (f" in shard {shard[0]}/{shard[1]}" if shard != (0, 1) else ""))
    count = 0
    for i, row, seed in work[:limit]:
        hook = (lambda epoch, n=count: after_epoch(n, epoch)) if after_epoch is not None else None
        line = train_tier1(row, seed, tier, threads, hook)
        append_line(ledger, RUN_FIELDS, {**line, "settings_id": sid})
        count += 1
        log(f"[{i + 1}] {row.name} {row.id} seed {seed}: val {line['val_accuracy']:.4f} (search split "
            f"{line['search_split_accuracy']:.4f}), {line['cpu_seconds']:.0f} CPU s, {line['wall_seconds']:.0f} s, "
            f"{line['train_images_per_second']:.0f} img/s, load {line['load_1min']}")
    return count


def tier2_settings_id(data: str, split_seed: int, threads: int, recipe: Recipe) -> str:
    return settings_id({"tier": 2, "data": data, "split_seed": split_seed, "val_size": PROXY_DEFAULT.val_size,
                        "recipe": recipe.to_dict(), "threads": threads})


def tier2_line(row: Row, seed: int, metrics: dict[str, Any], threads: int, sid: str) -> dict[str, Any]:
    """The ledger line of a finished ``nas.training.train`` run of ``row``."""
    return {"row": row.row, "id": row.id, "name": row.name, "seed": seed, "val_accuracy": metrics["val_accuracy"],
            "search_split_accuracy": metrics["val_accuracy"], "val_images": metrics["val_images"],
            "train_images": metrics["train_images"], "epochs": metrics["epochs_done"],
            "cpu_seconds": metrics["cpu_seconds"], "wall_seconds": metrics["wall_seconds"],
            "train_images_per_second": metrics["train_images_per_second"], "load_1min": round(os.getloadavg()[0], 2),
            "threads": threads, "settings_id": sid,
            "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def run_tier2(rows: list[Row], ledger: Path, runs_dir: Path, *, seeds: Iterable[int], data: str = "fashion-mnist",
              split_seed: int = 0, threads: int = 1, recipe: Recipe | None = None, log: Callable[[str], None] = print) -> int:
    """``nas.training.train`` with ``recipe`` (default: the data set's full reference recipe) for
    each given row and seed, in ``runs_dir/<name>-<id>-seed<seed>`` (resumable per epoch), then a
    ledger line."""
    recipe = recipe or recipe_for(data)
    sid = tier2_settings_id(data, split_seed, threads, recipe)
    done = finished(ledger, sid)
    count = 0
    for seed in seeds:
        for row in rows:
            if (row.id, seed) in done:
                continue
            metrics = train(row.arch, recipe, data=data, out=runs_dir / f"{row.name}-{row.id}-seed{seed}",
                            origin=f"fidelity row {row.row} ({row.name})", seed=seed, split_seed=split_seed, threads=threads)
            line = tier2_line(row, seed, metrics, threads, sid)
            append_line(ledger, RUN_FIELDS, line)
            count += 1
            log(f"tier 2 {row.name} {row.id} seed {seed}: val {line['val_accuracy']:.4f}, {line['cpu_seconds']:.0f} CPU s")
    return count


def import_tier2(rows: list[Row], ledger: Path, runs: Iterable[Path], *, data: str = "fashion-mnist", split_seed: int = 0,
                 threads: int = 1, recipe: Recipe | None = None, log: Callable[[str], None] = print) -> int:
    """Ledger lines for finished ``python -m nas.train`` runs of rows that are tier-2 runs
    already (same architecture, data, split, recipe and threads as ``run_tier2`` would use): an
    hour of training each, not done twice. Anything else is refused, naming what differs."""
    recipe = recipe or recipe_for(data)
    sid = tier2_settings_id(data, split_seed, threads, recipe)
    done = finished(ledger, sid)
    by_name = {row.name: row for row in rows}
    count = 0
    for run in runs:
        name, metrics = finished_run(Path(run), {row.name: row.arch for row in rows}, recipe, data=data, split_seed=split_seed,
                                     threads=threads, kind="tier-2")
        row, settings = by_name[name], metrics["settings"]
        if (row.id, settings["seed"]) in done:
            log(f"tier 2 {row.name} {row.id} seed {settings['seed']}: already in {ledger}")
            continue
        append_line(ledger, RUN_FIELDS, tier2_line(row, settings["seed"], metrics, threads, sid))
        done.add((row.id, settings["seed"]))
        count += 1
        log(f"tier 2 {row.name} {row.id} seed {settings['seed']}: val {metrics['val_accuracy']:.4f} from {run}")
    return count
