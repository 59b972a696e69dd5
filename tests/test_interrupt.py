"""SIGINT during a performance run stops within seconds and marks the run directory incomplete."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import AUTO_QPS, cli_env, loadgen_started

from common.testspec import Mode, Scenario
from modelprep.card import load_card
from records import results as run_records
from records.results import RunResult


@pytest.mark.parametrize("mode, scenario", [("performance", "Offline"), ("TEST01", "Offline"),
                                            ("performance", "SingleStream")])
def test_sigint_marks_run_incomplete(workdir: Path, demo_int8: Path, demo_data: Path, cache_dir: Path,
                                     mode: str, scenario: str) -> None:
    run_dir = run_records.run_dir(workdir / "results", "host", load_card(demo_int8).label, Scenario.parse(scenario),
                           Mode.parse(mode))
    private_tmp = workdir / "tmp"  # the run's own temp dir: other tests' runs write audit configs too
    private_tmp.mkdir()
    proc = _start(["run", "--mode", mode, "--scenario", scenario, "--model", str(demo_int8),
                   "--dataset", str(demo_data / "val"), "--system", "host", "--cache-dir", str(cache_dir),
                   "--min-duration-ms", "600000", *AUTO_QPS], workdir, tmpdir=private_tmp)
    try:
        _signal_inside_loadgen(proc, run_dir, signal.SIGINT)
    finally:
        _stop(proc)
    assert proc.returncode == 130
    assert "interrupted" in (run_dir / "INCOMPLETE").read_text()
    result = RunResult.load(run_dir)
    assert result.status == "interrupted" and result.valid is False and result.submittable is False
    # No audit config survives an interrupted compliance run (it lives in the temp dir only).
    assert not list(private_tmp.glob("mlperf-cpu-TEST*"))


def test_sigterm_marks_run_incomplete(workdir: Path, demo_int8: Path, demo_data: Path, cache_dir: Path) -> None:
    run_dir = run_records.run_dir(workdir / "results", "host", load_card(demo_int8).label, Scenario.OFFLINE,
                           Mode.PERFORMANCE)
    proc = _start(["run", "--mode", "performance", "--model", str(demo_int8), "--dataset", str(demo_data / "val"),
                   "--system", "host", "--cache-dir", str(cache_dir), "--min-duration-ms", "600000",
                   "--target-qps", "1000"], workdir)
    try:
        _signal_inside_loadgen(proc, run_dir, signal.SIGTERM)
    finally:
        _stop(proc)
    assert proc.returncode == 130
    assert "interrupted" in (run_dir / "INCOMPLETE").read_text()
    result = RunResult.load(run_dir)
    assert result.status == "interrupted" and result.valid is False and result.submittable is False


# ----------------------------------------------------------------------------- before LoadGen starts
class _Watched:
    """A CLI process whose stderr is read line by line on a thread, so a test can wait for a log line."""

    def __init__(self, args: list[str], cwd: Path, sigint_ignored: bool = False) -> None:
        self.proc = _start(args, cwd, sigint_ignored)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)[-3000:]
            assert time.monotonic() < deadline, f"never logged {text!r}"
            time.sleep(0.02)

    def interrupt_and_wait(self, timeout: float) -> float:
        """SIGINT; the seconds until the process exited."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=timeout)
        self._reader.join(5)
        return time.monotonic() - sent


def _start(args: list[str], cwd: Path, sigint_ignored: bool = False, tmpdir: Path | None = None) -> subprocess.Popen:
    """The CLI in a child process; ``sigint_ignored``: started as a shell starts a background job;
    ``tmpdir``: its temp dir."""
    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=cwd, env=cli_env(tmpdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignore_sigint if sigint_ignored else None)


def _signal_inside_loadgen(proc: subprocess.Popen, run_dir: Path, sig: int) -> None:
    """Wait until the run's LoadGen test has started, send ``sig``; the process must end within 10 s."""
    deadline = time.monotonic() + 120
    while not loadgen_started(run_dir):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "LoadGen test never started"
        time.sleep(0.1)
    time.sleep(1.0)  # inside StartTest now
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=15)
    assert time.monotonic() - sent < 10


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# ~20 ms each to decode and resize, on as many workers as CPUs (dataset.cache): 400 per CPU make a fill of
# several seconds on any host, 2 cores or 32.
IMAGES = 400 * max(2, os.cpu_count() or 1)


@pytest.fixture(scope="module")
def slow_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """IMAGES hard links to one large noisy JPEG (distinct names: each is its own sample)."""
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp("slow") / "val"
    root.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    master = root.parent / "master.JPEG"
    assert cv2.imwrite(str(master), noise, [cv2.IMWRITE_JPEG_QUALITY, 90])
    lines = []
    for i in range(IMAGES):
        name = f"SLOW_val_{i:05d}.JPEG"
        os.link(master, root / name)
        lines.append(f"{name} {i % 10}")
    (root / "val_map.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def tiny_model(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import prepare_model

    tmp = tmp_path_factory.mktemp("tiny-model")
    return prepare_model(tiny_onnx, "f32", tmp / "m", tmp / "c")


def _assert_no_result_claims_ok(run_dir: Path) -> None:
    if run_records.result_path(run_dir).is_file():
        result = RunResult.load(run_dir)
        assert result.status != "ok" and result.valid is False and result.submittable is False


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "started-as-background-job"])
def test_sigint_during_preprocessing_stops_promptly_and_leaves_no_partial(
        workdir: Path, tiny_model: Path, slow_dataset: Path, tmp_path: Path, sigint_ignored: bool) -> None:
    cache = tmp_path / "fresh-cache"
    run = _Watched(["run", "--mode", "accuracy", "--model", str(tiny_model), "--dataset", str(slow_dataset),
                    "--system", "host", "--cache-dir", str(cache)], workdir, sigint_ignored)
    try:
        run.wait_for("Preprocessing")
        deadline = time.monotonic() + 30
        while not list(cache.glob("*.partial")):  # the fill has started
            assert run.proc.poll() is None, "".join(run.lines)[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(1.0)
        assert run.proc.poll() is None, "the fill ended before the signal: make the dataset slower"
        elapsed = run.interrupt_and_wait(timeout=30)
    finally:
        _stop(run.proc)
    # Finishing the fill would take several more seconds; the chunks not started are dropped.
    assert run.proc.returncode == 130 and elapsed < 4.0, (run.proc.returncode, elapsed)
    assert sum(line.startswith("ERROR") for line in run.lines) == 1
    assert not list(cache.glob("*.partial")) and not list(cache.glob("*.u8")) and not list(cache.glob("*.json"))
    run_dir = run_records.run_dir(workdir / "results", "host", load_card(tiny_model).label, Scenario.OFFLINE,
                                  Mode.ACCURACY)
    _assert_no_result_claims_ok(run_dir)


def test_sigint_around_compile_stops_promptly(workdir: Path, demo_int8: Path, demo_data: Path,
                                              cache_dir: Path, tmp_path: Path) -> None:
    """SIGINT as soon as the log says 'Compiling model' (it lands in compile or just after it)."""
    run = _Watched(["run", "--mode", "performance", "--model", str(demo_int8), "--dataset", str(demo_data / "val"),
                    "--system", "host", "--cache-dir", str(cache_dir), "--min-duration-ms", "600000",
                    *AUTO_QPS], workdir)
    try:
        run.wait_for("Compiling model")
        elapsed = run.interrupt_and_wait(timeout=30)
    finally:
        _stop(run.proc)
    assert run.proc.returncode == 130 and elapsed < 10, (run.proc.returncode, elapsed, "".join(run.lines)[-2000:])
    assert not list(cache_dir.glob("*.partial"))
    run_dir = run_records.run_dir(workdir / "results", "host", load_card(demo_int8).label, Scenario.OFFLINE,
                           Mode.PERFORMANCE)
    _assert_no_result_claims_ok(run_dir)
