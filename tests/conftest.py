"""Shared fixtures: a real demo dataset, tiny real ONNX models, prepared IRs, and a CLI runner.

Everything is built for real in a session temp dir; LoadGen tests run the CLI in a
subprocess because LoadGen's FromConfig may be called only once per process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from onnx_builders import make_classifier  # noqa: E402

DEMO_ONNX = REPO / "models" / "weights" / "decinet_demo.onnx"
# A short run's target from the warm-up's throughput, measured for half a second (the tiny test
# models answer thousands of samples in it; a user's default is 2 s).
AUTO_QPS = ("--target-qps", "0", "--rate-seconds", "0.5")
TINY_META = {"name": "tiny.test", "input_size": 32, "mean": [127.5] * 3, "std": [64.0] * 3,
             "num_classes": 10, "trained": False}


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's folder for what every xdist worker reads and one builds (under ``built_once``):
    the demo data and the demo models. Without xdist, the session's own."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    shared.mkdir(exist_ok=True)
    return shared


@contextlib.contextmanager
def built_once(shared: Path, name: str) -> Iterator[None]:
    """Hold ``shared/<name>.lock`` while building: the first worker builds, the others then find
    it built (the demo builder and ``prepare`` both return what is already there)."""
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def demo_data(shared_dir: Path) -> Path:
    """The bundled demo dataset, built by the project's own builder (read-only in every test)."""
    from dataset.demo import build_demo_dataset

    with built_once(shared_dir, "demo"):
        return build_demo_dataset(shared_dir / "demo")


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
def demo_f32(shared_dir: Path, cache_dir: Path) -> Path:
    with built_once(shared_dir, "demo-f32"):
        return prepare_model(DEMO_ONNX, "f32", shared_dir / "models", cache_dir)


@pytest.fixture(scope="session")
def demo_int8(shared_dir: Path, cache_dir: Path, demo_data: Path) -> Path:
    with built_once(shared_dir, "demo-int8"):
        return prepare_model(DEMO_ONNX, "int8", shared_dir / "models", cache_dir, demo_data)


def compile_reference(model, core=None):
    """A model compiled for reference inference in tests: FP32 arithmetic on every CPU (an AMX host
    would otherwise run FP32 layers in bf16 by default, while the engine follows the card's f32)."""
    import openvino as ov

    return (core or ov.Core()).compile_model(str(model) if isinstance(model, Path) else model, "CPU",
                                             {"INFERENCE_PRECISION_HINT": "f32"})


# INT8 top-1 labels of the same model across batch sizes, thread counts or instances agree on at least this
# fraction of samples: INT8 kernels block (and round) differently per batch size and ISA (AVX2, VNNI, AMX),
# which may flip a near-tie between two classes; a feed that shifts or swaps samples agrees on about 10 %
# of the 10-class demo set, far below it.
MIN_INT8_LABEL_AGREEMENT = 0.99


def assert_int8_labels_agree(got, expected, what: str = "labels") -> float:
    """Every sample of ``expected`` (index -> label, or a sequence) answered exactly once in ``got``, with the
    same label on at least ``MIN_INT8_LABEL_AGREEMENT`` of them; returns the agreement."""
    expected = dict(enumerate(expected)) if not isinstance(expected, dict) else expected
    got = dict(enumerate(got)) if not isinstance(got, dict) else got
    assert sorted(got) == sorted(expected), f"{what}: answered samples differ"
    agreement = sum(int(got[i]) == int(expected[i]) for i in expected) / len(expected)
    assert agreement >= MIN_INT8_LABEL_AGREEMENT, f"{what}: INT8 labels agree on {agreement:.2%} of samples"
    return agreement


def cli_env(tmpdir: Path | None = None) -> dict[str, str]:
    """The environment of a CLI child process: this checkout on its path; ``tmpdir``: its temp dir
    (default the tests' own)."""
    return {**os.environ, "PYTHONPATH": str(REPO), **({"TMPDIR": str(tmpdir)} if tmpdir else {})}


def run_cli(args: list[str], cwd: Path, timeout: float = 300, tmpdir: Path | None = None
            ) -> subprocess.CompletedProcess:
    """Run ``python -m cli.main ARGS`` in its own process (one LoadGen test per process), with
    ``cli_env(tmpdir)``."""
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=cli_env(tmpdir),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A fresh working directory with the project's user.conf (no audit.config)."""
    (tmp_path / "user.conf").write_text((REPO / "user.conf").read_text())
    return tmp_path


def loadgen_started(run_dir: Path) -> bool:
    """True once a run's LoadGen test has started: its staging directory (or, after an interrupt,
    the run directory) carries ``INCOMPLETE``."""
    from records import results as run_records

    return any(run_records.is_incomplete(d) for d in [*run_records.attempts(run_dir), run_dir])


def run_loadgen_test(workdir: Path, mode: str, model: Path, dataset: Path, cache: Path, *extra: str,
                     scenario: str = "Offline", system: str = "host", expect_ok: bool = True):
    """One ``mlperf-cpu run`` in its own process; returns (process, its RunResult or None)."""
    from common.testspec import Mode, Scenario
    from modelprep.card import load_card
    from records import results as run_records
    from records.results import RunResult

    proc = run_cli(["run", "--mode", mode, "--scenario", scenario, "--model", str(model), "--dataset", str(dataset),
                    "--system", system, "--cache-dir", str(cache), *extra], cwd=workdir)
    run_dir = run_records.run_dir(workdir / "results", system, load_card(model).label, Scenario.parse(scenario),
                           Mode.parse(mode))
    if expect_ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = RunResult.load(run_dir)
        assert result.status == "ok" and not run_records.is_incomplete(run_dir)
        return proc, result
    return proc, (RunResult.load(run_dir) if run_records.result_path(run_dir).is_file() else None)


def run_valid_performance(workdir: Path, model: Path, dataset: Path, cache: Path, *extra: str,
                          scenario: str = "Offline", duration_ms: int = 2000, system: str = "host"):
    """A short non-official performance run that must come out VALID; returns its RunResult.

    A busy host can make one short run INVALID (Offline: the warm-up's rate was too low to fill the
    duration; Server: a latency bound missed); then it runs once more, with Offline aiming at twice the
    measured rate and Server at half its rate, as ``--replace`` of the first."""
    def run(*more: str):
        return run_loadgen_test(workdir, "performance", model, dataset, cache, "--min-duration-ms", str(duration_ms),
                                *extra, *more, scenario=scenario, system=system)[1]

    result = run(*AUTO_QPS)
    if result.validity != "VALID":
        rate = 0.0  # latency scenarios: the same settings once more
        if scenario == "Offline" and result.samples_per_second:
            rate = 2 * result.samples_per_second
        elif scenario == "Server" and result.target_qps:
            rate = 0.5 * result.target_qps
        result = run("--target-qps", f"{rate:.3f}", "--replace")
    assert result.validity == "VALID", f"{scenario}: two short runs INVALID: {result.invalid_because()}"
    return result


DEMO_RUN_SCENARIOS = ("Offline", "SingleStream", "MultiStream", "Server")


@pytest.fixture(scope="session")
def demo_runs(demo_int8: Path, demo_data: Path, cache_dir: Path, session_dir: Path) -> dict:
    """One results tree of the INT8 demo model per session, shared by the scenario, compliance, rules and
    summary tests: an accuracy run and a short VALID performance run in every scenario (Offline 2 s, the
    latency scenarios 1.5 s). ``{scenario: {"accuracy": RunResult, "performance": RunResult}}``; the tree
    is read-only: a test that adds or edits runs copies it first."""
    work = session_dir / "demo-runs"
    work.mkdir()
    (work / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    runs = {}
    for scenario in DEMO_RUN_SCENARIOS:
        # Server accuracy queries arrive at target_qps: take it from the warm-up (no tuned user.conf here).
        extra = AUTO_QPS if scenario == "Server" else ()
        runs[scenario] = {
            "accuracy": run_loadgen_test(work, "accuracy", demo_int8, demo_data / "val", cache_dir, *extra,
                                         scenario=scenario)[1],
            "performance": run_valid_performance(work, demo_int8, demo_data / "val", cache_dir, scenario=scenario,
                                                 duration_ms=2000 if scenario == "Offline" else 1500)}
    return runs


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
    from records import results as run_records
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
    return proc, RunResult.load(run_records.run_dir(workdir / "results", name, load_card(model).label, Scenario.SERVER,
                                             Mode.PERFORMANCE))


def undo_while_held(claim, read) -> tuple[int, list]:
    """A thread makes ``claim`` and keeps running while the test undoes it: what ``claim.undo()``
    returned, and ``read()`` on that thread just after claiming and again after the undo."""
    import threading

    claimed, release, seen = threading.Event(), threading.Event(), []

    def worker() -> None:
        claim()
        seen.append(read())
        claimed.set()
        release.wait(10)
        seen.append(read())

    thread = threading.Thread(target=worker)
    thread.start()
    assert claimed.wait(10)
    undone = claim.undo()
    release.set()
    thread.join()
    return undone, seen


@pytest.fixture(scope="session")
def official(session_dir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> Path:
    """Real runs of the demo model edited to look official (``packaged_tree.official_runs``): one build
    per session, shared by the package and check tests."""
    from packaged_tree import official_runs

    return official_runs(session_dir, demo_f32, demo_data, cache_dir)


@pytest.fixture()
def runs(official: Path, tmp_path: Path) -> dict[str, Path]:
    """A private copy of the official-looking runs: package and tamper freely."""
    from packaged_tree import copy_runs

    return copy_runs(official, tmp_path)


# How ./run_tests.sh spreads the files over two xdist workers: each file stays on one worker (its
# module fixtures are built once); the files below stay together too. The files that read a session
# results tree ("demo_runs", "official") build it once that way; the files that change the host's
# scheduler or power settings must not run beside each other (the settings are host-wide).
SHARED_TREES = ("demo_runs", "official")
SHARED_TREE_FILES = {"test_check_foreign_tree", "test_check_refusals", "test_compliance", "test_detection_submission",
                     "test_harness_e2e", "test_official_checker", "test_rules_agreement", "test_scenarios",
                     "test_submission", "test_trained_weights", "test_tune_report"}
HOST_CONTROL_FILES = {"test_host_tuning", "test_keepawake", "test_no_shadowing", "test_profile",
                      "test_threadpriority", "test_threadslice"}
# Started right after the shared trees, so that no worker ends the run alone on a long file.
LONG_FILES = ("tests/test_train.py", "tests/test_server_search.py")


def worker_group(test_file: str) -> str:
    """The xdist work unit of a test file (a path as in a node id)."""
    stem = Path(test_file).stem
    return ("shared-trees" if stem in SHARED_TREE_FILES else "host-controls" if stem in HOST_CONTROL_FILES
            else test_file)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's by-file scheduling, with the groups of ``worker_group``."""
    from xdist.scheduler import LoadFileScheduling

    class FileGroups(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid.split("::", 1)[0])

        def _assign_work_unit(self, node: object) -> None:
            for scope in reversed(("shared-trees", *LONG_FILES)):  # then by test count, largest first
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return FileGroups(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep ``SHARED_TREE_FILES`` true: a file that reads a shared results tree and is not listed
    would build it again on the other worker."""
    unlisted = sorted({Path(str(item.path)).stem for item in items
                       if set(getattr(item, "fixturenames", ())).intersection(SHARED_TREES)} - SHARED_TREE_FILES)
    if unlisted:
        raise pytest.UsageError(f"tests/conftest.py: add {', '.join(unlisted)} to SHARED_TREE_FILES (they read a "
                                f"shared results tree: {', '.join(SHARED_TREES)})")
