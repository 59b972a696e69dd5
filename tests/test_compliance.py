"""TEST01/TEST04 compliance runs on the demo model, and the verification logic on real logs."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import AUTO_QPS, run_cli

from common.testspec import Mode, Scenario
from modelprep.card import load_card
from records import results as run_records
from records.results import RunResult
from harness.compliance import audit_config, audit_config_text, verify_test01_accuracy


def test_audit_config_is_temporary_and_removed_on_error() -> None:
    with pytest.raises(RuntimeError):
        with audit_config("TEST01") as path:
            assert path.read_text() == audit_config_text("TEST01")
            assert "accuracy_log_sampling_target = 4096" in path.read_text()
            raise RuntimeError("boom")
    assert not path.exists()


@pytest.fixture(scope="module")
def compliance_runs(demo_runs: dict, demo_int8: Path, demo_data: Path, cache_dir: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's Offline accuracy and performance runs, copied, with TEST01 and TEST04 run beside them."""
    workdir = tmp_path_factory.mktemp("compliance")
    (workdir / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    scenario = run_records.scenario_dir(workdir / "results", "host", load_card(demo_int8).label, Scenario.OFFLINE)
    offline = demo_runs["Offline"]["accuracy"].directory.parent
    shutil.copytree(offline, scenario, ignore=shutil.ignore_patterns("TEST0*"))
    private_tmp = tmp_path_factory.mktemp("compliance-tmp")  # the runs' own temp dir, where audit configs go
    for mode in ("TEST01", "TEST04"):
        proc = run_cli(["run", "--mode", mode, "--model", str(demo_int8), "--dataset", str(demo_data / "val"),
                        "--system", "host", "--cache-dir", str(cache_dir),
                        "--min-duration-ms", "2000", *AUTO_QPS], cwd=workdir, tmpdir=private_tmp)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(private_tmp.glob("mlperf-cpu-TEST*"))
    return scenario


def test_no_audit_config_left_anywhere(compliance_runs: Path) -> None:
    # LoadGen reads audit settings only from the file the runner passes (a temp file, gone: see the
    # fixture); nothing that looks like an audit config may be left in the working directory.
    workdir = compliance_runs.parents[3]
    assert not [p for p in workdir.rglob("*") if p.is_file() and ("audit" in p.name or p.suffix == ".config")]
    for mode in (Mode.TEST01, Mode.TEST04):
        assert RunResult.load(run_records.run_dir_in(compliance_runs, mode)).audit_config  # it did run under one


def test_test01_outputs_match_accuracy_run(compliance_runs: Path) -> None:
    result = RunResult.load(run_records.run_dir_in(compliance_runs, Mode.TEST01))
    acc = result.compliance["accuracy"]
    assert acc["passed"] is True and acc["num_perf_log_data_mismatch"] == 0
    assert acc["num_perf_log_qsl_idx_match"] > 0
    assert "TEST PASS" in (compliance_runs / "TEST01" / "verify_accuracy.txt").read_text()
    assert "ratio" in result.compliance["performance"]
    assert "accuracy_log_rng_seed = 720381539243781796" in result.audit_config


def test_test01_fails_when_performance_outputs_differ(compliance_runs: Path, tmp_path: Path) -> None:
    perf_log = compliance_runs / "TEST01" / "performance" / "run_1" / "mlperf_log_accuracy.json"
    records = json.loads(perf_log.read_text())
    value = int(records[0]["data"][:2], 16)
    records[0]["data"] = f"{(value + 1) % 256:02X}" + records[0]["data"][2:]
    tampered = tmp_path / "mlperf_log_accuracy.json"
    tampered.write_text(json.dumps(records))
    verdict = verify_test01_accuracy(compliance_runs / "accuracy" / "mlperf_log_accuracy.json", tampered)
    assert verdict.passed is False and verdict.details["num_perf_log_data_mismatch"] >= 1
    assert verdict.text().endswith("TEST FAIL\n")


def test_test04_issues_one_sample(compliance_runs: Path) -> None:
    run = compliance_runs / "TEST04" / "performance" / "run_1"
    detail = (run / "mlperf_log_detail.txt").read_text()
    assert '"key": "effective_performance_issue_same", "value": true' in detail
    perf = RunResult.load(run).compliance["performance"]
    # The verdict follows the official rule from the two runs' own figures: at most 10 % faster.
    reference = RunResult.load(run_records.run_dir_in(compliance_runs, Mode.PERFORMANCE)).samples_per_second
    expected = perf["test_samples_per_second"] < 1.10 * reference
    assert perf["passed"] is expected and perf["reference_samples_per_second"] == reference
    verdict = (compliance_runs / "TEST04" / "verify_performance.txt").read_text().strip().splitlines()[-1]
    assert verdict == ("TEST PASS" if expected else "TEST FAIL")


# ----------------------------------------------------------------------------- speed verdicts at the thresholds
def _detail_copy(compliance_runs: Path, dest: Path, samples_per_second: float, validity: str = "VALID") -> Path:
    """The real performance run's detail log with its result and validity set."""
    from test_submission import edit_mllog

    from records.loadgen_logs import DETAIL

    dest.mkdir(parents=True)
    (dest / DETAIL).write_text((run_records.run_dir_in(compliance_runs, Mode.PERFORMANCE) / DETAIL).read_text())
    edit_mllog(dest / DETAIL, "result_samples_per_second", samples_per_second)
    edit_mllog(dest / DETAIL, "result_validity", validity)
    return dest


REFERENCE_SPS = 12345.678


@pytest.mark.parametrize("ratio, passed", [(0.5, True), (1.0, True), (1.099, True), (1.0999999, True),
                                           (1.10, False), (1.1000001, False), (1.5, False)])
def test_test04_at_most_10_percent_faster(compliance_runs: Path, tmp_path: Path, ratio: float, passed: bool) -> None:
    from harness.compliance import verify_performance

    ref = _detail_copy(compliance_runs, tmp_path / "ref", REFERENCE_SPS)
    got = _detail_copy(compliance_runs, tmp_path / "test", REFERENCE_SPS * ratio)
    verdict = verify_performance("TEST04", ref, got, require_valid=True)
    assert verdict.passed is passed, verdict.details
    assert verdict.details["reference_samples_per_second"] == REFERENCE_SPS
    assert verdict.details["test_samples_per_second"] == REFERENCE_SPS * ratio
    assert verdict.text().endswith("TEST PASS\n" if passed else "TEST FAIL\n")


@pytest.mark.parametrize("ratio, passed", [(1.0, True), (0.901, True), (1.099, True), (0.95, True),
                                           (0.899, False), (1.101, False), (0.5, False), (2.0, False)])
def test_test01_within_10_percent(compliance_runs: Path, tmp_path: Path, ratio: float, passed: bool) -> None:
    from harness.compliance import verify_performance

    ref = _detail_copy(compliance_runs, tmp_path / "ref", REFERENCE_SPS)
    got = _detail_copy(compliance_runs, tmp_path / "test", REFERENCE_SPS * ratio)
    verdict = verify_performance("TEST01", ref, got, require_valid=True)
    assert verdict.passed is passed, verdict.details
    assert verdict.details["ratio"] == round(ratio, 4)


@pytest.mark.parametrize("test", ["TEST01", "TEST04"])
@pytest.mark.parametrize("invalid", ["ref", "test"])
def test_invalid_runs_refused_when_valid_required(compliance_runs: Path, tmp_path: Path, test: str,
                                                  invalid: str) -> None:
    from common.errors import HarnessError
    from harness.compliance import verify_performance

    ref = _detail_copy(compliance_runs, tmp_path / "ref", REFERENCE_SPS, "INVALID" if invalid == "ref" else "VALID")
    got = _detail_copy(compliance_runs, tmp_path / "test", REFERENCE_SPS, "INVALID" if invalid == "test" else "VALID")
    with pytest.raises(HarnessError) as err:
        verify_performance(test, ref, got, require_valid=True)
    assert str(tmp_path / invalid) in str(err.value) and "INVALID" in str(err.value)
    # Without the requirement (non-official demo runs) the figures alone decide.
    assert verify_performance(test, ref, got, require_valid=False).passed is True


# ----------------------------------------------------------------------------- summary over a results tree
def test_summary_lists_runs_and_a_corrupt_record(compliance_runs: Path, tmp_path: Path) -> None:
    """`mlperf-cpu summary` on real accuracy and performance runs plus a corrupt result.json."""
    import shutil

    from records.loadgen_logs import read_detail

    results = tmp_path / "results"
    runs = {}
    for mode in (Mode.ACCURACY, Mode.PERFORMANCE):
        src = run_records.run_dir_in(compliance_runs, mode)
        dst = results / src.relative_to(compliance_runs.parents[2])
        shutil.copytree(src, dst)
        runs[mode] = dst
    corrupt = results / "host" / "broken-int8" / "Offline" / "accuracy"
    corrupt.mkdir(parents=True)
    (corrupt / "result.json").write_text('{"schema_version": 2, "mode": "accuracy",')

    proc = run_cli(["summary", "--results", str(results)], cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3, proc.stdout

    def cells(run_dir: Path) -> list[str]:
        row = next(r for r in rows if f" {run_dir}" in r or f" {run_dir.resolve()}" in r)
        return [c.strip() for c in row.strip("|").split("|")]

    accuracy = (runs[Mode.ACCURACY] / "accuracy.txt").read_text()  # accuracy=99.556%, good=..., total=...
    acc = cells(runs[Mode.ACCURACY])
    assert acc[1] == "ok" and acc[3] == "accuracy run" and acc[4] == "" and acc[6] == "no"
    assert acc[2].startswith("int8 (hint f32)")
    assert f"accuracy={acc[5]}%," in accuracy

    perf = cells(runs[Mode.PERFORMANCE])
    detail = read_detail(runs[Mode.PERFORMANCE])  # what LoadGen logged
    assert perf[1] == "ok" and perf[3] == detail.get("result_validity") and perf[5] == "" and perf[6] == "no"
    value, unit = perf[4].split()
    assert unit == "samples/s"
    assert abs(float(value) - float(detail.get("result_samples_per_second"))) <= 0.05 + 1e-9

    bad = cells(corrupt)
    assert bad[1].startswith("unreadable:") and "invalid JSON" in bad[1] and bad[6] == "no"
