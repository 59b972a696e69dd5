"""The run's watchdog: end a test whose inference has stopped making progress.

LoadGen cannot be stopped mid-test, and a hung inference request (a driver or a model that
never returns) would otherwise hold the run, and any host controls it asked for, forever.
A thread polls the SUT's progress (batches finished, batches in flight); when work has been
in flight for ``limit_s`` seconds with nothing finishing, it calls ``on_expire`` (the runner
marks the run INCOMPLETE, undoes its host controls and exits 3).

The limit is the profile's ``watchdog_s`` or ``--watchdog-s`` when set; otherwise, during the
warm-up ``WARMUP_LIMIT_S``, and from the LoadGen test on ``MULTIPLE`` times the longest the
warm-up waited for a request to finish, at least ``FLOOR_S``: far above any healthy wait,
and a run of a slow model is not cut short by a fixed figure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FLOOR_S = 60.0
MULTIPLE = 20.0
WARMUP_LIMIT_S = 300.0  # before anything is measured: the first requests also build kernels
POLL_S = 0.1

Progress = Callable[[], tuple[int, int]]  # (finished so far, in flight now)


def derived_limit_s(longest_wait_s: float) -> float:
    """The limit for the LoadGen test when none is set: ``MULTIPLE`` x the warm-up's longest wait
    for a request to finish, at least ``FLOOR_S``."""
    return max(FLOOR_S, MULTIPLE * longest_wait_s)


class Watchdog:
    """Calls ``on_expire(stalled_s)`` once, from its own thread, when ``progress`` shows work in
    flight and nothing finished for longer than the limit. Also measures the longest such wait."""

    def __init__(self, progress: Progress, limit_s: float, on_expire: Callable[[float], None],
                 poll_s: float = POLL_S) -> None:
        self._progress = progress
        self.limit_s = limit_s
        self._on_expire = on_expire
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.longest_wait_s = 0.0
        self.expired = False
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def start(self) -> "Watchdog":
        """Start watching; returns self."""
        self._thread.start()
        return self

    def set_limit(self, limit_s: float) -> None:
        """Change the limit from now on (the same stall keeps counting)."""
        with self._lock:
            self.limit_s = limit_s

    def stop(self) -> None:
        """Stop watching (the thread ends within one poll)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5 * self._poll_s + 1)

    def _watch(self) -> None:
        last_finished, since = -1, time.monotonic()
        while not self._stop.wait(self._poll_s):
            finished, in_flight = self._progress()
            now = time.monotonic()
            if finished != last_finished or in_flight == 0:
                last_finished, since = finished, now
                continue
            stalled = now - since
            with self._lock:
                self.longest_wait_s = max(self.longest_wait_s, stalled)
                limit = self.limit_s
            if stalled > limit:
                self.expired = True
                log.error("watchdog: %d inference batches in flight and none finished for %.0f s (limit %.0f s)",
                          in_flight, stalled, limit)
                self._on_expire(stalled)
                return
