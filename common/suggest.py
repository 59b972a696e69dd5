"""One "did you mean" helper for every name a user types (settings, profiles, models, fields)."""

from __future__ import annotations

import difflib
from typing import Iterable

from common.errors import ConfigError

CUTOFF = 0.6  # difflib's similarity ratio; below it a suggestion is more confusing than helpful


def did_you_mean(name: str, known: Iterable[str], many: bool = False) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or ``""`` when none is close.

    ``many`` offers up to three candidates (for long lists such as model names).
    """
    close = difflib.get_close_matches(str(name), sorted(known), n=3 if many else 1, cutoff=CUTOFF)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)"


def check_known(names: Iterable[str], known: Iterable[str], where: str, what: str = "key",
                error: type[Exception] | None = None) -> None:
    """Refuse the first of ``names`` that is not ``known``, in one line:
    ``<where>: unknown <what> 'x' (did you mean 'y'?)``, or the known names when none is close.

    Every place that reads user-written fields (YAML profiles, card JSON, a model's card metadata,
    search-space YAML, system descriptions) checks them here; ``error`` is the error class of that
    place (default ``ConfigError``).
    """
    known = sorted(known)
    for name in names:
        if name not in known:
            hint = did_you_mean(name, known) or f" (known: {', '.join(known)})"
            raise (error or ConfigError)(f"{where}: unknown {what} {name!r}{hint}")
