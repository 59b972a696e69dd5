"""The submission flow's plan (pipeline.plan) and the estimate the runner logs before LoadGen starts."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from conftest import run_loadgen_test

from common.testspec import Mode, Scenario
from harness.run_length import Pace
from pipeline import plan
from pipeline.server_search import SearchPlan, policies

USER_CONF = ("resnet50.Offline.target_qps = 1000\n"
             "resnet50.Server.target_qps = 150\n"
             "resnet50.SingleStream.target_latency = 2.5\n")


def test_paces_come_from_user_conf_and_unknown_ones_are_left_out(tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text(USER_CONF)
    scenarios = (Scenario.OFFLINE, Scenario.SERVER, Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM)
    paces = plan.paces_from_user_conf(conf, "resnet50", scenarios)
    assert paces == {Scenario.OFFLINE: Pace(Scenario.OFFLINE, qps=1000, min_queries=24_576),
                     Scenario.SERVER: Pace(Scenario.SERVER, qps=150),
                     Scenario.SINGLE_STREAM: Pace(Scenario.SINGLE_STREAM, latency_ms=2.5)}
    assert plan.paces_from_user_conf(tmp_path / "missing.conf", "resnet50", scenarios) == {}


@pytest.mark.parametrize("scenario, mode, pace, seconds", [
    # 1.1 x 600 x 1050 samples at 1000/s, + 20 s around LoadGen
    (Scenario.OFFLINE, Mode.PERFORMANCE, Pace(Scenario.OFFLINE, qps=1050, rate=1000, min_queries=24_576), 713.0),
    (Scenario.OFFLINE, Mode.ACCURACY, Pace(Scenario.OFFLINE, qps=1050, rate=1000), 70.0),
    (Scenario.SINGLE_STREAM, Mode.ACCURACY, Pace(Scenario.SINGLE_STREAM, latency_ms=2.0), 120.0),
    (Scenario.MULTI_STREAM, Mode.PERFORMANCE, Pace(Scenario.MULTI_STREAM, latency_ms=20.0, min_queries=662), 620.0),
    (Scenario.SERVER, Mode.ACCURACY, Pace(Scenario.SERVER, qps=100), 520.0),
    (Scenario.SERVER, Mode.PERFORMANCE, None, None),  # no pace known: no figure
])
def test_run_steps(scenario: Scenario, mode: Mode, pace: Pace | None, seconds: float | None) -> None:
    paces = {scenario: pace} if pace is not None else {}
    [step] = plan.run_steps((scenario,), (mode,), paces, 50_000)
    assert step.name == f"{scenario.value} {mode.value}"
    assert step.seconds == (pytest.approx(seconds, rel=1e-4) if seconds is not None else None)


def test_the_tune_steps_state_the_server_budget() -> None:
    steps = plan.tune_steps((Scenario.OFFLINE, Scenario.SERVER, Scenario.SINGLE_STREAM), 2)
    assert [s.name for s in steps] == ["tune Offline (12 grid points)", "tune Server (search budget, worst case)",
                                       "tune SingleStream (2 candidates)"]
    assert steps[0].seconds == 12 * 7.0 and steps[2].seconds == 2 * 9.0
    assert steps[1].seconds == SearchPlan(policies=len(policies(2))).budget_s


def test_the_plan_lists_every_step_and_its_total(caplog: pytest.LogCaptureFixture) -> None:
    steps = [plan.Step("prepare INT8", None, "not estimated"), plan.Step("Offline accuracy", 70.0),
             plan.Step("Offline performance", 713.0)]
    with caplog.at_level(logging.INFO, logger="pipeline.plan"):
        plan.log_plan("plan", steps)
        plan.log_step(2, 2, steps[2])
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "plan: 3 steps, about 783 s (13.1 min) plus 1 not yet estimated"
    assert lines[1].endswith("(not estimated)") and lines[3].endswith("713 s (11.9 min)")
    assert lines[-1] == "step 2/2: Offline performance, about 713 s (11.9 min)"


def test_the_runner_logs_the_estimate_before_loadgen_starts(demo_int8: Path, demo_data: Path, cache_dir: Path,
                                                            workdir: Path) -> None:
    proc, result = run_loadgen_test(workdir, "performance", demo_int8, demo_data / "val", cache_dir,
                                    "--min-duration-ms", "2000", "--min-query-count", "1", "--target-qps", "500")
    out = proc.stdout + proc.stderr
    # 1.1 x 2 s x 500 samples (the resnet50 Offline minimum of 24,576 is overridden to 1) at 500/s
    match = re.search(r"Offline performance: about (\d+) s of LoadGen at target_qps 500 \(min_duration 2 s\)", out)
    assert match and int(match.group(1)) == 2, out[-2000:]
    assert out.index(match.group(0)) < out.index("Running")  # before LoadGen runs
    assert result.validity in ("VALID", "INVALID")
