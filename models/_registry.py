"""Name -> builder registry for model architectures (timm style).

Builders register themselves with ``@register_model`` (or ``@register_model(card=...)``
for a model whose input is not ImageNet's 224x224 torchvision convention); the
function name is the model name. Each registered model carries its default card:
what export writes into the ONNX metadata and what prepare and the tests read, so
no caller guesses an input size. Looking up an unknown name is a ``ConfigError``
that suggests the closest registered names, since the name usually comes from a user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, TypeVar, overload

from torch import nn

from common.errors import ConfigError
from common.suggest import did_you_mean
from dataset.constants import REFERENCE_CROP_PCT, TORCHVISION_MEAN, TORCHVISION_STD

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)


@dataclass(frozen=True)
class DefaultCard:
    """A registered model's preprocessing and head: the card fields export writes.

    Units as in ``modelprep.card.ModelCard``: mean/std in 0..255 pixel units.
    """

    input_size: int = 224
    num_classes: int = 1000
    mean: tuple[float, float, float] = TORCHVISION_MEAN
    std: tuple[float, float, float] = TORCHVISION_STD
    crop_pct: float = REFERENCE_CROP_PCT
    interpolation: str = "area"
    label_offset: int = 0
    notes: str = ""  # provenance that export appends to the card's notes (e.g. where a model was searched)

    def to_dict(self) -> dict[str, Any]:
        """Plain data with lists, as it goes into JSON metadata."""
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data


IMAGENET = DefaultCard()


class ModelRegistry:
    """Maps model names to the functions that build them."""

    def __init__(self) -> None:
        self._builders: dict[str, Builder] = {}
        self._cards: dict[str, DefaultCard] = {}

    def register(self, fn: B, card: DefaultCard = IMAGENET) -> B:
        """Record ``fn`` under its ``__name__``; a second builder with the same name is a bug."""
        name = fn.__name__
        existing = self._builders.get(name)
        if existing is not None:
            raise ValueError(
                f"model {name!r} is already registered by {existing.__module__}."
                f"{existing.__qualname__}; cannot register {fn.__module__}.{fn.__qualname__}")
        self._builders[name] = fn
        self._cards[name] = card
        return fn

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def get(self, name: str) -> Builder:
        """The builder for ``name``; an unknown name is a ``ConfigError`` with suggestions."""
        self._check(name)
        return self._builders[name]

    def card(self, name: str) -> DefaultCard:
        """The default card of ``name``."""
        self._check(name)
        return self._cards[name]

    def _check(self, name: str) -> None:
        if name not in self._builders:
            raise ConfigError(f"unknown model {name!r}{did_you_mean(name, self.names(), many=True)} "
                              f"(known: {', '.join(self.names())})")


# The one registry the decorators below fill at import time; a registry is
# process-wide by nature, like timm's.
_REGISTRY = ModelRegistry()


@overload
def register_model(fn: B) -> B: ...


@overload
def register_model(*, card: DefaultCard) -> Callable[[B], B]: ...


def register_model(fn: B | None = None, *, card: DefaultCard = IMAGENET) -> B | Callable[[B], B]:
    """Decorator: register a model builder under its function name, with its default card."""
    if fn is not None:
        return _REGISTRY.register(fn, card)
    return lambda f: _REGISTRY.register(f, card)


def default_card(name: str) -> DefaultCard:
    """The default card (input size, classes, mean/std, crop) of registered model ``name``."""
    return _REGISTRY.card(name)


def get_builder(name: str) -> Builder:
    """Return the builder registered as ``name`` (``ConfigError`` if unknown)."""
    return _REGISTRY.get(name)


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return _REGISTRY.names()


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model."""
    return name in _REGISTRY
