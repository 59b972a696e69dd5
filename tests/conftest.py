"""Shared fixtures: a real demo dataset, tiny real ONNX models, prepared IRs, and a CLI runner.

Everything is built for real in a session temp dir; LoadGen tests run the CLI in a
subprocess because LoadGen's FromConfig may be called only once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from onnx_builders import make_classifier  # noqa: E402

DEMO_ONNX = REPO / "models" / "weights" / "decinet_demo.onnx"
TINY_META = {"name": "tiny.test", "input_size": 32, "mean": [127.5] * 3, "std": [64.0] * 3,
             "num_classes": 10, "trained": False}


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def demo_data(session_dir: Path) -> Path:
    """The bundled demo dataset, built by the project's own builder."""
    from dataset.demo import build_demo_dataset

    return build_demo_dataset(session_dir / "demo")


@pytest.fixture(scope="session")
def cache_dir(session_dir: Path) -> Path:
    return session_dir / "cache"


@pytest.fixture(scope="session")
def tiny_onnx(session_dir: Path) -> Path:
    return make_classifier(session_dir / "tiny.onnx", metadata=TINY_META)


def prepare_model(source: Path, precision: str, out: Path, cache: Path, demo: Path | None = None,
                  layout: str = "NCHW") -> Path:
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    calib = None
    if precision == "int8":
        calib = CalibrationConfig(demo / "train", demo / "cal_list.txt")
    return prepare(PrepareRequest(source, precision, out, cache, layout, calib))


@pytest.fixture(scope="session")
def demo_f32(session_dir: Path, cache_dir: Path) -> Path:
    return prepare_model(DEMO_ONNX, "f32", session_dir / "models", cache_dir)


@pytest.fixture(scope="session")
def demo_int8(session_dir: Path, cache_dir: Path, demo_data: Path) -> Path:
    return prepare_model(DEMO_ONNX, "int8", session_dir / "models", cache_dir, demo_data)


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m cli.main ARGS`` in its own process (one LoadGen test per process)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A fresh working directory with the project's user.conf (no audit.config)."""
    (tmp_path / "user.conf").write_text((REPO / "user.conf").read_text())
    return tmp_path


def loadgen_started(run_dir: Path) -> bool:
    """True once a run's LoadGen test has started: its staging directory (or, after an interrupt,
    the run directory) carries ``INCOMPLETE``."""
    from records import results as tree

    return any(tree.is_incomplete(d) for d in [*tree.attempts(run_dir), run_dir])


def run_loadgen_test(workdir: Path, mode: str, model: Path, dataset: Path, cache: Path, *extra: str,
                     scenario: str = "Offline", system: str = "host", expect_ok: bool = True):
    """One ``mlperf-cpu run`` in its own process; returns (process, its RunResult or None)."""
    from common.testspec import Mode, Scenario
    from modelprep.card import load_card
    from records import results as tree
    from records.results import RunResult

    proc = run_cli(["run", "--mode", mode, "--scenario", scenario, "--model", str(model), "--dataset", str(dataset),
                    "--system", system, "--cache-dir", str(cache), *extra], cwd=workdir)
    run_dir = tree.run_dir(workdir / "results", system, load_card(model).label, Scenario.parse(scenario),
                           Mode.parse(mode))
    if expect_ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = RunResult.load(run_dir)
        assert result.status == "ok" and not tree.is_incomplete(run_dir)
        return proc, result
    return proc, (RunResult.load(run_dir) if tree.result_path(run_dir).is_file() else None)


def run_server_with(workdir: Path, model: Path, dataset: Path, cache: Path, name: str, duration_ms: int,
                    **server_changes: object):
    """A short non-official Server performance run (200 qps) on the host profile with its Server
    engine changed by ``server_changes``, written to ``<workdir>/<name>.yaml``; the run must
    finish (exit 0, VALID or not). Returns (process, its RunResult)."""
    import dataclasses

    from common.testspec import Mode, Scenario
    from harness.profile import load_profile
    from harness.tune import write_profile
    from modelprep.card import load_card
    from records import results as tree
    from records.results import RunResult

    host = load_profile("host")
    server = dataclasses.replace(host.engine_for("Server"), **server_changes)
    profile = dataclasses.replace(host, name=name, scenarios={**host.scenarios, "Server": server})
    path = write_profile(workdir / f"{name}.yaml", profile, f"test profile: Server with {server_changes}")
    (workdir / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    proc, _ = run_loadgen_test(workdir, "performance", model, dataset, cache,
                               "--min-duration-ms", str(duration_ms), "--target-qps", "200", "--min-query-count", "1",
                               scenario="Server", system=str(path), expect_ok=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, RunResult.load(tree.run_dir(workdir / "results", name, load_card(model).label, Scenario.SERVER,
                                             Mode.PERFORMANCE))
