"""How long LoadGen runs last (harness.run_length): the targets tune writes and the estimates printed
before each run, against LoadGen 6.0.17's rules, on tables of inputs and expected outputs."""

from __future__ import annotations

import math

import pytest

from common.testspec import Mode, Scenario
from harness.run_length import (Pace, describe_seconds, expected_latency, latency_seconds, offline_fastest_valid,
                                offline_samples, offline_seconds, offline_target, run_seconds, server_seconds)


@pytest.mark.parametrize("measured, margin, target, seconds_at_measured, fastest_valid", [
    # the default margin: ~693 s at the measured rate; VALID up to 1.155 x as fast
    (349.0, 1.05, 366.4, 1.1 * 600 * 366.4 / 349.0, 1.155),
    (5000.0, 1.05, 5250.0, 693.0, 1.155),
    # the demo's former 2 x: 1,320 s, the 1,335 s an edge submission's Offline run took
    (5000.0, 2.0, 10000.0, 1320.0, 2.2),
    # a margin of 1: 660 s, VALID only up to 1.1 x as fast
    (100.0, 1.0, 100.0, 660.0, 1.1),
    # a slow model: the 24,576-sample minimum decides, not the target
    (20.0, 1.05, 21.0, 24_576 / 20.0, 1.155),
])
def test_offline_target_and_length(measured: float, margin: float, target: float, seconds_at_measured: float,
                                   fastest_valid: float) -> None:
    assert offline_target(measured, margin) == target
    assert offline_seconds(target, measured) == pytest.approx(seconds_at_measured, rel=1e-4)
    assert offline_fastest_valid(margin) == pytest.approx(fastest_valid)
    # at the fastest rate that stays VALID the run lasts the 600 s minimum (or the sample minimum decides)
    assert offline_seconds(target, measured * fastest_valid) >= 600 * 0.999 or offline_samples(target) == 24_576


@pytest.mark.parametrize("latency, expected, min_queries, seconds", [
    (2.0, 1.6, 100, 600.0),  # SingleStream at the tuned median, 0.8 x as expected: just the 600 s
    (50.0, 40.0, 662, 600.0),  # MultiStream: 662 queries of 50 ms are 33 s, under the 600 s
    (1000.0, 800.0, 662, 662.0),  # 1 s queries: the query minimum decides
    (0.7, 1.6, 100, math.inf),  # queries over twice as fast as expected run out: INVALID
    (0.81, 1.6, 100, 600.0),  # ... just over half the expected latency still lasts
])
def test_latency_run_length(latency: float, expected: float, min_queries: int, seconds: float) -> None:
    assert latency_seconds(latency, expected, min_queries=min_queries) == pytest.approx(seconds)


@pytest.mark.parametrize("median, expected", [(2.0, 1.6), (12.3456, 9.876), (0.25, 0.2)])
def test_expected_latency_is_under_the_median(median: float, expected: float) -> None:
    assert expected_latency(median) == expected


@pytest.mark.parametrize("pace, mode, samples, seconds", [
    (Pace(Scenario.OFFLINE, qps=366.4, rate=349.0), Mode.PERFORMANCE, 50_000, 1.1 * 600 * 366.4 / 349.0),
    (Pace(Scenario.OFFLINE, qps=366.4, rate=349.0), Mode.ACCURACY, 50_000, 50_000 / 349.0),
    (Pace(Scenario.OFFLINE, qps=1000.0), Mode.TEST04, 50_000, 660.0),  # no rate known: at the target
    (Pace(Scenario.SERVER, qps=150.0), Mode.PERFORMANCE, 50_000, 600.0),
    (Pace(Scenario.SERVER, qps=150.0), Mode.ACCURACY, 50_000, 50_000 / 150.0),
    (Pace(Scenario.SERVER, qps=0.1), Mode.PERFORMANCE, 50_000, 1000.0),  # 100 queries at 0.1/s
    (Pace(Scenario.SINGLE_STREAM, latency_ms=3.0), Mode.PERFORMANCE, 50_000, 600.0),
    (Pace(Scenario.SINGLE_STREAM, latency_ms=3.0), Mode.ACCURACY, 50_000, 150.0),
    (Pace(Scenario.MULTI_STREAM, latency_ms=24.0, min_queries=662), Mode.ACCURACY, 50_000, 150.0),
    (Pace(Scenario.MULTI_STREAM, latency_ms=1000.0, min_queries=662), Mode.PERFORMANCE, 50_000, 662.0),
])
def test_run_seconds(pace: Pace, mode: Mode, samples: int, seconds: float) -> None:
    assert run_seconds(pace, mode, samples) == pytest.approx(seconds, rel=1e-4)  # whole samples


def test_server_length_and_the_printed_form() -> None:
    assert server_seconds(150.0) == 600.0 and server_seconds(0.1) == 1000.0
    assert describe_seconds(693.0) == "693 s (11.6 min)" and describe_seconds(42.4) == "42 s"
