"""tune --scenario Server's bisection (pipeline.server_search), on real short LoadGen Server runs."""

from __future__ import annotations

from pathlib import Path

from harness.profile import load_profile
from pipeline.flows import Workspace
from pipeline.server_search import CONFIRM_LONGER, ServerProbe, highest_valid_rate


def _one_step(ceiling: float, model: Path, demo_data: Path, cache_dir: Path,
              tmp_path: Path) -> tuple[float, list[ServerProbe]]:
    """One bisection step over ``(0, ceiling]`` with 1 s runs: the host profile's Server engine
    at ``ceiling / 2``."""
    (tmp_path / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    profile = load_profile("host")
    workspace = Workspace(work=cache_dir.parent, results=tmp_path / "results", demo_data=demo_data)
    return highest_valid_rate(model, demo_data / "val", profile, profile.engine_for("Server"), ceiling, workspace,
                              tmp_path / "user.conf", 1000, steps=1)


def test_an_invalid_rate_is_run_again_before_the_bisection_drops_it(demo_int8: Path, demo_data: Path,
                                                                     cache_dir: Path, tmp_path: Path) -> None:
    # 30,000 arrivals/s, one Python dispatch each: far more than the pool can answer within 15 ms.
    rate, probes = _one_step(60_000, demo_int8, demo_data, cache_dir, tmp_path)
    assert rate == 0.0
    assert [(p.target_qps, p.valid) for p in probes] == [(30_000, False), (30_000, False)]
    assert all(p.p99_ms is not None and p.p99_ms > 15 for p in probes)
    assert [(p.duration_ms, p.early_stopping_only) for p in probes] == [(1000, False), (1000, False)]


def test_a_rate_failed_only_by_early_stopping_is_confirmed_with_a_longer_run(demo_int8: Path, demo_data: Path,
                                                                              cache_dir: Path, tmp_path: Path) -> None:
    # 40 arrivals/s for 1 s: every query is fast, but early stopping needs ~460 of them to prove a
    # 99th percentile even with none over the bound, so LoadGen says INVALID on early stopping alone.
    rate, probes = _one_step(80, demo_int8, demo_data, cache_dir, tmp_path)
    assert rate == 0.0
    assert [(p.target_qps, p.valid, p.early_stopping_only) for p in probes] == [(40, False, True), (40, False, True)]
    assert [p.duration_ms for p in probes] == [1000, 1000 * CONFIRM_LONGER]
    assert all(p.p99_ms is not None and p.p99_ms < 15 for p in probes)
