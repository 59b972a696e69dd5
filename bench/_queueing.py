"""FIFO queueing over parallel servers, as the Server benches model OpenVINO's streams.

An arrival goes to the first server to become free (OpenVINO's streams take queued requests in
order, each stream the next one when it finishes). ``server_vs_offline`` simulates Poisson
arrivals with it; ``server_breakdown`` replays a real run's dispatches with it.
"""

from __future__ import annotations

import heapq
import math

import numpy as np


def fifo_latency(arrival: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:
    """Arrival-to-end latency of each request (in arrival order) over ``servers`` FIFO servers,
    with no cost besides its service time."""
    free = [float("-inf")] * servers
    latency = np.empty(len(arrival))
    for k, (a, s) in enumerate(zip(arrival.tolist(), service.tolist())):
        first_free = heapq.heappop(free)
        end = (a if a > first_free else first_free) + s
        heapq.heappush(free, end)
        latency[k] = end - a
    return latency


def replayed_service(dispatch: np.ndarray, end: np.ndarray, servers: int) -> np.ndarray:
    """The inverse: each request's service time (in dispatch order) over ``servers`` FIFO servers,
    given when it was dispatched and when it ended."""
    free = [float("-inf")] * servers
    service = np.empty(len(dispatch))
    for k, (d, e) in enumerate(zip(dispatch.tolist(), end.tolist())):
        first_free = heapq.heappop(free)
        service[k] = e - (d if d > first_free else first_free)
        heapq.heappush(free, e)
    return service


def early_stopping_allowance(queries: int, percentile: float = 0.99, confidence: float = 0.99) -> int:
    """How many of ``queries`` may exceed the latency bound for LoadGen's early stopping to prove
    the ``percentile``: the largest t with P(Binomial(queries, 1 - percentile) <= t) <= 1 - confidence
    (-1 if even none may). Reproduces the share LoadGen allows: 0.73 % of 7,700 queries, 0.92 %
    of 90,000."""
    q = 1.0 - percentile
    log_q, log_p = math.log(q), math.log1p(-q)
    base = math.lgamma(queries + 1)
    cdf, t = 0.0, -1
    while t < queries:
        k = t + 1
        cdf += math.exp(base - math.lgamma(k + 1) - math.lgamma(queries - k + 1) + k * log_q + (queries - k) * log_p)
        if cdf > 1.0 - confidence:
            return t
        t = k
    return t
