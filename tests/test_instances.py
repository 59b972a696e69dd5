"""Several instances: real instance processes, real LoadGen, real OpenVINO on the demo data.

- 2 instances x 1 thread give the same label for every sample as 1 instance x 2 threads
  (Offline, and Server), and no instance process or shared bank outlives the run;
- a killed instance fails the run with exit 3 instead of hanging LoadGen;
- SIGINT during a 2-instance run: exit 130, INCOMPLETE, no process and no /dev/shm entry left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import AUTO_QPS, REPO, assert_int8_labels_agree, loadgen_started, run_cli

from common.errors import ConfigError
from common.testspec import Mode, Scenario
from harness.profile import profile_from_dict
from modelprep.card import load_card
from records import results as run_records
from records.accuracy import read_accuracy_log
from records.results import RunResult
from sut.instances import split_cores

SHM = Path("/dev/shm")
PROFILE = """\
name: two-instances
cores: 2
engine: {instances: 2, num_streams: 1, num_threads: 1, infer_requests: 2, batch_size: 16, pinning: true}
scenarios:
  Server: {instances: 2, num_streams: 1, num_threads: 1, infer_requests: 2, batch_size: 1, pinning: true}
"""


def _bank_creators() -> dict[str, int]:
    """Every shared bank, named ``mlperf-cpu-bank-<pid>-<token>``, with its creator's pid."""
    return {p.name: int(p.name.split("-")[3]) for p in SHM.glob("mlperf-cpu-bank-*")}


def _leaked() -> set[str]:
    """Banks whose creator has exited. A live creator's bank is not counted: other test runs on
    the machine may hold one right now."""
    return {name for name, pid in _bank_creators().items() if not psutil.pid_exists(pid)}


@pytest.fixture()
def two_instances(workdir: Path) -> Path:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    path = workdir / "two-instances.yaml"
    path.write_text(PROFILE)
    return path


def _run_dir(workdir: Path, system: str, model: Path, scenario: str, mode: str) -> Path:
    return run_records.run_dir(workdir / "results", system, load_card(model).label, Scenario.parse(scenario),
                        Mode.parse(mode))


def _run(workdir: Path, system: str, name: str, model: Path, demo: Path, cache: Path, mode: str,
         scenario: str = "Offline", *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    proc = run_cli(["run", "--mode", mode, "--scenario", scenario, "--model", str(model), "--dataset",
                    str(demo / "val"), "--system", system, "--cache-dir", str(cache), *extra], cwd=workdir)
    return proc, _run_dir(workdir, name, model, scenario, mode)


def _instance_children(pid: int) -> list[psutil.Process]:
    """The spawned instance processes of a CLI process (not multiprocessing's resource tracker)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for child in children:
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "multiprocessing" in cmd and "resource_tracker" not in cmd:
            out.append(child)
    return out


# ----------------------------------------------------------------------------- config
def test_instances_are_per_instance_settings_and_must_fit_the_cores() -> None:
    base = {"name": "x", "cores": 4,
            "engine": {"instances": 2, "num_streams": 2, "num_threads": 2, "infer_requests": 4, "batch_size": 8}}
    assert profile_from_dict(base, "x.yaml").engine.total_threads == 4
    with pytest.raises(ConfigError, match=r"num_threads \(3\) x instances \(2\) exceeds cores \(4\)"):
        profile_from_dict({**base, "engine": {**base["engine"], "num_threads": 3}}, "x.yaml")
    with pytest.raises(ConfigError, match="engine.instances: expected an integer >= 1"):
        profile_from_dict({**base, "engine": {**base["engine"], "instances": 0}}, "x.yaml")
    single = {"num_streams": 1, "num_threads": 2, "infer_requests": 1, "batch_size": 1, "instances": 2}
    with pytest.raises(ConfigError, match="scenarios.SingleStream: instances must be 1"):
        profile_from_dict({**base, "scenarios": {"SingleStream": single}}, "x.yaml")


def test_cores_split_into_contiguous_equal_groups() -> None:
    assert split_cores(1, 1, {0, 1}) == [[0, 1]]
    assert split_cores(2, 1, {0, 1}) == [[0], [1]]  # this host: two cores, one CPU each
    with pytest.raises(ConfigError, match="needs that many physical cores"):
        split_cores(2, 2, {0, 1})


# ----------------------------------------------------------------------------- runs
def test_two_instances_give_the_same_labels_as_one(workdir: Path, two_instances: Path, demo_int8: Path,
                                                   demo_data: Path, cache_dir: Path) -> None:
    banks = _leaked()
    one, one_dir = _run(workdir, "host", "host", demo_int8, demo_data, cache_dir, "accuracy")
    assert one.returncode == 0, one.stderr[-3000:]
    labels = read_accuracy_log(one_dir / "mlperf_log_accuracy.json")
    for scenario, extra in (("Offline", ("--performance-sample-count", "100")), ("Server", AUTO_QPS)):
        two, two_dir = _run(workdir, str(two_instances), "two-instances", demo_int8, demo_data, cache_dir,
                            "accuracy", scenario, *extra)
        assert two.returncode == 0, two.stderr[-3000:]
        assert_int8_labels_agree(read_accuracy_log(two_dir / "mlperf_log_accuracy.json"), labels,
                                 f"{scenario}, two instances against one")
        result = RunResult.load(two_dir)
        assert result.status == "ok" and not run_records.is_incomplete(two_dir)
        assert result.accuracy is not None and result.accuracy.total == len(labels)
        assert [i["cpus"] for i in result.instances] == split_cores(2, 1)
        assert len({i["pid"] for i in result.instances}) == 2
        assert result.compiled_properties["INFERENCE_NUM_THREADS"] == "1"
        assert all(not psutil.pid_exists(i["pid"]) or psutil.Process(i["pid"]).status() == psutil.STATUS_ZOMBIE
                   for i in result.instances)
    assert _leaked() == banks  # shared memory released after normal runs


def test_short_two_instance_performance_run(workdir: Path, two_instances: Path, demo_int8: Path,
                                            demo_data: Path, cache_dir: Path) -> None:
    banks = _leaked()
    proc, run_dir = _run(workdir, str(two_instances), "two-instances", demo_int8, demo_data, cache_dir,
                         "performance", "Offline", "--min-duration-ms", "2000", *AUTO_QPS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = RunResult.load(run_dir)
    assert result.samples_per_second > 0 and len(result.instances) == 2
    assert _leaked() == banks


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_started(proc: subprocess.Popen, run_dir: Path) -> list[psutil.Process]:
    """Wait until LoadGen runs (INCOMPLETE exists); the two instance processes."""
    deadline = time.monotonic() + 180
    while not loadgen_started(run_dir):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "LoadGen test never started"
        time.sleep(0.1)
    children = _instance_children(proc.pid)
    assert len(children) == 2, children
    return children


def _assert_all_gone(children: list[psutil.Process]) -> None:
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, alive


def test_killed_instance_fails_the_run_without_hanging(workdir: Path, two_instances: Path, demo_int8: Path,
                                                        demo_data: Path, cache_dir: Path) -> None:
    banks = _leaked()
    run_dir = _run_dir(workdir, "two-instances", demo_int8, "Offline", "performance")
    proc = _start(["run", "--mode", "performance", "--model", str(demo_int8), "--dataset", str(demo_data / "val"),
                   "--system", str(two_instances), "--cache-dir", str(cache_dir), "--min-duration-ms", "6000",
                   *AUTO_QPS], workdir)
    try:
        children = _wait_started(proc, run_dir)
        time.sleep(1.0)  # inside StartTest now, both instances busy with their half of the query
        children[1].kill()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "instance 1" in errors[0] and "exited with code -9" in errors[0], errors
    result = RunResult.load(run_dir)
    assert result.status == "error" and result.valid is False and run_records.is_incomplete(run_dir)
    _assert_all_gone(children)
    assert _leaked() == banks


def test_sigint_during_two_instance_run(workdir: Path, two_instances: Path, demo_int8: Path,
                                        demo_data: Path, cache_dir: Path) -> None:
    banks = _leaked()
    run_dir = _run_dir(workdir, "two-instances", demo_int8, "Offline", "performance")
    proc = _start(["run", "--mode", "performance", "--model", str(demo_int8), "--dataset", str(demo_data / "val"),
                   "--system", str(two_instances), "--cache-dir", str(cache_dir), "--min-duration-ms", "600000",
                   *AUTO_QPS], workdir)
    try:
        children = _wait_started(proc, run_dir)
        everything = psutil.Process(proc.pid).children(recursive=True)  # the resource tracker too
        assert proc.pid in _bank_creators().values()  # this run's shared bank exists while it runs
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        assert time.monotonic() - sent < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted" in (run_dir / "INCOMPLETE").read_text()
    assert RunResult.load(run_dir).status == "interrupted"
    _assert_all_gone(children)
    _assert_all_gone(everything)
    assert _leaked() == banks
