"""TEST01/TEST04 compliance runs on the demo model, and the verification logic on real logs."""

import json
import tempfile
from pathlib import Path

import pytest
from conftest import run_cli

from common.testspec import Mode, Scenario
from modelprep.card import load_card
from records import results as tree
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
def compliance_runs(demo_int8: Path, demo_data: Path, cache_dir: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("compliance")
    (workdir / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    before = set(Path(tempfile.gettempdir()).glob("mlperf-cpu-TEST*"))
    for mode in ("accuracy", "performance", "TEST01", "TEST04"):
        proc = run_cli(["run", "--mode", mode, "--model", str(demo_int8), "--dataset", str(demo_data / "val"),
                        "--system", "host", "--cache-dir", str(cache_dir),
                        "--min-duration-ms", "2000", "--target-qps", "0"], cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(Path(tempfile.gettempdir()).glob("mlperf-cpu-TEST*")) == before
    return tree.scenario_dir(workdir / "results", "host", load_card(demo_int8).label, Scenario.OFFLINE)


def test_no_audit_config_left_anywhere(compliance_runs: Path) -> None:
    # LoadGen reads audit settings only from the file the runner passes (a temp file, gone: see the
    # fixture); nothing that looks like an audit config may be left in the working directory.
    workdir = compliance_runs.parents[3]
    assert not [p for p in workdir.rglob("*") if p.is_file() and ("audit" in p.name or p.suffix == ".config")]
    for mode in (Mode.TEST01, Mode.TEST04):
        assert RunResult.load(tree.run_dir_in(compliance_runs, mode)).audit_config  # it did run under one


def test_test01_outputs_match_accuracy_run(compliance_runs: Path) -> None:
    result = RunResult.load(tree.run_dir_in(compliance_runs, Mode.TEST01))
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
    reference = RunResult.load(tree.run_dir_in(compliance_runs, Mode.PERFORMANCE)).samples_per_second
    expected = perf["test_samples_per_second"] < 1.10 * reference
    assert perf["passed"] is expected and perf["reference_samples_per_second"] == reference
    verdict = (compliance_runs / "TEST04" / "verify_performance.txt").read_text().strip().splitlines()[-1]
    assert verdict == ("TEST PASS" if expected else "TEST FAIL")
