"""The rows of the fidelity study: architectures fixed before any training.

A seeded draw from a search space, uniform over the space's decisions and kept only when the
predicted latency falls inside a band (the search's budget and a little above it), without the
searched winners (so the study does not grade the search on its own picks); then the paper
models of every width in the space. Each row keeps the latency the LUT predicted at draw time
with the sha256 of that LUT file, so a later rebuild of the LUT changes nothing here.

In-band rows are split in two halves with a seeded coin per consecutive pair: a proxy recipe is
chosen on the ``choose`` half and reported on the ``report`` half. The draw is a prefix: asking
for more rows with the same seed keeps the first ones (and their halves).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import repghost
from repghost import NetConfig
from space import SearchSpace, arch_id

FIELDS = ("row", "id", "name", "kind", "latency_ms", "in_band", "half", "params", "macs",
          "params_task", "macs_task", "lut_sha256", "arch")
KINDS = ("band", "paper", "winner")  # winner: a search's pick, trained to compare searches (nas.fidelity.compare)
HALVES = ("choose", "report")
MAX_DRAWS = 200_000  # candidates sampled before the draw gives up on an empty band


@dataclass(frozen=True)
class Task:
    """The shape of the task the rows are trained on: counts in the task setting (input
    channels, classes, resolution) beside the search's (the space's 224 px and classes)."""

    in_chans: int = 1
    num_classes: int = 10
    resolution: int = 32


@dataclass(frozen=True)
class Row:
    """One architecture of the study.

    Attributes:
        row: position in the rows file (band draws first, in draw order, then paper widths).
        id: ``space.arch_id`` of the architecture.
        name: ``band-NN`` or ``paper-<width>x``.
        kind: ``band`` (drawn), ``paper``, or ``winner`` (never in a rows file: ``compare``).
        latency_ms: predicted by the LUT whose file had sha256 ``lut_sha256``, at draw time.
        in_band: the latency is inside the band.
        half: ``choose`` or ``report`` for in-band rows, empty otherwise.
        params, macs: as the search counts them (the space's resolution and classes; fvcore:
            one multiply-add is one MAC).
        params_task, macs_task: in the task setting (``Task``).
        lut_sha256: sha256 of the LUT file the latency came from.
        arch: the architecture.
    """

    row: int
    id: str
    name: str
    kind: str
    latency_ms: float
    in_band: bool
    half: str
    params: int
    macs: int
    params_task: int
    macs_task: int
    lut_sha256: str
    arch: NetConfig

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"row {self.row}: kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.half not in (*HALVES, ""):
            raise ValueError(f"row {self.row}: half must be one of {list(HALVES)} or empty, got {self.half!r}")
        if self.id != arch_id(self.arch):
            raise ValueError(f"row {self.row}: id {self.id} is not the architecture's ({arch_id(self.arch)}); the file was edited by hand")

    def to_csv(self) -> dict[str, str]:
        values = dataclasses.asdict(self)
        values["arch"] = self.arch.to_json()
        values["in_band"] = "1" if self.in_band else "0"
        values["latency_ms"] = repr(self.latency_ms)
        return {k: str(v) for k, v in values.items()}

    @classmethod
    def from_csv(cls, values: dict[str, str]) -> "Row":
        return cls(
            row=int(values["row"]), id=values["id"], name=values["name"], kind=values["kind"],
            latency_ms=float(values["latency_ms"]), in_band=values["in_band"] == "1", half=values["half"],
            params=int(values["params"]), macs=int(values["macs"]), params_task=int(values["params_task"]),
            macs_task=int(values["macs_task"]), lut_sha256=values["lut_sha256"],
            arch=NetConfig.from_dict(json.loads(values["arch"])),
        )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def band_candidates(space: SearchSpace, predict_ms: Callable[[NetConfig], float], *, low_ms: float, high_ms: float,
                    seed: int, exclude: Iterable[str] = (), max_draws: int = MAX_DRAWS) -> Iterable[tuple[NetConfig, float]]:
    """Distinct architectures inside [low_ms, high_ms], in the order a ``random.Random(seed)``
    draws them; ``exclude`` names arch ids never to yield. Stops after ``max_draws`` samples."""
    rng, seen = random.Random(seed), set(exclude)
    for _ in range(max_draws):
        config = space.sample(rng)
        latency_ms = predict_ms(config)
        if low_ms <= latency_ms <= high_ms and arch_id(config) not in seen:
            seen.add(arch_id(config))
            yield config, latency_ms


def draw_rows(space: SearchSpace, predict_ms: Callable[[NetConfig], float], *, lut_sha256: str, count: int,
              low_ms: float, high_ms: float, seed: int, exclude: Iterable[str] = (),
              widths: Iterable[float] | None = None, task: Task = Task(), max_draws: int = MAX_DRAWS,
              on_row: Callable[[], None] = lambda: None) -> list[Row]:
    """``count`` in-band draws (see ``band_candidates``), then the paper model of every width
    (default: the space's widths). Raises ValueError when the band holds too few. ``on_row`` is
    called as each row is counted (params and MACs twice: the slow part, minutes for 32 rows)."""
    if count < 0 or low_ms > high_ms:
        raise ValueError(f"need count >= 0 and low_ms <= high_ms, got {count}, {low_ms}, {high_ms}")
    widths = tuple(space.data.widths if widths is None else widths)
    papers = [(f"paper-{w:g}x", space.decode(space.paper_point(w))) for w in widths]
    excluded = set(exclude) | {arch_id(config) for _, config in papers}
    drawn = []
    for config, latency_ms in band_candidates(space, predict_ms, low_ms=low_ms, high_ms=high_ms, seed=seed,
                                              exclude=excluded, max_draws=max_draws):
        drawn.append((f"band-{len(drawn):02d}", config, latency_ms))
        if len(drawn) == count:
            break
    if len(drawn) < count:
        raise ValueError(f"only {len(drawn)} distinct architectures of {space.path} fall in {low_ms:g}-{high_ms:g} ms "
                         f"after {max_draws} draws; widen the band or ask for fewer rows")
    entries = drawn + [(name, config, predict_ms(config)) for name, config in papers]
    in_band = [i for i, (_, _, ms) in enumerate(entries) if low_ms <= ms <= high_ms]
    halves = split_halves(len(in_band), seed)
    rows = []
    for i, (name, config, latency_ms) in enumerate(entries):
        search_counts = counted(config, space.resolution)
        task_counts = counted(dataclasses.replace(config, in_chans=task.in_chans, num_classes=task.num_classes), task.resolution)
        rows.append(Row(
            row=i, id=arch_id(config), name=name, kind="band" if name.startswith("band-") else "paper",
            latency_ms=latency_ms, in_band=i in in_band, half=halves[in_band.index(i)] if i in in_band else "",
            params=search_counts.params, macs=search_counts.macs, params_task=task_counts.params, macs_task=task_counts.macs,
            lut_sha256=lut_sha256, arch=config,
        ))
        on_row()
    return rows


@lru_cache(maxsize=512)
def counted(config: NetConfig, resolution: int) -> repghost.Counts:
    """Params and MACs of ``config`` on one image, as the search counts them (cached: counting
    traces the network, about a second; a redraw counts nothing twice)."""
    return repghost.count(repghost.build(config), resolution)


def split_halves(count: int, seed: int) -> list[str]:
    """``choose``/``report`` for ``count`` items: one seeded coin per consecutive pair, so the
    halves differ by at most one and a longer list keeps a shorter one's labels."""
    rng = random.Random(f"halves-{seed}")
    labels: list[str] = []
    while len(labels) < count:
        first = rng.choice(HALVES)
        labels += [first, HALVES[1 - HALVES.index(first)]]
    return labels[:count]


def write_rows(path: Path, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(row.to_csv() for row in rows)
    partial.replace(path)


def read_rows(path: Path) -> list[Row]:
    """The rows file, checked: columns, kinds, ids matching their architectures."""
    if not Path(path).is_file():
        raise ValueError(f"{path} does not exist; draw the rows first with python -m nas.fidelity draw --out {path}")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path} has columns {reader.fieldnames}, expected {list(FIELDS)}; draw it again with python -m nas.fidelity draw")
        try:
            rows = [Row.from_csv(values) for values in reader]
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: {error}") from None
    if len({row.id for row in rows}) != len(rows):
        raise ValueError(f"{path} lists an architecture twice; draw it again")
    return rows
