"""``tune``: measure a small grid of engine settings on this machine and keep the best.

Each point compiles the prepared model with one (streams, batch, requests)
setting and keeps the pool busy for a fixed time with the real feed (a full bank
of random rows, walked through in batches of consecutive rows: ``InferencePool.warmup``); LoadGen is
not involved, so a point costs seconds.
The best point becomes a system profile, and ``target_qps`` in user.conf is set
from its throughput with a margin, so an official Offline run is VALID and
lasts a little over the 600 s minimum.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import openvino as ov
import yaml

from common.errors import ConfigError
from common.loadgen_conf import set_value
from common.testspec import Scenario, loadgen_model
from harness.profile import DEFAULT_CONFIG_DIR
from modelprep.card import ModelCard, load_card
from sut.config import EngineConfig, SystemProfile
from sut.engine import InferencePool, compile_model

log = logging.getLogger(__name__)

# LoadGen issues 1.1 x min_duration x target_qps samples; a target 10 % above the measured
# rate keeps the run VALID unless the real run is more than 21 % faster than the measurement.
TARGET_QPS_MARGIN = 1.1


@dataclass(frozen=True)
class TunePoint:
    """One measured configuration."""

    engine: EngineConfig
    samples_per_second: float


def grid(cores: int, batches: tuple[int, ...], requests_per_stream: tuple[int, ...]) -> list[EngineConfig]:
    """Streams that divide the cores (all threads always used) x batch x requests per stream."""
    streams = [s for s in range(1, cores + 1) if cores % s == 0]
    return [EngineConfig(num_streams=s, num_threads=cores, infer_requests=s * r, batch_size=b, pinning=True)
            for s, b, r in itertools.product(streams, batches, requests_per_stream)]


def measuring_pool(core: ov.Core, model_dir: Path, card: ModelCard, cfg: EngineConfig) -> InferencePool:
    """The model compiled under ``cfg`` as a pool whose bank holds random uint8 rows (compute
    does not depend on values); ``pool.warmup(2 * cfg.infer_requests, seconds)`` measures it."""
    compiled, _ = compile_model(core, model_dir, card, cfg)
    pool = InferencePool(compiled, cfg.infer_requests, lambda slot, ids, out: None, lambda ids, err: None)
    # A full bank of random rows, walked through like a run's loaded samples.
    pool.load(np.random.default_rng(0).integers(0, 256, pool.bank.shape, dtype=np.uint8))
    return pool


def measure(core: ov.Core, model_dir: Path, card: ModelCard, cfg: EngineConfig, seconds: float,
            runs: int = 1) -> float:
    """Samples/s of the pool under ``cfg`` on random uint8 inputs (compute does not depend on values);
    the best of ``runs`` runs of ``seconds`` on the one compiled pool."""
    pool = measuring_pool(core, model_dir, card, cfg)
    try:
        return max(pool.warmup(2 * cfg.infer_requests, seconds) for _ in range(runs))
    finally:
        pool.close()


def measure_throughput(model_dir: Path, engine: EngineConfig, seconds: float = 5.0) -> float:
    """Samples/s of the pool on ``engine`` (compiles the model once)."""
    return measure(ov.Core(), model_dir, load_card(model_dir), engine, seconds)


def tune(model_dir: Path, base: SystemProfile, seconds: float, batches: tuple[int, ...],
         requests_per_stream: tuple[int, ...], progress: bool = True) -> list[TunePoint]:
    """Measure every grid point; return them best first."""
    from tqdm import tqdm

    card = load_card(model_dir)
    core = ov.Core()
    points = []
    configs = grid(base.engine.num_threads, batches, requests_per_stream)
    for cfg in tqdm(configs, desc="tune", unit="point", disable=not progress):
        qps = measure(core, model_dir, card, cfg, seconds)
        log.info("streams %d, threads %d, requests %d, batch %d: %.1f samples/s",
                 cfg.num_streams, cfg.num_threads, cfg.infer_requests, cfg.batch_size, qps)
        points.append(TunePoint(cfg, qps))
    return sorted(points, key=lambda p: p.samples_per_second, reverse=True)


def tuned_name(base: SystemProfile) -> str:
    """``<base>-tuned`` (a profile tuned again keeps its name, so scenarios accumulate in one file)."""
    return base.name if base.name.endswith("-tuned") else f"{base.name}-tuned"


def with_engine(base: SystemProfile, scenario: Scenario, engine: EngineConfig, name: str,
                card: ModelCard) -> SystemProfile:
    """``base`` with ``engine`` for ``scenario`` (every other setting and the description kept).

    The scenario's ``instances`` is kept: tuning measures one instance's pool (in this process,
    on every allowed core), and its settings are per instance."""
    try:
        instances = base.engine_for(scenario.value).instances
    except ConfigError:
        instances = 1
    if engine.instances != instances:
        engine = replace(engine, instances=instances)
    note = f"tuned for {card.label}"
    description = base.description if note in base.description else f"{base.description} ({note})".strip()
    if scenario is Scenario.OFFLINE:
        return replace(base, name=name, engine=engine, description=description)
    return replace(base, name=name, description=description, scenarios={**base.scenarios, scenario.value: engine})


def write_profile(path: Path, profile: SystemProfile, header: str) -> Path:
    """Write ``profile`` as YAML that ``load_profile`` reads back, with a comment header."""
    data = asdict(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"# {line}\n" for line in header.splitlines()) + yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass(frozen=True)
class TuneOutcome:
    """What a ``tune`` wrote: the profile (path and name) and the user.conf line it set."""

    profile_path: Path
    profile_name: str
    conf_key: str
    conf_value: float
    summary: str


def tune_and_record(model_dir: Path, base: SystemProfile, user_conf: Path, *, seconds: float = 3.0,
                    batches: tuple[int, ...] = (8, 16, 32), requests_per_stream: tuple[int, ...] = (1, 2),
                    margin: float = TARGET_QPS_MARGIN, name: str | None = None,
                    profile_out: Path | None = None, progress: bool = True) -> tuple[list[TunePoint], TuneOutcome]:
    """Offline: measure the grid, write the best point into the profile and set target_qps in ``user_conf``."""
    card = load_card(model_dir)
    points = tune(model_dir, base, seconds, batches, requests_per_stream, progress)
    best = points[0]
    name = name or tuned_name(base)
    profile = with_engine(base, Scenario.OFFLINE, best.engine, name, card)
    path = write_profile(profile_out or DEFAULT_CONFIG_DIR / f"{name}.yaml", profile,
                         f"Written by `mlperf-cpu tune` for {card.label}: Offline {best.samples_per_second:.1f} "
                         "samples/s measured on this machine.")
    # One instance's pool was measured: with several, assume they add up (check with a short run).
    instances = base.engine.instances
    if instances > 1:
        log.warning("Offline target_qps assumes the %d instances each reach the measured %.1f samples/s",
                    instances, best.samples_per_second)
    target = round(best.samples_per_second * instances * margin, 1)
    model = loadgen_model(card.task)  # resnet50 or yolo: the user.conf key
    set_value(user_conf, model, Scenario.OFFLINE.value, "target_qps", target)
    return points, TuneOutcome(path, name, "target_qps", target,
                               f"best: {best.samples_per_second:.1f} samples/s -> profile {path}; "
                               f"{user_conf}: {model}.Offline.target_qps = {target:.1f}")


# Expected latency below the measured median: LoadGen then generates more queries than
# 600 s need, so an official run is never cut short ("ran out of generated queries").
EXPECTED_LATENCY_FRACTION = 0.8


def tune_latency_and_record(model_dir: Path, base: SystemProfile, scenario: Scenario, user_conf: Path, *,
                            seconds: float = 5.0, name: str | None = None, profile_out: Path | None = None,
                            progress: bool = True) -> tuple[list, TuneOutcome]:
    """SingleStream/MultiStream: keep the lowest-latency engine settings; set target_latency (ms)."""
    from harness.tune_latency import tune_latency

    card = load_card(model_dir)
    points = tune_latency(model_dir, card, scenario, base.cores, seconds, progress)
    best = points[0]
    name = name or tuned_name(base)
    profile = with_engine(base, scenario, best.engine, name, card)
    path = write_profile(profile_out or DEFAULT_CONFIG_DIR / f"{name}.yaml", profile,
                         f"Written by `mlperf-cpu tune --scenario {scenario.value}` for {card.label}: "
                         f"p{best.percentile:g} {best.latency_ms:.3f} ms measured on this machine.")
    expected = round(best.median_ms * EXPECTED_LATENCY_FRACTION, 3)
    model = loadgen_model(card.task)
    set_value(user_conf, model, scenario.value, "target_latency", expected, digits=3)
    return points, TuneOutcome(path, name, "target_latency", expected,
                               f"best: p{best.percentile:g} {best.latency_ms:.3f} ms -> profile {path}; "
                               f"{user_conf}: {model}.{scenario.value}.target_latency = {expected}")
