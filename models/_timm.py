"""timm architectures (never weights): the known ImageNet models of the zoo.

timm needs torchvision's Python parts (FrozenBatchNorm2d, transforms). The only
torchvision wheel the registries serve for this torch is a CUDA build whose C++
ops cannot load against the CPU torch, and its import then fails while it
registers fake/autograd kernels for those ops (``torchvision::nms does not
exist``). Nothing here uses those ops, so the two registration modules are
replaced by empty ones before torchvision is first imported; every other part of
torchvision imports unchanged. Pretrained weights are never requested: no
machine of this project reaches a model hub.
"""

from __future__ import annotations

import sys
import types

from torch import nn

_SKIPPED = ("torchvision._meta_registrations", "torchvision._autograd_registrations")


def _import_timm() -> types.ModuleType:
    if "torchvision" not in sys.modules:
        for name in _SKIPPED:
            sys.modules.setdefault(name, types.ModuleType(name))
    import timm  # noqa: PLC0415 - imported only after the shim above

    return timm


def create_timm(name: str, **kwargs: object) -> nn.Module:
    """Build timm architecture ``name`` with random weights (``pretrained=False``, always)."""
    timm = _import_timm()
    kwargs.pop("pretrained", None)
    return timm.create_model(name, pretrained=False, **kwargs)


def timm_default_cfg(name: str) -> dict:
    """timm's pretrained config of ``name`` (input size, mean/std, crop): metadata only."""
    timm = _import_timm()
    return dict(timm.create_model(name, pretrained=False).pretrained_cfg)
