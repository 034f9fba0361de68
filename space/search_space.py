"""The search space: decisions, decoding them into a ``NetConfig``, and the paper models as points.

One walk over an architecture's decisions (``_walk``) is the single definition of which
decisions exist, when they are active and what they mean; decoding, sampling, Optuna suggestion
and enumeration all drive it, each with its own way of choosing. The space as a whole (its size,
its parts, its fastest point) is folded from ``space.walk``; both build blocks with
``space.blocks.block_config``.

Channel rule: ``make_divisible(base * width * ratio, 4)``, so ratio 1.0 reproduces the presets.
A ``concat`` block takes its mid from the row's ``concat_mid`` (GhostNet's table, about twice
RepGhostNet's) and has no re-parameterization branch. Decisions with one choice are fixed, not
asked. Depth drops trailing blocks of a stage; module groups keep their official positions, so
a dropped block leaves its group shorter (possibly empty) and the surviving blocks keep their
official module names.
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from repghost.config import BlockConfig, BlockSpec, NetConfig, PartSpec, make_divisible

from .blocks import BlockOption, block_config
from .counting import count_assignments, count_networks, reachable_parts
from .fastest import fastest
from .optuna_suggest import suggest
from .schema import BaseBlock, SpaceData, Stage

DEFAULT_SPACE = Path(__file__).with_name("repghost.yaml")
Choice = float | int | bool | str


@dataclass(frozen=True)
class Decision:
    """One categorical decision.

    Attributes:
        name: stable parameter name (``width``, ``s3.out``, ``s4.depth``, ``b07.mid`` ...).
        choices: the values, in file order.
        when: when the decision is asked (``always``, or the condition that activates it).
    """

    name: str
    choices: tuple[Choice, ...]
    when: str = "always"


class SearchSpace:
    """A validated search space (build with ``space.load_space``)."""

    def __init__(self, data: SpaceData) -> None:
        self.data = data
        self.path: Path = data.path
        self.resolution: int = data.resolution
        self.num_classes: int = data.num_classes
        self._decisions = {d.name: d for d in _all_decisions(data)}
        self._parts: list[PartSpec] | None = None

    # -- what the space is ----------------------------------------------------------------------

    @property
    def decisions(self) -> list[Decision]:
        """Decisions with two or more choices, in the order they are asked."""
        return [d for d in self._decisions.values() if len(d.choices) > 1]

    @property
    def fixed(self) -> dict[str, Choice]:
        """Decisions with a single choice: not asked, always this value."""
        return {d.name: d.choices[0] for d in self._decisions.values() if len(d.choices) == 1}

    def file_hash(self) -> str:
        """sha256 (hex) of the space file's bytes as loaded."""
        return self.data.sha256

    def size(self) -> int:
        """Exact number of distinct networks (distinct ``NetConfig``) in the space."""
        return count_networks(self.data)

    def n_assignments(self) -> int:
        """Number of distinct decision assignments (>= ``size()``: rounding can merge some)."""
        return count_assignments(self.data)

    def parts(self) -> list[PartSpec]:
        """Every distinct deployable part (stem, deploy-form bottleneck with its input shape,
        head) that some architecture of the space contains, sorted by ``repghost.part_key``."""
        if self._parts is None:
            self._parts = reachable_parts(self.data)
        return list(self._parts)

    def count_blocks(self) -> int:
        """Number of distinct deploy-form bottlenecks (``BlockSpec``) in ``parts()``."""
        return sum(isinstance(part, BlockSpec) for part in self.parts())

    def fastest(self, part_ms: Callable[[PartSpec], float]) -> tuple[float, dict[str, Choice]]:
        """Lowest sum of ``part_ms(spec)`` over an architecture's parts, and params reaching
        it; exact, by a shortest path over reachable states (see ``space.fastest``)."""
        total_ms, full = fastest(self.data, part_ms)
        params, _ = self.params_of(lambda decision: full[decision.name])
        return total_ms, params

    # -- points of the space --------------------------------------------------------------------

    def decode(self, params: dict[str, Any]) -> NetConfig:
        """The network selected by ``params`` (active decisions only; fixed ones may be given
        with their one value)."""
        if not isinstance(params, dict):
            raise ValueError(f"params must be a dict of decision name to choice, got {type(params).__name__}")
        used: set[str] = set()

        def choose(decision: Decision) -> Choice:
            if decision.name not in params:
                raise ValueError(f"params lack '{decision.name}' (choices {list(decision.choices)}); add it")
            value = params[decision.name]
            used.add(decision.name)
            return _match(decision, value)

        _, config = _walk(self.data, self._decisions, choose)
        for name, value in params.items():
            if name in used:
                continue
            decision = self._decisions.get(name)
            if decision is None:
                close = difflib.get_close_matches(str(name), list(self._decisions), n=3)
                hint = f"did you mean {', '.join(close)}?" if close else "see space.decisions for the names"
                raise ValueError(f"unknown decision '{name}' in params; {hint}")
            if len(decision.choices) == 1:
                _match(decision, value)
                continue
            raise ValueError(f"decision '{name}' is inactive for these params (asked when {decision.when}); drop it")
        return config

    def params_of(self, choose: Callable[[Decision], Choice]) -> tuple[dict[str, Choice], NetConfig]:
        """Walk the space with a custom chooser; returns the asked params and the network."""
        return _walk(self.data, self._decisions, choose)

    def sample(self, rng: random.Random) -> NetConfig:
        """A random network: every active decision drawn uniformly by ``rng``."""
        return self.sample_params(rng)[1]

    def sample_params(self, rng: random.Random) -> tuple[dict[str, Choice], NetConfig]:
        if not isinstance(rng, random.Random):
            raise ValueError(f"rng must be a random.Random, got {type(rng).__name__}")
        return _walk(self.data, self._decisions, lambda d: rng.choice(d.choices))

    def suggest(self, trial: Any) -> NetConfig:
        """The network an Optuna trial picks: one ``suggest_categorical`` per active decision."""
        return suggest(self, trial)

    def paper_point(self, width: float, *, family: str = "repghost") -> dict[str, Choice]:
        """Params selecting the paper model at ``width``: ``decode`` of them equals
        ``repghost.repghostnet_config(width)`` (or ``ghostnet_config`` with ``family='ghostnet'``)."""
        if family not in ("repghost", "ghostnet"):
            raise ValueError(f"family must be 'repghost' or 'ghostnet', got {family!r}")
        reuse = "reparam" if family == "repghost" else "concat"
        wanted: dict[str, Choice] = {"width": width}
        for stage in self.data.stages:
            wanted[f"{stage.name}.out"] = 1.0
            wanted[f"{stage.name}.depth"] = len(stage.blocks)
            for block in stage.blocks:
                wanted.update({f"{block.name}.mid": 1.0, f"{block.name}.se": block.se, f"{block.name}.reuse": reuse, f"{block.name}.kernel": block.kernel})
                if reuse == "reparam":
                    wanted[f"{block.name}.branch"] = "bn"

        def choose(decision: Decision) -> Choice:
            value = wanted[decision.name]
            if value not in decision.choices:
                raise ValueError(f"the {family} model at width {width:g} is not in {self.path}: {decision.name} choices {list(decision.choices)} lack {value!r}; add it")
            return decision.choices[decision.choices.index(value)]

        for name, value in self.fixed.items():
            if name in wanted and wanted[name] != value and _asked_for_paper(name, reuse):
                raise ValueError(f"the {family} model at width {width:g} is not in {self.path}: {name} is fixed to {value!r}, the paper uses {wanted[name]!r}; add it to the choices")
        return _walk(self.data, self._decisions, choose)[0]

    def iter_params(self) -> Iterator[dict[str, Choice]]:
        """Every decision assignment, one by one (for tiny spaces and tests; the default space
        is far too large)."""
        path: list[int] = []
        while True:
            counts: list[int] = []

            def choose(decision: Decision) -> Choice:
                k = len(counts)
                counts.append(len(decision.choices))
                return decision.choices[path[k] if k < len(path) else 0]

            params, _ = _walk(self.data, self._decisions, choose)
            path = (path + [0] * len(counts))[: len(counts)]
            yield params
            i = len(counts) - 1
            while i >= 0 and path[i] + 1 == counts[i]:
                i -= 1
            if i < 0:
                return
            path = path[:i] + [path[i] + 1]

    def __repr__(self) -> str:
        return f"SearchSpace({str(self.path)!r}, decisions={len(self.decisions)})"


def _asked_for_paper(name: str, reuse: str) -> bool:
    # A fixed branch does not matter for a ghostnet point (concat has no branch).
    return not (name.endswith(".branch") and reuse == "concat")


def _match(decision: Decision, value: Any) -> Choice:
    """The choice equal to ``value`` (bools and numbers kept apart: True is not 1)."""
    for choice in decision.choices:
        if type(choice) is bool or type(value) is bool:
            if type(choice) is type(value) and choice == value:
                return choice
        elif choice == value:
            return choice
    raise ValueError(f"{decision.name}={value!r} is not a choice; use one of {list(decision.choices)}")


def _all_decisions(data: SpaceData) -> list[Decision]:
    decisions = [Decision("width", data.widths)]
    for stage in data.stages:
        decisions.append(Decision(f"{stage.name}.out", stage.out_ratios))
        decisions.append(Decision(f"{stage.name}.depth", stage.depths))
        for block in stage.blocks:
            active = _active_when(stage, block)
            decisions.append(Decision(f"{block.name}.reuse", block.reuses, active))
            decisions.append(Decision(f"{block.name}.mid", block.mid_ratios, active))
            decisions.append(Decision(f"{block.name}.se", block.se_choices, active))
            if "reparam" in block.reuses:
                when = f"{block.name}.reuse == reparam" if len(block.reuses) > 1 else active
                decisions.append(Decision(f"{block.name}.branch", block.branches, when))
            if block.stride == 2:
                decisions.append(Decision(f"{block.name}.kernel", block.kernels, active))
    return decisions


def _active_when(stage: Stage, block: BaseBlock) -> str:
    if block.position < min(stage.depths):
        return "always"
    return f"{stage.name}.depth >= {block.position + 1}"


def _walk(data: SpaceData, decisions: dict[str, Decision], choose: Callable[[Decision], Choice]) -> tuple[dict[str, Choice], NetConfig]:
    """Ask every active decision once, in order, and build the network they select."""
    params: dict[str, Choice] = {}

    def get(name: str) -> Choice:
        decision = decisions[name]
        if len(decision.choices) == 1:
            return decision.choices[0]
        value = choose(decision)
        params[name] = value
        return value

    width = float(get("width"))
    groups: list[list[BlockConfig]] = [[] for _ in data.group_sizes]
    for stage in data.stages:
        out_ratio = float(get(f"{stage.name}.out"))
        depth = int(get(f"{stage.name}.depth"))
        for block in stage.blocks[:depth]:
            groups[block.group].append(_block_config(data, block, width, out_ratio, get))
    config = NetConfig(
        stem=make_divisible(data.stem * width),
        blocks=tuple(tuple(group) for group in groups),
        final_conv=make_divisible(data.final_conv * width),
        head=data.head,
        num_classes=data.num_classes,
    )
    return params, config


def _block_config(data: SpaceData, block: BaseBlock, width: float, out_ratio: float, get: Callable[[str], Choice]) -> BlockConfig:
    reuse = str(get(f"{block.name}.reuse"))
    mid_ratio = float(get(f"{block.name}.mid"))
    se = bool(get(f"{block.name}.se"))
    branch = str(get(f"{block.name}.branch")) if reuse == "reparam" else "none"
    kernel = int(get(f"{block.name}.kernel")) if block.stride == 2 else block.kernel
    return block_config(data, block, width, out_ratio, BlockOption(reuse, mid_ratio, se, branch, kernel))
