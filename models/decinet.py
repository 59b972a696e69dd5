"""DeciNet-style classifiers: ResNet-like stages, each with its own shape.

Every stage chooses its depth, width, kernel size, stride and block type
("basic" = kxk-kxk, "bottleneck" = 1x1-kxk-1x1 with an expansion), which is
the search space of DeciNet-like NAS results. Only dense convolutions are
used: on AMX/VNNI CPUs INT8 depthwise convs gain almost nothing, while dense
ones run at the matrix units' rate, so FLOPs spent densely are the cheap ones.
BatchNorm follows every conv (it folds away at export) and ReLU is the only
activation (it fuses into INT8 kernels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from models.weight_init import init_conv_bn
from models._registry import DefaultCard, register_model

BLOCK_TYPES = ("basic", "bottleneck")
SHORTCUTS = ("avgpool", "conv")


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of ``block`` type, all ending with ``width`` channels.

    The first block applies ``stride``. For a bottleneck, the inner (kxk) width
    is ``width // expansion``; a basic block ignores ``expansion``.
    """

    block: str
    depth: int
    width: int
    stride: int = 2
    kernel_size: int = 3
    expansion: int = 4

    def __post_init__(self) -> None:
        if self.block not in BLOCK_TYPES:
            raise ValueError(f"block: expected one of {BLOCK_TYPES}, got {self.block!r}")
        if self.depth < 1 or self.width < 1:
            raise ValueError(f"depth and width must be >= 1, got {self.depth}, {self.width}")
        if self.stride not in (1, 2):
            raise ValueError(f"stride: expected 1 or 2, got {self.stride}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd size, got {self.kernel_size}")
        if self.block == "bottleneck" and (self.expansion < 1 or self.width % self.expansion):
            raise ValueError(
                f"bottleneck width {self.width} is not divisible by expansion {self.expansion}")


@dataclass(frozen=True)
class DeciNetSpec:
    """A whole network: a kxk stem (optionally max-pooled), the stages, a linear head."""

    stem_width: int
    stages: tuple[StageSpec, ...]
    num_classes: int = 1000
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_pool: bool = False
    shortcut: str = "avgpool"  # projection shortcut: "avgpool" (ResNet-D) or "conv" (strided 1x1)

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a DeciNet needs at least one stage")
        if self.num_classes < 2:
            raise ValueError(f"num_classes: expected >= 2, got {self.num_classes}")
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut: expected one of {SHORTCUTS}, got {self.shortcut!r}")
        if not 1 <= self.stem_stride <= self.stem_kernel:
            raise ValueError(f"stem: expected 1 <= stride <= kernel, got kernel {self.stem_kernel}, "
                             f"stride {self.stem_stride}")
        if self.stem_kernel % 2 == 0 and (self.stem_kernel - self.stem_stride) % 2:
            raise ValueError(f"stem: an even kernel ({self.stem_kernel}) needs an even stride "
                             f"(got {self.stem_stride}) to pad symmetrically")

    @property
    def total_stride(self) -> int:
        """Input-to-final-feature-map downsampling factor."""
        stride = self.stem_stride * (2 if self.stem_pool else 1)
        for stage in self.stages:
            stride *= stage.stride
        return stride

    def to_dict(self) -> dict:
        """Plain-JSON form, for training logs and cards."""
        return asdict(self)


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Dense kxk conv (no bias) + BatchNorm (+ ReLU); "same" padding for odd kernels, and for
    even ones (a patchify stem, kernel == stride) the padding that tiles the input exactly."""
    padding = kernel // 2 if kernel % 2 else (kernel - stride) // 2
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def shortcut(in_ch: int, out_ch: int, stride: int, mode: str = "avgpool") -> nn.Module:
    """Identity when shapes match, else a projection: ``avgpool`` pools then 1x1 conv + BN
    (ResNet-D: the shortcut sees every input pixel), ``conv`` is a strided 1x1 conv + BN
    (ResNet v1.5; measured faster in INT8 on AMX, where the pooling is a separate pass).
    """
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    if mode == "conv":
        return conv_bn(in_ch, out_ch, 1, stride, relu=False)
    layers: list[nn.Module] = []
    if stride > 1:
        layers.append(nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False))
    layers.append(conv_bn(in_ch, out_ch, 1, relu=False))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """``relu(body(x) + shortcut(x))``; the body's last BN can start at zero."""

    def __init__(self, body: nn.Sequential, skip: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.shortcut = skip
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))

    def last_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm that ends the residual branch."""
        return self.body[-1][1]


def make_block(stage: StageSpec, in_ch: int, stride: int, shortcut_mode: str = "avgpool") -> ResidualBlock:
    """Build one block of ``stage`` taking ``in_ch`` channels."""
    k, out_ch = stage.kernel_size, stage.width
    if stage.block == "basic":
        body = nn.Sequential(conv_bn(in_ch, out_ch, k, stride),
                             conv_bn(out_ch, out_ch, k, relu=False))
    else:
        mid = out_ch // stage.expansion
        body = nn.Sequential(conv_bn(in_ch, mid, 1),
                             conv_bn(mid, mid, k, stride),  # stride in the kxk, as ResNet v1.5
                             conv_bn(mid, out_ch, 1, relu=False))
    return ResidualBlock(body, shortcut(in_ch, out_ch, stride, shortcut_mode))


class DeciNet(nn.Module):
    """The network described by a ``DeciNetSpec``."""

    def __init__(self, spec: DeciNetSpec, zero_init_residual: bool = True) -> None:
        super().__init__()
        self.spec = spec
        stem: list[nn.Module] = [conv_bn(3, spec.stem_width, spec.stem_kernel, spec.stem_stride)]
        if spec.stem_pool:
            stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)
        stages: list[nn.Module] = []
        in_ch = spec.stem_width
        for stage in spec.stages:
            blocks = []
            for i in range(stage.depth):
                blocks.append(make_block(stage, in_ch, stage.stride if i == 0 else 1, spec.shortcut))
                in_ch = stage.width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, spec.num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """He-normal convs; optionally zero the last BN of each residual branch
        so every block starts as identity, which makes small-batch training stable."""
        init_conv_bn(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    nn.init.zeros_(m.last_bn().weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def _basic(depth: int, width: int, stride: int = 2, kernel: int = 3) -> StageSpec:
    return StageSpec("basic", depth, width, stride, kernel)


def _bottleneck(depth: int, width: int, stride: int = 2, kernel: int = 3,
                expansion: int = 4) -> StageSpec:
    return StageSpec("bottleneck", depth, width, stride, kernel, expansion)


# 32x32 input, 10 classes: a stride-1 stem keeps the full 32x32 grid for the
# first convs, and three stride-2 stages end at 4x4.
DEMO_SPEC = DeciNetSpec(
    stem_width=16,
    stages=(_basic(1, 24), _basic(2, 48), _bottleneck(1, 96, expansion=2)),
    num_classes=10, stem_kernel=3, stem_stride=1)

# 224x224 ImageNet variants, each design choice kept for its measured INT8 throughput: a patchify
# stem (112x112 layers are memory-bound), strided 1x1 shortcuts, basic 3x3 blocks, channels in
# multiples of 64 and capacity as depth at 14x14 (docs/models.md, Built-in architectures, has the figures).
_PATCHIFY = dict(stem_width=64, stem_kernel=4, stem_stride=4, shortcut="conv")
S_SPEC = DeciNetSpec(
    stages=(_basic(1, 64, stride=1), _basic(2, 128), _basic(2, 256), _basic(1, 448)), **_PATCHIFY)
M_SPEC = DeciNetSpec(
    stages=(_basic(1, 64, stride=1), _basic(2, 128), _basic(3, 320), _basic(1, 512)), **_PATCHIFY)
L_SPEC = DeciNetSpec(
    stages=(_basic(1, 64, stride=1), _basic(2, 128), _basic(5, 320), _basic(1, 512)), **_PATCHIFY)


def _with_classes(spec: DeciNetSpec, num_classes: int) -> DeciNetSpec:
    """``spec`` with a different head size."""
    return replace(spec, num_classes=num_classes)


# The demo task: 32x32 digits, mean/std of the demo training program (training/demo.py).
DEMO_CARD = DefaultCard(input_size=32, num_classes=10, mean=(127.5, 127.5, 127.5), std=(64.0, 64.0, 64.0))


@register_model(card=DEMO_CARD)
def decinet_demo(num_classes: int = 10) -> DeciNet:
    """Tiny DeciNet for 32x32 inputs (~0.12M params, ~8M MACs)."""
    return DeciNet(_with_classes(DEMO_SPEC, num_classes))


@register_model
def decinet_s(num_classes: int = 1000) -> DeciNet:
    """DeciNet-S for 224x224 (~6.1M params, ~1.21 GMACs)."""
    return DeciNet(_with_classes(S_SPEC, num_classes))


@register_model
def decinet_m(num_classes: int = 1000) -> DeciNet:
    """DeciNet-M for 224x224 (~10.1M params, ~1.83 GMACs)."""
    return DeciNet(_with_classes(M_SPEC, num_classes))


@register_model
def decinet_l(num_classes: int = 1000) -> DeciNet:
    """DeciNet-L for 224x224 (~13.8M params, ~2.55 GMACs)."""
    return DeciNet(_with_classes(L_SPEC, num_classes))
