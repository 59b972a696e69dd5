"""One "did you mean" helper for every name a user types (settings, profiles, models, fields)."""

from __future__ import annotations

import difflib
from typing import Iterable

CUTOFF = 0.6  # difflib's similarity ratio; below it a suggestion is more confusing than helpful


def did_you_mean(name: str, known: Iterable[str], many: bool = False) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or ``""`` when none is close.

    ``many`` offers up to three candidates (for long lists such as model names).
    """
    close = difflib.get_close_matches(str(name), sorted(known), n=3 if many else 1, cutoff=CUTOFF)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
