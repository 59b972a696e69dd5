"""``tune --scenario SingleStream|MultiStream``: pick the engine settings with the lowest query latency.

A query (1 sample for SingleStream, 8 for MultiStream) is sent through the pool the way
``IssuingThreadSUT`` sends it, and the next one only after it completed, as LoadGen does; the
percentile the scenario is judged by (90th / 99th) decides. LoadGen is not involved, so a
candidate costs seconds. The winner goes into the profile's ``scenarios:`` and its latency
into user.conf as ``target_latency`` (LoadGen's expected latency, in ms), so an official
run generates enough queries to last its 600 s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov

from common.testspec import Scenario
from modelprep.card import ModelCard
from sut.config import EngineConfig
from sut.engine import InferencePool, compile_model

log = logging.getLogger(__name__)

MULTI_STREAM_SAMPLES = 8  # the round's multi_stream_samples_per_query
PERCENTILES = {Scenario.SINGLE_STREAM: 90.0, Scenario.MULTI_STREAM: 99.0}
SAMPLES_PER_QUERY = {Scenario.SINGLE_STREAM: 1, Scenario.MULTI_STREAM: MULTI_STREAM_SAMPLES}


@dataclass(frozen=True)
class LatencyPoint:
    """One measured configuration: its latency percentile in ms over ``queries`` queries."""

    engine: EngineConfig
    percentile: float
    latency_ms: float
    median_ms: float
    queries: int


def candidates(scenario: Scenario, cores: int) -> list[EngineConfig]:
    """Engine settings worth measuring for a latency scenario on ``cores`` cores.

    SingleStream: one stream over every core (pinned or not). MultiStream: the 8 samples as
    one batch on one stream, as 8 batch-1 requests over one stream per core, or as one batch
    per stream (8 / streams samples each).
    """
    if scenario is Scenario.SINGLE_STREAM:
        return [EngineConfig(1, cores, 1, 1, pinning=True), EngineConfig(1, cores, 1, 1, pinning=False)]
    out = [EngineConfig(1, cores, 1, MULTI_STREAM_SAMPLES),
           EngineConfig(cores, cores, MULTI_STREAM_SAMPLES, 1)]
    for streams in range(2, cores + 1):
        if cores % streams == 0 and MULTI_STREAM_SAMPLES % streams == 0:
            out.append(EngineConfig(streams, cores, streams, MULTI_STREAM_SAMPLES // streams))
    return out


def query_latencies(compiled: ov.CompiledModel, engine: EngineConfig, card: ModelCard, per_query: int,
                    seconds: float) -> np.ndarray:
    """Latencies (ms) of back-to-back queries of ``per_query`` samples for ``seconds`` (after a warm-up)."""
    pool = InferencePool(compiled, engine.infer_requests, lambda slot, ids, out: None, lambda ids, err: None)
    pool.load(np.random.default_rng(0).integers(0, 256, (64, *card.preprocess.sample_shape), dtype=np.uint8))
    bs = pool.batch_size
    ids = np.arange(per_query, dtype=np.uint64)
    rows = np.arange(per_query, dtype=np.int32) % 64
    latencies = []
    start = time.perf_counter()
    while True:
        warm = time.perf_counter() - start < min(1.0, seconds / 4)
        t0 = time.perf_counter()
        for first in range(0, per_query, bs):
            pool.submit(rows[first:first + bs], ids[first:first + bs])
        pool.drain()  # as IssuingThreadSUT: the issuing thread waits for the query and answers it
        if not warm:
            latencies.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - start > seconds and len(latencies) >= 64:
            break
    pool.drain()
    if pool.error is not None:
        raise pool.error
    return np.asarray(latencies)


def tune_latency(model_dir: Path, card: ModelCard, scenario: Scenario, cores: int, seconds: float,
                 progress: bool = True) -> list[LatencyPoint]:
    """Measure every candidate; return them best (lowest latency percentile) first."""
    from tqdm import tqdm

    core = ov.Core()
    percentile, per_query = PERCENTILES[scenario], SAMPLES_PER_QUERY[scenario]
    points = []
    for engine in tqdm(candidates(scenario, cores), desc=f"tune {scenario.value}", unit="point",
                       disable=not progress):
        compiled, _ = compile_model(core, model_dir, card, engine)
        lat = query_latencies(compiled, engine, card, per_query, seconds)
        point = LatencyPoint(engine, percentile, float(np.percentile(lat, percentile)), float(np.median(lat)),
                             len(lat))
        log.info("%s streams %d, threads %d, requests %d, batch %d, pinning %s: p%g %.3f ms (median %.3f ms)",
                 scenario.value, engine.num_streams, engine.num_threads, engine.infer_requests, engine.batch_size,
                 engine.pinning, percentile, point.latency_ms, point.median_ms)
        points.append(point)
    return sorted(points, key=lambda p: p.latency_ms)
