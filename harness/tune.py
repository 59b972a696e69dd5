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
from common.files import replace_text_with_backup
from common.resources import shipped
from common.loadgen_conf import set_value
from common.testspec import Scenario, loadgen_model
from harness.profile import DEFAULT_CONFIG_DIR
from harness.run_length import (EXPECTED_LATENCY_FRACTION, OFFLINE_TARGET_MARGIN, Pace, describe_seconds,
                                expected_latency, latency_seconds, offline_fastest_valid, offline_seconds,
                                offline_target)
from modelprep.card import ModelCard, load_card
from sut.config import EngineConfig, SystemProfile
from sut.engine import InferencePool, compile_model

log = logging.getLogger(__name__)

# Offline target_qps = the measured rate x this (harness.run_length: an official run then lasts
# about 693 s at the measured rate and stays VALID unless the real run is 15.5 % faster).
TARGET_QPS_MARGIN = OFFLINE_TARGET_MARGIN


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


def shipped_profile_named(path: Path) -> Path | None:
    """The shipped profile (``configs/*.yaml``, not the user's ``*-tuned.yaml``) that writing
    ``path`` would overwrite, or shadow where profiles are looked up by name; None if none."""
    path = Path(path)
    shipped_dir = shipped("configs").resolve()
    if path.name.endswith("-tuned.yaml") or not (shipped_dir / path.name).is_file():
        return None
    if path.resolve().parent in (shipped_dir, DEFAULT_CONFIG_DIR.resolve()):
        return shipped_dir / path.name
    return None


def check_profile_destination(path: Path, replace: bool) -> Path:
    """Refuse, before anything is measured, to write a shipped profile's place without ``replace``."""
    original = shipped_profile_named(path)
    if original is not None and not replace:
        raise ConfigError(f"{path}: the place of a profile shipped with the harness ({original}); pass --replace "
                          "to write it anyway (a previous file is kept as <name>.bak-<utc>), or choose another "
                          "--name/--profile-out")
    return Path(path)


def profile_destination(base: SystemProfile, name: str | None, profile_out: Path | None) -> Path:
    """Where ``tune`` writes its profile: ``--profile-out``, else ``configs/<name or base-tuned>.yaml``."""
    return Path(profile_out) if profile_out else DEFAULT_CONFIG_DIR / f"{name or tuned_name(base)}.yaml"


def write_profile(path: Path, profile: SystemProfile, header: str) -> Path:
    """Write ``profile`` as YAML that ``load_profile`` reads back, with a comment header.

    Atomic (never a half-written profile); a previous, different file is kept as
    ``<name>.bak-<utc>`` beside it (logged).
    """
    data = asdict(profile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"# {line}\n" for line in header.splitlines()) + yaml.safe_dump(data, sort_keys=False)
    try:
        backup = replace_text_with_backup(path, text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from None
    if backup is not None:
        log.info("%s: profile written; the previous version is kept as %s", path, backup)
    return path


@dataclass(frozen=True)
class TuneOutcome:
    """What a ``tune`` wrote: the profile (path and name) and the user.conf line it set."""

    profile_path: Path
    profile_name: str
    conf_key: str
    conf_value: float
    summary: str
    pace: Pace | None = None  # the scenario's tuned pace: how long its official runs will take


def tune_and_record(model_dir: Path, base: SystemProfile, user_conf: Path, *, seconds: float = 3.0,
                    batches: tuple[int, ...] = (8, 16, 32), requests_per_stream: tuple[int, ...] = (1, 2),
                    margin: float = TARGET_QPS_MARGIN, name: str | None = None,
                    profile_out: Path | None = None, progress: bool = True,
                    replace: bool = False) -> tuple[list[TunePoint], TuneOutcome]:
    """Offline: measure the grid, write the best point into the profile and set target_qps in ``user_conf``
    (``replace``: a shipped profile may be written over)."""
    check_profile_destination(profile_destination(base, name, profile_out), replace)
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
    rate = best.samples_per_second * instances
    target = offline_target(rate, margin)
    model = loadgen_model(card.task)  # resnet50 or yolo: the user.conf key
    set_value(user_conf, model, Scenario.OFFLINE.value, "target_qps", target)
    length = (f"an official Offline run lasts ~{describe_seconds(offline_seconds(target, rate))} at this rate, "
              f"VALID unless the real run is over {offline_fastest_valid(margin):.3f}x as fast")
    return points, TuneOutcome(path, name, "target_qps", target,
                               f"best: {best.samples_per_second:.1f} samples/s -> profile {path}; "
                               f"{user_conf}: {model}.Offline.target_qps = {target:.1f} (x{margin:g}: {length})",
                               Pace(Scenario.OFFLINE, qps=target, rate=rate))


def tune_latency_and_record(model_dir: Path, base: SystemProfile, scenario: Scenario, user_conf: Path, *,
                            seconds: float = 5.0, name: str | None = None, profile_out: Path | None = None,
                            progress: bool = True, replace: bool = False) -> tuple[list, TuneOutcome]:
    """SingleStream/MultiStream: keep the lowest-latency engine settings; set target_latency (ms)
    (``replace``: a shipped profile may be written over)."""
    from harness.tune_latency import tune_latency

    check_profile_destination(profile_destination(base, name, profile_out), replace)
    card = load_card(model_dir)
    points = tune_latency(model_dir, card, scenario, base.cores, seconds, progress)
    best = points[0]
    name = name or tuned_name(base)
    profile = with_engine(base, scenario, best.engine, name, card)
    path = write_profile(profile_out or DEFAULT_CONFIG_DIR / f"{name}.yaml", profile,
                         f"Written by `mlperf-cpu tune --scenario {scenario.value}` for {card.label}: "
                         f"p{best.percentile:g} {best.latency_ms:.3f} ms measured on this machine.")
    # Below the median: LoadGen generates queries for 2 x 600 s at it, so a run is never cut short
    # ("ran out of generated queries"); it still ends once 600 s and the minimum query count are met.
    expected = expected_latency(best.median_ms, EXPECTED_LATENCY_FRACTION)
    model = loadgen_model(card.task)
    set_value(user_conf, model, scenario.value, "target_latency", expected, digits=3)
    pace = latency_pace(scenario, best.median_ms)
    length = describe_seconds(latency_seconds(best.median_ms, expected, min_queries=pace.min_queries))
    return points, TuneOutcome(path, name, "target_latency", expected,
                               f"best: p{best.percentile:g} {best.latency_ms:.3f} ms -> profile {path}; "
                               f"{user_conf}: {model}.{scenario.value}.target_latency = {expected} "
                               f"(x{EXPECTED_LATENCY_FRACTION:g} of the median {best.median_ms:.3f} ms: an official "
                               f"run lasts ~{length}, VALID unless queries take under "
                               f"{EXPECTED_LATENCY_FRACTION / 2:g}x the median)", pace)


def latency_pace(scenario: Scenario, median_ms: float) -> Pace:
    """A SingleStream/MultiStream scenario's pace at a tuned median query latency (its round's minimum queries)."""
    from harness.run_length import DEFAULT_MIN_QUERIES, MULTI_STREAM_MIN_QUERIES

    queries = MULTI_STREAM_MIN_QUERIES if scenario is Scenario.MULTI_STREAM else DEFAULT_MIN_QUERIES
    return Pace(scenario, latency_ms=median_ms, min_queries=queries)
