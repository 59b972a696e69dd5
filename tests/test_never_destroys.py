"""A later command never destroys an earlier result; replacing one needs --replace; writes are atomic.

Real ``run`` processes (LoadGen, OpenVINO) on the demo model; every file of the results tree is
hashed before and after the command that must leave it alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AUTO_QPS, REPO, run_cli, run_loadgen_test

from common.errors import ConfigError
from common.loadgen_conf import parse_user_conf, set_value
from common.testspec import Mode, Overrides, Scenario
from records import results as run_records
from records.results import RunResult, find_results
from records.summary import collect


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path (hidden ones too)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _run(workdir: Path, model: Path, dataset: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(["run", "--mode", "accuracy", "--model", str(model), "--dataset", str(dataset), "--system", "host",
                    "--cache-dir", str(cache), *extra], cwd=workdir)


def _errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]


@pytest.fixture(scope="module")
def accuracy_run(demo_f32: Path, demo_data: Path, cache_dir: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory holding one real, complete accuracy run."""
    work = tmp_path_factory.mktemp("never-destroys")
    (work / "user.conf").write_text((REPO / "user.conf").read_text())
    run_loadgen_test(work, "accuracy", demo_f32, demo_data / "val", cache_dir)
    return work


@pytest.fixture()
def work(accuracy_run: Path, tmp_path: Path) -> Path:
    """A private copy of the working directory with the complete run."""
    copy = tmp_path / "work"
    shutil.copytree(accuracy_run, copy)
    return copy


def _run_dir(work: Path, model: Path) -> Path:
    from modelprep.card import load_card

    return run_records.run_dir(work / "results", "host", load_card(model).label, Scenario.OFFLINE, Mode.ACCURACY)


def test_failed_rerun_with_bad_val_map_leaves_the_run_byte_identical(work: Path, demo_f32: Path, demo_data: Path,
                                                                     cache_dir: Path, tmp_path: Path) -> None:
    before = snapshot(work / "results")
    assert {"accuracy.txt", "mlperf_log_accuracy.json", "mlperf_log_detail.txt", "result.json"} <= \
        {Path(name).name for name in before}
    bad = tmp_path / "val_map.txt"
    lines = (demo_data / "val" / "val_map.txt").read_text().splitlines()
    bad.write_text("\n".join([lines[0].split()[0] + " x", *lines[1:]]) + "\n")
    for extra in ([], ["--replace"]):  # refused as a rerun, and as a bad input when the rerun is asked for
        proc = _run(work, demo_f32, demo_data / "val", cache_dir, "--val-map", str(bad), *extra)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert len(_errors(proc)) == 1
        assert snapshot(work / "results") == before
    assert "label 'x' is not an integer" in _errors(proc)[0] and f"{bad}:1" in _errors(proc)[0]


def test_rerun_without_replace_is_refused_naming_the_directory(work: Path, demo_f32: Path, demo_data: Path,
                                                               cache_dir: Path) -> None:
    before = snapshot(work / "results")
    proc = _run(work, demo_f32, demo_data / "val", cache_dir)
    assert proc.returncode == 2, proc.stderr[-2000:]
    [error] = _errors(proc)
    assert f"{_run_dir(work, demo_f32).relative_to(work)}: holds a complete run" in error and "--replace" in error
    assert "[Step 2/" not in proc.stderr  # refused before any work
    assert snapshot(work / "results") == before


def test_replace_that_fails_midway_keeps_the_earlier_run_and_the_attempt_aside(
        work: Path, demo_f32: Path, demo_data: Path, tmp_path: Path) -> None:
    """--replace, then a missing image found while preprocessing (after the staging directory
    exists): the earlier run stays byte-identical; the attempt is kept hidden, with its error
    record and INCOMPLETE, and nothing that reads the tree sees it."""
    val = tmp_path / "val"
    shutil.copytree(demo_data / "val", val)
    (val / (val / "val_map.txt").read_text().split()[10]).unlink()
    run_dir = _run_dir(work, demo_f32)
    before = snapshot(work / "results")
    proc = _run(work, demo_f32, val, tmp_path / "cache", "--replace")
    assert proc.returncode == 2 and "missing" in _errors(proc)[0], proc.stderr[-2000:]
    [attempt] = run_records.attempts(run_dir)
    assert {k: v for k, v in snapshot(work / "results").items() if attempt.name not in k} == before
    assert run_records.is_incomplete(attempt)
    failed = RunResult.load(attempt)
    assert failed.status == "error" and "missing" in failed.error and failed.directory == attempt.resolve()
    assert find_results(work / "results") == [run_records.result_path(run_dir)]
    assert [r.status for r in collect(work / "results")] == ["ok"]


def test_replace_swaps_the_new_run_in_when_it_is_checked(work: Path, demo_f32: Path, demo_data: Path,
                                                         cache_dir: Path) -> None:
    run_dir = _run_dir(work, demo_f32)
    old = RunResult.load(run_dir)
    proc = _run(work, demo_f32, demo_data / "val", cache_dir, "--replace")
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = RunResult.load(run_dir)
    assert new.status == "ok" and not run_records.is_incomplete(run_dir)
    assert new.directory == run_dir.resolve() and "--replace" in new.command and "--replace" not in old.command
    assert run_records.attempts(run_dir) == [] and not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]


def test_interrupted_replace_keeps_the_earlier_performance_run(work: Path, demo_f32: Path, demo_data: Path,
                                                                cache_dir: Path) -> None:
    """SIGINT inside LoadGen during --replace: exit 130, the earlier run byte-identical, the
    interrupted attempt kept hidden beside it (INCOMPLETE, status interrupted)."""
    import os
    import signal
    import time

    short = ("--min-duration-ms", "1000", "--min-query-count", "1", *AUTO_QPS)
    run_loadgen_test(work, "performance", demo_f32, demo_data / "val", cache_dir, *short)
    run_dir = run_records.run_dir(work / "results", "host", RunResult.load(_run_dir(work, demo_f32)).model_label,
                           Scenario.OFFLINE, Mode.PERFORMANCE)
    before = snapshot(work / "results")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "run", "--mode", "performance", "--model", str(demo_f32),
                             "--dataset", str(demo_data / "val"), "--system", "host", "--cache-dir", str(cache_dir),
                             "--min-duration-ms", "600000", *AUTO_QPS, "--replace"], cwd=work,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(run_records.is_incomplete(a) for a in run_records.attempts(run_dir)):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "LoadGen test never started"
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    [attempt] = run_records.attempts(run_dir)
    assert {k: v for k, v in snapshot(work / "results").items() if attempt.name not in k} == before
    assert "interrupted" in (attempt / run_records.INCOMPLETE).read_text()
    assert RunResult.load(attempt).status == "interrupted"
    assert RunResult.load(run_dir).status == "ok" and RunResult.load(run_dir).validity is not None


def test_failed_first_run_is_kept_in_its_run_directory_and_replaced_without_flag(
        workdir: Path, demo_f32: Path, demo_data: Path, tmp_path: Path, cache_dir: Path) -> None:
    """Nothing complete to protect: the failed attempt's error record shows where the run belongs
    (summary lists it), and the next run replaces it without --replace."""
    val = tmp_path / "val"
    shutil.copytree(demo_data / "val", val)
    (val / (val / "val_map.txt").read_text().split()[0]).write_bytes(b"not a jpeg")
    run_dir = _run_dir(workdir, demo_f32)
    proc = _run(workdir, demo_f32, val, tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert RunResult.load(run_dir).status == "error" and run_records.is_incomplete(run_dir)
    assert run_records.attempts(run_dir) == []
    proc = _run(workdir, demo_f32, demo_data / "val", cache_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert RunResult.load(run_dir).status == "ok" and not run_records.is_incomplete(run_dir)


# ----------------------------------------------------------------------------- pipeline steps
def test_pipeline_step_reuses_a_run_of_the_same_settings_and_stops_on_other_ones(
        work: Path, demo_f32: Path, demo_data: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.flows import TestSpec, Workspace, run_step

    monkeypatch.chdir(work)
    ws = Workspace(work=work / "w", results=work / "results")
    spec = TestSpec(Mode.ACCURACY, demo_f32, demo_data / "val", "host", ws, work / "user.conf")
    before = snapshot(work / "results")
    reused = run_step(spec, replace=False)
    assert reused.status == "ok" and snapshot(work / "results") == before
    (work / "user.conf").write_text((work / "user.conf").read_text() + "# edited\n")
    with pytest.raises(ConfigError, match=r"accuracy.*user.conf.*--replace"):
        run_step(spec, replace=False)
    other = TestSpec(Mode.ACCURACY, demo_f32, demo_data / "val", "host", ws, work / "user.conf",
                     overrides=Overrides(performance_sample_count=100))
    with pytest.raises(ConfigError, match=r"overrides.*--replace"):
        run_step(other, replace=False)
    assert snapshot(work / "results") == before


# ----------------------------------------------------------------------------- user.conf, profiles
def test_user_conf_edit_is_atomic_with_a_backup(tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    original = "# mine\nresnet50.Offline.target_qps = 10.0\n"
    conf.write_text(original)
    backup = set_value(conf, "resnet50", "Offline", "target_qps", 123.4)
    assert backup is not None and backup.parent == tmp_path and backup.name.startswith("user.conf.bak-")
    assert backup.read_text() == original
    assert [e.value for e in parse_user_conf(conf)] == [123.4] and conf.read_text().startswith("# mine\n")
    assert set_value(conf, "resnet50", "Offline", "target_qps", 123.4) is None  # unchanged: nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["user.conf", backup.name])


@pytest.mark.parametrize("scenario", ["Offline", "SingleStream", "Server"])
def test_tune_refuses_to_write_over_a_shipped_profile(workdir: Path, demo_f32: Path, demo_data: Path,
                                                      scenario: str) -> None:
    shipped = REPO / "configs" / "c6i.2xlarge.yaml"
    before = shipped.read_bytes()
    proc = run_cli(["tune", "--model", str(demo_f32), "--system", "host", "--name", "c6i.2xlarge",
                    "--scenario", scenario, "--dataset", str(demo_data / "val"), "--seconds", "0.5"], cwd=workdir)
    assert proc.returncode == 2, proc.stderr[-2000:]
    [error] = _errors(proc)
    assert str(shipped) in error and "--replace" in error
    assert shipped.read_bytes() == before
    assert (workdir / "user.conf").read_text() == (REPO / "user.conf").read_text()


# ----------------------------------------------------------------------------- image cache
def test_truncated_cache_is_rebuilt_with_a_warning(demo_data: Path, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from dataset.cache import build_cache
    from dataset.preprocess import PreprocessSpec, preprocess_file
    from dataset.val_map import parse_val_map

    val = demo_data / "val"
    samples = parse_val_map(val / "val_map.txt")[:20]
    spec = PreprocessSpec(input_size=32)
    info = build_cache(val, samples, spec, tmp_path, workers=1, progress=False)
    full = info.data_path.stat().st_size
    with info.data_path.open("r+b") as fh:
        fh.truncate(full - 100)
    with caplog.at_level("WARNING"):
        again = build_cache(val, samples, spec, tmp_path, workers=1, progress=False)
    assert any("rebuilding" in r.getMessage() and str(full - 100) in r.getMessage() for r in caplog.records)
    assert again.data_path.stat().st_size == full
    np_data = again.open()
    assert (np_data[19] == preprocess_file(val / samples[19].name, spec)).all()
    assert not list(tmp_path.glob("*.partial"))


def test_two_builds_of_one_key_at_once_both_give_the_right_cache(demo_data: Path, tmp_path: Path) -> None:
    """Each build writes a partial file of its own, so neither truncates the other's."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from dataset.cache import build_cache; from dataset.preprocess import PreprocessSpec; "
            "from dataset.val_map import parse_val_map; v = Path(sys.argv[2]); "
            "i = build_cache(v, parse_val_map(v / 'val_map.txt')[:200], PreprocessSpec(input_size=32), "
            "Path(sys.argv[3]), workers=1, progress=False); print(i.data_path)")
    args = [sys.executable, "-c", code, str(REPO), str(demo_data / "val"), str(tmp_path / "c")]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    from dataset.cache import build_cache
    from dataset.preprocess import PreprocessSpec, preprocess_file
    from dataset.val_map import parse_val_map

    samples = parse_val_map(demo_data / "val" / "val_map.txt")[:200]
    info = build_cache(demo_data / "val", samples, PreprocessSpec(input_size=32), tmp_path / "c", progress=False)
    data = info.open()
    for i in (0, 99, 199):
        assert (data[i] == preprocess_file(demo_data / "val" / samples[i].name, PreprocessSpec(input_size=32))).all()
    assert not list((tmp_path / "c").glob("*.partial"))
    assert json.loads((tmp_path / "c" / f"{info.key}.json").read_text())["count"] == 200


def test_partial_files_of_dead_builds_are_removed_and_live_ones_kept(demo_data: Path, tmp_path: Path) -> None:
    import os

    from dataset.cache import build_cache, cache_key
    from dataset.preprocess import PreprocessSpec
    from dataset.val_map import parse_val_map

    val = demo_data / "val"
    samples = parse_val_map(val / "val_map.txt")[:10]
    spec = PreprocessSpec(input_size=32)
    key = cache_key(val, samples, spec)
    tmp_path.joinpath("c").mkdir()
    dead = tmp_path / "c" / f"{key}.u8.999999999-0badc0de.partial"  # no such process
    live = tmp_path / "c" / f"{key}.u8.{os.getpid()}-0badc0de.partial"  # a build still running
    for path in (dead, live):
        path.write_bytes(b"\xff" * 10)
    build_cache(val, samples, spec, tmp_path / "c", workers=1, progress=False)
    assert not dead.exists() and live.read_bytes() == b"\xff" * 10


def test_profile_rewrite_is_atomic_with_a_backup(tmp_path: Path) -> None:
    from harness.profile import load_profile
    from harness.tune import write_profile

    host = load_profile("host")
    path = tmp_path / "configs" / "mine-tuned.yaml"
    write_profile(path, host, "first")
    first = path.read_text()
    write_profile(path, host, "second")
    [backup] = [p for p in path.parent.iterdir() if p.name.startswith("mine-tuned.yaml.bak-")]
    assert backup.read_text() == first and path.read_text().startswith("# second\n")
    assert load_profile(str(path), check_fits=False).engine == host.engine
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, backup.name])  # no temp file left
