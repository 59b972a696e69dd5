"""Torch networks of the DeciNet-style search space, built from a resolved plan.

The search (``search.space.plan``) resolves a candidate's genes into exact widths; this module
only builds what the plan says (``search/space.py`` documents the block types), so the rules
live in one place and a searched model is stored as its plan (``models/searched/*.json``).
Plans are plain data here: ``{"resolution", "stem": [width, kernel, stride, act],
"blocks": [[block, cin, mid, cout, kernel, stride, groups, se, act], ...], "head",
"head_act", "num_classes"}``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.weight_init import init_conv_bn

_ACTS = {"relu": nn.ReLU, "hswish": nn.Hardswish, "silu": nn.SiLU}


def act_layer(name: str) -> nn.Module:
    """A fresh activation module (one per use, so hooks see every call)."""
    return _ACTS[name](inplace=True)


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None) -> nn.Sequential:
    """kxk conv (no bias, "same" padding; a patchify kernel == stride tiles exactly) + BN (+ act)."""
    padding = k // 2 if k % 2 else (k - stride) // 2
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(act_layer(act))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gating: pool, 1x1 squeeze + ReLU, 1x1 excite, gate (hard-sigmoid beside hswish)."""

    def __init__(self, channels: int, squeeze: int, act: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid() if act == "hswish" else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.relu(self.reduce(s))))


class Block(nn.Module):
    """One planned block: ``body(x)`` (+ shortcut) (+ act after the add for basic/bottleneck)."""

    def __init__(self, block: str, cin: int, mid: int, cout: int, kernel: int, stride: int, groups: int,
                 se: int, act: str) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if block == "basic":
            layers += [conv_bn(cin, cout, kernel, stride, groups, act), conv_bn(cout, cout, kernel, 1, groups)]
            gated = cout
        elif block == "bottleneck":
            layers += [conv_bn(cin, mid, 1, act=act), conv_bn(mid, mid, kernel, stride, groups, act),
                       conv_bn(mid, cout, 1)]
            gated = cout
        elif block == "ir":
            gated = mid or cin
            if mid:
                layers.append(conv_bn(cin, mid, 1, act=act))
            layers.append(conv_bn(gated, gated, kernel, stride, gated, act))
        elif block == "fused":
            gated = mid or cout
            layers.append(conv_bn(cin, gated, kernel, stride, act=act))
        else:
            raise ValueError(f"unknown block type {block!r}")
        if se:
            layers.append(SqueezeExcite(gated, se, act))
        if block == "ir" or (block == "fused" and mid):
            layers.append(conv_bn(gated, cout, 1))
        self.body = nn.Sequential(*layers)
        self.residual = block in ("basic", "bottleneck") or (stride == 1 and cin == cout)
        self.shortcut: nn.Module = nn.Identity()
        self.post_act: nn.Module = nn.Identity()
        if block in ("basic", "bottleneck"):
            if stride > 1 or cin != cout:
                self.shortcut = conv_bn(cin, cout, 1, stride)  # strided 1x1 (faster than ResNet-D's pool)
            self.post_act = act_layer(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.residual:
            y = y + self.shortcut(x)
        return self.post_act(y)


class SearchNet(nn.Module):
    """The network a plan describes (input ``[N, 3, resolution, resolution]``)."""

    def __init__(self, plan: dict[str, Any], num_classes: int | None = None) -> None:
        super().__init__()
        self.plan = plan
        width, kernel, stride, act = plan["stem"]
        self.stem = conv_bn(3, width, kernel, stride, act=act)
        self.blocks = nn.Sequential(*(Block(*b) for b in plan["blocks"]))
        last = plan["blocks"][-1][3]
        self.head: nn.Module = nn.Identity()
        if plan["head"]:
            self.head = conv_bn(last, plan["head"], 1, act=plan["head_act"])
            last = plan["head"]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last, num_classes or plan.get("num_classes", 1000))
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))
