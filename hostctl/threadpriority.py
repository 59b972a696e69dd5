"""Real-time priority for the threads that issue queries (``engine.issue_priority``).

Why (Server). Every thread that runs our Python holds the interpreter lock while it does:
LoadGen's issue thread in ``issue_query`` and OpenVINO's callback threads while they answer.
Near the highest sustainable rate both cores run pinned inference threads, and LoadGen's
issue thread is the one Python thread that is not pinned: it competes with them for a CPU.
When the scheduler preempts it in the middle of ``issue_query`` (its 0.1 ms custom slice,
``hostctl.threadslice``, is shorter than a cold ``issue_query``), it is off the CPU *holding the
lock*, and every callback that finishes inference meanwhile waits for it before it can
answer. LoadGen sees that wait on the query's latency.

With ``SCHED_FIFO`` the issue thread is never preempted by the (``SCHED_OTHER``) inference
threads: it runs from its wake-up to its return, and releases the lock within microseconds.
It sleeps between arrivals (LoadGen sleeps until each query's scheduled time), so it takes
almost no CPU; Linux's real-time throttling (95 % of each second by default) bounds it anyway.

On a 2-vCPU guest it cut the delay from OpenVINO's end of inference to our callback several
fold at the Server p99. Server only (``harness.profile`` refuses it elsewhere): in SingleStream and
MultiStream, where the issue thread also waits for the inference and answers it, it made the
latency worse. The figures are in docs/notes/2026-11-30-server-tail-on-vms.md.

Only the issuing threads claim it (LoadGen's issue thread, a dispatcher thread); OpenVINO's
threads, the callback threads among them, keep their policy, since a real-time inference
thread would shut everything else out of its core. Setting it needs ``CAP_SYS_NICE`` (root)
or an ``RLIMIT_RTPRIO`` at least as high; ``realtime_allowed`` tells whether this process may.

Two limits keep it contained. The policy is set with ``SCHED_RESET_ON_FORK``, so a thread or
process the issuing thread creates starts under the default policy, never real-time. And the
priority is capped at ``MAX_PRIORITY`` (``sut.config``): priority 1 already outranks every
``SCHED_OTHER`` thread, and a low cap leaves the kernel's own real-time threads above ours.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading

from hostctl.threadslice import PerThreadClaim, on_new_thread, own_thread
from sut.config import MAX_ISSUE_PRIORITY as MAX_PRIORITY

log = logging.getLogger(__name__)

__all__ = ["MAX_PRIORITY", "PriorityClaim", "realtime_allowed", "reset_policy", "set_realtime", "thread_policy"]


def thread_policy(tid: int = 0) -> tuple[int, bool]:
    """(policy, reset-on-fork) of thread ``tid`` (0: the calling thread): the kernel reports the
    ``SCHED_RESET_ON_FORK`` flag or'ed into the policy."""
    raw = os.sched_getscheduler(tid)
    return raw & ~os.SCHED_RESET_ON_FORK, bool(raw & os.SCHED_RESET_ON_FORK)


def set_realtime(priority: int) -> int | None:
    """Put the calling thread (only it: Linux schedules threads) under ``SCHED_FIFO`` at
    ``priority`` with ``SCHED_RESET_ON_FORK``; returns the priority the kernel then reports, None
    if refused, above ``MAX_PRIORITY`` or not Linux."""
    if not sys.platform.startswith("linux") or not 1 <= priority <= MAX_PRIORITY:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError:
        return None
    return os.sched_getparam(0).sched_priority if thread_policy()[0] == os.SCHED_FIFO else None


def reset_policy(tid: int) -> bool:
    """Put thread ``tid`` of this process back under ``SCHED_OTHER``; False if it is gone or refused."""
    if not own_thread(tid):
        return False
    try:
        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def realtime_allowed(priority: int = 1) -> bool:
    """True when this process may put a thread under ``SCHED_FIFO`` at ``priority``: tried once
    per priority on a short-lived thread (``hostctl.threadslice.on_new_thread``)."""
    return bool(priority) and on_new_thread(lambda: set_realtime(priority), "priority-probe") == priority


class PriorityClaim(PerThreadClaim):
    """Puts every thread that calls it under ``SCHED_FIFO`` at ``priority``, once per thread
    (0: does nothing)."""

    def _apply(self, value: int) -> int | None:
        granted = set_realtime(value)
        if granted is None:
            log.warning("issue_priority: SCHED_FIFO %d refused for thread %s", value, threading.current_thread().name)
        return granted

    def _reset(self, tid: int) -> bool:
        return reset_policy(tid)

    def report(self) -> dict[str, object]:
        """What was asked and granted: ``priority``, ``threads`` (how many claimed), ``granted``
        (the distinct priorities the kernel reported; ``None`` = refused)."""
        threads, granted = self._granted()
        return {"priority": self.value, "threads": threads, "granted": granted}
