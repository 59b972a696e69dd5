"""timm architectures (never weights): the known ImageNet models of the zoo.

timm needs torchvision's Python parts (FrozenBatchNorm2d, transforms). The only
torchvision wheel the registries serve for this torch is a CUDA build whose C++
ops cannot load against the CPU torch, and its import then fails while it
registers fake/autograd kernels for those ops (``torchvision::nms does not
exist``). Nothing here uses those ops, so the two registration modules are
replaced by empty ones before torchvision is first imported; every other part of
torchvision imports unchanged. Built architectures get seeded weights; trained
ones come in through ``modelprep.weights`` (a checkpoint file, or timm's hub
loader on the user's explicit ``--pretrained``).
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Iterable

from torch import nn

from common.errors import ConfigError
from models._registry import DefaultCard, register_named
from models.zoo_table import ZooEntry

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


def timm_pretrained_cfg(name: str, origin: str = "--model") -> dict:
    """timm's pretrained config of ``name`` (``arch`` or ``arch.tag``; no tag: timm's default tag), as a
    dict with ``architecture`` and ``tag``; an unknown architecture or tag is a ``ConfigError``."""
    timm = _import_timm()
    from timm.models import get_pretrained_cfg, split_model_name_tag  # noqa: PLC0415 - after the shim

    arch, _tag = split_model_name_tag(name)
    if not timm.is_model(arch):
        raise ConfigError(f"{origin} timm/{name}: timm {timm.__version__} has no architecture {arch!r}")
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError as exc:
        raise ConfigError(f"{origin} timm/{name}: {exc}".rstrip(".")) from None
    if cfg is None:
        raise ConfigError(f"{origin} timm/{name}: timm has no pretrained config for {arch!r}")
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))


def reparameterized(model: nn.Module) -> nn.Module:
    """``model`` in its inference form: re-parameterizable blocks (RepVGG, MobileOne) fused."""
    _import_timm()
    from timm.utils.model import reparameterize_model  # noqa: PLC0415 - after the shim

    return reparameterize_model(model)


def hub_model(name: str) -> nn.Module:
    """timm ``name`` (``arch.tag``) with the tag's weights from timm's own hub loader (needs the network)."""
    timm = _import_timm()
    return timm.create_model(name, pretrained=True)


def deploy_form(name: str, num_classes: int = 1000) -> nn.Module:
    """timm architecture ``name`` as it would be served: re-parameterizable blocks (RepVGG,
    MobileOne) fused into their inference form, as the zoo table counts their MACs."""
    _import_timm()
    from timm.utils.model import reparameterize_model  # noqa: PLC0415 - after the shim

    return reparameterize_model(create_timm(name, num_classes=num_classes))


def register_zoo(entries: Iterable[ZooEntry]) -> None:
    """Register every zoo row as ``timm/<timm_name>.<tag>`` (and the first row of each
    architecture also as ``timm/<timm_name>``) with the row's card, unlisted.

    The builders import timm only when called, so ``import models`` stays fast."""
    seen: set[str] = set()
    for entry in entries:
        card = DefaultCard(**entry.card_fields())  # type: ignore[arg-type]
        build = functools.partial(deploy_form, entry.timm_name)
        register_named(entry.model_name, build, card, listed=False)
        if entry.timm_name not in seen:
            seen.add(entry.timm_name)
            register_named(f"timm/{entry.timm_name}", build, card, listed=False)
