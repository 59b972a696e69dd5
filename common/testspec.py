"""What one LoadGen test is: benchmark, scenario, mode and non-official overrides (no heavy imports)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)

BENCHMARK = "resnet50"  # LoadGen keys the round's rules on this exact model name
# The LoadGen model name (mlperf.conf, user.conf keys) of each task's benchmark.
LOADGEN_MODELS = {"classification": BENCHMARK, "detection": "yolo"}


def loadgen_model(task: str) -> str:
    """The LoadGen model name of a card's task: ``resnet50`` or ``yolo``."""
    if task not in LOADGEN_MODELS:
        raise ValueError(f"task: expected one of {sorted(LOADGEN_MODELS)}, got {task!r}")
    return LOADGEN_MODELS[task]


def _parse(cls: type[E], kind: str, text: str) -> E:
    """The member of ``cls`` whose value is ``text`` in any capitalisation."""
    for member in cls:
        if member.value.lower() == text.lower():
            return member
    raise ValueError(f"{kind}: expected one of {[m.value for m in cls]}, got {text!r}")


class Scenario(str, enum.Enum):
    """A LoadGen scenario; the value is LoadGen's and the results tree's spelling."""

    OFFLINE = "Offline"
    SINGLE_STREAM = "SingleStream"
    MULTI_STREAM = "MultiStream"
    SERVER = "Server"

    @classmethod
    def parse(cls, text: str) -> "Scenario":
        """``Scenario.parse("singlestream")`` -> ``Scenario.SINGLE_STREAM``."""
        return _parse(cls, "scenario", text)


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
        return _parse(cls, "mode", text)


@dataclass(frozen=True)
class Overrides:
    """Non-official LoadGen settings applied after FromConfig (demo and tests only).

    Any field that is not None makes the run non-submittable, and the result JSON says so.
    ``target_qps = 0`` means: derive the scenario's target from a timed warm-up.
    """

    min_duration_ms: int | None = None
    min_query_count: int | None = None
    target_qps: float | None = None
    performance_sample_count: int | None = None
    rate_seconds: float | None = None  # with target_qps 0: how long the warm-up measures (None: the runner's default)

    def active(self) -> dict[str, float]:
        """The overrides that are set."""
        return {k: v for k, v in self.__dict__.items() if v is not None}
