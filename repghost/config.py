"""Architecture config: the one type every package passes around.

A network is a stem, groups of bottlenecks, a final 1x1 conv and a classifier head. Groups exist
only so that module names (``blocks.<group>.<index>``) match the official release's layout; the
architecture itself is the flat sequence of blocks. Configs are frozen, validated on creation,
and round-trip through JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

BRANCHES = ("bn", "identity", "bn+identity", "none")
REUSES = ("reparam", "concat")
KERNELS = (3, 5, 7)
STRIDES = (1, 2)


def make_divisible(value: float, divisor: int = 4) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def se_channels(mid: int, se_ratio: float) -> int:
    """Reduced channels of a squeeze-and-excite layer on ``mid`` channels."""
    return make_divisible(mid * se_ratio, 4)


def _check_int(name: str, value: Any, allowed: tuple[int, ...] | None = None, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value}")
    if allowed is None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


@dataclass(frozen=True)
class BlockConfig:
    """One bottleneck: ghost1 (1x1 to ``mid``), optional stride-2 depthwise conv, optional SE,
    ghost2 (1x1 to ``out``), plus a shortcut.

    Attributes:
        kernel: kernel of the stride-2 depthwise conv and of the conv shortcut (the cheap
            operation inside each ghost module is always 3x3).
        mid: expansion channels.
        out: output channels.
        se_ratio: squeeze-and-excite ratio on ``mid``; 0 means no SE.
        stride: 1 or 2.
        branch: re-parameterization branch beside the cheap op, ``bn``, ``identity``,
            ``bn+identity`` or ``none``. Changes training only; the deploy form is the same.
        shortcut: residual shortcut on or off (off only drops an identity shortcut, as in the
            official code: a block that changes shape keeps its conv shortcut).
        reuse: ``reparam`` (RepGhost: cheap op added, fused at deploy) or ``concat``
            (Ghost: half the channels from each op, concatenated). Concat modules have no
            re-parameterization branch, so ``branch`` must be ``none`` with ``concat``.
    """

    kernel: int
    mid: int
    out: int
    se_ratio: float = 0.0
    stride: int = 1
    branch: str = "bn"
    shortcut: bool = True
    reuse: str = "reparam"

    def __post_init__(self) -> None:
        _check_int("kernel", self.kernel, KERNELS)
        _check_int("mid", self.mid)
        _check_int("out", self.out)
        _check_int("stride", self.stride, STRIDES)
        if isinstance(self.se_ratio, bool) or not isinstance(self.se_ratio, (int, float)):
            raise ValueError(f"se_ratio must be a number in [0, 1), got {self.se_ratio!r}")
        if not 0.0 <= self.se_ratio < 1.0 or math.isnan(self.se_ratio):
            raise ValueError(f"se_ratio must be in [0, 1), got {self.se_ratio}")
        object.__setattr__(self, "se_ratio", float(self.se_ratio))
        if self.branch not in BRANCHES:
            raise ValueError(f"branch must be one of {list(BRANCHES)}, got {self.branch!r}")
        if not isinstance(self.shortcut, bool):
            raise ValueError(f"shortcut must be true or false, got {self.shortcut!r}")
        if self.reuse not in REUSES:
            raise ValueError(f"reuse must be one of {list(REUSES)}, got {self.reuse!r}")
        if self.reuse == "concat" and self.branch != "none":
            raise ValueError(f"branch must be 'none' when reuse is 'concat', got {self.branch!r}")

    @property
    def has_se(self) -> bool:
        return self.se_ratio > 0

    def deploy_key(self, in_chs: int) -> "BlockConfig":
        """The block as deployed after ``in_chs`` input channels: the training-only choice
        (branch) normalized away, and ``shortcut`` and ``kernel`` fixed where they have no
        effect (the kernel is used only by a stride-2 conv and a conv shortcut)."""
        branch = "none" if self.reuse == "concat" else "bn"
        identity_shape = in_chs == self.out and self.stride == 1
        shortcut = self.shortcut or not identity_shape
        kernel = 3 if identity_shape else self.kernel
        return BlockConfig(**{**asdict(self), "branch": branch, "shortcut": shortcut, "kernel": kernel})


@dataclass(frozen=True)
class StemSpec:
    """The stem as a deployable part: 3x3 stride-2 conv+BN+ReLU on the input image."""

    in_chans: int
    out: int
    resolution: int

    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.in_chans, self.resolution, self.resolution)


@dataclass(frozen=True)
class BlockSpec:
    """A bottleneck as a deployable part: its deploy-normalized config and its input shape."""

    block: BlockConfig
    in_chs: int
    size: int

    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.in_chs, self.size, self.size)


@dataclass(frozen=True)
class HeadSpec:
    """Everything after the last bottleneck: final 1x1 conv, pooling, head conv, classifier."""

    in_chs: int
    final_conv: int
    head: int
    num_classes: int
    size: int

    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.in_chs, self.size, self.size)


PartSpec = StemSpec | BlockSpec | HeadSpec


def part_key(spec: PartSpec) -> str:
    """A stable, readable string naming a part (what a latency table is keyed by)."""
    if isinstance(spec, StemSpec):
        return f"stem:c{spec.in_chans}-o{spec.out}-r{spec.resolution}"
    if isinstance(spec, HeadSpec):
        return f"head:i{spec.in_chs}-f{spec.final_conv}-h{spec.head}-n{spec.num_classes}-r{spec.size}"
    b = spec.block
    se = f"-se{b.se_ratio:g}" if b.has_se else ""
    sc = "" if b.shortcut else "-nosc"
    return f"block:{b.reuse}-i{spec.in_chs}-m{b.mid}-o{b.out}-k{b.kernel}-s{b.stride}{se}{sc}-r{spec.size}"


@dataclass(frozen=True)
class NetConfig:
    """A whole network.

    Attributes:
        stem: channels of the 3x3 stride-2 stem conv.
        blocks: groups of bottlenecks (``blocks.<group>.<index>`` in module names).
        final_conv: channels of the 1x1 conv+BN+ReLU after the last bottleneck.
        head: channels of the 1x1 conv (with bias) after global pooling.
        num_classes: classifier outputs.
        in_chans: input image channels.
        dropout: dropout before the classifier (training only).
    """

    stem: int
    blocks: tuple[tuple[BlockConfig, ...], ...]
    final_conv: int
    head: int = 1280
    num_classes: int = 1000
    in_chans: int = 3
    dropout: float = 0.2

    def __post_init__(self) -> None:
        _check_int("stem", self.stem)
        _check_int("final_conv", self.final_conv)
        _check_int("head", self.head)
        _check_int("num_classes", self.num_classes)
        _check_int("in_chans", self.in_chans)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        groups = []
        for group in self.blocks:
            group = tuple(group)
            for block in group:
                if not isinstance(block, BlockConfig):
                    raise ValueError(f"blocks must hold BlockConfig entries, got {type(block).__name__}")
            groups.append(group)
        if not any(groups):
            raise ValueError("blocks must hold at least one bottleneck")
        object.__setattr__(self, "blocks", tuple(groups))
        object.__setattr__(self, "dropout", float(self.dropout))

    def flat_blocks(self) -> list[BlockConfig]:
        return [block for group in self.blocks for block in group]

    def parts(self, resolution: int = 224) -> list[PartSpec]:
        """Stem, every bottleneck and the head with their input shapes, in order; derived once
        from the config. Blocks are deploy-normalized: training-only choices are dropped."""
        size = conv_out_size(resolution, 2)
        in_chs = self.stem
        parts: list[PartSpec] = [StemSpec(self.in_chans, self.stem, resolution)]
        for block in self.flat_blocks():
            parts.append(BlockSpec(block.deploy_key(in_chs), in_chs, size))
            size = conv_out_size(size, block.stride)
            in_chs = block.out
        parts.append(HeadSpec(in_chs, self.final_conv, self.head, self.num_classes, size))
        return parts

    def last_channels(self) -> int:
        return self.flat_blocks()[-1].out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces; equal configs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetConfig":
        if not isinstance(data, dict) or "blocks" not in data:
            raise ValueError("a network config must be a mapping with a 'blocks' list")
        fields = dict(data)
        try:
            fields["blocks"] = tuple(tuple(BlockConfig(**block) for block in group) for group in data["blocks"])
            return cls(**fields)
        except TypeError as error:
            raise ValueError(f"bad network config: {error}") from None

    @classmethod
    def from_json(cls, text: str) -> "NetConfig":
        return cls.from_dict(json.loads(text))


def conv_out_size(size: int, stride: int) -> int:
    """Output size of a same-padded conv with odd kernel."""
    return (size - 1) // stride + 1

