"""The directory a user runs from cannot replace the harness's modules in the processes it starts.

A hostile working directory holds packages named like the harness's (``cli``, ``common``, ``sut``,
``hostctl``, ...) that write a marker when imported. Commands run from there, started as
``run_offline.sh`` starts them (``python -P -m cli``), start their own children (the LoadGen test
processes of ``pipeline``, the keep-awake loops); none of them may import a hostile module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, TINY_META
from onnx_builders import make_classifier

SHADOWED = ("cli", "common", "sut", "hostctl", "harness", "modelprep", "records", "pipeline", "multiprocessing")


@pytest.fixture()
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """(a working directory full of look-alike packages, the marker file they write when imported)."""
    cwd, marker = tmp_path / "hostile", tmp_path / "marker.txt"
    for name in SHADOWED:
        package = cwd / name
        package.mkdir(parents=True)
        for module in ("__init__.py", "__main__.py", "keepawake.py"):
            (package / module).write_text(f"with open({str(marker)!r}, 'a') as fh:\n    fh.write(__name__ + '\\n')\n")
    return cwd, marker


def _written(marker: Path) -> list[str]:
    return marker.read_text().split() if marker.is_file() else []


def test_pipeline_children_use_the_harness(hostile: tuple[Path, Path], demo_data: Path, tmp_path: Path) -> None:
    """``pipeline`` prepares the model and runs its LoadGen test in a child ``python -m cli run``."""
    cwd, marker = hostile
    model = make_classifier(tmp_path / "tiny.onnx", metadata=TINY_META)
    (cwd / "user.conf").write_text((REPO / "user.conf").read_text())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONSAFEPATH", None)  # the children must be safe without help from the test's environment
    proc = subprocess.run([sys.executable, "-P", "-m", "cli", "pipeline", "--model", str(model),
                           "--dataset", str(demo_data / "val"), "--precision", "f32", "--mode", "accuracy",
                           "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((tmp_path / "results").rglob("accuracy.txt")), "the child run did not run"
    assert _written(marker) == []


def test_keep_awake_loops_use_the_harness(hostile: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The busy loops are ``python -m hostctl.keepawake`` children, started from the current directory."""
    from hostctl.keepawake import BusyLoops

    cwd, marker = hostile
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    cpu = min(os.sched_getaffinity(0))
    with BusyLoops([cpu]) as loops:
        pid = loops.pids[0]
        deadline = time.monotonic() + 30
        # The real loop demotes itself to SCHED_IDLE once its module runs; a hostile one would not.
        while time.monotonic() < deadline and not _written(marker) and Path(f"/proc/{pid}").exists():
            if os.sched_getscheduler(pid) == os.SCHED_IDLE:
                break
            time.sleep(0.05)
        assert _written(marker) == []
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert _written(marker) == []
