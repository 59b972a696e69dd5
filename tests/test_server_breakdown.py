"""The FIFO replay the Server benches share (bench/_queueing.py) and bench/server_breakdown.py's breakdown of a
run's stamps into service times and an ideal dispatcher."""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import pytest

from bench._queueing import fifo_latency, replayed_service


@pytest.fixture(scope="module")
def breakdown_module() -> ModuleType:
    """``bench.server_breakdown``, imported only by the test that needs it (it loads OpenVINO)."""
    return importlib.import_module("bench.server_breakdown")


def fifo_by_hand(arrival: list[float], service: list[float], streams: int) -> list[float]:
    """End times of FIFO over ``streams`` servers, written plainly (min over a list, no heap)."""
    free = [float("-inf")] * streams
    ends = []
    for a, s in zip(arrival, service):
        k = min(range(streams), key=lambda i: free[i])
        free[k] = max(a, free[k]) + s
        ends.append(free[k])
    return ends


def test_three_simultaneous_arrivals_on_two_streams() -> None:
    arrival = np.array([0.0, 0.0, 0.0])
    latency = fifo_latency(arrival, np.array([5.0, 5.0, 5.0]), 2)
    assert latency.tolist() == [5.0, 5.0, 10.0]  # the third waits for the first free stream
    service = replayed_service(arrival, arrival + latency, 2)
    assert service.tolist() == [5.0, 5.0, 5.0]


def test_replay_recovers_the_service_times_of_a_fifo_run() -> None:
    rng = np.random.default_rng(3)
    arrival = np.cumsum(rng.exponential(7.0, 2000))  # ~140 qps in ms
    service = rng.lognormal(np.log(5.6), 0.25, 2000)
    ends = np.array(fifo_by_hand(arrival.tolist(), service.tolist(), 2))
    assert (ends - arrival > service + 1e-9).any()  # some requests queued: the replay has work to do
    np.testing.assert_allclose(replayed_service(arrival, ends, 2), service, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fifo_latency(arrival, service, 2), ends - arrival, rtol=0, atol=1e-9)


def test_a_dispatch_delay_shows_as_internal_latency_over_the_ideal(breakdown_module) -> None:
    rng = np.random.default_rng(4)
    issued = np.cumsum(rng.exponential(7.0, 3000))
    service = rng.lognormal(np.log(5.6), 0.25, 3000)
    dispatched = issued + 1.0  # a harness that takes 1 ms before each request reaches OpenVINO
    ends = np.array(fifo_by_hand(dispatched.tolist(), service.tolist(), 2))
    ov_latency = ends - dispatched
    callback = ends + 0.1
    answered = callback + 0.05
    parts = breakdown_module.breakdown(np.column_stack([issued, dispatched, ov_latency, callback, answered]), 2)
    assert parts["issue_query_p50"] == pytest.approx(1.0)
    assert parts["callback_delay_p99"] == pytest.approx(0.1)
    assert parts["service_p50"] == pytest.approx(float(np.percentile(service, 50)))
    # Same arrivals and service, no delays: the ideal is the FIFO run without the 1.15 ms of harness.
    assert parts["internal_p99"] - parts["ideal_p99"] == pytest.approx(1.15, abs=0.05)
