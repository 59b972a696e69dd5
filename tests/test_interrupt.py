"""SIGINT during a performance run stops within seconds and marks the run directory incomplete."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO

from common.testspec import Mode, Scenario
from modelprep.card import load_card
from records import results as tree
from records.results import RunResult


@pytest.mark.parametrize("mode", ["performance", "TEST01"])
def test_sigint_marks_run_incomplete(workdir: Path, demo_int8: Path, demo_data: Path, cache_dir: Path,
                                     mode: str) -> None:
    run_dir = tree.run_dir(workdir / "results", "host", load_card(demo_int8).label, Scenario.OFFLINE,
                           Mode.parse(mode))
    audits_before = set(Path(tempfile.gettempdir()).glob("mlperf-cpu-TEST*"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--mode", mode, "--model", str(demo_int8),
         "--dataset", str(demo_data / "val"), "--system", "host", "--cache-dir", str(cache_dir),
         "--min-duration-ms", "600000", "--target-qps", "0"],
        cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "INCOMPLETE").exists():
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "LoadGen test never started"
            time.sleep(0.1)
        time.sleep(1.0)  # inside StartTest now
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        assert time.monotonic() - sent < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in (run_dir / "INCOMPLETE").read_text()
    result = RunResult.load(run_dir)
    assert result.status == "interrupted" and result.valid is False and result.submittable is False
    # No audit config survives an interrupted compliance run (it lives in the temp dir only).
    assert set(Path(tempfile.gettempdir()).glob("mlperf-cpu-TEST*")) == audits_before
