"""Real-time priority for the issuing threads (hostctl.threadpriority): granted per thread with
SCHED_RESET_ON_FORK, capped low, taken back by an undo, validated in profiles, recorded by a real
Server run, refused up front where the process may not set it."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_server_with, undo_while_held
from host_facts import needs

from common.errors import ConfigError
from harness.profile import load_profile, profile_from_dict
from harness.tune import write_profile
from records import results as run_records
from records.results import RunResult
from hostctl.threadpriority import PriorityClaim, realtime_allowed, set_realtime, thread_policy
from hostctl.threadslice import on_new_thread

needs_realtime = needs(lambda: realtime_allowed(1), "this process may not use SCHED_FIFO")


def _policy() -> tuple[int, int]:
    """The calling thread's policy (without the reset-on-fork flag) and priority."""
    return thread_policy()[0], os.sched_getparam(0).sched_priority


@needs_realtime
def test_a_claim_puts_each_calling_thread_under_sched_fifo_once_and_no_other_thread() -> None:
    claim = PriorityClaim(2)

    def claimed_twice() -> tuple[int, int]:
        claim()
        claim()
        return _policy()

    assert on_new_thread(claimed_twice) == (os.SCHED_FIFO, 2)
    assert on_new_thread(claimed_twice) == (os.SCHED_FIFO, 2)
    assert claim.report() == {"priority": 2, "threads": 2, "granted": [2]}
    assert _policy() == (os.SCHED_OTHER, 0)  # the test's own thread never asked
    assert on_new_thread(_policy) == (os.SCHED_OTHER, 0)  # nor is it inherited by new threads


@needs_realtime
def test_what_a_sched_fifo_thread_creates_starts_under_the_default_policy() -> None:
    def create_both() -> tuple[tuple[int, bool], tuple[int, int], str]:
        set_realtime(1)
        child = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return thread_policy(), on_new_thread(_policy), child

    mine, new_thread, new_process = on_new_thread(create_both)
    assert mine == (os.SCHED_FIFO, True)  # reset-on-fork is set with the policy
    assert new_thread == (os.SCHED_OTHER, 0)
    assert new_process == str(os.SCHED_OTHER)


@needs_realtime
def test_undo_puts_a_living_thread_back_under_the_default_policy() -> None:
    claim = PriorityClaim(1)
    undone, seen = undo_while_held(claim, _policy)
    assert undone == 1
    assert seen == [(os.SCHED_FIFO, 1), (os.SCHED_OTHER, 0)]


@pytest.mark.parametrize("priority, granted", [(0, None), (11, None), (99, None)])
def test_priorities_above_the_cap_are_never_set(priority: int, granted: None) -> None:
    assert on_new_thread(lambda: (set_realtime(priority), _policy())) == (granted, (os.SCHED_OTHER, 0))


def test_a_profile_asking_more_than_the_cap_is_refused_at_load_naming_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text("name: greedy\ncores: 1\nengine: {num_streams: 1, num_threads: 1, infer_requests: 2, batch_size: 1}\n"
                    "scenarios:\n  Server: {num_streams: 1, num_threads: 1, infer_requests: 2, batch_size: 1,\n"
                    "           issue_priority: 99}\n")
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), check_fits=False)
    assert str(err.value) == (f"{path}: scenarios.Server: engine.issue_priority: expected 0 (kernel default) or "
                              "1..10 (SCHED_FIFO priority, capped low so the kernel's real-time threads stay above), "
                              "got 99")


def test_a_zero_claim_does_nothing() -> None:
    claim = PriorityClaim(0)
    assert on_new_thread(lambda: (claim(), _policy())[1]) == (os.SCHED_OTHER, 0)
    assert claim.report() == {"priority": 0, "threads": 0, "granted": []}


def test_issue_priority_is_validated_with_the_file_and_key() -> None:
    data = dataclasses.asdict(load_profile("host"))
    for bad in (11, 99, -1, True, "1"):
        data["scenarios"]["Server"]["issue_priority"] = bad
        with pytest.raises(ConfigError, match=r"my.yaml: scenarios.Server: engine.issue_priority: expected 0 "
                                              r"\(kernel default\) or 1..10 \(SCHED_FIFO priority, "):
            profile_from_dict(data, "my.yaml")
    data["scenarios"]["Server"]["issue_priority"] = 1
    for name in ("SingleStream", "MultiStream"):
        wrong = {**data, "scenarios": {**data["scenarios"], name: {**data["scenarios"][name], "issue_priority": 1}}}
        with pytest.raises(ConfigError, match=rf"my.yaml: scenarios.{name}: issue_priority is for the Server "
                                              r"scenario only \(measured: "):
            profile_from_dict(wrong, "my.yaml")
    with pytest.raises(ConfigError, match=r"my.yaml: engine: issue_priority is for the Server scenario only"):
        profile_from_dict({**data, "engine": {**data["engine"], "issue_priority": 1}}, "my.yaml")
    data["scenarios"]["Server"].update(issue_priority=1, dispatch_slice_us=0, instances=2, num_threads=1,
                                       num_streams=1, infer_requests=2)
    with pytest.raises(ConfigError, match=r"issue_priority: applies to one-instance pools only"):
        profile_from_dict(data, "my.yaml")


@pytest.mark.parametrize("allowed, host_tuning, server", [(True, True, 1), (False, True, 0), (True, False, 0),
                                                          (False, False, 0)])
def test_the_host_profile_takes_it_for_server_only_with_host_tuning_where_allowed(
        monkeypatch: pytest.MonkeyPatch, allowed: bool, host_tuning: bool, server: int) -> None:
    import harness.profile

    monkeypatch.setattr(harness.profile, "realtime_allowed", lambda priority=1: allowed)
    host = load_profile("host", host_tuning=host_tuning)
    assert host.engine_for("Server").issue_priority == server
    assert [host.engine_for(s).issue_priority for s in ("Offline", "SingleStream", "MultiStream")] == [0, 0, 0]


@needs_realtime
def test_server_run_records_its_issuing_threads_under_sched_fifo(demo_int8: Path, demo_data: Path,
                                                                 cache_dir: Path, tmp_path: Path) -> None:
    proc, run = run_server_with(tmp_path, demo_int8, demo_data / "val", cache_dir, "fifo", 1000, issue_priority=1,
                                keep_awake="off")
    # LoadGen's issue thread (per-query dispatch: the only issuer) carried queries under SCHED_FIFO 1
    assert run.issue_priority == {"priority": 1, "threads": 1, "granted": [1]}
    assert run.profile.engine_for("Server").issue_priority == 1
    assert run.loadgen["result_query_count"] > 0
    assert "issue_priority: 1 issuing threads ran under SCHED_FIFO 1" in proc.stdout + proc.stderr
    # asked for by the profile's own key, not by --host-tuning; undone at the end
    assert run.host_tuning["active"] == ["issue_priority=1"] and run.host_tuning["requested"] is False
    assert run.host_tuning["undone"] is True


def test_a_process_that_may_not_use_sched_fifo_is_refused_before_the_test(demo_int8: Path, demo_data: Path,
                                                                          cache_dir: Path, tmp_path: Path) -> None:
    prefix: list[str] = []
    if realtime_allowed(1):  # privileged here: take CAP_SYS_NICE away from the child (root keeps RLIMIT_RTPRIO 0)
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("privileged process and no setpriv to drop CAP_SYS_NICE")
        prefix = [setpriv, "--bounding-set", "-sys_nice", "prlimit", "--rtprio=0", "--"]
    host = load_profile("host")
    server = dataclasses.replace(host.engine_for("Server"), issue_priority=1, keep_awake="off")
    profile = dataclasses.replace(host, name="fifo", scenarios={**host.scenarios, "Server": server})
    path = write_profile(tmp_path / "fifo.yaml", profile, "test profile: Server with issue_priority 1")
    (tmp_path / "user.conf").write_text((REPO / "user.conf").read_text())
    proc = subprocess.run([*prefix, sys.executable, "-m", "cli.main", "run", "--mode", "performance", "--scenario",
                           "Server", "--model", str(demo_int8), "--dataset", str(demo_data / "val"), "--system",
                           str(path), "--cache-dir", str(cache_dir), "--min-duration-ms", "1000", "--target-qps",
                           "200"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert re.search(r"engine.issue_priority 1: this process may not use SCHED_FIFO \(it needs root, CAP_SYS_NICE "
                     r"or an RLIMIT_RTPRIO >= 1\): run as root, or set 'issue_priority: 0' in the profile's "
                     r"scenarios.Server", errors[0]), errors[0]
    runs = list((tmp_path / "results").rglob(run_records.RESULT_FILE)) if (tmp_path / "results").exists() else []
    assert all(not RunResult.load(p.parent).valid and RunResult.load(p.parent).status == "error" for p in runs)
