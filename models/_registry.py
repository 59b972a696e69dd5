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
from typing import Any, Callable, ClassVar, TypeVar, overload

from torch import nn

from common.errors import ConfigError
from common.suggest import did_you_mean
from dataset.constants import LETTERBOX_PAD, REFERENCE_CROP_PCT, TORCHVISION_MEAN, TORCHVISION_STD

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)


@dataclass(frozen=True)
class DefaultCard:
    """A registered model's preprocessing and head: the card fields export writes.

    Units as in ``modelprep.card.ModelCard``: mean/std in 0..255 pixel units.
    """

    task: ClassVar[str] = "classification"  # not written: a classifier card has no task field
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


@dataclass(frozen=True)
class DetectionCard:
    """A registered detector's input and classes: the card fields export writes.

    Input is RGB in 0..1 (``mean`` 0, ``std`` 255 in pixel units), letterboxed:
    resized keeping the aspect ratio to fit ``input_size``, centred, the border
    filled with ``letterbox_pad``. ``category_ids[i]`` is the dataset's category
    id of class index ``i`` (COCO's are sparse: 80 classes, ids up to 90).
    """

    input_size: int
    num_classes: int
    category_ids: tuple[int, ...]
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    letterbox_pad: int = LETTERBOX_PAD
    task: str = "detection"
    notes: str = ""  # provenance that export appends to the card's notes, as DefaultCard's

    def __post_init__(self) -> None:
        if len(self.category_ids) != self.num_classes:
            raise ValueError(f"{len(self.category_ids)} category ids for {self.num_classes} classes")

    def to_dict(self) -> dict[str, Any]:
        """Plain data with lists, as it goes into JSON metadata."""
        data = asdict(self)
        for key in ("mean", "std", "category_ids"):
            data[key] = list(getattr(self, key))
        return data


Card = DefaultCard | DetectionCard


class ModelRegistry:
    """Maps model names to the functions that build them."""

    def __init__(self) -> None:
        self._builders: dict[str, Builder] = {}
        self._cards: dict[str, Card] = {}
        self._unlisted: set[str] = set()

    def register(self, fn: B, card: Card = IMAGENET, name: str | None = None, listed: bool = True) -> B:
        """Record ``fn`` under ``name`` (default: its ``__name__``); a second builder with the same
        name is a bug. ``listed=False`` keeps it out of ``names()`` (the many ``timm/...`` zoo
        entries, which ``mlperf-cpu zoo`` lists), while it still resolves."""
        name = name or fn.__name__
        existing = self._builders.get(name)
        if existing is not None:
            raise ValueError(
                f"model {name!r} is already registered by {existing.__module__}."
                f"{existing.__qualname__}; cannot register {fn.__module__}.{fn.__qualname__}")
        self._builders[name] = fn
        self._cards[name] = card
        if not listed:
            self._unlisted.add(name)
        return fn

    def names(self, task: str | None = None) -> list[str]:
        """The listed registered names (of ``task`` only, if given), sorted."""
        return sorted(n for n in set(self._builders) - self._unlisted
                      if task is None or self._cards[n].task == task)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def get(self, name: str) -> Builder:
        """The builder for ``name``; an unknown name is a ``ConfigError`` with suggestions."""
        self._check(name)
        return self._builders[name]

    def card(self, name: str) -> Card:
        """The default card of ``name``."""
        self._check(name)
        return self._cards[name]

    def _check(self, name: str) -> None:
        if name not in self._builders:
            hidden = f", and timm/<name>.<tag> for the {len(self._unlisted)} zoo entries" if self._unlisted else ""
            raise ConfigError(f"unknown model {name!r}{did_you_mean(name, sorted(self._builders), many=True)} "
                              f"(known: {', '.join(self.names())}{hidden})")


# The one registry the decorators below fill at import time; a registry is
# process-wide by nature, like timm's.
_REGISTRY = ModelRegistry()


@overload
def register_model(fn: B) -> B: ...


@overload
def register_model(*, card: Card) -> Callable[[B], B]: ...


def register_model(fn: B | None = None, *, card: Card = IMAGENET) -> B | Callable[[B], B]:
    """Decorator: register a model builder under its function name, with its default card."""
    if fn is not None:
        return _REGISTRY.register(fn, card)
    return lambda f: _REGISTRY.register(f, card)


def register_named(name: str, fn: Builder, card: Card, listed: bool = True) -> None:
    """Register ``fn`` under an explicit ``name`` (for builders made from data, e.g. the zoo table)."""
    _REGISTRY.register(fn, card, name=name, listed=listed)


def default_card(name: str) -> Card:
    """The default card (input size, classes, mean/std, crop or letterbox) of registered model ``name``."""
    return _REGISTRY.card(name)


def get_builder(name: str) -> Builder:
    """Return the builder registered as ``name`` (``ConfigError`` if unknown)."""
    return _REGISTRY.get(name)


def list_models(task: str | None = "classification") -> list[str]:
    """Sorted names of the registered models of ``task`` ("classification", "detection"; None: all).

    The default is the classifiers, which every caller that names no task (the ``models``
    command, the zoo, the export tests) means.
    """
    return _REGISTRY.names(task)


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model."""
    return name in _REGISTRY
