"""Model architectures for training and export (torch only).

Nothing on the benchmark's runtime path imports this package: the harness
serves ONNX/OpenVINO files, and this package is how some of them are made.

    >>> import models
    >>> net = models.create("resnet50")
"""

from __future__ import annotations

from torch import nn

from models import decinet as _decinet  # noqa: F401  (registers builders)
from models import resnet as _resnet  # noqa: F401  (registers builders)
from models import searched as _searched  # noqa: F401  (registers builders)
from models import yolo as _yolo  # noqa: F401  (registers builders)
from models._timm import register_zoo as _register_zoo
from models.zoo_table import load_zoo as _load_zoo
from models._registry import DefaultCard, DetectionCard, default_card, get_builder, is_model, list_models, register_model

# Every row of the committed zoo table resolves as timm/<timm_name>.<tag> (untrained, for speed).
_register_zoo(_load_zoo())

__all__ = ["DefaultCard", "DetectionCard", "create", "default_card", "is_model", "list_models", "register_model"]


def create(name: str, **kwargs: object) -> nn.Module:
    """Build the registered model ``name``; ``kwargs`` go to its builder (e.g. ``num_classes``)."""
    return get_builder(name)(**kwargs)
