"""What one LoadGen test is: benchmark, scenario, mode and non-official overrides (no heavy imports)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


BENCHMARK = "resnet50"  # LoadGen keys the round's rules on this exact model name


class Scenario(str, enum.Enum):
    """A LoadGen scenario; the value is LoadGen's and the results tree's spelling."""

    OFFLINE = "Offline"
    SINGLE_STREAM = "SingleStream"
    MULTI_STREAM = "MultiStream"
    SERVER = "Server"

    @classmethod
    def parse(cls, text: str) -> "Scenario":
        """``Scenario.parse("singlestream")`` -> ``Scenario.SINGLE_STREAM``."""
        for scenario in cls:
            if scenario.value.lower() == text.lower():
                return scenario
        raise ValueError(f"scenario: expected one of {[s.value for s in cls]}, got {text!r}")


class Mode(str, enum.Enum):
    """The LoadGen test a process runs; accepts any capitalisation."""

    ACCURACY = "accuracy"
    PERFORMANCE = "performance"
    TEST01 = "TEST01"  # compliance: performance run that also logs sampled responses
    TEST04 = "TEST04"  # compliance: one sample issued repeatedly (detects result caching)

    @property
    def is_compliance(self) -> bool:
        """TEST01/TEST04: a performance-mode run under an audit config."""
        return self in (Mode.TEST01, Mode.TEST04)

    @classmethod
    def parse(cls, text: str) -> "Mode":
        """``Mode.parse("Performance")`` -> ``Mode.PERFORMANCE``."""
        for mode in cls:
            if mode.value.lower() == text.lower():
                return mode
        raise ValueError(f"mode: expected one of {[m.value for m in cls]}, got {text!r}")


@dataclass(frozen=True)
class Overrides:
    """Non-official LoadGen settings applied after FromConfig (demo and tests only).

    Any field that is not None makes the run non-submittable, and the result JSON says so.
    ``target_qps = 0`` means: use the throughput measured during warm-up.
    """

    min_duration_ms: int | None = None
    min_query_count: int | None = None
    target_qps: float | None = None
    performance_sample_count: int | None = None

    def active(self) -> dict[str, float]:
        """The overrides that are set."""
        return {k: v for k, v in self.__dict__.items() if v is not None}
