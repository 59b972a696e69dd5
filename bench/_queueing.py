"""FIFO queueing over parallel servers, as the Server benches model OpenVINO's streams.

An arrival goes to the first server to become free (OpenVINO's streams take queued requests in
order, each stream the next one when it finishes). ``server_vs_offline`` simulates Poisson
arrivals with it; ``server_breakdown`` replays a real run's dispatches with it.
"""

from __future__ import annotations

import heapq

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
