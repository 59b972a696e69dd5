"""tune --scenario Server's bisection (pipeline.server_search), on real short LoadGen Server runs."""

from __future__ import annotations

from pathlib import Path

from common.loadgen_conf import lookup, parse_user_conf
from harness.profile import load_profile
from pipeline.flows import Workspace
from pipeline.server_search import (CONFIRMATIONS, ServerProbe, confirmed_rate, highest_valid_rate,
                                    tune_server_and_record, unconfirmed)


def _workspace(demo_data: Path, cache_dir: Path, tmp_path: Path) -> Workspace:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    return Workspace(work=cache_dir.parent, results=tmp_path / "results", demo_data=demo_data)


def _one_step(ceiling: float, model: Path, demo_data: Path, cache_dir: Path, tmp_path: Path,
              confirm_ms: int = 0) -> tuple[float, list[ServerProbe]]:
    """One bisection step over ``(0, ceiling]`` with 1 s runs: the host profile's Server engine
    at ``ceiling / 2``."""
    workspace = _workspace(demo_data, cache_dir, tmp_path)
    profile = load_profile("host")
    return highest_valid_rate(model, demo_data / "val", profile, profile.engine_for("Server"), ceiling, workspace,
                              tmp_path / "user.conf", 1000, steps=1, confirm_ms=confirm_ms)


def test_an_invalid_rate_is_run_again_before_the_bisection_drops_it(demo_int8: Path, demo_data: Path,
                                                                     cache_dir: Path, tmp_path: Path) -> None:
    # 30,000 arrivals/s, one Python dispatch each: far more than the pool can answer within 15 ms.
    rate, probes = _one_step(60_000, demo_int8, demo_data, cache_dir, tmp_path)
    assert rate == 0.0
    assert [(p.target_qps, p.valid) for p in probes] == [(30_000, False), (30_000, False)]
    assert all(p.p99_ms is not None and p.p99_ms > 15 for p in probes)
    assert [(p.duration_ms, p.early_stopping_only) for p in probes] == [(1000, False), (1000, False)]


def test_a_rate_failed_only_by_early_stopping_steers_up_and_counts_only_once_a_longer_run_is_valid(
        demo_int8: Path, demo_data: Path, cache_dir: Path, tmp_path: Path) -> None:
    # 100 arrivals/s for 1 s: every query is fast, but early stopping needs ~460 of them to prove a
    # 99th percentile even with none over the bound, so LoadGen says INVALID on early stopping alone.
    # (A first 1 s run may miss the bound on one slow query of its 100; it is then run again, as designed.)
    rate, probes = _one_step(200, demo_int8, demo_data, cache_dir, tmp_path)
    assert rate == 0.0  # met the bound, but no run was VALID: it does not count
    *missed, met = probes
    assert (met.target_qps, met.valid, met.early_stopping_only, met.duration_ms) == (100, False, True, 1000)
    assert met.p99_ms is not None and met.p99_ms < 15
    assert [(p.target_qps, p.valid, p.early_stopping_only) for p in missed] in ([], [(100, False, False)])
    # With a confirmation: one 12 s run at that rate (1,200 queries: early stopping allows 4 over the
    # bound) makes it count.
    rate, probes = _one_step(200, demo_int8, demo_data, cache_dir, tmp_path / "confirmed", confirm_ms=12000)
    *short, confirmation = probes
    assert short[-1].early_stopping_only and all(p.duration_ms == 1000 and not p.valid for p in short)
    assert (confirmation.target_qps, confirmation.valid, confirmation.duration_ms) == (100, True, 12000)
    assert rate == 100.0


def test_tune_server_confirms_the_furthest_policy_and_records_the_confirmed_rate(
        demo_int8: Path, demo_data: Path, cache_dir: Path, tmp_path: Path) -> None:
    workspace = _workspace(demo_data, cache_dir, tmp_path)
    probes, done = tune_server_and_record(demo_int8, demo_data / "val", load_profile("host"), tmp_path / "user.conf",
                                          workspace, 200, seconds=1, confirm_seconds=12, steps=1, name="srv",
                                          profile_out=tmp_path / "srv.yaml")
    short, confirmations = probes[:-1], probes[-1:]
    assert {p.target_qps for p in short} == {100} and not any(p.valid for p in short)  # every policy: 1 s at 100 qps
    assert {p.engine for p in short if p.early_stopping_only} >= {confirmations[0].engine}
    assert [(p.target_qps, p.duration_ms, p.valid) for p in confirmations] == [(100, 12000, True)]
    assert done.conf_value == 90.0  # 100 qps x the 0.9 margin
    assert lookup(parse_user_conf(tmp_path / "user.conf"), "resnet50", "Server", "target_qps") == 90.0
    assert load_profile(str(tmp_path / "srv.yaml")).engine_for("Server") == confirmations[0].engine


def test_confirmations_go_down_the_rates_that_met_the_bound_until_one_is_valid() -> None:
    engine = load_profile("host").engine_for("Server")

    def probe(qps: float, valid: bool, early_only: bool = False) -> ServerProbe:
        return ServerProbe(engine, qps, valid, qps, 14.0 if valid or early_only else 16.0, 60_000, early_only)

    probes = [probe(180.0, False), probe(90.0, True), probe(135.0, False), probe(112.5, False, True),
              probe(123.75, False, True), probe(118.0, False, True), probe(80.0, False, True)]
    assert unconfirmed(probes) == [123.75, 118.0, 112.5]  # above the highest VALID (90), highest first
    tried: list[float] = []

    def confirm(answers: dict[float, bool]):  # noqa: ANN202 - test helper
        return lambda qps: tried.append(qps) or answers[qps]

    assert confirmed_rate(probes, confirm({123.75: False, 118.0: True}), True) == 118.0
    assert tried == [123.75, 118.0]
    tried.clear()
    # at most CONFIRMATIONS runs; when they all fail, only the VALID probe counts
    assert confirmed_rate(probes, confirm({123.75: False, 118.0: False, 112.5: True}), True) == 90.0
    assert tried == [123.75, 118.0] and len(tried) == CONFIRMATIONS
    assert confirmed_rate(probes, confirm({}), False) == 90.0  # no confirmation asked: the probes alone
