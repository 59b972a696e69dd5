"""``tune --scenario Server``: the highest Poisson rate that stays VALID, and the batching policy.

Each candidate policy (engine settings with a batch size and a wait limit) gets a bisection
over ``server_target_qps`` with short real LoadGen Server runs, each in its own process
(``pipeline.flows.run_test``), steered by the 15 ms bound (a run INVALID on early stopping
alone met it; one INVALID on the bound is run once more before it counts) and counting only
rates that LoadGen called VALID: in a probe, or in a run of ``confirm_seconds`` (the official
600 s) at a rate that met the bound above the highest VALID probe (``confirmed_rate``). The best
policy's highest VALID rate, times a margin for run-to-run noise, goes into user.conf as
``<model>.Server.target_qps`` (resnet50 or yolo) and the policy into the profile's
``scenarios: Server``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from common.loadgen_conf import set_value
from common.testspec import Mode, Overrides, Scenario, loadgen_model
from harness.profile import DEFAULT_CONFIG_DIR, SERVER_REQUESTS_PER_STREAM
from harness.tune import TuneOutcome, tuned_name, with_engine, write_profile
from modelprep.card import load_card
from pipeline.flows import TestSpec, Workspace, run_test
from records.results import failed_only_early_stopping
from sut.config import EngineConfig, SystemProfile

log = logging.getLogger(__name__)

SERVER_MARGIN = 0.9  # official runs are 600 s: aim a little under the best short-run rate
BISECTION_STEPS = 7  # over (0, Offline samples/s]: a step of 0.8 % of it at the end
OFFICIAL_SERVER_MS = 600_000  # the round's Server min_duration: the confirmation run's length
CONFIRMATIONS = 2  # confirmation runs at most, highest candidate first (each as long as an official run)


@dataclass(frozen=True)
class ServerProbe:
    """One short Server run at ``target_qps`` with ``engine``."""

    engine: EngineConfig
    target_qps: float
    valid: bool
    completed_qps: float | None
    p99_ms: float | None
    duration_ms: int = 0
    # INVALID only because early stopping failed: the 99th percentile met the bound, but the run
    # had too few queries to prove it at LoadGen's confidence
    early_stopping_only: bool = False


HOST_SETTINGS = ("keep_awake", "dispatch_slice_us", "issue_priority")  # how the host runs, not the policy


def policies(cores: int, host: EngineConfig | None = None) -> list[EngineConfig]:
    """Batching policies worth searching on ``cores`` cores: per-query dispatch (8 requests per
    stream) to one single-thread stream per core or to one stream over all cores, and
    micro-batches of 2 and 4 with a 2 ms wait limit; each with ``host``'s ``HOST_SETTINGS``
    (the profile's Server engine; none: the defaults)."""
    per_query = SERVER_REQUESTS_PER_STREAM  # bursts wait in OpenVINO's queue (harness.profile.host_scenarios)
    out = [EngineConfig(cores, cores, per_query * cores, 1, max_wait_us=0)]
    if cores > 1:
        out.append(EngineConfig(1, cores, per_query, 1, max_wait_us=0))
    out += [EngineConfig(cores, cores, 2 * cores, b, max_wait_us=2000) for b in (2, 4)]
    settings = {name: getattr(host, name) for name in HOST_SETTINGS} if host is not None else {}
    return [replace(engine, **settings) for engine in out]


def probe(model_dir: Path, dataset: Path, base: SystemProfile, engine: EngineConfig, qps: float,
          workspace: Workspace, user_conf: Path, duration_ms: int) -> ServerProbe:
    """One short Server performance run at ``qps`` (non-official settings; its own process)."""
    with tempfile.TemporaryDirectory(prefix="server-search-") as tmp:
        profile = replace(base, name="server-search", scenarios={**base.scenarios, "Server": engine})
        path = write_profile(Path(tmp) / "server-search.yaml", profile, "temporary: tune --scenario Server")
        spec = TestSpec(Mode.PERFORMANCE, model_dir, dataset, str(path),
                        replace(workspace, results=Path(tmp) / "results"), user_conf, scenario=Scenario.SERVER,
                        overrides=Overrides(min_duration_ms=duration_ms, min_query_count=1, target_qps=qps))
        run = run_test(spec, quiet=True)
    early_only = failed_only_early_stopping(run.loadgen)
    result = ServerProbe(engine, qps, run.validity == "VALID", run.metric[0], run.latency_ms("99.00"), duration_ms,
                         early_only)
    log.info("Server batch %d wait %d us, %d streams: %.1f qps, %d s -> %s (p99 %s ms)%s", engine.batch_size,
             engine.max_wait_us, engine.num_streams, qps, duration_ms // 1000, "VALID" if result.valid else "INVALID",
             result.p99_ms, "; early stopping only" if early_only else "")
    return result


def highest_valid_rate(model_dir: Path, dataset: Path, base: SystemProfile, engine: EngineConfig, ceiling: float,
                       workspace: Workspace, user_conf: Path, duration_ms: int,
                       steps: int = BISECTION_STEPS,
                       after_probe: Callable[[ServerProbe], None] | None = None,
                       confirm_ms: int = 0) -> tuple[float, list[ServerProbe]]:
    """Bisect ``(0, ceiling]`` for the highest VALID rate; returns it (0 if none) and every probe.

    The bisection is steered by the latency bound: it moves above a rate whose 99th percentile
    met the bound, whether LoadGen called the run VALID or INVALID on early stopping alone.
    Early stopping wants the over-bound share of queries further under 1 % the fewer queries a
    run has (at most 0.75 % of the ~8,800 queries of a 60 s run at 147 qps, 0.92 % of the ~88,000
    of a 600 s one): for an ideal dispatcher on this host that alone costs 6 % of the rate in 60 s
    probes and 1.6 % in 600 s runs (README, Scenarios, session 10), so short probes must not
    decide it. A run INVALID on the bound itself is run once more before the bisection drops
    every rate above it: on a VM the host slows inference for about a second every 15-20 s
    (session 6), and one such burst in a short probe can hold the ~1 % of queries the 99th
    percentile allows, while it weighs a tenth as much in a 600 s official run.

    A rate counts only through a run that LoadGen called VALID: the highest VALID probe, or,
    with ``confirm_ms``, a higher rate that met the bound, if one run of ``confirm_ms`` (the
    official 600 s) at it is VALID; the candidates are tried highest first, at most
    ``CONFIRMATIONS`` (``confirmed_rate``). The margin (``SERVER_MARGIN``) is still applied to
    the result by ``tune``.

    ``after_probe`` is called after every probe (a bench measures its reference between probes,
    so that both see the same phases of the host).
    """
    low, high = 0.0, ceiling
    probes: list[ServerProbe] = []

    def run(qps: float, ms: int) -> ServerProbe:
        result = probe(model_dir, dataset, base, engine, qps, workspace, user_conf, ms)
        probes.append(result)
        if after_probe is not None:
            after_probe(result)
        return result

    for _ in range(steps):
        mid = (low + high) / 2
        result = run(mid, duration_ms)
        if not (result.valid or result.early_stopping_only):
            result = run(mid, duration_ms)
        if result.valid or result.early_stopping_only:
            low = mid
        else:
            high = mid
    return confirmed_rate(probes, lambda qps: run(qps, confirm_ms).valid, confirm_ms > 0), probes


def highest_valid(probes: list[ServerProbe]) -> float:
    """The highest rate among ``probes`` that LoadGen called VALID (0 if none)."""
    return max((p.target_qps for p in probes if p.valid), default=0.0)


def unconfirmed(probes: list[ServerProbe]) -> list[float]:
    """The rates above the highest VALID one whose 99th percentile met the bound (INVALID on early
    stopping alone), highest first: the candidates for a confirmation run."""
    valid = highest_valid(probes)
    return sorted({p.target_qps for p in probes if p.early_stopping_only and p.target_qps > valid}, reverse=True)


def confirmed_rate(probes: list[ServerProbe], confirm: Callable[[float], bool], confirming: bool) -> float:
    """The highest VALID rate of ``probes``, or higher: the candidates (``unconfirmed``) are tried
    highest first with ``confirm`` (one long run: VALID or not), at most ``CONFIRMATIONS`` of
    them, until one is VALID. Without ``confirming`` only the probes count."""
    for qps in unconfirmed(probes)[:CONFIRMATIONS] if confirming else ():
        if confirm(qps):
            return qps
    return highest_valid(probes)


def tune_server_and_record(model_dir: Path, dataset: Path, base: SystemProfile, user_conf: Path,
                           workspace: Workspace, offline_qps: float, *, seconds: float = 10.0,
                           confirm_seconds: float = OFFICIAL_SERVER_MS / 1000, steps: int = BISECTION_STEPS,
                           margin: float = SERVER_MARGIN, name: str | None = None,
                           profile_out: Path | None = None) -> tuple[list[ServerProbe], TuneOutcome]:
    """Search every policy up to ``offline_qps`` (Server cannot beat Offline); record the best.

    Each policy is bisected with ``seconds`` probes; the policy with the highest rate that met the
    bound above its VALID probes has those rates confirmed with ``confirm_seconds`` runs (0: none;
    ``confirmed_rate``); the best rate LoadGen called VALID wins."""
    card = load_card(model_dir)
    probes: list[ServerProbe] = []
    searched: list[tuple[EngineConfig, list[ServerProbe]]] = []
    for engine in policies(base.cores, base.scenarios.get(Scenario.SERVER.value)):
        _rate, tried = highest_valid_rate(model_dir, dataset, base, engine, offline_qps, workspace, user_conf,
                                          int(seconds * 1000), steps=steps)
        probes += tried
        searched.append((engine, tried))
    best_rate, best_engine = max(((highest_valid(tried), engine) for engine, tried in searched),
                                 key=lambda pair: pair[0])
    furthest, tried = max(searched, key=lambda pair: max(unconfirmed(pair[1]), default=0.0))

    def confirm(qps: float) -> bool:
        probes.append(probe(model_dir, dataset, base, furthest, qps, workspace, user_conf,
                            int(confirm_seconds * 1000)))
        return probes[-1].valid

    rate = confirmed_rate(tried, confirm, confirm_seconds > 0)
    if rate > best_rate:
        best_rate, best_engine = rate, furthest
    if best_rate == 0:
        from common.errors import EngineError

        raise EngineError(f"tune --scenario Server: no rate up to {offline_qps:.1f} qps was VALID for any batching "
                          "policy (the 15 ms bound is below one inference's latency?)")
    name = name or tuned_name(base)
    profile = with_engine(base, Scenario.SERVER, best_engine, name, card)
    path = write_profile(profile_out or DEFAULT_CONFIG_DIR / f"{name}.yaml", profile,
                         f"Written by `mlperf-cpu tune --scenario Server` for {card.label}: highest VALID rate "
                         f"{best_rate:.1f} qps ({seconds:g} s probes, {confirm_seconds:g} s confirmation) on this "
                         "machine.")
    target = round(best_rate * margin, 1)
    model = loadgen_model(card.task)  # resnet50 or yolo: the user.conf key
    set_value(user_conf, model, Scenario.SERVER.value, "target_qps", target)
    return probes, TuneOutcome(path, name, "target_qps", target,
                               f"best: batch {best_engine.batch_size}, wait {best_engine.max_wait_us} us, "
                               f"{best_engine.num_streams} streams: {best_rate:.1f} qps VALID -> profile {path}; "
                               f"{user_conf}: {model}.Server.target_qps = {target:.1f}")
