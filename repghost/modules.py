"""Building blocks of RepGhostNet (Chen et al., "RepGhost: A Hardware-Efficient Ghost Module via
Re-parameterization", arXiv 2211.06088) and of GhostNet's concatenation-based module.

Attribute names follow the official release so that its checkpoints load without remapping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import BlockConfig, se_channels


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


class SqueezeExcite(nn.Module):
    """Channel attention with a hard-sigmoid gate."""

    def __init__(self, channels: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        reduced = se_channels(channels, se_ratio)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x))))
        return x * hard_sigmoid(gate)


class ConvBnAct(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.act1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv(x)))


def _relu_or_nothing(relu: bool) -> nn.Module:
    # An empty Sequential (not Identity) keeps the official module indices and key layout.
    return nn.ReLU(inplace=True) if relu else nn.Sequential()


class RepGhostModule(nn.Module):
    """1x1 primary conv, then a 3x3 depthwise cheap op whose output is *added* to branches on the
    primary output (a BN, an identity, both or none). At deploy the branches and the cheap op's BN
    fold into one depthwise conv with bias, so feature reuse costs nothing at inference.
    """

    def __init__(self, in_chs: int, out_chs: int, *, relu: bool = True, branch: str = "bn", deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        self.primary_conv = nn.Sequential(
            nn.Conv2d(in_chs, out_chs, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_chs),
            _relu_or_nothing(relu),
        )
        fusion_conv: list[nn.Module] = []
        fusion_bn: list[nn.Module] = []
        if not deploy and branch in ("bn", "bn+identity"):
            fusion_conv.append(nn.Identity())
            fusion_bn.append(nn.BatchNorm2d(out_chs))
        if not deploy and branch in ("identity", "bn+identity"):
            fusion_conv.append(nn.Identity())
            fusion_bn.append(nn.Identity())
        self.fusion_conv = nn.Sequential(*fusion_conv)
        self.fusion_bn = nn.Sequential(*fusion_bn)
        if deploy:
            self.cheap_operation: nn.Module = nn.Conv2d(out_chs, out_chs, 3, 1, 1, groups=out_chs, bias=True)
        else:
            self.cheap_operation = nn.Sequential(
                nn.Conv2d(out_chs, out_chs, 3, 1, 1, groups=out_chs, bias=False),
                nn.BatchNorm2d(out_chs),
            )
        self.relu = nn.ReLU(inplace=False) if relu else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        for conv, bn in zip(self.fusion_conv, self.fusion_bn):
            x2 = x2 + bn(conv(x1))
        return self.relu(x2)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the cheap op's BN and every branch into one depthwise conv with bias. Idempotent."""
        if self.deploy:
            return
        conv, bn = self.cheap_operation[0], self.cheap_operation[1]
        kernel, bias = _fuse_conv_bn(conv.weight, bn)
        channels = conv.out_channels
        for branch_bn in self.fusion_bn:
            # A branch is a per-channel scale and shift of x1: a 1x1 depthwise kernel, placed at
            # the centre of the 3x3 kernel.
            if isinstance(branch_bn, nn.BatchNorm2d):
                scale, shift = _bn_scale_shift(branch_bn)
            else:
                scale, shift = torch.ones(channels, device=kernel.device), torch.zeros(channels, device=kernel.device)
            kernel[:, 0, 1, 1] += scale
            bias += shift
        fused = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=True).to(kernel.device)
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
        self.cheap_operation = fused
        self.fusion_conv = nn.Sequential()
        self.fusion_bn = nn.Sequential()
        self.deploy = True


class GhostModule(nn.Module):
    """GhostNet's module: a 1x1 primary conv makes half the channels, a 3x3 depthwise cheap op
    the other half, the two are concatenated (ReLU after both when ``relu``). Nothing to fuse.
    """

    def __init__(self, in_chs: int, out_chs: int, *, relu: bool = True) -> None:
        super().__init__()
        self.out_chs = out_chs
        init = -(-out_chs // 2)
        self.primary_conv = nn.Sequential(
            nn.Conv2d(in_chs, init, 1, 1, 0, bias=False),
            nn.BatchNorm2d(init),
            _relu_or_nothing(relu),
        )
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init, init, 3, 1, 1, groups=init, bias=False),
            nn.BatchNorm2d(init),
            _relu_or_nothing(relu),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        out = torch.cat([x1, self.cheap_operation(x1)], dim=1)
        return out if out.shape[1] == self.out_chs else out[:, : self.out_chs]


def _ghost_module(in_chs: int, out_chs: int, block: BlockConfig, relu: bool, deploy: bool) -> nn.Module:
    if block.reuse == "concat":
        return GhostModule(in_chs, out_chs, relu=relu)
    return RepGhostModule(in_chs, out_chs, relu=relu, branch=block.branch, deploy=deploy)


class RepGhostBottleneck(nn.Module):
    """ghost1 -> [depthwise stride-2 conv + BN] -> [SE] -> ghost2, plus a shortcut."""

    def __init__(self, in_chs: int, block: BlockConfig, *, deploy: bool = False) -> None:
        super().__init__()
        mid, out, k, stride = block.mid, block.out, block.kernel, block.stride
        self.stride = stride
        self.identity_shape = in_chs == out and stride == 1
        self.enable_shortcut = block.shortcut or not self.identity_shape
        self.ghost1 = _ghost_module(in_chs, mid, block, relu=True, deploy=deploy)
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid, mid, k, stride, (k - 1) // 2, groups=mid, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid)
        self.se = SqueezeExcite(mid, block.se_ratio) if block.has_se else None
        self.ghost2 = _ghost_module(mid, out, block, relu=False, deploy=deploy)
        if self.identity_shape:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chs, in_chs, k, stride, (k - 1) // 2, groups=in_chs, bias=False),
                nn.BatchNorm2d(in_chs),
                nn.Conv2d(in_chs, out, 1, 1, 0, bias=False),
                nn.BatchNorm2d(out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ghost1(x)
        if self.stride > 1:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        y = self.ghost2(y)
        if not self.enable_shortcut:
            return y
        return y + self.shortcut(x)


def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    std = torch.sqrt(bn.running_var + bn.eps)
    weight = bn.weight if bn.affine else torch.ones_like(std)
    bias = bn.bias if bn.affine else torch.zeros_like(std)
    scale = weight / std
    return scale, bias - bn.running_mean * scale


def _fuse_conv_bn(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale, shift = _bn_scale_shift(bn)
    return weight * scale.reshape(-1, 1, 1, 1), shift.clone()
