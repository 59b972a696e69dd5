"""tune --scenario Server's search (pipeline.server_search): its arithmetic on tables, and its
bisection, confirmations, floor and budget on real short LoadGen Server runs of the demo model."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import HarnessError
from common.loadgen_conf import lookup, parse_user_conf
from harness.profile import load_profile
from pipeline.testrun import Workspace
from pipeline.server_search import (BISECTION_STEPS, Budget, SearchPlan, SearchRuns, ServerProbe, bisect,
                                    bisect_policies, confirm_down, first_candidate,
                                    highest_valid, reachable_policies, search_policies, step_down,
                                    tune_server_and_record)
from sut.config import EngineConfig

ENGINE = load_profile("host").engine_for("Server")


def _p(qps: float, p99: float | None, valid: bool = False, early_only: bool = False, ms: int = 10_000) -> ServerProbe:
    return ServerProbe(ENGINE, qps, valid, qps, p99, ms, early_only)


def _long(qps: float, p99: float | None) -> ServerProbe:
    """A failed confirmation (600 s)."""
    return _p(qps, p99, ms=600_000)


# ----------------------------------------------------------------------------- the arithmetic
@pytest.mark.parametrize("probes, expected", [
    # upwards from the VALID 90: 112.5 met the goal (14.25 ms), 123.75 did not: the line between them
    ([_p(90, 10, True), _p(135, 20), _p(112.5, 13, early_only=True), _p(123.75, 16, early_only=True)],
     112.5 + 1.25 / 3 * 11.25),
    # no VALID probe; the lowest met the goal, the next did not
    ([_p(92.6, 13.9, early_only=True), _p(138.9, 15.8)], 92.6 + 0.35 / 1.9 * 46.3),
    # the VALID probe itself is over the goal: it stays the candidate
    ([_p(90, 14.8, True), _p(135, 20)], 90),
    # every probe above the VALID one met the goal: the highest probe (never beyond it)
    ([_p(90, 10, True), _p(135, 12, early_only=True)], 135),
    # a rerun's worse p99 counts: 92.6 is over the goal, nothing met it
    ([_p(92.6, 13.9, early_only=True), _p(92.6, 14.5, early_only=True)], 0),
    ([_p(92.6, 30)], 0),
    ([], 0),
])
def test_first_candidate(probes: list[ServerProbe], expected: float) -> None:
    assert first_candidate(probes) == pytest.approx(expected)


@pytest.mark.parametrize("failed, probes, floor, expected", [
    # the long run's p99 exceeds the probes' at its rate by 4.64 ms (13.06 interpolated at 1010.7): the
    # probes' curve must stay under 14.25 - 4.64 = 9.61 ms, reached between 900 (9 ms) and 995.8 (12 ms)
    (_long(1010.7, 17.7), [_p(900, 9.0), _p(995.8, 12.0), _p(1010.4, 13.0), _p(1024.9, 16.0)], 0,
     900 + (14.25 - (17.7 - (13.0 + 0.3 / 14.5 * 3.0)) - 9.0) / 3.0 * 95.8),
    # the long run no worse than the probes at its rate (18.6 interpolated): where the line from 120 (13 ms)
    # to the failed rate at the probes' p99 reaches 14.25 ms
    (_long(136.0, 17.0), [_p(100, 8.0), _p(120, 13.0), _p(140, 20.0)], 0, 120 + 1.25 / 5.6 * 16),
    # no probe above the failed rate: the failed run is a point of the curve, the goal 14.25 ms
    (_long(136.0, 15.71), [_p(120, 13.0)], 0, 120 + 1.25 / 2.71 * 16),
    (_long(140.0, 30.0), [_p(120, 16), _p(100, 12)], 0, 100 + 2.25 / 4 * 20),
    # no probe under the goal: 10 % under the lowest probe
    (_long(136.0, 15.71), [_p(92.6, 14.5)], 0, 92.6 * 0.9),
    (_long(1010.7, 17.7), [_p(995.8, 12.0), _p(1024.9, 16.0)], 0, 995.8 * 0.9),  # the goal 14.25 - 3.65
    # runs as long as the failed one are not probes: only 120 (13 ms) counts
    (_long(136.0, 17.0), [_p(120, 13.0), _long(130, 30.0)], 0, 120 + 1.25 / 4 * 16),
    # failed on early stopping with its p99 under the goal: the least step (2 %)
    (_long(100.0, 14.0), [_p(90, 10)], 0, 98.0),
    # a crossing closer than the least step: the least step
    (_long(100.0, 14.5), [_p(99.5, 13.0), _p(101, 14.5)], 0, 98.0),
    # never under the floor
    (_long(100.0, 50.0), [], 95.0, 95.0),
    # no p99 recorded, or no probe below: 10 % down
    (_long(100.0, None), [_p(50, 5)], 0, 90.0),
    (_long(100.0, 20.0), [_p(150, 5)], 0, 90.0),
])
def test_step_down(failed: ServerProbe, probes: list[ServerProbe], floor: float, expected: float) -> None:
    assert step_down(failed, probes, floor) == pytest.approx(expected)


@pytest.mark.parametrize("qps, expected_ms", [(150, 40_000), (92.6, 60_000), (1000, 10_000), (6000 / 12.5, 12_500)])
def test_an_early_stopping_rerun_has_enough_queries_within_six_probes(qps: float, expected_ms: int) -> None:
    assert SearchPlan(probe_ms=10_000).extended_ms(qps) == expected_ms


@pytest.mark.parametrize("plan, budget_s", [
    # 7 steps x (2 x (10 + 20) + (60 + 20)) + 4 x (600 + 20)
    (SearchPlan(), 7 * 140 + 4 * 620),
    (SearchPlan(policies=4, confirmations=2), 4 * 7 * 140 + 2 * 620),
    (SearchPlan(confirm_ms=0), 7 * 140),
    (SearchPlan(budget_override_s=1800), 1800),
])
def test_the_budget_is_the_plans_worst_case_unless_stated(plan: SearchPlan, budget_s: float) -> None:
    assert plan.budget_s == pytest.approx(budget_s)
    assert f"time budget {budget_s:.0f} s" in plan.describe()


def test_the_budget_counts_the_larger_of_the_clock_and_the_estimates() -> None:
    now = [100.0]
    budget = Budget(SearchPlan(probe_ms=1000, confirm_ms=5000, budget_override_s=60), clock=lambda: now[0])
    assert budget.fits(5000, reserve_s=30)  # 25 + 30 <= 60
    budget.charge(5000)  # a quick run still counts its 25 s estimate
    now[0] += 8
    assert budget.spent_s == 25 and budget.fits(1000, reserve_s=11) and not budget.fits(5000, reserve_s=11)
    now[0] += 40  # a run that took longer than planned counts its real time
    assert budget.spent_s == 48 and not budget.fits(1000)


# ----------------------------------------------------------------------------- real runs
# Every run stops issuing after this many queries (LoadGen's max_query_count): a rate far above what the
# host serves is still INVALID on the latency bound, and its backlog drains in about a second instead of
# the half minute that 8 s of arrivals at that rate would take. The VALID runs here issue fewer.
MAX_QUERIES = 10_000


def _runs(model: Path, demo_data: Path, cache_dir: Path, tmp_path: Path, plan: SearchPlan) -> SearchRuns:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "user.conf").write_text(f"resnet50.Offline.target_qps = 1000\n"
                                        f"resnet50.Server.max_query_count = {MAX_QUERIES}\n")
    workspace = Workspace(work=cache_dir.parent, results=tmp_path / "results", demo_data=demo_data)
    return SearchRuns(model, demo_data / "val", load_profile("host"), workspace, tmp_path / "user.conf", Budget(plan))


@pytest.fixture(scope="module")
def too_fast(demo_int8: Path) -> int:
    """Twice what the Server engine's pool answers per second on this host (batch 1, measured): arrivals
    no host can serve within 15 ms, whatever its speed, and few enough queries to drain in seconds."""
    from harness.tune import measure_throughput

    return max(100, int(round(2 * measure_throughput(demo_int8, ENGINE, 2.0), -2)))


def test_a_failed_probe_never_moves_the_bisection_up(demo_int8: Path, demo_data: Path, cache_dir: Path,
                                                     tmp_path: Path, too_fast: int) -> None:
    # Twice the pool's rate, one Python dispatch each: far more than the pool answers within 15 ms.
    runs = _runs(demo_int8, demo_data, cache_dir, tmp_path, SearchPlan(probe_ms=1000, steps=2, confirm_ms=0))
    probes = bisect(runs, ENGINE, 2 * too_fast)
    assert [(p.target_qps, p.valid) for p in probes][:2] == [(too_fast, False), (too_fast, False)]  # run again once
    assert probes[0].p99_ms is not None and probes[0].p99_ms > 15 and not probes[0].early_stopping_only
    assert probes[-1].target_qps == too_fast / 2  # then down, never up
    assert all(p.target_qps in (too_fast, too_fast / 2) for p in probes)


def test_a_failed_confirmation_steps_down_until_one_is_valid(demo_int8: Path, demo_data: Path, cache_dir: Path,
                                                             tmp_path: Path, too_fast: int) -> None:
    # 8 s confirmations: early stopping allows a few slow queries (4 of 1,200 at 150 qps) on a shared host.
    plan = SearchPlan(probe_ms=1000, confirm_ms=8000, confirmations=3)
    runs = _runs(demo_int8, demo_data, cache_dir, tmp_path, plan)
    low = runs(ENGINE, 300, 1000)  # a short probe the pool easily holds: a point under the goal
    if low.p99_ms is None or low.p99_ms >= 14.25:  # one slow query in a 1 s probe: run again once, as the search does
        low = runs(ENGINE, 300, 1000)
    assert low.p99_ms is not None and low.p99_ms < 14.25
    # The first confirmation far above what the host can do (twice the pool's rate: the queue grows).
    outcome = confirm_down(runs, ENGINE, too_fast, 150, [low])
    confirmations = outcome.probes
    first, *rest = confirmations
    assert (first.target_qps, first.valid, first.duration_ms) == (too_fast, False, 8000) and first.p99_ms > 15
    rates = [p.target_qps for p in confirmations]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == len(rates)  # strictly down
    # the step comes from the p99s: between 300 qps and the failed run, far below 0.9 x the failed rate
    assert 300 <= rest[0].target_qps < 0.5 * too_fast
    assert confirmations[-1].valid and not any(p.valid for p in confirmations[:-1])
    assert outcome.confirmed and outcome.rate == confirmations[-1].target_qps and outcome.engine == ENGINE
    assert "confirmed VALID in a run of 8 s" in outcome.message


def test_a_failing_floor_is_reported_plainly_and_the_budget_bounds_the_confirmations(
        demo_int8: Path, demo_data: Path, cache_dir: Path, tmp_path: Path, too_fast: int) -> None:
    # Room for two 2 s confirmations only (each counts 22 s) of the three asked for: after the first
    # fails, the second (the last the budget allows) runs at the floor, and it fails too.
    plan = SearchPlan(probe_ms=1000, confirm_ms=2000, confirmations=3, budget_override_s=50)
    runs = _runs(demo_int8, demo_data, cache_dir, tmp_path, plan)
    outcome = confirm_down(runs, ENGINE, 2 * too_fast, too_fast, [])
    assert [(p.target_qps, p.valid) for p in outcome.probes] == [(2 * too_fast, False), (too_fast, False)]
    assert outcome.rate == 0 and not outcome.confirmed and outcome.engine is None
    assert outcome.message.startswith(f"even the floor, {too_fast:.1f} qps, failed in a run of 2 s")
    # Nothing left of the budget: no further run, and it says so.
    again = confirm_down(runs, ENGINE, 2 * too_fast, too_fast, [])
    assert again.probes == [] and again.rate == 0
    assert again.message.startswith("the time budget of 50 s left no room for a confirmation of 2 s")


def test_the_search_prints_its_budget_first_and_ends_with_a_rate_confirmed_valid(
        demo_int8: Path, demo_data: Path, cache_dir: Path, tmp_path: Path) -> None:
    said: list[str] = []
    after: list[ServerProbe] = []
    runs_dir = tmp_path / "w"
    _runs(demo_int8, demo_data, cache_dir, runs_dir, SearchPlan())  # writes its user.conf
    workspace = Workspace(work=cache_dir.parent, results=runs_dir / "results", demo_data=demo_data)
    plan = SearchPlan(probe_ms=1000, steps=1, confirm_ms=8000, confirmations=3)
    outcome = search_policies(demo_int8, demo_data / "val", load_profile("host"), [ENGINE], 400, workspace,
                            runs_dir / "user.conf", plan, after_probe=after.append, say=said.append)
    assert said == [plan.describe()] and said[0].startswith("Server search: time budget ")
    assert after == outcome.probes
    short = [p for p in outcome.probes if p.duration_ms < 8000]
    assert short[0].target_qps == 200  # one bisection step: (0, 400] at its middle
    confirmations = [p for p in outcome.probes if p.duration_ms == 8000]
    rates = [p.target_qps for p in confirmations]
    assert 1 <= len(rates) <= plan.confirmations and rates == sorted(set(rates), reverse=True)
    assert not any(p.valid for p in confirmations[:-1])
    if outcome.confirmed:  # the usual end: the last confirmation VALID, and that is the rate
        assert confirmations[-1].valid and outcome.rate == rates[-1] and outcome.engine == ENGINE
    else:  # a host too busy even for the floor says so, with the floor as the last run
        assert outcome.rate == 0 and rates[-1] == outcome.floor and outcome.message.startswith("even the floor")


def test_tune_server_without_a_confirmed_rate_writes_nothing_and_says_why(
        demo_int8: Path, demo_data: Path, cache_dir: Path, tmp_path: Path, too_fast: int,
        caplog: pytest.LogCaptureFixture) -> None:
    runs = _runs(demo_int8, demo_data, cache_dir, tmp_path, SearchPlan())
    before = (tmp_path / "user.conf").read_text()
    with caplog.at_level(logging.INFO, logger="pipeline.server_search"):
        with pytest.raises(HarnessError, match=r"even the floor, \d+\.\d qps, failed .* no Server target_qps written"):
            # (0, 4 x too_fast], one policy: its one probe at 2 x too_fast fails (and its rerun); the first
            # confirmation is at the lowest rate probed, and the second and last at the floor, half of it
            tune_server_and_record(demo_int8, demo_data / "val", load_profile("host"), tmp_path / "user.conf",
                                   runs.workspace, 4 * too_fast, seconds=1, confirm_seconds=2, steps=1, confirmations=2,
                                   name="srv", profile_out=tmp_path / "srv.yaml", engines=[ENGINE])
    messages = [r.getMessage() for r in caplog.records]
    budget = next(i for i, m in enumerate(messages) if m.startswith("Server search: time budget "))
    assert messages[budget - 1].startswith("Server search: 1 of 1 policies meet the 15 ms bound")
    # the host profile's Server: one single-thread stream per core, named by threads per stream
    assert f"{ENGINE.num_streams} stream(s) x 1 thread(s)" in messages[budget - 1]
    assert not any(m.startswith("Server run:") for m in messages[:budget])  # the budget is said before any run
    assert (tmp_path / "user.conf").read_text() == before and not (tmp_path / "srv.yaml").exists()
    assert lookup(parse_user_conf(tmp_path / "user.conf"), "resnet50", "Server", "target_qps") is None


@pytest.mark.parametrize("measured, kept", [
    # one query alone through (1 stream, 2 streams); the b4 policy runs on 2 streams
    ([3.0, 20.0, 18.0], ["1x1"]),                  # 2 streams miss twice: they and their batches are left out
    ([16.0, 17.0, 14.0, 18.0], ["1x1"]),           # 1 stream over once, a burst: its second measure meets it
    ([16.0, 14.0, 17.0], ["2x1", "2x1b", "2x4"]),  # 1 stream misses twice, 2 streams meet it at once
    ([15.0, 40.0, 15.1], ["1x1"]),                 # at the bound is not over it
    ([3.0, 14.0], ["1x1", "2x1", "2x1b", "2x4"]),  # every policy's streams meet it: nothing left out
    ([16.0, 17.0, 15.5, 16.5], None),              # every shape over the bound twice: refused
])
def test_policies_whose_streams_miss_the_bound_one_query_at_a_time_are_left_out(
        measured: list[float], kept: list[str] | None) -> None:
    named = {"1x1": replace(ENGINE, batch_size=1, num_streams=1),
             "2x1": replace(ENGINE, batch_size=1, num_streams=2),
             "2x1b": replace(ENGINE, batch_size=1, num_streams=2, infer_requests=3),  # same streams: one measure
             "2x4": replace(ENGINE, batch_size=4, num_streams=2)}
    calls = iter(measured)
    seen: list[EngineConfig] = []

    def measure(_model: Path, engine: EngineConfig) -> float:
        seen.append(engine)
        return next(calls)

    if kept is None:
        with pytest.raises(HarnessError, match=r"one query at a time already has p99 15\.50 ms .* over the 15 ms bound"):
            reachable_policies(Path("m"), list(named.values()), 15.0, measure)
    else:
        assert reachable_policies(Path("m"), list(named.values()), 15.0, measure) == [named[k] for k in kept]
    assert len(seen) == len(measured)  # each shape once, and once more only when over the bound
    assert all(e.batch_size == 1 for e in seen)  # a static batch of 2 or 4 costs more than one query alone


def test_tune_server_refuses_in_seconds_when_one_query_alone_misses_the_bound(
        demo_int8: Path, demo_data: Path, cache_dir: Path, tmp_path: Path) -> None:
    runs = _runs(demo_int8, demo_data, cache_dir, tmp_path, SearchPlan())
    before = (tmp_path / "user.conf").read_text()
    start = time.monotonic()
    with pytest.raises(HarnessError, match=r"one query at a time already has p99 \d+\.\d+ ms .* over the 0\.001 ms"):
        tune_server_and_record(demo_int8, demo_data / "val", load_profile("host"), tmp_path / "user.conf",
                               runs.workspace, 1000, seconds=1, confirm_seconds=2, name="srv",
                               profile_out=tmp_path / "srv.yaml", bound_ms=0.001)
    assert time.monotonic() - start < 60  # no LoadGen run: compiles and a few seconds per policy
    assert (tmp_path / "user.conf").read_text() == before and not (tmp_path / "srv.yaml").exists()
    assert not (tmp_path / "results").exists()


def test_the_search_does_not_import_the_flows_that_call_it() -> None:
    # pipeline.flows tunes through pipeline.server_search; the search runs its tests through the lower
    # pipeline.testrun, so the two modules do not import each other.
    code = "import sys, pipeline.server_search; print('pipeline.flows' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr[-2000:]


class _StatedCapacities(SearchRuns):
    """The search's arithmetic against stated capacities instead of LoadGen runs: a probe is VALID
    (p99 10 ms) up to its policy's capacity, INVALID on the bound (p99 30 ms) above it."""

    def __init__(self, plan: SearchPlan, capacity: dict[EngineConfig, float]) -> None:
        super().__init__(Path("m"), Path("d"), load_profile("host"), Workspace(), Path("u"), Budget(plan))
        self.capacity = capacity

    def __call__(self, engine: EngineConfig, qps: float, ms: int) -> ServerProbe:
        valid = qps <= self.capacity[engine]
        result = ServerProbe(engine, qps, valid, qps, 10.0 if valid else 30.0, ms)
        self.budget.charge(ms)
        self.done.append(result)
        return result


@pytest.mark.parametrize("capacities, winner, runs_of_losers", [
    ((800, 700, 1000), 2, 2),   # the second cannot beat the first: one probe and its rerun; the third can
    ((800, 700, 600), 0, 2),    # nobody beats the first
    ((800, 820, 700), 1, 2),    # 2.5 % better is enough: its challenge, 2 % over the best, is VALID
])
def test_later_policies_are_searched_only_when_they_beat_the_best_so_far(
        capacities: tuple[float, ...], winner: int, runs_of_losers: int) -> None:
    engines = [replace(ENGINE, batch_size=b) for b in (1, 2, 4)]
    runs = _StatedCapacities(SearchPlan(probe_ms=1000, confirm_ms=0, policies=3), dict(zip(engines, capacities)))
    best, probes = bisect_policies(runs, engines, 1600)
    first_runs = [p for p in runs.done if p.engine == engines[0]]
    assert len({p.target_qps for p in first_runs}) == BISECTION_STEPS  # the first: a whole bisection
    resolution = 1600 / 2 ** BISECTION_STEPS
    assert best == engines[winner] and probes == [p for p in runs.done if p.engine == best]
    assert capacities[winner] - resolution <= highest_valid(probes) <= capacities[winner]
    for k, engine in enumerate(engines[1:], 1):
        mine = [p for p in runs.done if p.engine == engine]
        assert mine[0].target_qps == pytest.approx(highest_valid(runs.done[:runs.done.index(mine[0])]) * 1.02)
        if capacities[k] < mine[0].target_qps:
            assert len(mine) == runs_of_losers and not any(p.valid for p in mine)
