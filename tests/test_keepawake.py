"""keep_awake: what keeps a Server run's CPUs from halting (hostctl.keepawake): the kernel's CPU
latency limit held at 0 (pm_qos) or lowest-priority busy loops (loops).

Real processes, the real PM QoS device and real LoadGen Server runs; what is checked is the
contract (the limit held and withdrawn; loops pinned, SCHED_IDLE, gone after the run and when
their parent dies; Server only), never a speed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_server_with
from host_facts import needs

from common.errors import ConfigError, EngineError
from harness.profile import host_keep_awake, load_profile, profile_from_dict
from hostctl.keepawake import (CPUIDLE, BusyLoops, CpuLatencyHold, cpu_latency_limit_us, idle_states_within,
                               pm_qos_writable)
from sut.config import EngineConfig

needs_pm_qos = needs(pm_qos_writable, "this process may not write /dev/cpu_dma_latency")


def _gone(pids: list[int], within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_loops_run_pinned_at_sched_idle_and_end_with_the_block() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    with BusyLoops(cpus) as awake:
        pids = awake.pids
        assert len(pids) == len(cpus)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(os.sched_getscheduler(p) == os.SCHED_IDLE for p in pids):
            time.sleep(0.05)  # each loop pins and demotes itself as it starts
        assert [os.sched_getaffinity(p) for p in pids] == [{c} for c in cpus]
        assert all(os.sched_getscheduler(p) == os.SCHED_IDLE for p in pids)
    assert _gone(pids, 0.5)


def test_loops_die_with_their_parent(tmp_path: Path) -> None:
    script = ("import os, sys, time\nfrom hostctl.keepawake import BusyLoops\n"
              "with BusyLoops(os.sched_getaffinity(0)) as k:\n"
              "    print(' '.join(map(str, k.pids)), flush=True)\n    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert pids and all(Path(f"/proc/{p}").exists() for p in pids)
    parent.send_signal(signal.SIGKILL)  # no __exit__, no finally: only the kernel can end the loops
    parent.wait()
    # a SCHED_IDLE process on a busy CPU may wait seconds for the CPU time to die in
    assert _gone(pids, 60), "a busy loop outlived its parent"


def test_keep_awake_is_refused_outside_the_server_scenario() -> None:
    data = dataclasses.asdict(load_profile("host"))
    for mode in (True, "pm_qos", "loops"):
        data["scenarios"]["SingleStream"]["keep_awake"] = mode
        with pytest.raises(ConfigError, match=r"my.yaml: scenarios.SingleStream: keep_awake is for the Server "
                                              r"scenario only"):
            profile_from_dict(data, "my.yaml")
    data["scenarios"]["SingleStream"]["keep_awake"] = "yes"
    with pytest.raises(ConfigError, match=r"my.yaml: scenarios.SingleStream: engine.keep_awake: expected one of "
                                          r"off, pm_qos, loops \(true = loops, false = off\), got 'yes'"):
        profile_from_dict(data, "my.yaml")


def test_keep_awake_modes_and_their_earlier_boolean_form() -> None:
    assert [EngineConfig(2, 2, 4, 1, keep_awake=v).keep_awake for v in (True, False, "pm_qos", "loops", "off")] \
        == ["loops", "off", "pm_qos", "loops", "off"]
    data = dataclasses.asdict(load_profile("host"))
    data["scenarios"]["Server"]["keep_awake"] = "pm_qos"
    assert profile_from_dict(data, "my.yaml").engine_for("Server").keep_awake == "pm_qos"


@pytest.mark.parametrize("vm, writable, derived", [(True, True, "pm_qos"), (True, False, "loops"),
                                                    (False, True, "off"), (False, False, "off")])
def test_the_host_profile_keeps_a_vm_awake_only_with_host_tuning(monkeypatch: pytest.MonkeyPatch, vm: bool,
                                                                 writable: bool, derived: str) -> None:
    import harness.profile

    monkeypatch.setattr(harness.profile, "virtual_machine", lambda: vm)
    monkeypatch.setattr(harness.profile, "pm_qos_writable", lambda: writable)
    assert host_keep_awake() == derived
    assert load_profile("host").engine_for("Server").keep_awake == "off"  # never unasked
    host = load_profile("host", host_tuning=True)
    assert host.engine_for("Server").keep_awake == derived
    assert [host.engine_for(s).keep_awake for s in ("Offline", "SingleStream", "MultiStream")] == ["off"] * 3


@needs_pm_qos
def test_pm_qos_holds_the_limit_at_zero_and_withdraws_it() -> None:
    before = cpu_latency_limit_us()
    assert before is not None and before > 0
    with CpuLatencyHold():
        assert cpu_latency_limit_us() == 0
        if CPUIDLE.is_dir():
            assert idle_states_within(0), "the kernel lists no idle state a 0 us limit allows"
        else:  # no cpuidle driver (an AVX2 EPYC guest): the CPU idles by HLT, and there is nothing to list
            assert idle_states_within(0) == []
    assert cpu_latency_limit_us() == before


def test_idle_states_are_read_as_the_kernel_lists_them(tmp_path: Path) -> None:
    for k, (name, latency) in enumerate([("POLL", "0"), ("C1", "2"), ("C2", "not a number")]):
        (tmp_path / f"state{k}").mkdir()
        (tmp_path / f"state{k}" / "name").write_text(f"{name}\n")
        (tmp_path / f"state{k}" / "latency").write_text(f"{latency}\n")
    assert idle_states_within(0, tmp_path) == ["POLL"]
    assert idle_states_within(2, tmp_path) == ["POLL", "C1"]  # an unreadable state is never claimed
    assert idle_states_within(0, tmp_path / "missing") == []


def test_pm_qos_without_the_device_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "cpu_dma_latency"
    with pytest.raises(EngineError, match=rf"keep_awake: pm_qos: cannot hold a CPU latency limit through "
                                          rf"{re.escape(str(missing))} \(No such file or directory\): run as root, "
                                          r"or set 'keep_awake: loops'"):
        with CpuLatencyHold(missing):
            pass
    assert not pm_qos_writable(missing)


@needs_pm_qos
def test_server_run_with_pm_qos_holds_the_limit_and_withdraws_it(demo_int8: Path, demo_data: Path,
                                                                cache_dir: Path, tmp_path: Path) -> None:
    before = cpu_latency_limit_us()
    proc, run = run_server_with(tmp_path, demo_int8, demo_data / "val", cache_dir, "qos", 1500, keep_awake="pm_qos")
    assert re.search(r"keep_awake: CPU latency limit 0 us held through /dev/cpu_dma_latency; the kernel reports "
                     r"0 us, idle states left: \S", proc.stdout + proc.stderr), "the run did not hold the limit"
    assert run.profile.engine_for("Server").keep_awake == "pm_qos"
    assert run.loadgen["result_query_count"] > 0
    assert cpu_latency_limit_us() == before


def test_server_run_with_keep_awake_starts_the_loops_and_leaves_none(demo_int8: Path, demo_data: Path,
                                                                     cache_dir: Path, tmp_path: Path) -> None:
    proc, run = run_server_with(tmp_path, demo_int8, demo_data / "val", cache_dir, "awake", 1500, keep_awake="loops")
    started = re.search(r"keep_awake: (\d+) SCHED_IDLE busy loops on CPUs \[[\d, ]+\] \(pids \[([\d, ]+)\]\)",
                        proc.stdout + proc.stderr)
    assert started, "the run did not say it started the busy loops"
    assert int(started.group(1)) == len(os.sched_getaffinity(0))
    assert run.profile.engine_for("Server").keep_awake == "loops"
    assert run.loadgen["result_query_count"] > 0
    assert _gone([int(p) for p in started.group(2).split(", ")], 0.5)
