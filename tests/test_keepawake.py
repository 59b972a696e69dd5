"""keep_awake: lowest-priority busy loops that keep a Server run's CPUs from idling (sut.keepawake).

Real processes and a real LoadGen Server run; what is checked is the contract (pinned,
SCHED_IDLE, gone after the run and when their parent dies, Server only), never a speed.
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

from common.errors import ConfigError
from harness.profile import load_profile, profile_from_dict
from sut.keepawake import KeepAwake


def _gone(pids: list[int], within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_loops_run_pinned_at_sched_idle_and_end_with_the_block() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    with KeepAwake(cpus) as awake:
        pids = awake.pids
        assert len(pids) == len(cpus)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(os.sched_getscheduler(p) == os.SCHED_IDLE for p in pids):
            time.sleep(0.05)  # each loop pins and demotes itself as it starts
        assert [os.sched_getaffinity(p) for p in pids] == [{c} for c in cpus]
        assert all(os.sched_getscheduler(p) == os.SCHED_IDLE for p in pids)
    assert _gone(pids, 0.5)


def test_loops_die_with_their_parent(tmp_path: Path) -> None:
    script = ("import os, sys, time\nfrom sut.keepawake import KeepAwake\n"
              "with KeepAwake(os.sched_getaffinity(0)) as k:\n"
              "    print(' '.join(map(str, k.pids)), flush=True)\n    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert pids and all(Path(f"/proc/{p}").exists() for p in pids)
    parent.send_signal(signal.SIGKILL)  # no __exit__, no finally: only the kernel can end the loops
    parent.wait()
    assert _gone(pids), "a busy loop outlived its parent"


def test_keep_awake_is_refused_outside_the_server_scenario() -> None:
    data = dataclasses.asdict(load_profile("host"))
    data["scenarios"]["SingleStream"]["keep_awake"] = True
    with pytest.raises(ConfigError, match=r"my.yaml: scenarios.SingleStream: keep_awake is for the Server "
                                          r"scenario only"):
        profile_from_dict(data, "my.yaml")
    data["scenarios"]["SingleStream"]["keep_awake"] = "yes"
    with pytest.raises(ConfigError, match="engine.keep_awake: expected true or false, got 'yes'"):
        profile_from_dict(data, "my.yaml")


def test_server_run_with_keep_awake_starts_the_loops_and_leaves_none(demo_int8: Path, demo_data: Path,
                                                                     cache_dir: Path, tmp_path: Path) -> None:
    proc, run = run_server_with(tmp_path, demo_int8, demo_data / "val", cache_dir, "awake", 1500, keep_awake=True)
    started = re.search(r"keep_awake: (\d+) SCHED_IDLE busy loops on CPUs \[[\d, ]+\] \(pids \[([\d, ]+)\]\)",
                        proc.stdout + proc.stderr)
    assert started, "the run did not say it started the busy loops"
    assert int(started.group(1)) == len(os.sched_getaffinity(0))
    assert run.profile.engine_for("Server").keep_awake is True
    assert run.loadgen["result_query_count"] > 0
    assert _gone([int(p) for p in started.group(2).split(", ")], 0.5)
