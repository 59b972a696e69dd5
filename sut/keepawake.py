"""Keep the run's CPUs from going idle: one lowest-priority busy loop per CPU while LoadGen runs.

Why (Server on a virtual machine). Between Poisson arrivals the Server scenario leaves cores
idle, and an idle virtual CPU halts: it exits to the hypervisor, which may give its physical
core to someone else or pack the VM's vCPUs together until load returns. Measured on a
2-vCPU KVM guest (``haltpoll`` idle driver, no guest polling), INT8 decinet_s, 2 streams x 1
thread, 60 s LoadGen Server runs at 120-140 qps: without the loops, OpenVINO's own per-second
median inference time jumped from 6.0 ms to 8-9 ms for about a second every 15-20 s, and
those bursts held most of the queries over 13 ms (99th percentile 17.4-17.8 ms at 120 qps);
with them the bursts were mostly gone (14.1 ms), and the 99th percentile was lower in 7 of 8
paired runs. Under back-to-back load (Offline, benchmark_app) the cores never idle, so
nothing changes there. It is the user-level equivalent of disabling deep C-states or booting
with ``idle=poll``, which needs no root and ends with the run.

Each loop is its own process (a Python loop in this process would hold the GIL), pinned to
one CPU, scheduled ``SCHED_IDLE``: any runnable thread preempts it at once, so it only ever
takes time nothing else wants. It dies with its parent (``PR_SET_PDEATHSIG``, and a parent
check in the loop), so an interrupted run leaves none behind.

It has a cost (session 7): with the loops, ``start_async`` returned after 3 ms or more for one
call in ten (its 90th percentile; 0.05-0.09 ms without them, also in a bare OpenVINO loop), and
while the host was quiet LoadGen's p99 at 150-160 qps was about 1 ms worse with them (3 of 3
pairs; 60 s at 160 qps: 14.13 against 12.93 ms). While the host was slow at partial load they
saved far more (110 qps, 30 s, 2 pairs: 12.56 / 12.88 ms with them, 18.41 / 13.74 without), and a
Server search without them fell to 91 qps (p99 15.3-24.2 ms from 96.6 qps up). So the ``host``
profile keeps them on for virtual machines.

Not for SingleStream/MultiStream: there the loops made the 90th percentile 34-62 % worse
(decinet_s, 3 rounds of 15 s; not explained further, a likely cause is that OpenVINO's worker
threads yield while they wait for work, and a yield hands the CPU to a loop), so
``harness.profile`` accepts ``keep_awake`` for Server only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from types import TracebackType
from typing import ContextManager

from common.errors import EngineError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class KeepAwake:
    """Context manager: a ``SCHED_IDLE`` busy loop on each of ``cpus`` while inside it."""

    def __init__(self, cpus: Iterable[int]) -> None:
        self.cpus = sorted(set(cpus))
        self._loops: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> "KeepAwake":
        parent = str(os.getpid())
        try:
            for cpu in self.cpus:
                self._loops.append(subprocess.Popen(
                    [sys.executable, "-m", "sut.keepawake", str(cpu), parent],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        except OSError as exc:
            self._stop()
            raise EngineError(f"keep_awake: could not start a busy loop: {exc}") from None
        log.info("keep_awake: %d SCHED_IDLE busy loops on CPUs %s (pids %s)", len(self._loops), self.cpus,
                 [p.pid for p in self._loops])
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    @property
    def pids(self) -> list[int]:
        """The busy loops' process ids (tests)."""
        return [p.pid for p in self._loops]

    def _stop(self) -> None:
        failed = [p for p in self._loops if p.poll() is not None]
        for p in self._loops:
            p.kill()
        for p in self._loops:
            p.wait()
        for p in failed:  # a loop that ended by itself could not pin or demote itself: say why
            err = (p.stderr.read().decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            log.warning("keep_awake: the busy loop for one CPU ended early (exit %s): %s", p.returncode, err)
        for p in self._loops:
            if p.stderr:
                p.stderr.close()
        self._loops = []


def kept_awake(enabled: bool) -> ContextManager[object]:
    """``KeepAwake`` over every CPU this process may run on, or nothing when not ``enabled``."""
    return KeepAwake(os.sched_getaffinity(0)) if enabled else contextlib.nullcontext()


def _spin(cpu: int, parent: int) -> None:
    """The busy loop: pin to ``cpu``, drop to SCHED_IDLE, spin until ``parent`` is gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    while os.getppid() == parent:  # reparented: the parent died before PDEATHSIG was armed
        pass


if __name__ == "__main__":
    _spin(int(sys.argv[1]), int(sys.argv[2]))
