"""``tune``'s one entry: every scenario's tuner behind ``tune_scenario``, called by the CLI and the flows.

Offline measures a grid of engine settings in process (``harness.tune``), SingleStream and
MultiStream keep the lowest-latency settings (``harness.tune_latency``), and Server searches the
highest Poisson rate confirmed VALID with real LoadGen runs (``pipeline.server_search``). Each
writes the tuned profile and its ``user.conf`` target; ``Tuned`` carries the measured points as a
table for whoever prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from common.testspec import Scenario
from harness.tune import (TARGET_QPS_MARGIN, TuneOutcome, check_profile_destination, measure_throughput,
                          profile_destination, tune_and_record, tune_latency_and_record)
from pipeline.server_search import (CONFIRMATIONS, OFFICIAL_SERVER_MS, PROBE_S, SERVER_MARGIN, ServerProbe,
                                    tune_server_and_record)
from pipeline.testrun import Workspace
from sut.config import SystemProfile

MIN_SERVER_PROBE_S = 5.0  # shorter Server probes see too few queries to say anything
CEILING_S = 5.0  # the Offline measurement that bounds the Server search from above


@dataclass(frozen=True)
class TuneOptions:
    """How to tune (every field has the tuner's default); the Server fields matter to Server only."""

    seconds: float | None = None  # per measured point (None: the tuner's own); Server: per probe, >= MIN_SERVER_PROBE_S
    margin: float | None = None  # target = measured x margin (default: the scenario's own margin)
    name: str | None = None  # the profile to write (default <system>-tuned)
    profile_out: Path | None = None
    replace: bool = False  # a shipped profile may be written over
    batches: tuple[int, ...] = (8, 16, 32)  # Offline grid
    requests_per_stream: tuple[int, ...] = (1, 2)
    dataset: Path | None = None  # Server: the images its LoadGen runs read
    workspace: Workspace | None = None  # Server: where the image cache is
    confirm_seconds: float = OFFICIAL_SERVER_MS / 1000
    confirmations: int = CONFIRMATIONS
    budget_seconds: float | None = None


@dataclass(frozen=True)
class Tuned:
    """What ``tune_scenario`` wrote (``outcome``) and what it measured, as a table."""

    outcome: TuneOutcome
    header: tuple[str, ...]
    rows: list[tuple[object, ...]]
    preface: str = ""  # a line that belongs before the table


def tune_scenario(scenario: Scenario, model_dir: Path, base: SystemProfile, user_conf: Path,
                  options: TuneOptions = TuneOptions()) -> Tuned:
    """Tune ``scenario`` for the prepared model in ``model_dir`` on ``base``'s cores; write the tuned
    profile and the scenario's ``user_conf`` target. A shipped profile in the way is refused before
    any measuring (``options.replace`` allows it)."""
    check_profile_destination(profile_destination(base, options.name, options.profile_out), options.replace)
    if scenario is Scenario.OFFLINE:
        return _offline(model_dir, base, user_conf, options)
    if scenario is Scenario.SERVER:
        return _server(model_dir, base, user_conf, options)
    return _latency(scenario, model_dir, base, user_conf, options)


def _seconds(o: TuneOptions) -> dict[str, float]:
    """``seconds`` for an in-process tuner when one was asked for; otherwise the tuner keeps its own default."""
    return {} if o.seconds is None else {"seconds": o.seconds}


def _offline(model_dir: Path, base: SystemProfile, user_conf: Path, o: TuneOptions) -> Tuned:
    points, done = tune_and_record(model_dir, base, user_conf, batches=o.batches,
                                   requests_per_stream=o.requests_per_stream, margin=o.margin or TARGET_QPS_MARGIN,
                                   name=o.name, profile_out=o.profile_out, replace=o.replace, **_seconds(o))
    return Tuned(done, ("streams", "threads", "requests", "batch", "samples/s"),
                 [(p.engine.num_streams, p.engine.num_threads, p.engine.infer_requests, p.engine.batch_size,
                   f"{p.samples_per_second:.1f}") for p in points])


def _latency(scenario: Scenario, model_dir: Path, base: SystemProfile, user_conf: Path, o: TuneOptions) -> Tuned:
    points, done = tune_latency_and_record(model_dir, base, scenario, user_conf, name=o.name,
                                           profile_out=o.profile_out, replace=o.replace, **_seconds(o))
    percentile = points[0].percentile if points else 90
    return Tuned(done, ("streams", "threads", "requests", "batch", "pinning", f"p{percentile:g} ms", "median ms"),
                 [(p.engine.num_streams, p.engine.num_threads, p.engine.infer_requests, p.engine.batch_size,
                   p.engine.pinning, f"{p.latency_ms:.3f}", f"{p.median_ms:.3f}") for p in points])


def _server(model_dir: Path, base: SystemProfile, user_conf: Path, o: TuneOptions) -> Tuned:
    if o.dataset is None:
        raise ConfigError("tune --scenario Server needs --dataset (its short LoadGen runs read real samples)")
    probe_s = max(o.seconds, MIN_SERVER_PROBE_S) if o.seconds is not None else PROBE_S
    ceiling = measure_throughput(model_dir, base.engine, min(probe_s, CEILING_S))  # Server cannot beat Offline
    probes, done = tune_server_and_record(model_dir, o.dataset, base, user_conf, o.workspace or Workspace(),
                                          ceiling, seconds=probe_s, confirm_seconds=o.confirm_seconds,
                                          confirmations=o.confirmations, budget_seconds=o.budget_seconds,
                                          margin=o.margin or SERVER_MARGIN, name=o.name, profile_out=o.profile_out)
    return Tuned(done, ("streams", "batch", "wait us", "target qps", "result", "completed qps", "p99 ms"),
                 [_probe_row(p) for p in probes], f"Offline ceiling {ceiling:.1f} samples/s; probes:")


def _probe_row(p: ServerProbe) -> tuple[object, ...]:
    return (p.engine.num_streams, p.engine.batch_size, p.engine.max_wait_us, f"{p.target_qps:.1f}",
            "VALID" if p.valid else "INVALID", p.completed_qps, p.p99_ms)
