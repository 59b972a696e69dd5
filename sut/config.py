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

KEEP_AWAKE_MODES = ("off", "pm_qos", "loops")  # hostctl.keepawake
MIN_SLICE_US = 100  # the kernel clamps custom slices to 0.1-100 ms (hostctl.threadslice)
MAX_SLICE_US = 100_000
# SCHED_FIFO 1 already outranks every normal thread; a low cap keeps the kernel's own real-time
# threads (and any other tenant's) above ours (hostctl.threadpriority).
MAX_ISSUE_PRIORITY = 10


@dataclass(frozen=True)
class EngineConfig:
    """OpenVINO inference-pool settings, named after the properties they set.

    ``num_threads`` is the total across streams (``INFERENCE_NUM_THREADS``). The
    execution precision is not here: it belongs to the served model (its card).

    ``keep_awake`` keeps every CPU of the run from halting between Server arrivals (on a
    virtual machine an idle vCPU halts): ``off``; ``pm_qos``, the kernel's CPU latency limit held
    at 0 us (idle CPUs poll; needs root); ``loops``, one ``SCHED_IDLE`` busy loop per CPU
    (``hostctl.keepawake``). YAML ``true``/``false`` read as ``loops``/``off``, their meaning before
    ``pm_qos`` existed.

    ``dispatch_slice_us`` (0: the kernel's default) asks Linux for that short a scheduler slice on
    the threads that carry queries (LoadGen's issue thread, OpenVINO's callback thread, a
    dispatcher), so they preempt busy inference threads at once (``hostctl.threadslice``).

    ``issue_priority`` (0: the kernel's default policy) puts the threads that issue queries to
    OpenVINO (LoadGen's issue thread, a dispatcher) under ``SCHED_FIFO`` at that priority, so no
    inference thread preempts one while it holds Python's interpreter lock
    (``hostctl.threadpriority``); at most ``MAX_ISSUE_PRIORITY``.

    These three change the host beyond this process: they are off unless the user asks for
    them (``--host-tuning`` for the ``host`` profile, or the keys in a profile of their own).

    ``instances`` > 1 runs that many copies of this pool, each in its own process pinned to
    its own share of the cores (``sut.instances``); every other setting is PER INSTANCE, so
    the run uses ``num_threads x instances`` cores.
    """

    num_streams: int
    num_threads: int
    infer_requests: int
    batch_size: int
    pinning: bool = True
    max_wait_us: int = 0  # Server only: how long a batch may wait for more arrivals after its first
    instances: int = 1  # processes, each with its own compiled model and pool of the settings above
    keep_awake: str = "off"  # Server only: off | pm_qos | loops (hostctl.keepawake)
    dispatch_slice_us: int = 0  # 0 or 100..100000: EEVDF slice of the query-carrying threads (hostctl.threadslice)
    issue_priority: int = 0  # 0 or 1..10: SCHED_FIFO priority of the issuing threads (hostctl.threadpriority)

    def __post_init__(self) -> None:
        for name in ("num_streams", "num_threads", "infer_requests", "batch_size", "instances"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"engine.{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.max_wait_us, int) or isinstance(self.max_wait_us, bool) or self.max_wait_us < 0:
            raise ConfigError(f"engine.max_wait_us: expected an integer >= 0, got {self.max_wait_us!r}")
        if self.infer_requests < self.num_streams:
            raise ConfigError(
                f"engine.infer_requests ({self.infer_requests}) must be >= engine.num_streams "
                f"({self.num_streams}), or streams sit idle")
        if self.num_threads < self.num_streams:
            raise ConfigError(
                f"engine.num_threads ({self.num_threads}) must be >= engine.num_streams ({self.num_streams})")
        slice_us = self.dispatch_slice_us
        if (not isinstance(slice_us, int) or isinstance(slice_us, bool)
                or not (slice_us == 0 or MIN_SLICE_US <= slice_us <= MAX_SLICE_US)):
            raise ConfigError(f"engine.dispatch_slice_us: expected 0 (kernel default) or {MIN_SLICE_US}.."
                              f"{MAX_SLICE_US} (microseconds), got {slice_us!r}")
        if slice_us and self.instances > 1:
            raise ConfigError("engine.dispatch_slice_us: applies to one-instance pools only (instances = 1); "
                              f"got instances = {self.instances}")
        priority = self.issue_priority
        if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= MAX_ISSUE_PRIORITY:
            raise ConfigError(f"engine.issue_priority: expected 0 (kernel default) or 1..{MAX_ISSUE_PRIORITY} "
                              f"(SCHED_FIFO priority, capped low so the kernel's real-time threads stay above), "
                              f"got {priority!r}")
        if priority and self.instances > 1:
            raise ConfigError("engine.issue_priority: applies to one-instance pools only (instances = 1); "
                              f"got instances = {self.instances}")
        if not isinstance(self.pinning, bool):
            raise ConfigError(f"engine.pinning: expected true or false, got {self.pinning!r}")
        if isinstance(self.keep_awake, bool):  # the boolean form some profiles and records hold
            object.__setattr__(self, "keep_awake", "loops" if self.keep_awake else "off")
        if self.keep_awake not in KEEP_AWAKE_MODES:
            raise ConfigError(f"engine.keep_awake: expected one of {', '.join(KEEP_AWAKE_MODES)} (true = loops, "
                              f"false = off), got {self.keep_awake!r}")

    @property
    def total_threads(self) -> int:
        """Cores the run keeps busy: ``num_threads`` per instance, over every instance."""
        return self.num_threads * self.instances

    def warn_if_throughput_starved(self) -> None:
        """Throughput scenarios want two requests per stream: with one, the batch refill runs in
        series with inference (docs/scenarios.md, System profiles)."""
        if self.infer_requests < 2 * self.num_streams:
            log.warning("engine.infer_requests (%d) < 2 x num_streams (%d): each stream idles while its "
                        "batch is answered and refilled", self.infer_requests, self.num_streams)


@dataclass(frozen=True)
class SystemProfile:
    """One machine type: how many cores it has, how to drive them, and its description."""

    name: str
    cores: int
    engine: EngineConfig  # Offline (the throughput default)
    description: str = ""
    system: dict[str, Any] = field(default_factory=dict)
    # Latency-oriented settings of the other scenarios, keyed by LoadGen's scenario name.
    scenarios: dict[str, EngineConfig] = field(default_factory=dict)
    # Seconds a run may go with inference requests in flight and none finishing before the
    # watchdog ends it INCOMPLETE (harness.watchdog); 0: derived from the warm-up.
    watchdog_s: float = 0.0

    def __post_init__(self) -> None:
        value = self.watchdog_s
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"watchdog_s: expected seconds >= 0 (0: derived from the warm-up), got {value!r}")

    def engine_for(self, scenario: str) -> EngineConfig:
        """The engine settings of ``scenario`` (``Offline`` is ``engine``)."""
        if scenario == "Offline":
            return self.engine
        if scenario not in self.scenarios:
            raise ConfigError(f"system profile {self.name!r} has no engine settings for {scenario}: add a "
                              f"'scenarios: {scenario}:' mapping (num_streams, num_threads, infer_requests, "
                              f"batch_size) to its YAML, or run 'mlperf-cpu tune --scenario {scenario}'")
        return self.scenarios[scenario]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for result JSON and reports."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SystemProfile":
        """Inverse of ``to_dict`` (for records read back from JSON)."""
        scenarios = {k: EngineConfig(**v) for k, v in (data.get("scenarios") or {}).items()}
        return cls(data["name"], int(data["cores"]), EngineConfig(**data["engine"]),
                   str(data.get("description", "")), dict(data.get("system") or {}), scenarios,
                   float(data.get("watchdog_s") or 0.0))
