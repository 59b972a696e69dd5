"""Host changes only on request, always undone: real runs watched from outside through /proc.

Without ``--host-tuning`` a Server run on the ``host`` profile opens no ``/dev/cpu_dma_latency``,
runs no thread under ``SCHED_FIFO`` or with a custom slice, starts no busy loop, and its record
says so. With it, each of them is seen during the test and gone after it. A ``pipeline`` killed
(SIGTERM, or SIGKILL: then the child's parent-death signal acts) during a performance run leaves
no process of the run's group and no host change behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DEMO_ONNX, REPO
from host_facts import ROOT_ON_LINUX_6_12

from common.testspec import Mode, Scenario
from hostctl import HostSettings, host_controls
from hostctl.keepawake import PM_QOS_DEVICE, cpu_latency_limit_us
from hostctl.threadpriority import thread_policy
from hostctl.threadslice import on_new_thread, thread_slice_us
from hostinfo.probe import virtual_machine
from modelprep.card import load_card
from records import results as run_records
from records.results import RunResult
from submit.readme import host_tuning_line

# Where all three controls apply: root on Linux >= 6.12 in a virtual machine (keep_awake pm_qos).
all_three = pytest.mark.skipif(not (ROOT_ON_LINUX_6_12 and virtual_machine()),
                               reason="needs root on Linux >= 6.12 in a virtual machine")


# ----------------------------------------------------------------------------- watching from outside
def _tids(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _holders_of(device: Path) -> set[int]:
    """Processes with ``device`` open."""
    out = set()
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(device):
                    out.add(pid)
            except OSError:
                continue
    return out


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    return [p for p in _pids() if (s := _stat(p)) is not None and s[2] == str(pgid) and s[0] != "Z"]


def _busy_loops() -> list[int]:
    return [p for p in _pids() if "hostctl.keepawake" in _cmdline(p) and (s := _stat(p)) and s[0] != "Z"]


class _Watch:
    """Samples a running process until it ends: FIFO threads, threads with a custom slice, whether
    it holds the CPU latency device, busy loops."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.default_slice = on_new_thread(thread_slice_us)
        self.fifo: set[int] = set()
        self.sliced: set[int] = set()
        self.held = False
        self.loops: set[int] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while _stat(self.pid) is not None and _stat(self.pid)[0] != "Z":
            for tid in _tids(self.pid):
                try:
                    if thread_policy(tid)[0] == os.SCHED_FIFO:
                        self.fifo.add(tid)
                except OSError:
                    continue
                if thread_slice_us(tid) not in (None, self.default_slice):
                    self.sliced.add(tid)
            self.held |= self.pid in _holders_of(PM_QOS_DEVICE)
            self.loops |= set(_busy_loops())
            time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(30)


def _server_run(workdir: Path, model: Path, data: Path, cache: Path, *extra: str) -> tuple[str, int, _Watch]:
    (workdir / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "run", "--mode", "performance", "--scenario", "Server",
                             "--model", str(model), "--dataset", str(data), "--system", "host", "--cache-dir",
                             str(cache), "--min-duration-ms", "3000", "--min-query-count", "1", "--target-qps", "100",
                             *extra], cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watch = _Watch(proc.pid)
    out, _ = proc.communicate(timeout=300)
    watch.join()
    return out, proc.returncode, watch


def _record(workdir: Path, model: Path) -> RunResult:
    return RunResult.load(run_records.run_dir(workdir / "results", "host", load_card(model).label, Scenario.SERVER,
                                       Mode.PERFORMANCE))


# ----------------------------------------------------------------------------- asked and not asked
def test_without_host_tuning_a_server_run_changes_nothing(workdir: Path, demo_int8: Path, demo_data: Path,
                                                          cache_dir: Path) -> None:
    limit_before = cpu_latency_limit_us()
    out, code, watch = _server_run(workdir, demo_int8, demo_data / "val", cache_dir)
    assert code == 0, out[-3000:]
    assert (watch.fifo, watch.sliced, watch.held, watch.loops) == (set(), set(), False, set())
    assert "host tuning: off" in out
    record = _record(workdir, demo_int8)
    assert record.host_tuning == {"requested": False, "active": [], "keep_awake": "off", "undone": True}
    assert record.dispatch_slice is None and record.issue_priority is None
    assert host_tuning_line(record) == "- Host tuning: off (the run changed no power or scheduler setting of the host)"
    assert cpu_latency_limit_us() == limit_before


@all_three
def test_with_host_tuning_each_control_is_on_during_the_test_and_undone(workdir: Path, demo_int8: Path,
                                                                        demo_data: Path, cache_dir: Path) -> None:
    limit_before = cpu_latency_limit_us()
    out, code, watch = _server_run(workdir, demo_int8, demo_data / "val", cache_dir, "--host-tuning")
    assert code == 0, out[-3000:]
    assert watch.held, "the run never held /dev/cpu_dma_latency"
    assert watch.fifo, "no thread of the run ran under SCHED_FIFO"
    assert watch.sliced, "no thread of the run had a custom slice"
    assert "host tuning: keep_awake=pm_qos, dispatch_slice_us=100, issue_priority=1 (--host-tuning)" in out
    record = _record(workdir, demo_int8)
    assert record.host_tuning["requested"] is True and record.host_tuning["undone"] is True
    assert record.host_tuning["active"] == ["keep_awake=pm_qos", "dispatch_slice_us=100", "issue_priority=1"]
    assert record.issue_priority["granted"] == [1] and record.dispatch_slice["granted_us"] == [100]
    assert host_tuning_line(record) == ("- Host tuning: on (keep_awake=pm_qos, dispatch_slice_us=100, issue_priority=1; "
                                        "--host-tuning), for the test only and undone at its end")
    assert cpu_latency_limit_us() == limit_before and not _holders_of(PM_QOS_DEVICE)


# ----------------------------------------------------------------------------- a killed pipeline
@all_three
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_pipeline_leaves_no_process_and_no_host_change(workdir: Path, demo_data: Path, sig: int) -> None:
    limit_before = cpu_latency_limit_us()
    pipeline = subprocess.Popen([sys.executable, "-m", "cli", "pipeline", "--model", str(DEMO_ONNX), "--dataset",
                                 str(demo_data / "val"), "--precision", "f32", "--scenario", "Server", "--mode",
                                 "performance", "--host-tuning", "--work", str(workdir / "work")],
                                cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(pipeline.stdout), daemon=True)
    reader.start()
    try:
        child = _wait_for_held_run_child(pipeline, lines)
        pgid = os.getpgid(child)
        assert pgid == child and pgid != os.getpgid(pipeline.pid)  # the run has a process group of its own
        pipeline.send_signal(sig)
        assert pipeline.wait(timeout=60) == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
        deadline = time.monotonic() + 30  # the child ends its test, undoes and exits
        while (_group(pgid) or _busy_loops() or _holders_of(PM_QOS_DEVICE)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _group(pgid) == [] and _busy_loops() == [] and _holders_of(PM_QOS_DEVICE) == set()
        assert cpu_latency_limit_us() == limit_before
        markers = list((workdir / "results").rglob("INCOMPLETE"))
        assert markers and all("interrupted" in m.read_text() for m in markers), "".join(lines)[-3000:]
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
            pipeline.wait()


def _wait_for_held_run_child(pipeline: subprocess.Popen, lines: list[str], timeout_s: float = 300) -> int:
    """The pipeline's ``run`` child, once it holds the CPU latency limit (inside the LoadGen test)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert pipeline.poll() is None, "".join(lines)[-3000:]
        children = [p for p in _pids() if (s := _stat(p)) is not None and s[1] == str(pipeline.pid)
                    and " run " in _cmdline(p)]
        held = [p for p in children if p in _holders_of(PM_QOS_DEVICE)]
        if held:
            return held[0]
        time.sleep(0.2)
    raise AssertionError("the run child never held the CPU latency limit: " + "".join(lines)[-3000:])


# ----------------------------------------------------------------------------- the interface itself
@all_three
def test_host_controls_are_undone_when_the_block_raises() -> None:
    """A live issuing thread (SCHED_FIFO) and a live carrying thread (custom slice) get their defaults
    back, and the latency limit is withdrawn, when the block ends by an exception."""
    limit_before, default_slice = cpu_latency_limit_us(), on_new_thread(thread_slice_us)
    release, seen = threading.Event(), {"issuer": [], "carrier": []}

    def live(name: str, claim: Callable[[], None], probe: Callable[[], object], ready: threading.Event) -> None:
        claim()
        seen[name].append(probe())
        ready.set()
        release.wait(10)
        seen[name].append(probe())

    with pytest.raises(RuntimeError, match="inside"):
        with host_controls(HostSettings("pm_qos", 100, 1, requested=True)) as controls:
            workers = []
            for name, claim, probe in (("issuer", controls.claim_issuer, lambda: thread_policy()[0]),
                                       ("carrier", controls.claim_carrier, thread_slice_us)):
                ready = threading.Event()
                workers.append(threading.Thread(target=live, args=(name, claim, probe, ready)))
                workers[-1].start()
                assert ready.wait(10)
            with controls.keep_awake():
                assert cpu_latency_limit_us() == 0
                raise RuntimeError("inside")
    release.set()
    for worker in workers:
        worker.join()
    assert seen == {"issuer": [os.SCHED_FIFO, os.SCHED_OTHER], "carrier": [100, default_slice]}
    assert cpu_latency_limit_us() == limit_before
    assert controls.report()["undone"] is True
