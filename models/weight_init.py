"""Weight initialisation shared by the model families."""

from __future__ import annotations

from torch import nn


def init_conv_bn(model: nn.Module) -> None:
    """He-normal (fan-out) convs and unit BatchNorm, as torchvision initialises ResNet."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
