"""``tune``: measure a small grid of engine settings on this machine and keep the best.

Each point compiles the prepared model with one (streams, batch, requests)
setting and keeps the pool busy for a fixed time with the real gather path
(``InferencePool.warmup``); LoadGen is not involved, so a point costs seconds.
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

from common.loadgen_conf import set_value
from common.testspec import BENCHMARK, Scenario
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


def measure(core: ov.Core, model_dir: Path, card: ModelCard, cfg: EngineConfig, seconds: float) -> float:
    """Samples/s of the pool under ``cfg`` on random uint8 inputs (compute does not depend on values)."""
    compiled, _ = compile_model(core, model_dir, card, cfg)
    source = np.random.default_rng(0).integers(0, 256, (256, *card.preprocess.sample_shape), dtype=np.uint8)
    pool = InferencePool(compiled, cfg.infer_requests, lambda ids, out: None, lambda ids, err: None)
    return pool.warmup(source, 2 * cfg.infer_requests, seconds)


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


def write_profile(path: Path, base: SystemProfile, best: TunePoint, name: str, card: ModelCard) -> Path:
    """Write the best point as a profile YAML that keeps ``base``'s system description."""
    profile = replace(base, name=name, engine=best.engine,
                      description=f"{base.description} (tuned for {card.label})".strip())
    data = asdict(profile)
    header = (f"# Written by `mlperf-cpu tune` for {card.label}: "
              f"{best.samples_per_second:.1f} samples/s measured on this machine.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass(frozen=True)
class TuneOutcome:
    """What ``tune_and_record`` measured and wrote."""

    points: list[TunePoint]
    profile_path: Path
    profile_name: str
    target_qps: float


def tune_and_record(model_dir: Path, base: SystemProfile, user_conf: Path, *, seconds: float = 3.0,
                    batches: tuple[int, ...] = (8, 16, 32), requests_per_stream: tuple[int, ...] = (1, 2),
                    margin: float = TARGET_QPS_MARGIN, name: str | None = None,
                    profile_out: Path | None = None, progress: bool = True) -> TuneOutcome:
    """Measure the grid, write the best point as a profile and set Offline target_qps in ``user_conf``."""
    points = tune(model_dir, base, seconds, batches, requests_per_stream, progress)
    best = points[0]
    name = name or f"{base.name}-tuned"
    path = write_profile(profile_out or DEFAULT_CONFIG_DIR / f"{name}.yaml", base, best, name, load_card(model_dir))
    target = round(best.samples_per_second * margin, 1)
    set_value(user_conf, BENCHMARK, Scenario.OFFLINE.value, "target_qps", target)
    return TuneOutcome(points, path, name, target)
