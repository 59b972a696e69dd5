"""Every LoadGen scenario on the same pool and QSL: real LoadGen runs, real OpenVINO inference.

Each scenario's SUT answers every sample (accuracy mode) with the label the Offline run
gives, and a short performance run is VALID with the scenario's own metric; an INVALID
Server run says which rule failed and is never packaged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import AUTO_QPS, assert_int8_labels_agree, run_cli, run_loadgen_test

from common.errors import SubmissionError
from common.testspec import Mode, Scenario
from harness.profile import load_profile
from modelprep.card import load_card
from records.accuracy import read_accuracy_log
from records.results import RunResult
from submit.package import package

SHORT = ("--min-duration-ms", "1500", *AUTO_QPS)
LATENCY_SCENARIOS = ("SingleStream", "MultiStream", "Server")


@pytest.fixture(scope="module")
def scenario_runs(demo_runs: dict) -> dict[str, dict[str, RunResult]]:
    """Accuracy and short VALID performance runs of the INT8 demo model in all four scenarios (the session's)."""
    return demo_runs


@pytest.mark.parametrize("scenario", LATENCY_SCENARIOS)
def test_accuracy_labels_agree_with_offline(scenario_runs: dict, scenario: str) -> None:
    offline = read_accuracy_log(scenario_runs["Offline"]["accuracy"].directory / "mlperf_log_accuracy.json")
    mine = read_accuracy_log(scenario_runs[scenario]["accuracy"].directory / "mlperf_log_accuracy.json")
    assert sorted(offline) == list(range(450))  # every sample answered exactly once
    assert_int8_labels_agree(mine, offline, f"{scenario} against Offline")
    run = scenario_runs[scenario]["accuracy"]
    assert run.scenario.value == scenario and run.accuracy.total == 450


@pytest.mark.parametrize("scenario, unit", [("Offline", "samples/s"), ("SingleStream", "90th percentile"),
                                            ("MultiStream", "99th percentile"), ("Server", "samples/s")])
def test_short_performance_run_reports_the_scenario_metric(scenario_runs: dict, scenario: str, unit: str) -> None:
    run = scenario_runs[scenario]["performance"]
    value, run_unit = run.metric
    assert unit in run_unit and value is not None and value > 0
    detail = (run.directory / "mlperf_log_detail.txt").read_text()
    assert f'"key": "effective_scenario", "value": "{scenario}"' in detail
    assert run.profile.engine_for(scenario) == load_profile("host").engine_for(scenario)
    if scenario == "MultiStream":
        assert '"key": "effective_samples_per_query", "value": 8' in detail
    assert run.validity == "VALID" and not run.invalid_because()
    if scenario != "Offline":
        assert run.loadgen["early_stopping_met"] is True and run.latency_ms("99.00") > 0


def test_single_stream_sends_one_sample_per_query(scenario_runs: dict) -> None:
    run = scenario_runs["SingleStream"]["performance"]
    assert '"key": "effective_samples_per_query", "value": 1' in (run.directory / "mlperf_log_detail.txt").read_text()
    assert run.loadgen["result_query_count"] >= 64  # early stopping needs at least 64 queries


def test_invalid_server_run_says_why_and_is_refused(demo_int8: Path, demo_data: Path, cache_dir: Path,
                                                   scenario_runs: dict, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    work = tmp_path / "work"
    acc_dir = scenario_runs["Server"]["accuracy"].directory
    shutil.copytree(acc_dir.parents[2], work / "results" / "host")
    # Arrivals at 4x what this host's Offline run served: the queue, and with it the latency, grows past
    # the 15 ms bound at once. LoadGen stops issuing after 10,000 queries (max_query_count), so the
    # backlog drains in about a second on any host (1.5 s of arrivals at that rate take half a minute).
    (work / "user.conf").write_text("resnet50.Offline.target_qps = 1000\nresnet50.Server.max_query_count = 10000\n")
    rate = 4 * scenario_runs["Offline"]["performance"].samples_per_second
    proc, run = run_loadgen_test(work, "performance", demo_int8, demo_data / "val", cache_dir,
                                 "--min-duration-ms", "1500", "--target-qps", f"{rate:.0f}", "--min-query-count", "1",
                                 "--replace", scenario="Server")  # over the copied VALID run
    assert run.validity == "INVALID" and not run.submittable
    assert any("latency bound not met: 99th percentile" in r for r in run.invalid_because())
    assert "latency bound not met" in proc.stdout  # the printout says which rule failed
    with pytest.raises(SubmissionError, match="Server/performance/run_1/mlperf_log_detail.txt: "):
        package(work / "results", "host", run.model_label, "Org", tmp_path / "tree", Path.cwd(),
                profile=load_profile("host"), scenarios=(Scenario.SERVER,), category="datacenter,edge",
                allow_nonofficial=True, system_overrides={"cooling": "air", "system_name": "x",
                                                          "host_memory_configuration": "x"})
    problems = [r.getMessage() for r in caplog.records if r.name == "submit.package"]
    assert any("performance run is INVALID, not VALID (" in m and "latency bound not met" in m for m in problems)
    assert not (tmp_path / "tree").exists()


def test_closed_division_refuses_missing_compliance_and_scenarios(scenario_runs: dict, tmp_path: Path) -> None:
    results = scenario_runs["Offline"]["accuracy"].directory.parents[3]
    label = scenario_runs["Offline"]["accuracy"].model_label
    args = dict(profile=load_profile("host"), allow_nonofficial=True,
                system_overrides={"cooling": "air", "system_name": "x", "host_memory_configuration": "x"})
    with pytest.raises(SubmissionError, match=r"SingleStream/TEST01/performance/run_1: no TEST01 run \(the closed"):
        package(results, "host", label, "Org", tmp_path / "t1", Path.cwd(), division="closed", **args)
    with pytest.raises(SubmissionError, match="closed division, edge: SingleStream, MultiStream required"):
        package(results, "host", label, "Org", tmp_path / "t2", Path.cwd(), division="closed",
                scenarios=(Scenario.OFFLINE,), **args)
    with pytest.raises(SubmissionError, match="Server is not a scenario of a edge system"):
        package(results, "host", label, "Org", tmp_path / "t3", Path.cwd(), scenarios=(Scenario.SERVER,), **args)


def test_open_edge_tree_of_three_scenarios_checks(scenario_runs: dict, tmp_path: Path) -> None:
    from submit.check import check_tree

    results = scenario_runs["Offline"]["accuracy"].directory.parents[3]
    label = scenario_runs["Offline"]["accuracy"].model_label
    done = package(results, "host", label, "Org", tmp_path / "tree", Path.cwd(), profile=load_profile("host"),
                   allow_nonofficial=True, system_overrides={"cooling": "air", "system_name": "x",
                                                             "host_memory_configuration": "x"})
    assert sorted(p.name for p in done.scenario_dirs) == ["MultiStream", "Offline", "SingleStream"]
    problems = check_tree(tmp_path / "tree")
    assert problems and all("min_duration" in p or "not for submission" in p or "accuracy run over" in p
                            or "non-official" in p for p in problems), problems
    system = (tmp_path / "tree" / "open" / "Org" / "systems" / "host.json").read_text()
    assert '"system_type": "edge"' in system


def test_unknown_scenario_names_the_valid_ones(workdir: Path, demo_f32: Path, demo_data: Path,
                                               cache_dir: Path) -> None:
    proc = run_cli(["run", "--mode", "accuracy", "--scenario", "Batch", "--model", str(demo_f32),
                    "--dataset", str(demo_data / "val"), "--system", "host", "--cache-dir", str(cache_dir)],
                   cwd=workdir)
    assert proc.returncode == 2
    assert "--scenario: scenario: expected one of ['Offline', 'SingleStream', 'MultiStream', 'Server']" in proc.stderr


def test_tune_single_stream_writes_profile_and_target_latency(demo_f32: Path, tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("# keep me\nresnet50.Offline.target_qps = 12\n")
    proc = run_cli(["tune", "--model", str(demo_f32), "--scenario", "SingleStream", "--seconds", "0.5",
                    "--user-conf", str(conf), "--profile-out", str(tmp_path / "t.yaml")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = conf.read_text().splitlines()
    assert lines[:2] == ["# keep me", "resnet50.Offline.target_qps = 12"]
    assert lines[2].startswith("resnet50.SingleStream.target_latency = ") and float(lines[2].split("=")[1]) > 0
    tuned = load_profile(str(tmp_path / "t.yaml"), check_fits=False)
    single = tuned.engine_for("SingleStream")
    assert (single.num_streams, single.infer_requests, single.batch_size) == (1, 1, 1)
    assert tuned.engine == load_profile("host").engine  # Offline untouched
    card = load_card(demo_f32)
    assert card.label in (tmp_path / "t.yaml").read_text()


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream"])
def test_compliance_runs_verify_in_latency_scenarios(scenario: str, scenario_runs: dict, demo_int8: Path,
                                                     demo_data: Path, cache_dir: Path, tmp_path: Path) -> None:
    """TEST01/TEST04 in a latency scenario: verified on the latency figure, as the official scripts do."""
    from harness.compliance import SHORT_LATENCY_NS, SHORT_LATENCY_TOLERANCE
    from records import results as run_records

    acc = scenario_runs[scenario]["accuracy"]
    work = tmp_path / "work"
    shutil.copytree(acc.directory.parents[2], work / "results" / "host")
    (work / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    reference = scenario_runs[scenario]["performance"]
    for mode in ("TEST01", "TEST04"):
        _proc, run = run_loadgen_test(work, mode, demo_int8, demo_data / "val", cache_dir, *SHORT, scenario=scenario)
        perf = run.compliance["performance"]
        assert perf["metric"] == reference.metric_key and perf["scenario"] == scenario
        ref_ns, got_ns = perf["reference_score"], perf["test_score"]
        if mode == "TEST01":
            tolerance = SHORT_LATENCY_TOLERANCE if ref_ns <= SHORT_LATENCY_NS[scenario] else 0.10
            assert perf["passed"] is (ref_ns * (1 - tolerance) <= got_ns <= ref_ns * (1 + tolerance))
            assert run.compliance["accuracy"]["passed"] is True  # same labels as the accuracy run
        else:  # one repeated sample must not be 20 % "faster" (compared as 1/latency)
            assert perf["passed"] is (1e9 / got_ns < 1e9 / ref_ns * 1.20)
        verdict = (run_records.compliance_dir(run.directory.parents[2], Mode.parse(mode)) / "verify_performance.txt")
        assert verdict.read_text().strip().endswith("TEST PASS" if perf["passed"] else "TEST FAIL")


def test_closed_submission_refuses_a_non_reference_model_before_running(demo_data: Path, session_dir: Path,
                                                                       tmp_path: Path) -> None:
    from conftest import DEMO_ONNX

    # The shared work folder: the INT8 model this flow prepares before it refuses is prepared once a session.
    proc = run_cli(["pipeline", "--submission", "--division", "closed", "--category", "edge",
                    "--model", str(DEMO_ONNX), "--dataset", str(demo_data / "val"),
                    "--calib-list", str(demo_data / "cal_list.txt"), "--calib-dir", str(demo_data / "train"),
                    "--work", str(session_dir / "pipeline-work"), "--results", str(tmp_path / "results")],
                   cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "closed division: model source decinet_demo.onnx" in proc.stderr
    assert "is not the reference resnet50 model" in proc.stderr
    assert not (tmp_path / "results").exists()  # nothing was run


def test_check_refuses_a_closed_tree_without_compliance_or_a_scenario(scenario_runs: dict, tmp_path: Path) -> None:
    from submit.check import check_tree

    results = scenario_runs["Offline"]["accuracy"].directory.parents[3]
    label = scenario_runs["Offline"]["accuracy"].model_label
    package(results, "host", label, "Org", tmp_path / "tree", Path.cwd(), profile=load_profile("host"),
            allow_nonofficial=True, system_overrides={"cooling": "air", "system_name": "x",
                                                      "host_memory_configuration": "x"})
    # The same files presented as a closed entry: compliance and a scenario are missing.
    shutil.move(tmp_path / "tree" / "open", tmp_path / "tree" / "closed")
    (tmp_path / "tree" / "closed" / "Org" / "systems" / "host.json").write_text(
        (tmp_path / "tree" / "closed" / "Org" / "systems" / "host.json").read_text()
        .replace('"division": "open"', '"division": "closed"'))
    shutil.rmtree(tmp_path / "tree" / "closed" / "Org" / "results" / "host" / "resnet50" / "MultiStream")
    problems = "\n".join(check_tree(tmp_path / "tree"))
    assert "closed division: MultiStream missing (a edge system needs SingleStream, MultiStream, Offline)" in problems
    assert "Offline/TEST01/verify_accuracy.txt: missing (the closed division needs TEST01" in problems
    assert "SingleStream/TEST04/verify_performance.txt: missing" in problems
