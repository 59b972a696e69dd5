"""Keep the run's CPUs from halting between Server arrivals: ``keep_awake`` (off, pm_qos, loops).

Why (Server on a virtual machine). Between Poisson arrivals the Server scenario leaves cores
idle, and an idle virtual CPU halts: it exits to the hypervisor, which may give its physical
core to someone else or pack the VM's vCPUs together until load returns, so the next queries run
slow in bursts that hold most of the 99th percentile. Under back-to-back load (Offline,
benchmark_app) the cores never idle, so nothing changes there. The measurements are in
docs/notes/2026-11-30-server-tail-on-vms.md.

Two ways to keep them from halting:

``pm_qos`` holds the kernel's CPU latency limit (PM QoS, ``/dev/cpu_dma_latency``) at 0 us for
the run: the idle governor may then only pick idle states with no exit latency, i.e. the
kernel's own polling loop, so an idle vCPU spins inside the kernel and a woken thread runs at
once; closing the file ends the request. It is what tuned's latency-performance profile and
"disable C-states" do, for the run only. It needs write access to the device (root).

``loops`` (no privilege needed): one busy loop per CPU, each its own process (a Python loop in
this process would hold the GIL), pinned to one CPU and scheduled ``SCHED_IDLE`` so that any
runnable thread preempts it at once. It dies with its parent (``PR_SET_PDEATHSIG``, and a parent
check in the loop), so an interrupted run leaves none behind. The loops cost what the kernel's
poll loop does not: an OpenVINO thread that yields hands its CPU to a loop until the next tick,
so ``start_async`` sometimes returns late, and on a quiet host the p99 is a little worse than
with nothing.

So with ``--host-tuning`` the ``host`` profile on a virtual machine takes ``pm_qos`` where the
device is writable and ``loops`` where it is not; without it, nothing (it reaches every CPU and
every other tenant of the machine, so it is never on unasked). Neither helps SingleStream or
MultiStream (the loops made their latency worse), so ``harness.profile`` accepts ``keep_awake``
for Server only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import ContextManager

from common.childproc import child_environment, python_command
from common.errors import EngineError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
PM_QOS_DEVICE = Path("/dev/cpu_dma_latency")
_LIMIT = struct.Struct("=i")  # the device takes and reports one native int32, in microseconds
CPUIDLE = Path("/sys/devices/system/cpu/cpu0/cpuidle")  # absent without a cpuidle driver


def pm_qos_writable(device: Path = PM_QOS_DEVICE) -> bool:
    """Whether this process may hold a CPU latency limit (``keep_awake: pm_qos``)."""
    return os.access(device, os.W_OK)  # False for a missing device too


def cpu_latency_limit_us(device: Path = PM_QOS_DEVICE) -> int | None:
    """The CPU latency limit the kernel enforces now (2000000000: none), None if unreadable."""
    try:
        with open(device, "rb", buffering=0) as f:
            return int(_LIMIT.unpack(f.read(_LIMIT.size))[0])
    except (OSError, struct.error):
        return None


def idle_states_within(limit_us: int, cpuidle: Path = CPUIDLE) -> list[str]:
    """Names of CPU 0's idle states whose exit latency is within ``limit_us`` (what the idle
    governor may still pick under that limit), as the kernel lists them."""
    out = []
    for state in sorted(cpuidle.glob("state*")):
        try:
            if int((state / "latency").read_text()) <= limit_us:
                out.append((state / "name").read_text().strip())
        except (OSError, ValueError):
            continue
    return out


class CpuLatencyHold:
    """Context manager: the kernel's CPU latency limit held at 0 us while inside it (``pm_qos``)."""

    def __init__(self, device: Path = PM_QOS_DEVICE) -> None:
        self.device = device
        self._fd: int | None = None

    def __enter__(self) -> "CpuLatencyHold":
        try:
            self._fd = os.open(self.device, os.O_WRONLY)
            os.write(self._fd, _LIMIT.pack(0))
        except OSError as exc:
            self.__exit__(None, None, None)
            raise EngineError(f"keep_awake: pm_qos: cannot hold a CPU latency limit through {self.device} "
                              f"({exc.strerror}): run as root, or set 'keep_awake: loops' in the profile's "
                              "scenarios.Server") from None
        limit = cpu_latency_limit_us(self.device)
        states = idle_states_within(limit) if limit is not None else []  # unreadable: claim no states
        log.info("keep_awake: CPU latency limit 0 us held through %s; the kernel reports %s us, idle states "
                 "left: %s", self.device, limit, ", ".join(states) or "none listed")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file is what withdraws the request
            self._fd = None


class BusyLoops:
    """Context manager: a ``SCHED_IDLE`` busy loop on each of ``cpus`` while inside it (``loops``)."""

    def __init__(self, cpus: Iterable[int]) -> None:
        self.cpus = sorted(set(cpus))
        self._loops: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> "BusyLoops":
        parent = str(os.getpid())
        try:
            for cpu in self.cpus:
                self._loops.append(subprocess.Popen(
                    python_command("-m", "hostctl.keepawake", str(cpu), parent), env=child_environment(),
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


def kept_awake(mode: str) -> ContextManager[object]:
    """The ``keep_awake`` mode's context manager over every CPU this process may run on:
    ``pm_qos`` a ``CpuLatencyHold``, ``loops`` ``BusyLoops``, ``off`` nothing."""
    if mode == "pm_qos":
        return CpuLatencyHold()
    if mode == "loops":
        return BusyLoops(os.sched_getaffinity(0))
    return contextlib.nullcontext()


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
