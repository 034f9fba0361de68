"""The network builder: one ``NetConfig`` in, one module out, for paper models and searched ones."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .config import BlockSpec, HeadSpec, NetConfig, PartSpec, StemSpec
from .modules import ConvBnAct, RepGhostBottleneck, RepGhostModule


def _stem_layers(in_chans: int, out: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    return nn.Conv2d(in_chans, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)


def _head_layers(in_chs: int, final_conv: int, head: int, num_classes: int) -> tuple[nn.Module, ...]:
    return (
        nn.Sequential(ConvBnAct(in_chs, final_conv, 1)),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Conv2d(final_conv, head, 1, 1, 0, bias=True),
        nn.ReLU(inplace=True),
        nn.Linear(head, num_classes),
    )


def _head_forward(owner: nn.Module, final: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = owner.act2(owner.conv_head(owner.global_pool(final(x))))
    x = torch.flatten(x, 1)
    if owner.dropout > 0.0:
        x = F.dropout(x, p=owner.dropout, training=owner.training)
    return owner.classifier(x)


class RepGhostNet(nn.Module):
    """Stem, bottleneck groups, final 1x1 conv (as the last group, ``blocks.<n>.0``), pooling,
    1x1 head conv with bias, classifier. Build with ``deploy=True`` for the fused form directly.
    """

    def __init__(self, config: NetConfig, *, deploy: bool = False) -> None:
        super().__init__()
        if not isinstance(config, NetConfig):
            raise ValueError(f"config must be a NetConfig, got {type(config).__name__}")
        self.config = config
        self.deploy = deploy
        self.dropout = config.dropout
        self.conv_stem, self.bn1, self.act1 = _stem_layers(config.in_chans, config.stem)
        in_chs = config.stem
        groups = []
        for group in config.blocks:
            layers = []
            for block in group:
                layers.append(RepGhostBottleneck(in_chs, block, deploy=deploy))
                in_chs = block.out
            groups.append(nn.Sequential(*layers))
        final, self.global_pool, self.conv_head, self.act2, self.classifier = _head_layers(
            in_chs, config.final_conv, config.head, config.num_classes
        )
        # The final conv is the last group, so its keys read blocks.<n>.0.conv.weight.
        self.blocks = nn.Sequential(*groups, final)

    def bottlenecks(self) -> list[RepGhostBottleneck]:
        """The bottlenecks in order, skipping the final conv group."""
        return [block for group in self.blocks[:-1] for block in group]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv_stem(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """From the last bottleneck's output to logits."""
        return _head_forward(self, self.blocks[-1], x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for group in self.blocks[:-1]:
            x = group(x)
        return self.forward_head(x)


def build(config: NetConfig, *, deploy: bool = False) -> RepGhostNet:
    """Build the train form (or, with ``deploy=True``, the fused deploy form) of ``config``."""
    return RepGhostNet(config, deploy=deploy)


class _StemPart(nn.Module):
    def __init__(self, spec: StemSpec) -> None:
        super().__init__()
        self.conv_stem, self.bn1, self.act1 = _stem_layers(spec.in_chans, spec.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv_stem(x)))


class _HeadPart(nn.Module):
    def __init__(self, spec: HeadSpec) -> None:
        super().__init__()
        self.dropout = 0.0
        self.final, self.global_pool, self.conv_head, self.act2, self.classifier = _head_layers(
            spec.in_chs, spec.final_conv, spec.head, spec.num_classes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _head_forward(self, self.final, x)


def build_part(spec: PartSpec, *, deploy: bool = True) -> nn.Module:
    """One part of a network (stem, a bottleneck or the head) on its own, built from the same
    layers as the whole network, so that it can be exported and timed alone."""
    if isinstance(spec, StemSpec):
        return _StemPart(spec)
    if isinstance(spec, HeadSpec):
        return _HeadPart(spec)
    if isinstance(spec, BlockSpec):
        return RepGhostBottleneck(spec.in_chs, spec.block, deploy=deploy)
    raise ValueError(f"spec must be a StemSpec, BlockSpec or HeadSpec, got {type(spec).__name__}")


def reparameterize(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return the deploy form of ``model``: every RepGhost module's cheap op and branches fused
    into one depthwise conv with bias. The input is left untouched unless ``inplace``; calling it
    on a deploy-form model changes nothing.
    """
    target = model if inplace else copy.deepcopy(model)
    for module in target.modules():
        if isinstance(module, RepGhostModule):
            module.switch_to_deploy()
    if isinstance(target, RepGhostNet):
        target.deploy = True
    return target
