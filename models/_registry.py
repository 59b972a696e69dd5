"""Name -> builder registry for model architectures (timm style).

Builders register themselves with ``@register_model``; the function name is
the model name. Looking up an unknown name is a ``ConfigError`` that suggests
the closest registered names, since the name usually comes from a user.
"""

from __future__ import annotations

import difflib
from typing import Callable, TypeVar

from torch import nn

from sut.errors import ConfigError

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)


class ModelRegistry:
    """Maps model names to the functions that build them."""

    def __init__(self) -> None:
        self._builders: dict[str, Builder] = {}

    def register(self, fn: B) -> B:
        """Record ``fn`` under its ``__name__``; a second builder with the same name is a bug."""
        name = fn.__name__
        existing = self._builders.get(name)
        if existing is not None:
            raise ValueError(
                f"model {name!r} is already registered by {existing.__module__}."
                f"{existing.__qualname__}; cannot register {fn.__module__}.{fn.__qualname__}")
        self._builders[name] = fn
        return fn

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def get(self, name: str) -> Builder:
        """The builder for ``name``; an unknown name is a ``ConfigError`` with suggestions."""
        try:
            return self._builders[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(str(name), self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ConfigError(
            f"unknown model {name!r}{hint} (known: {', '.join(self.names())})") from None


# The one registry the decorators below fill at import time; a registry is
# process-wide by nature, like timm's.
_REGISTRY = ModelRegistry()


def register_model(fn: B) -> B:
    """Decorator: register a model builder under its function name."""
    return _REGISTRY.register(fn)


def get_builder(name: str) -> Builder:
    """Return the builder registered as ``name`` (``ConfigError`` if unknown)."""
    return _REGISTRY.get(name)


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return _REGISTRY.names()


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model."""
    return name in _REGISTRY
