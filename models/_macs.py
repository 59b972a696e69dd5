"""Static cost of a model: parameters and multiply-accumulates per image.

MACs are counted with forward hooks on ``Conv2d`` and ``Linear`` only (the
layers that dominate and that INT8 kernels accelerate); BatchNorm, ReLU,
pooling and additions are ignored, which is the usual convention.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of parameters (BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def _layer_macs(module: nn.Module, out: torch.Tensor) -> int:
    """MACs one Conv2d/Linear spent producing ``out`` (whole batch)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out.numel() * (module.in_channels // module.groups) * kh * kw
    return out.numel() * module.in_features  # Linear


def count_macs(model: nn.Module, input_size: int | tuple[int, int], channels: int = 3) -> int:
    """Multiply-accumulates for one ``channels`` x H x W image through ``model``.

    Runs one eval-mode forward on zeros; the model's train/eval mode is restored.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    total = 0

    def hook(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(module, out)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, h, w))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
