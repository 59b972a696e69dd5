"""Opt-in host controls for one LoadGen test, always undone.

Three Linux controls can lower Server latency on a busy or virtual host, and each of them
reaches beyond the harness's own process:

- ``keep_awake`` (``hostctl.keepawake``): the kernel's CPU latency limit held at 0 us through
  ``/dev/cpu_dma_latency`` (machine-wide, every CPU and every other tenant), or one
  ``SCHED_IDLE`` busy loop per CPU;
- ``dispatch_slice_us`` (``hostctl.threadslice``): a short EEVDF scheduler slice for the threads
  that carry queries;
- ``issue_priority`` (``hostctl.threadpriority``): ``SCHED_FIFO`` (with ``SCHED_RESET_ON_FORK``,
  capped low) for the threads that issue queries.

None of them is on unless asked for (``--host-tuning``, or the keys in a profile the user
wrote). The one interface the runner uses is ``HostControls``: the SUT's threads call its
``claim_issuer``/``claim_carrier``, ``keep_awake()`` holds the CPUs awake around the LoadGen
test, and ``undo()`` takes everything back (idempotent, from any thread). ``host_controls`` is
the same as a context manager. Paths that leave with ``os._exit`` (a signal, the watchdog) call
``undo_all()`` first; a process that dies anyway drops the latency limit (its file closes), its
busy loops (parent-death signal) and its threads' settings (the threads end with it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ContextManager

from hostctl.keepawake import kept_awake
from hostctl.threadpriority import PriorityClaim
from hostctl.threadslice import SliceClaim

log = logging.getLogger(__name__)

__all__ = ["HostControls", "HostSettings", "host_controls", "undo_all"]


@dataclass(frozen=True)
class HostSettings:
    """Which host controls one test asked for (the engine's ``keep_awake``, ``dispatch_slice_us``,
    ``issue_priority``), and whether they came from ``--host-tuning``."""

    keep_awake: str = "off"
    dispatch_slice_us: int = 0
    issue_priority: int = 0
    requested: bool = False  # --host-tuning was given

    @classmethod
    def of(cls, engine: Any, requested: bool = False) -> "HostSettings":
        """The host settings of an ``EngineConfig``."""
        return cls(engine.keep_awake, engine.dispatch_slice_us, engine.issue_priority, requested)

    @property
    def active(self) -> list[str]:
        """The names of the controls that are on, e.g. ``["keep_awake=pm_qos", "issue_priority=1"]``."""
        out = [f"keep_awake={self.keep_awake}"] if self.keep_awake != "off" else []
        out += [f"dispatch_slice_us={self.dispatch_slice_us}"] if self.dispatch_slice_us else []
        out += [f"issue_priority={self.issue_priority}"] if self.issue_priority else []
        return out


_LIVE: set["HostControls"] = set()  # controls not yet undone, for undo_all
_LIVE_LOCK = threading.Lock()


class HostControls:
    """The host controls of one test: per-thread claims for the SUT, the keep-awake hold, one undo."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self.slice = SliceClaim(settings.dispatch_slice_us)
        self.priority = PriorityClaim(settings.issue_priority)
        self._hold: contextlib.ExitStack | None = None
        self._lock = threading.Lock()
        self.undone = False
        with _LIVE_LOCK:
            _LIVE.add(self)

    def claim_issuer(self) -> None:
        """Called first by every thread that issues queries: its slice, then its priority (the slice
        is a ``SCHED_OTHER`` setting, so it is asked for before the policy changes)."""
        self.slice()
        self.priority()

    def claim_carrier(self) -> None:
        """Called by every thread that answers queries: its slice."""
        self.slice()

    def keep_awake(self) -> ContextManager[object]:
        """Hold the CPUs awake (``settings.keep_awake``) while inside; ``undo`` also releases it."""
        @contextlib.contextmanager
        def hold() -> Iterator[None]:
            with self._lock:
                if self.undone:
                    raise RuntimeError("host controls already undone")
                self._hold = contextlib.ExitStack()
                self._hold.enter_context(kept_awake(self.settings.keep_awake))
            try:
                yield
            finally:
                self._release_hold()
        return hold()

    def _release_hold(self) -> None:
        with self._lock:
            hold, self._hold = self._hold, None
        if hold is not None:
            hold.close()

    def undo(self) -> None:
        """Take back everything this test changed: the keep-awake hold, then each claimed thread's
        priority and slice. Idempotent; safe from any thread (the watchdog, a signal path)."""
        with self._lock:
            if self.undone:
                return
            self.undone = True
        self._release_hold()
        reset = self.priority.undo() + self.slice.undo()  # priority first: a slice reset is SCHED_OTHER
        if self.settings.active:
            log.info("host controls undone (%s; %d live threads reset)", ", ".join(self.settings.active), reset)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def report(self) -> dict[str, Any]:
        """What was asked and applied, for result.json: ``requested`` (``--host-tuning``), ``active``
        (the controls that were on), ``keep_awake``, ``dispatch_slice`` and ``issue_priority`` (what
        the kernel granted per thread, when set) and ``undone``."""
        out: dict[str, Any] = {"requested": self.settings.requested, "active": self.settings.active,
                               "keep_awake": self.settings.keep_awake, "undone": self.undone}
        if self.settings.dispatch_slice_us:
            out["dispatch_slice"] = self.slice.report()
        if self.settings.issue_priority:
            out["issue_priority"] = self.priority.report()
        return out


@contextlib.contextmanager
def host_controls(settings: HostSettings) -> Iterator[HostControls]:
    """``HostControls`` for ``settings``, undone on every way out of the block (exceptions included)."""
    controls = HostControls(settings)
    try:
        yield controls
    finally:
        controls.undo()


def undo_all() -> None:
    """Undo every ``HostControls`` of this process that is still live (before an ``os._exit``)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for controls in live:
        try:
            controls.undo()
        except Exception as exc:  # noqa: BLE001 - the others must still be undone
            log.warning("host controls: undo failed: %s", exc)
