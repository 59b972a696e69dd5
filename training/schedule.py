"""The learning-rate schedule every training program uses."""

from __future__ import annotations

import math


def lr_at(step: int, total: int, warmup: int, peak: float, floor: float = 0.0) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total``.

    Linear warm-up over the first ``warmup`` steps (step 0 already takes ``peak / warmup``,
    so no step trains at zero), then cosine decay from ``peak`` down to ``floor * peak`` at
    ``total``.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))
