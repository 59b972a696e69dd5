"""SIGINT during a performance run stops within seconds and marks the run directory incomplete."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO

from sut.card import load_card


@pytest.mark.parametrize("mode, sub", [("performance", "performance/run_1"),
                                       ("TEST01", "TEST01/performance/run_1")])
def test_sigint_marks_run_incomplete(workdir: Path, demo_int8: Path, demo_data: Path, cache_dir: Path,
                                     mode: str, sub: str) -> None:
    card = load_card(demo_int8)
    run_dir = workdir / "results" / "host" / f"{card.name}-int8" / "Offline" / sub
    audits_before = set(Path(tempfile.gettempdir()).glob("mlperf-cpu-TEST*"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sut.cli", "run", "--mode", mode, "--model", str(demo_int8),
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
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and result["valid"] is False
    # No audit config survives an interrupted compliance run, in the temp dir or anywhere in the work dir.
    assert set(Path(tempfile.gettempdir()).glob("mlperf-cpu-TEST*")) == audits_before
    assert not list(workdir.rglob("audit.config"))
