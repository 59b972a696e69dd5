"""Short scheduler time slices for the threads that carry queries (Linux EEVDF custom slices).

Why (Server). Near the highest sustainable rate both cores run OpenVINO's stream threads, and
every arrival needs two other threads to run at once: LoadGen's issue thread, which wakes at
the query's scheduled time and calls ``issue_query``, and OpenVINO's callback thread, which
answers it. LoadGen measures a Server query from its *scheduled* time, so any wait for a CPU
is on the measured latency. Linux's EEVDF scheduler (6.6+) lets the running thread finish
its slice before a woken one of equal weight takes the CPU; the default slice on a 2-CPU
machine is 1.4 ms, a tenth of the 15 ms bound. Since Linux 6.12 a thread may ask for a shorter
slice (``sched_setattr`` with ``sched_runtime`` for ``SCHED_OTHER``, 0.1-100 ms, no privilege
needed), and a woken thread whose slice is shorter than the running one's preempts it at once.

On a 2-vCPU guest near the top Server rate, 0.1 ms slices on the issue and callback threads
turned an INVALID p99 VALID with the same inference latency; in SingleStream they changed nothing
measurable, so profiles set them for Server only (docs/notes/2026-11-30-server-tail-on-vms.md).

Each thread asks once, the first time it carries a query (``SliceClaim``); OpenVINO's stream
threads keep the default slice, so only the query carriers preempt them. The slice is the
thread's own and ends with it. A kernel without custom slices accepts the call and ignores it;
the claim reads the slice back and reports what the kernel granted.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sut.config import MAX_SLICE_US, MIN_SLICE_US

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["MAX_SLICE_US", "MIN_SLICE_US", "PerThreadClaim", "SliceClaim", "custom_slices_supported",
           "on_new_thread", "reset_thread_slice", "set_thread_slice", "thread_slice_us"]
_SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
_SYS_SCHED_GETATTR = {"x86_64": 315, "aarch64": 275}
# struct sched_attr, SCHED_ATTR_SIZE_VER1: size, policy, flags, nice, priority, runtime, deadline,
# period, util_min, util_max
_ATTR = struct.Struct("IIQiIQQQII")


@functools.lru_cache(maxsize=None)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _syscall_numbers() -> tuple[int, int] | None:
    machine = os.uname().machine if hasattr(os, "uname") else ""
    if not sys.platform.startswith("linux") or machine not in _SYS_SCHED_SETATTR:
        return None
    return _SYS_SCHED_SETATTR[machine], _SYS_SCHED_GETATTR[machine]


def thread_slice_us(tid: int = 0) -> int | None:
    """The scheduler slice in microseconds (custom or the default) of thread ``tid`` (0: the
    calling thread), or None where it cannot be read (not Linux, an unknown architecture, a
    kernel without the call, no such thread)."""
    numbers = _syscall_numbers()
    if numbers is None:
        return None
    buf = ctypes.create_string_buffer(_ATTR.size)
    if _libc().syscall(numbers[1], tid, buf, _ATTR.size, 0) != 0:
        return None
    return _ATTR.unpack(buf.raw)[5] // 1000


def _set_slice(tid: int, slice_ns: int) -> bool:
    """``sched_setattr`` on thread ``tid`` as ``SCHED_OTHER`` at its nice value with ``slice_ns``
    (0: the kernel's default slice)."""
    numbers = _syscall_numbers()
    if numbers is None:
        return False
    nice = os.getpriority(os.PRIO_PROCESS, tid)  # the thread's own (Linux: per thread)
    buf = ctypes.create_string_buffer(_ATTR.pack(_ATTR.size, os.SCHED_OTHER, 0, nice, 0, slice_ns,
                                                 0, 0, 0, 0), _ATTR.size)
    return _libc().syscall(numbers[0], tid, buf, 0) == 0


def set_thread_slice(slice_us: int) -> int | None:
    """Ask for a ``slice_us`` slice for the calling thread (its policy and nice value unchanged:
    ``SCHED_OTHER`` only); returns the slice the kernel then reports, None if it cannot be set."""
    if _syscall_numbers() is None or os.sched_getscheduler(0) != os.SCHED_OTHER:
        return None
    if not _set_slice(0, slice_us * 1000):
        log.warning("dispatch_slice_us: sched_setattr failed: %s", os.strerror(ctypes.get_errno()))
        return None
    return thread_slice_us()


def own_thread(tid: int) -> bool:
    """Whether ``tid`` is (still) a thread of this process: a finished thread's id may be reused by
    another process's, which an undo must never touch."""
    return Path(f"/proc/self/task/{tid}").exists()


def reset_thread_slice(tid: int) -> bool:
    """Give thread ``tid`` of this process the kernel's default slice back (``SCHED_OTHER``); False
    if it is gone or the call failed."""
    return own_thread(tid) and _set_slice(tid, 0)


def on_new_thread(fn: Callable[[], T], name: str = "probe") -> T:
    """``fn()`` run on a short-lived thread of its own: a per-thread scheduler setting it makes
    ends with that thread, so no thread of the run keeps it."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn()), name=name)
    thread.start()
    thread.join()
    return out[0]


@functools.lru_cache(maxsize=None)
def custom_slices_supported() -> bool:
    """True when the kernel honours a custom slice (Linux >= 6.12): tried once per process (every
    load of the ``host`` profile asks) on a short-lived thread (``on_new_thread``)."""
    def trial() -> bool:
        default = thread_slice_us()
        wanted = MIN_SLICE_US if default != MIN_SLICE_US else 2 * MIN_SLICE_US
        return set_thread_slice(wanted) == wanted

    return on_new_thread(trial, "slice-probe")


class PerThreadClaim:
    """Applies a per-thread scheduler setting to every thread that calls it, once per thread.

    Called on the hot path (each ``issue_query``, each answer): after a thread's first call it
    is one thread-local attribute read. A false ``value`` does nothing. Subclasses say how to
    apply the value (``_apply``: returns what the kernel then reports, None if it was refused),
    how to take it back from a thread (``_reset``) and how to report it. After ``undo`` every
    thread that claimed has its default back and no thread claims any more.
    """

    def __init__(self, value: int) -> None:
        self.value = value
        self._local = threading.local()
        self._lock = threading.Lock()
        self.granted: dict[int, int | None] = {}  # native thread id -> what the kernel reports
        self.undone = False

    def __call__(self) -> None:
        """Claim the setting for the calling thread if it has not yet."""
        if not self.value or self.undone or getattr(self._local, "claimed", False):
            return
        self._local.claimed = True
        granted = self._apply(self.value)
        tid = threading.get_native_id()
        with self._lock:
            self.granted[tid] = granted
            late = self.undone
        if late and granted is not None:  # ``undo`` ran while this thread was applying it
            self._reset(tid)

    def undo(self) -> int:
        """Stop claiming and reset every thread of this process that claimed; returns how many were
        reset (threads that have ended took their setting with them)."""
        with self._lock:
            self.undone = True
            tids = [tid for tid, granted in self.granted.items() if granted is not None]
        return sum(self._reset(tid) for tid in tids)

    def _apply(self, value: int) -> int | None:
        raise NotImplementedError

    def _reset(self, tid: int) -> bool:
        raise NotImplementedError

    def _granted(self) -> tuple[int, list[int | None]]:
        """(threads that claimed, the distinct values granted, None first)."""
        with self._lock:
            return len(self.granted), sorted(set(self.granted.values()), key=lambda v: -1 if v is None else v)


class SliceClaim(PerThreadClaim):
    """Gives every thread that calls it a ``slice_us`` slice, once per thread (0: does nothing)."""

    def _apply(self, value: int) -> int | None:
        return set_thread_slice(value)

    def _reset(self, tid: int) -> bool:
        return reset_thread_slice(tid)

    def report(self) -> dict[str, object]:
        """What was asked and granted: ``slice_us``, ``threads`` (how many claimed), ``granted_us``
        (the distinct slices the kernel reported; ``None`` = could not be set)."""
        threads, granted = self._granted()
        return {"slice_us": self.value, "threads": threads, "granted_us": granted}
