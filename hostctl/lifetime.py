"""Child processes that never outlive the process that started them.

A ``run`` child holds a LoadGen test and, when asked, host controls (``hostctl``); if the
``pipeline`` that started it is killed, it must not finish its test alone. So the parent starts
each child in a process group of its own (``run_child``) and names itself in the child's
environment (``PARENT_ENV``); the child arms a parent-death signal at start
(``die_with_parent``: ``PR_SET_PDEATHSIG``, then checks that its parent is still the one named,
in case it died first). When the parent leaves ``run_child`` by an exception (an interrupt, a
SIGTERM, which ``run_child`` turns into one while it waits) it interrupts the child's whole
group (the child's own children with it: busy loops, instance processes) with SIGINT, which a
``run`` answers in every phase by cleaning up (inside LoadGen: marking its run INCOMPLETE and
undoing its host controls), and kills whatever is left after ``GRACE_S``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

PARENT_ENV = "MLPERF_CPU_PARENT_PID"
GRACE_S = 15.0  # a run child answers SIGINT within seconds (it marks its run INCOMPLETE first)
_PR_SET_PDEATHSIG = 1


class Terminated(SystemExit):
    """SIGTERM arrived while a child was running (exit code 143, as a shell reports it)."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when the thread that created it ends;
    False where that is not available (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent(environ: dict[str, str] | None = None) -> None:
    """In a child started by ``run_child``: get SIGTERM when the parent dies, and end at once if
    it already has (the signal is only armed from now on). A process started otherwise (no
    ``PARENT_ENV``) is left as it is. The variable is removed so this process's own children
    do not take it for theirs."""
    env = os.environ if environ is None else environ
    value = env.pop(PARENT_ENV, None)
    if not value:
        return
    parent_death_signal(signal.SIGTERM)
    if os.getppid() != int(value):
        log.error("the process that started this one (pid %s) is gone: not starting", value)
        sys.exit(128 + signal.SIGTERM)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises ``Terminated`` in the main thread (elsewhere: nothing changes,
    Python only delivers signals to the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGINT to ``proc``'s process group (the harness's children clean up on it in every phase, where
    SIGTERM would end one that is still preprocessing on the spot), wait for ``proc`` up to
    ``grace_s``, then SIGKILL to whatever is left of the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("child %d did not end within %.0f s of SIGINT: killing its group", proc.pid, grace_s)
    deadline = time.monotonic() + 1.0
    with contextlib.suppress(ProcessLookupError):
        while time.monotonic() < deadline:  # the group outlives its leader while members remain
            os.killpg(proc.pid, 0)
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_child(cmd: Sequence[str], env: Mapping[str, str], capture: bool = False) -> subprocess.CompletedProcess:
    """Run ``cmd`` to its end in a process group of its own, with this process named as its parent
    (``die_with_parent``); on any exception while waiting (SIGTERM included: ``Terminated``)
    stop the whole group first, then re-raise. ``capture``: collect stdout and stderr as text."""
    pipe = subprocess.PIPE if capture else None
    with _sigterm_raises():
        proc = subprocess.Popen(list(cmd), env={**env, PARENT_ENV: str(os.getpid())}, stdout=pipe, stderr=pipe,
                                text=True, process_group=0)
        try:
            out, err = proc.communicate()
        except BaseException:
            stop_group(proc)
            raise
        finally:
            # A child that exited normally may leave members in its group (a busy loop whose
            # parent-death signal is racing): none may outlive it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)
