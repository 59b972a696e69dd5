"""The settings the system under test runs with, as validated, frozen records.

``EngineConfig`` is how the OpenVINO inference pool is driven; ``SystemProfile`` is one
machine type (its cores, its engine settings and the system-description facts no
machine can read about itself). They are loaded and validated at the edge
(``harness.profile``) and taken as given here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from common.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """OpenVINO inference-pool settings, named after the properties they set.

    ``num_threads`` is the total across streams (``INFERENCE_NUM_THREADS``). The
    execution precision is not here: it belongs to the served model (its card).
    """

    num_streams: int
    num_threads: int
    infer_requests: int
    batch_size: int
    pinning: bool = True

    def __post_init__(self) -> None:
        for name in ("num_streams", "num_threads", "infer_requests", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"engine.{name}: expected an integer >= 1, got {value!r}")
        if self.infer_requests < self.num_streams:
            raise ConfigError(
                f"engine.infer_requests ({self.infer_requests}) must be >= engine.num_streams "
                f"({self.num_streams}), or streams sit idle")
        if self.num_threads < self.num_streams:
            raise ConfigError(
                f"engine.num_threads ({self.num_threads}) must be >= engine.num_streams ({self.num_streams})")
        if not isinstance(self.pinning, bool):
            raise ConfigError(f"engine.pinning: expected true or false, got {self.pinning!r}")
        if self.infer_requests < 2 * self.num_streams:
            # Measured: with one request per stream the batch refill runs in series with
            # inference and the harness reaches ~0.965x benchmark_app instead of ~1.00x.
            log.warning("engine.infer_requests (%d) < 2 x num_streams (%d): each stream idles while its "
                        "batch is answered and refilled", self.infer_requests, self.num_streams)


@dataclass(frozen=True)
class SystemProfile:
    """One machine type: how many cores it has, how to drive them, and its description."""

    name: str
    cores: int
    engine: EngineConfig
    description: str = ""
    system: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for result JSON and reports."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SystemProfile":
        """Inverse of ``to_dict`` (for records read back from JSON)."""
        return cls(data["name"], int(data["cores"]), EngineConfig(**data["engine"]),
                   str(data.get("description", "")), dict(data.get("system") or {}))
