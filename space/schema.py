"""Reading a search-space YAML file into validated, frozen dataclasses.

Every problem is reported as one ``ValueError`` line naming the file, the key path inside it
and the fix, so a user editing the file by hand sees at once what to change. Nothing here
knows Optuna or builds a network; ``space.search_space`` gives the parsed data its meaning.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from repghost.config import BRANCHES, KERNELS, REUSES, STRIDES, make_divisible

BLOCK_DECISIONS = ("mid", "se", "reuse", "branch", "kernel")
STAGE_DECISIONS = ("out", "depth")
CHOICE_KEYS = ("width", "out") + BLOCK_DECISIONS
TOP_KEYS = ("resolution", "se_ratio", "network", "choices", "stages")
NETWORK_KEYS = ("stem", "final_conv", "head", "num_classes", "group_sizes")
STAGE_KEYS = ("blocks", "out", "depth")
ROW_KEYS = ("kernel", "mid", "concat_mid", "out", "se", "stride", "choices")


@dataclass(frozen=True)
class BaseBlock:
    """One bottleneck of the width-1.0 base network and the choice lists that vary it.

    Attributes:
        name: ``b00``, ``b01``, ... (0-based position in the network; the parameter prefix).
        stage: 0-based index of its stage.
        position: 0-based index inside its stage.
        group: 0-based index of its group in the official module layout.
        kernel, mid, out, stride: the base row (mid of a ``reparam`` block).
        concat_mid: mid of the block's ``concat`` twin (GhostNet's convention, about twice).
        se: whether the base network has squeeze-and-excite here.
        mid_ratios, se_choices, reuses, branches, kernels: choice lists of this block.
    """

    name: str
    stage: int
    position: int
    group: int
    kernel: int
    mid: int
    concat_mid: int
    out: int
    se: bool
    stride: int
    mid_ratios: tuple[float, ...]
    se_choices: tuple[bool, ...]
    reuses: tuple[str, ...]
    branches: tuple[str, ...]
    kernels: tuple[int, ...]


@dataclass(frozen=True)
class Stage:
    """Consecutive blocks sharing one output-width ratio (so identity shortcuts stay valid)."""

    name: str
    blocks: tuple[BaseBlock, ...]
    out_ratios: tuple[float, ...]
    depths: tuple[int, ...]


@dataclass(frozen=True)
class SpaceData:
    """Everything a space file says, validated."""

    path: Path
    sha256: str
    resolution: int
    se_ratio: float
    stem: int
    final_conv: int
    head: int
    num_classes: int
    group_sizes: tuple[int, ...]
    widths: tuple[float, ...]
    stages: tuple[Stage, ...]

    def blocks(self) -> list[BaseBlock]:
        return [block for stage in self.stages for block in stage.blocks]


class _Reader:
    """Validation helpers that know the file name, so every message carries it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> ValueError:
        return ValueError(f"{self.path}: {key}: {problem}; {fix}")

    def mapping(self, key: str, value: Any, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key or "top level", f"expected a mapping, got {_kind(value)}", f"write it as 'name: value' lines with keys {list(allowed)}")
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, "unknown key", f"use one of {list(allowed)} (check the spelling)")
        for name in required:
            if name not in value:
                where = f"{key}.{name}" if key else name
                raise self.fail(where, "missing key", f"add '{name}:' (see space/repghost.yaml for an example)")
        return value

    def integer(self, key: str, value: Any, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_kind(value)}", f"write a whole number >= {minimum}")
        if value < minimum:
            raise self.fail(key, f"{value} is below {minimum}", f"use a whole number >= {minimum}")
        return value

    def number(self, key: str, value: Any) -> float:
        if isinstance(value, str):
            raise self.fail(key, f"expected a number, got the string {value!r}", "write a plain decimal such as 0.001 (PyYAML reads 1e-3 as a string; 1.0e-3 is a number)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"expected a number, got {_kind(value)}", "write a plain decimal such as 0.75")
        return float(value)

    def ratio(self, key: str, value: Any) -> float:
        value = self.number(key, value)
        if value <= 0:
            raise self.fail(key, f"ratio {value:g} gives no channels", "use a ratio above 0")
        return value

    def kernel(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value not in KERNELS:
            raise self.fail(key, f"kernel {value!r} is not supported by the builder", f"use one of {list(KERNELS)}")
        return value

    def choice_list(self, key: str, value: Any, item: Callable[[str, Any], Any]) -> tuple:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of choices, got {_kind(value)}", "write the choices as a list such as [0.75, 1.0]")
        if not value:
            raise self.fail(key, "empty choice list", "give at least one choice (one choice fixes the decision)")
        items = tuple(item(f"{key}[{i}]", v) for i, v in enumerate(value))
        for i, v in enumerate(items):
            if v in items[:i]:
                raise self.fail(key, f"choice {v!r} is listed twice", "remove the duplicate")
        return items

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_kind(value)}", "write true or false")
        return value

    def word(self, allowed: tuple[str, ...]) -> Callable[[str, Any], str]:
        def check(key: str, value: Any) -> str:
            if not isinstance(value, str) or value not in allowed:
                raise self.fail(key, f"{value!r} is not a supported value", f"use one of {list(allowed)}")
            return value

        return check


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


def read_space_file(path: Path) -> SpaceData:
    """Parse and validate one space file (see ``space/repghost.yaml`` for the format)."""
    reader = _Reader(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the space file ({error.strerror}); give the path of an existing YAML file") from None
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise ValueError(f"{path}: {where}: {problem}; fix the YAML syntax there") from None
    top = reader.mapping("", doc, TOP_KEYS, ("resolution", "network", "choices", "stages"))
    resolution = reader.integer("resolution", top["resolution"], minimum=8)
    se_ratio = reader.number("se_ratio", top.get("se_ratio", 0.25))
    if not 0 < se_ratio < 1:
        raise reader.fail("se_ratio", f"{se_ratio:g} is outside (0, 1)", "use a ratio such as 0.25")

    net = reader.mapping("network", top["network"], NETWORK_KEYS, NETWORK_KEYS)
    stem = reader.integer("network.stem", net["stem"])
    final_conv = reader.integer("network.final_conv", net["final_conv"])
    head = reader.integer("network.head", net["head"])
    num_classes = reader.integer("network.num_classes", net["num_classes"])
    sizes = net["group_sizes"]  # not a choice list: repeated sizes (1, 1, 1, ...) are normal
    if not isinstance(sizes, list) or not sizes:
        raise reader.fail("network.group_sizes", f"expected a non-empty list of block counts, got {_kind(sizes)}", "list how many blocks each module group holds")
    group_sizes = tuple(reader.integer(f"network.group_sizes[{i}]", v) for i, v in enumerate(sizes))

    choices = reader.mapping("choices", top["choices"], CHOICE_KEYS, CHOICE_KEYS)
    defaults = _block_choices(reader, "choices", choices)
    widths = reader.choice_list("choices.width", choices["width"], reader.ratio)
    out_ratios = reader.choice_list("choices.out", choices["out"], reader.ratio)

    stage_list = top["stages"]
    if not isinstance(stage_list, list) or not stage_list:
        raise reader.fail("stages", f"expected a non-empty list of stages, got {_kind(stage_list)}", "list the stages, each with its 'blocks'")
    stages: list[Stage] = []
    n_blocks = sum(len(s["blocks"]) for s in stage_list if isinstance(s, dict) and isinstance(s.get("blocks"), list))
    digits = max(2, len(str(n_blocks - 1)))
    index = 0
    for s, entry in enumerate(stage_list):
        key = f"stages[{s}]"
        entry = reader.mapping(key, entry, STAGE_KEYS, ("blocks",))
        rows = entry["blocks"]
        if not isinstance(rows, list) or not rows:
            raise reader.fail(f"{key}.blocks", f"expected a non-empty list of blocks, got {_kind(rows)}", "give each stage at least one block row")
        blocks = []
        for p, row in enumerate(rows):
            blocks.append(_block(reader, f"{key}.blocks[{p}]", row, f"b{index:0{digits}d}", s, p, defaults))
            index += 1
        stage_out = reader.choice_list(f"{key}.out", entry["out"], reader.ratio) if "out" in entry else out_ratios
        depths = _depths(reader, f"{key}.depth", entry.get("depth"), blocks)
        stages.append(Stage(f"s{s + 1}", tuple(blocks), stage_out, depths))
    grouped = _assign_groups(reader, group_sizes, stages)

    data = SpaceData(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        resolution=resolution,
        se_ratio=se_ratio,
        stem=stem,
        final_conv=final_conv,
        head=head,
        num_classes=num_classes,
        group_sizes=group_sizes,
        widths=widths,
        stages=grouped,
    )
    _check_channels(reader, data)
    return data


def _block_choices(reader: _Reader, key: str, mapping: dict) -> dict[str, tuple]:
    readers = {
        "mid": reader.ratio,
        "se": reader.boolean,
        "reuse": reader.word(REUSES),
        "branch": reader.word(BRANCHES),
        "kernel": reader.kernel,
    }
    return {name: reader.choice_list(f"{key}.{name}", mapping[name], readers[name]) for name in BLOCK_DECISIONS if name in mapping}


def _block(reader: _Reader, key: str, row: Any, name: str, stage: int, position: int, defaults: dict) -> BaseBlock:
    row = reader.mapping(key, row, ROW_KEYS, ("kernel", "mid", "out", "se", "stride"))
    kernel = reader.kernel(f"{key}.kernel", row["kernel"])
    mid = reader.integer(f"{key}.mid", row["mid"])
    concat_mid = reader.integer(f"{key}.concat_mid", row.get("concat_mid", 2 * mid))
    out = reader.integer(f"{key}.out", row["out"])
    se = reader.boolean(f"{key}.se", row["se"])
    stride = row["stride"]
    if isinstance(stride, bool) or stride not in STRIDES:
        raise reader.fail(f"{key}.stride", f"stride {stride!r} is not supported by the builder", f"use one of {list(STRIDES)}")
    chosen = dict(defaults)
    if "choices" in row:
        own = reader.mapping(f"{key}.choices", row["choices"], BLOCK_DECISIONS, ())
        if "kernel" in own and stride != 2:
            raise reader.fail(f"{key}.choices.kernel", f"{name} has stride 1, where the kernel has no effect", "give kernel choices only to stride-2 blocks")
        chosen.update(_block_choices(reader, f"{key}.choices", own))
    kernels = chosen["kernel"] if stride == 2 else (kernel,)
    return BaseBlock(
        name=name,
        stage=stage,
        position=position,
        group=-1,  # set once all stages are read (see _assign_groups)
        kernel=kernel,
        mid=mid,
        concat_mid=concat_mid,
        out=out,
        se=se,
        stride=stride,
        mid_ratios=chosen["mid"],
        se_choices=chosen["se"],
        reuses=chosen["reuse"],
        branches=chosen["branch"],
        kernels=kernels,
    )


def _depths(reader: _Reader, key: str, value: Any, blocks: list[BaseBlock]) -> tuple[int, ...]:
    if value is None:
        return (len(blocks),)
    depths = reader.choice_list(key, value, lambda k, v: reader.integer(k, v))
    for depth in depths:
        if depth > len(blocks):
            raise reader.fail(key, f"depth {depth} exceeds the stage's {len(blocks)} blocks", f"use depths from 1 to {len(blocks)}")
    for block in blocks[min(depths) :]:
        if block.stride != 1:
            raise reader.fail(key, f"depth {min(depths)} would drop {block.name}, which has stride 2", "only trailing stride-1 blocks can be dropped; raise the smallest depth")
    return depths


def _assign_groups(reader: _Reader, group_sizes: tuple[int, ...], stages: list[Stage]) -> tuple[Stage, ...]:
    """Give every block its module group; a group must lie inside one stage."""
    n_blocks = sum(len(stage.blocks) for stage in stages)
    if sum(group_sizes) != n_blocks:
        raise reader.fail("network.group_sizes", f"the groups hold {sum(group_sizes)} blocks but the stages list {n_blocks}", "make the group sizes add up to the number of block rows")
    group_of = [g for g, size in enumerate(group_sizes) for _ in range(size)]
    stage_of_group: dict[int, str] = {}
    result = []
    index = 0
    for stage in stages:
        blocks = []
        for block in stage.blocks:
            group = group_of[index]
            index += 1
            if stage_of_group.setdefault(group, stage.name) != stage.name:
                raise reader.fail("network.group_sizes", f"a module group spans stages {stage_of_group[group]} and {stage.name}", "split group_sizes at stage boundaries")
            blocks.append(replace(block, group=group))
        result.append(replace(stage, blocks=tuple(blocks)))
    return tuple(result)


def _check_channels(reader: _Reader, data: SpaceData) -> None:
    """Reject ratios whose channel count falls below one before rounding (zero channels), and
    width choices that give the same stem and final conv (indistinguishable networks)."""
    seen: dict[tuple[int, int], float] = {}
    for width in data.widths:
        for name, base in (("network.stem", data.stem), ("network.final_conv", data.final_conv)):
            if base * width < 1:
                raise reader.fail("choices.width", f"width {width:g} makes {name} {base} x {width:g} < 1 channel (zero)", "raise the width or drop it")
        key = (make_divisible(data.stem * width), make_divisible(data.final_conv * width))
        if key in seen:
            raise reader.fail("choices.width", f"widths {seen[key]:g} and {width:g} give the same stem and final conv channels", "choose widths further apart")
        seen[key] = width
    low = min(data.widths)
    for s, stage in enumerate(data.stages):
        for block in stage.blocks:
            key = f"stages[{s}].blocks[{block.position}] ({block.name})"
            for ratio in stage.out_ratios:
                if block.out * low * ratio < 1:
                    raise reader.fail(key, f"out {block.out} x width {low:g} x ratio {ratio:g} < 1 channel (zero)", f"raise or drop out ratio {ratio:g}")
            for ratio in block.mid_ratios:
                for reuse in block.reuses:
                    mid = block.mid if reuse == "reparam" else block.concat_mid
                    if mid * low * ratio < 1:
                        raise reader.fail(key, f"{reuse} mid {mid} x width {low:g} x ratio {ratio:g} < 1 channel (zero)", f"raise or drop mid ratio {ratio:g}")
