"""``tune --scenario Server``: the highest Poisson rate confirmed VALID at official length, and the policy.

First, in seconds, one query at a time through each per-query policy's streams: a policy whose
streams miss the bound even so cannot be VALID at any rate and is left out, with the batching
policies on the same streams; when every policy is left out, the search ends there
(``reachable_policies``).
Then the search has two parts, each made of real LoadGen Server runs in their own process
(``pipeline.testrun.run_test``), within a time budget printed before the first run:

1. **Bisection** of ``server_target_qps`` over ``(0, ceiling]`` with short probes, for the first
   batching policy (``policies``); each later policy first runs one step at ``CHALLENGE_GAIN``
   over the highest VALID rate so far and is bisected further only if that is VALID
   (``challenge``), so a policy that cannot beat the best costs one or two probes, not a
   bisection. Only a run LoadGen called VALID moves the search up. A probe
   INVALID on the latency bound is run once more (a host burst can hold the 1 % of a short
   run's queries that the 99th percentile allows); a probe INVALID on early stopping alone (its
   99th percentile met the bound, but too few queries to prove it) is run again with enough
   queries for early stopping to allow ~0.7 % of them over the bound (``EXTENDED_QUERIES``).
   Anything else moves the search down.
2. **Confirmation** at official length (600 s). The first candidate is where the probes' p99,
   followed upwards from the highest VALID probe, reaches the bound less ``P99_MARGIN``
   (``first_candidate``). After a failed confirmation the search steps down (``step_down``: what the
   long run's p99 added to the probes' p99 at its rate lowers the goal, and the next rate is where
   the probes' curve meets it; at least ``MIN_STEP`` lower, ``FALLBACK_STEP`` under the lowest probe
   when none met it), until one is VALID. The last
   confirmation the budget allows runs at the floor (``FLOOR_FRACTION`` of the first candidate);
   if even that fails, the search says so and ends with no rate.

The result is the highest rate confirmed VALID at official length (``SearchOutcome``); times
``SERVER_MARGIN`` it goes into user.conf as ``<model>.Server.target_qps`` (resnet50 or yolo), and
the policy into the profile's ``scenarios: Server``.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import openvino as ov

from common.errors import HarnessError
from common.loadgen_conf import set_value
from common.testspec import Mode, Overrides, Scenario, loadgen_model
from harness.profile import DEFAULT_CONFIG_DIR, SERVER_REQUESTS_PER_STREAM
from harness.run_length import Pace
from harness.tune import TuneOutcome, tuned_name, with_engine, write_profile
from harness.tune_latency import query_latencies
from modelprep.card import load_card
from pipeline.testrun import TestSpec, Workspace, run_test
from records.results import failed_only_early_stopping
from records.rules import SERVER_LATENCY_BOUND_NS
from sut.config import EngineConfig, SystemProfile
from sut.engine import compile_model

log = logging.getLogger(__name__)

# The rate written to user.conf: a 600 s run at the confirmed rate was VALID; 5 % below it keeps a
# repeat of that run VALID through the host's run-to-run drift.
SERVER_MARGIN = 0.95
BISECTION_STEPS = 7  # over (0, Offline samples/s]: a step of 0.8 % of it at the end
OFFICIAL_SERVER_MS = 600_000  # the round's Server min_duration: the confirmation run's length
CONFIRMATIONS = 4  # confirmation runs at most (each as long as an official run); the last at the floor
BOUND_MS = SERVER_LATENCY_BOUND_NS / 1e6  # the round's resnet50 Server bound (15 ms)
# A confirmation candidate's p99 (interpolated between runs) at most this share under the bound:
# short probes see fewer of the host's slow phases than a 600 s run does.
P99_MARGIN = 0.05
MIN_STEP = 0.02  # a step down after a failed confirmation is at least 2 % of its rate
FALLBACK_STEP = 0.10  # ... and 10 % when no run met the goal (nothing to interpolate towards)
# A policy after the first is searched only if VALID at this much over the best rate so far.
CHALLENGE_GAIN = 0.02
FLOOR_FRACTION = 0.5  # the floor: half the first candidate; a host failing it is too noisy for Server
# An early-stopping-only probe is run again with about this many queries: early stopping then
# allows 0.7 % of them over the bound (0.4 % of 1,500; 0.92 % of the 90,000 of a 600 s run).
EXTENDED_QUERIES = 6000
EXTENDED_MAX_FACTOR = 6  # ... but at most 6 x the probe's length
PROBE_S = 10.0  # a probe's length when none is asked for
RUN_OVERHEAD_S = 20.0  # per LoadGen run besides its timed part: process start, compile, warm-up, logs
ALONE_SECONDS = 2.0  # each measurement of one query at a time, before the search (two at most per policy)


@dataclass(frozen=True)
class ServerProbe:
    """One Server run at ``target_qps`` with ``engine`` (a short probe or a confirmation)."""

    engine: EngineConfig
    target_qps: float
    valid: bool
    completed_qps: float | None
    p99_ms: float | None
    duration_ms: int = 0
    # INVALID only because early stopping failed: the 99th percentile met the bound, but the run
    # had too few queries to prove it at LoadGen's confidence
    early_stopping_only: bool = False


@dataclass(frozen=True)
class SearchPlan:
    """The search's lengths and counts, and the time budget they add up to (``budget_s``)."""

    probe_ms: int = 10_000
    steps: int = BISECTION_STEPS
    confirm_ms: int = OFFICIAL_SERVER_MS  # 0: no confirmation (the highest VALID probe counts)
    confirmations: int = CONFIRMATIONS
    policies: int = 1
    overhead_s: float = RUN_OVERHEAD_S
    budget_override_s: float | None = None  # a stated budget instead of the plan's worst case

    def extended_ms(self, qps: float) -> int:
        """The length of an early-stopping-only probe's second run at ``qps``."""
        wanted = math.ceil(EXTENDED_QUERIES / max(qps, 1e-9) * 1000)
        return max(self.probe_ms, min(wanted, EXTENDED_MAX_FACTOR * self.probe_ms))

    def run_s(self, ms: int) -> float:
        """Estimated wall time of one run of ``ms``."""
        return ms / 1000 + self.overhead_s

    @property
    def bisection_s(self) -> float:
        """The bisection's worst case: every step a probe, its rerun and an extended run."""
        per_step = 2 * self.run_s(self.probe_ms) + self.run_s(EXTENDED_MAX_FACTOR * self.probe_ms)
        return self.policies * self.steps * per_step

    @property
    def confirmation_s(self) -> float:
        """Estimated wall time of one confirmation run."""
        return self.run_s(self.confirm_ms) if self.confirm_ms else 0.0

    @property
    def budget_s(self) -> float:
        """The time the search may take: the stated budget, or the plan's worst case."""
        if self.budget_override_s is not None:
            return self.budget_override_s
        return self.bisection_s + (self.confirmations * self.confirmation_s if self.confirm_ms else 0.0)

    def describe(self) -> str:
        """The one-line budget statement printed before the first run."""
        confirm = (f"then at most {self.confirmations} confirmation(s) of {self.confirm_ms / 1000:g} s "
                   f"(~{self.confirmation_s:.0f} s each; the last at the floor)" if self.confirm_ms
                   else "no confirmation (the highest VALID probe counts)")
        return (f"Server search: time budget {self.budget_s:.0f} s (~{self.budget_s / 60:.0f} min): {self.policies} "
                f"policy(ies) x {self.steps} bisection steps of {self.probe_ms / 1000:g} s probes (a rerun, and up "
                f"to {EXTENDED_MAX_FACTOR * self.probe_ms / 1000:g} s for early stopping, at most "
                f"{self.bisection_s:.0f} s), {confirm}; {self.overhead_s:g} s assumed per run besides its length")


@dataclass
class Budget:
    """Time spent against ``SearchPlan.budget_s``: the larger of the clock and the runs' estimates
    (so a budget holds even when runs take longer than planned, and counts alike when they are quick)."""

    plan: SearchPlan
    clock: Callable[[], float] = time.monotonic
    estimated_s: float = 0.0
    start: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = self.clock()

    @property
    def spent_s(self) -> float:
        """Seconds counted against the budget so far."""
        return max(self.clock() - self.start, self.estimated_s)

    def fits(self, ms: int, reserve_s: float = 0.0) -> bool:
        """Whether a run of ``ms`` (and ``reserve_s`` kept for later runs) fits in what is left."""
        return self.spent_s + self.plan.run_s(ms) + reserve_s <= self.plan.budget_s + 1e-9

    def charge(self, ms: int) -> None:
        """Count one run of ``ms`` as done."""
        self.estimated_s += self.plan.run_s(ms)


@dataclass(frozen=True)
class SearchOutcome:
    """What a search ended with: the highest rate confirmed VALID (0: none) and every run."""

    rate: float
    engine: EngineConfig | None
    probes: list[ServerProbe]
    floor: float
    confirmed: bool  # VALID at the confirmation length (False: probes only, or no rate)
    message: str  # one plain sentence: what it ended with and why


HOST_SETTINGS = ("keep_awake", "dispatch_slice_us", "issue_priority")  # how the host runs, not the policy


def policies(cores: int, host: EngineConfig | None = None) -> list[EngineConfig]:
    """Batching policies worth searching on ``cores`` cores, the first searched in full (the
    others must beat it, ``challenge``): per-query dispatch (8 requests per stream) to one
    single-thread stream per core or to one stream over all cores, and batches of up to 2 or 4
    sent as requests go idle (one request more than streams, no wait: a batch holds what arrived
    while every stream was busy, so it grows with the load); each with ``host``'s
    ``HOST_SETTINGS`` (the profile's Server engine; none: the defaults)."""
    per_query = SERVER_REQUESTS_PER_STREAM  # bursts wait in OpenVINO's queue (harness.profile.host_scenarios)
    out = [EngineConfig(cores, cores, per_query * cores, 1, max_wait_us=0)]
    if cores > 1:
        out.append(EngineConfig(1, cores, per_query, 1, max_wait_us=0))
    out += [EngineConfig(cores, cores, cores + 1, b, max_wait_us=0) for b in (2, 4)]
    settings = {name: getattr(host, name) for name in HOST_SETTINGS} if host is not None else {}
    return [replace(engine, **settings) for engine in out]


def shape_words(engine: EngineConfig) -> str:
    """An engine's streams and threads in words: its thread count is the total (OpenVINO's
    ``inference_num_threads``), shared by its streams."""
    streams, threads = engine.num_streams, engine.num_threads
    if threads % streams == 0:
        return f"{streams} stream(s) x {threads // streams} thread(s)"
    return f"{streams} stream(s) over {threads} thread(s)"


def policy_words(engine: EngineConfig) -> str:
    """A policy in a few words: batch, streams and threads, requests, wait."""
    return (f"batch {engine.batch_size}, {shape_words(engine)}, "
            f"{engine.infer_requests} requests, wait {engine.max_wait_us} us")


def probe(model_dir: Path, dataset: Path, base: SystemProfile, engine: EngineConfig, qps: float,
          workspace: Workspace, user_conf: Path, duration_ms: int) -> ServerProbe:
    """One Server performance run of ``duration_ms`` at ``qps`` (non-official settings; its own process)."""
    log.info("Server run: %.1f qps for %d s (about %.0f s with start-up)", qps, duration_ms // 1000,
             duration_ms / 1000 + RUN_OVERHEAD_S)
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


# ----------------------------------------------------------------------------- the arithmetic
def highest_valid(probes: Sequence[ServerProbe]) -> float:
    """The highest rate among ``probes`` that LoadGen called VALID (0 if none)."""
    return max((p.target_qps for p in probes if p.valid), default=0.0)


def p99_curve(probes: Sequence[ServerProbe]) -> list[tuple[float, float]]:
    """``(rate, p99 ms)`` by rising rate, the worst p99 of the runs at each rate (runs without a p99 left out)."""
    worst: dict[float, float] = {}
    for p in probes:
        if p.p99_ms is not None:
            worst[p.target_qps] = max(worst.get(p.target_qps, p.p99_ms), p.p99_ms)
    return sorted(worst.items())


def _crossing(low: tuple[float, float], high: tuple[float, float], goal: float) -> float:
    """The rate between two curve points where the straight line between them reaches ``goal``."""
    (r0, p0), (r1, p1) = low, high
    if p1 == p0:
        return r0
    return r0 + (goal - p0) / (p1 - p0) * (r1 - r0)


def first_candidate(probes: Sequence[ServerProbe], bound_ms: float = BOUND_MS, margin: float = P99_MARGIN) -> float:
    """The first rate to confirm: following the probes' p99 curve upwards from the highest VALID
    probe (from the lowest probe when none was VALID), where it first reaches ``bound_ms x (1 - margin)``;
    never below the highest VALID probe, never above the highest probe. 0 when no probe met the goal."""
    goal = bound_ms * (1 - margin)
    valid = highest_valid(probes)
    curve = p99_curve(probes)
    at_or_below = [pt for pt in curve if pt[0] <= valid]
    last = at_or_below[-1] if at_or_below else None
    for point in (pt for pt in curve if pt[0] > valid):
        if point[1] > goal:
            if last is None or last[1] > goal:
                return valid
            return max(valid, _crossing(last, point, goal))
        last = point
    return max(valid, last[0] if last is not None and last[1] <= goal else 0.0)


def _p99_at(curve: Sequence[tuple[float, float]], qps: float) -> float:
    """The curve's p99 at ``qps``: interpolated between the points on either side, else the
    nearest point's (``curve`` by rising rate, not empty)."""
    below = [pt for pt in curve if pt[0] <= qps]
    above = [pt for pt in curve if pt[0] > qps]
    if below and above:
        (r0, p0), (r1, p1) = below[-1], above[0]
        return p0 + (qps - r0) / (r1 - r0) * (p1 - p0)
    return below[-1][1] if below else above[0][1]


def step_down(failed: ServerProbe, probes: Sequence[ServerProbe], floor: float, bound_ms: float = BOUND_MS,
              margin: float = P99_MARGIN) -> float:
    """The next rate to confirm after the confirmation ``failed`` (INVALID) with the short ``probes``
    (runs as long as ``failed`` or longer do not count as probes).

    A long run sees more of the host's slow phases than a short probe. When probes ran on both sides
    of the failed rate, what its p99 adds to theirs there (the excess) is taken to hold at lower
    rates too: the next rate is where the probes' p99 curve, with the failed run on top at the
    probes' p99, reaches ``bound_ms x (1 - margin)`` less that excess. Without a probe above it (its
    p99 may be a queue growing past saturation, not a tail), the failed run is a point of the curve
    and the goal is not lowered. Interpolated between the runs on either side; ``FALLBACK_STEP``
    under the lowest probe when none is under the goal, or under the failed rate when it had no
    p99 or no probe ran below it. At least ``MIN_STEP`` lower (also when the failed run met the goal
    and failed on early stopping); never under ``floor``."""
    goal = bound_ms * (1 - margin)
    highest = failed.target_qps * (1 - MIN_STEP)
    if failed.p99_ms is not None and failed.p99_ms <= goal:
        return max(floor, highest)
    curve = p99_curve([p for p in probes if p.duration_ms < failed.duration_ms])
    below = [pt for pt in curve if pt[0] < failed.target_qps]
    if failed.p99_ms is None or not below:
        return max(floor, min(failed.target_qps * (1 - FALLBACK_STEP), highest))
    if curve[-1][0] >= failed.target_qps:
        short_p99 = _p99_at(curve, failed.target_qps)
        target = goal - max(0.0, failed.p99_ms - short_p99)
        upper = (failed.target_qps, short_p99)
    else:
        target, upper = goal, (failed.target_qps, failed.p99_ms)
    rate = below[0][0] * (1 - FALLBACK_STEP)
    for point in reversed(below):
        if point[1] <= target:
            rate = _crossing(point, upper, target)
            break
        upper = point
    return max(floor, min(rate, highest))


# ----------------------------------------------------------------------------- the runs
@dataclass
class SearchRuns:
    """Runs the probes of one search, in order, charging each to the budget."""

    model_dir: Path
    dataset: Path
    base: SystemProfile
    workspace: Workspace
    user_conf: Path
    budget: Budget
    after_probe: Callable[[ServerProbe], None] | None = None
    done: list[ServerProbe] = field(default_factory=list)

    def __call__(self, engine: EngineConfig, qps: float, ms: int) -> ServerProbe:
        result = probe(self.model_dir, self.dataset, self.base, engine, qps, self.workspace, self.user_conf, ms)
        self.budget.charge(ms)
        self.done.append(result)
        if self.after_probe is not None:
            self.after_probe(result)
        return result

    def if_fits(self, engine: EngineConfig, qps: float, ms: int, reserve_s: float) -> ServerProbe | None:
        """The run, when it fits in the budget with ``reserve_s`` kept for later runs; else None."""
        return self(engine, qps, ms) if self.budget.fits(ms, reserve_s) else None


def _decided(runs: SearchRuns, engine: EngineConfig, qps: float, reserve_s: float) -> ServerProbe | None:
    """One search step at ``qps``: a probe; INVALID on the bound, once more (one host burst in a
    short run); INVALID on early stopping alone, once with enough queries for it to decide. None
    when the budget (keeping ``reserve_s``) has no room for a run."""
    plan = runs.budget.plan
    result = runs.if_fits(engine, qps, plan.probe_ms, reserve_s)
    if result is not None and not (result.valid or result.early_stopping_only):
        result = runs.if_fits(engine, qps, plan.probe_ms, reserve_s)
    if result is not None and result.early_stopping_only:
        result = runs.if_fits(engine, qps, plan.extended_ms(qps), reserve_s)
    return result


def bisect(runs: SearchRuns, engine: EngineConfig, ceiling: float, reserve_s: float = 0.0, low: float = 0.0,
           steps: int | None = None) -> list[ServerProbe]:
    """Bisect ``(low, ceiling]`` for ``engine`` in ``steps`` (default the plan's): only a VALID run
    moves the search up (see the module docstring); a step that would not fit in the budget (keeping
    ``reserve_s``) ends it. Returns its runs."""
    plan = runs.budget.plan
    start = len(runs.done)
    high = ceiling
    for _ in range(plan.steps if steps is None else steps):
        mid = (low + high) / 2
        result = _decided(runs, engine, mid, reserve_s)
        if result is None:
            log.warning("Server search: bisection stopped at %.1f qps to keep the budget for the confirmations", mid)
            break
        if result.valid:
            low = mid
        else:
            high = mid
    return runs.done[start:]


def challenge(runs: SearchRuns, engine: EngineConfig, best: float, ceiling: float,
              reserve_s: float = 0.0) -> list[ServerProbe]:
    """A policy after the first: one step at ``CHALLENGE_GAIN`` over ``best`` (the highest VALID
    rate so far); INVALID drops it there, VALID bisects the rest up to ``ceiling`` to the
    resolution of the first policy's bisection, within the plan's steps. Returns its runs."""
    plan = runs.budget.plan
    start = len(runs.done)
    rate = best * (1 + CHALLENGE_GAIN)
    if rate >= ceiling:
        return []
    first = _decided(runs, engine, rate, reserve_s)
    if first is not None and first.valid:
        resolution = ceiling / 2 ** plan.steps
        needed = math.ceil(math.log2(max((ceiling - rate) / resolution, 1.0)))
        bisect(runs, engine, ceiling, reserve_s, low=rate, steps=min(plan.steps - 1, needed))
    log.info("Server search: batch %d, %d streams %s %.1f qps", engine.batch_size, engine.num_streams,
             "beats" if first is not None and first.valid else "does not beat", best)
    return runs.done[start:]


def bisect_policies(runs: SearchRuns, engines: Sequence[EngineConfig], ceiling: float,
                    reserve_s: float = 0.0) -> tuple[EngineConfig, list[ServerProbe]]:
    """The first of ``engines`` bisected over ``(0, ceiling]``, each later one challenging the highest
    VALID rate so far (``challenge``): the policy whose first confirmation candidate is highest, with its runs."""
    searched: list[tuple[EngineConfig, list[ServerProbe]]] = []
    for engine in engines:
        best = max((highest_valid(probes) for _, probes in searched), default=0.0)
        probes = (challenge(runs, engine, best, ceiling, reserve_s) if best > 0
                  else bisect(runs, engine, ceiling, reserve_s))
        searched.append((engine, probes))
    return max(searched, key=lambda pair: (first_candidate(pair[1]), highest_valid(pair[1])))


def confirm_down(runs: SearchRuns, engine: EngineConfig, first: float, floor: float,
                 probes: Sequence[ServerProbe], bound_ms: float = BOUND_MS) -> SearchOutcome:
    """Confirm ``first`` at the plan's confirmation length, stepping down after each failure
    (``step_down`` over ``probes`` and the failed runs) until one is VALID; the last confirmation
    the budget (and ``plan.confirmations``) allows after a failed one runs at ``floor``."""
    plan = runs.budget.plan
    seen = list(probes)
    start = len(runs.done)
    rate, used = max(first, floor), 0

    def runs_left() -> int:
        return min(plan.confirmations - used, int((plan.budget_s - runs.budget.spent_s) // plan.confirmation_s))

    while True:
        left = runs_left()
        if left <= 0:
            tried = runs.done[start:]
            spent = (f"the {used} confirmation(s) asked for" if used >= plan.confirmations
                     else f"the time budget of {plan.budget_s:.0f} s")
            message = (f"{spent} ended with no VALID run (last {tried[-1].target_qps:.1f} qps INVALID): no Server "
                       "rate confirmed" if tried else
                       f"the time budget of {plan.budget_s:.0f} s left no room for a confirmation of "
                       f"{plan.confirm_ms / 1000:g} s: no Server rate confirmed")
            return SearchOutcome(0.0, None, runs.done[start:], floor, False, message)
        if left == 1 and used:
            rate = floor  # after a failed confirmation, the last run the budget allows: the floor
        result = runs(engine, rate, plan.confirm_ms)
        used += 1
        seen.append(result)
        if result.valid:
            return SearchOutcome(rate, engine, runs.done[start:], floor, True,
                                 f"{rate:.1f} qps confirmed VALID in a run of {plan.confirm_ms / 1000:g} s "
                                 f"(p99 {result.p99_ms} ms; confirmation {used} of at most {plan.confirmations})")
        if rate <= floor:
            return SearchOutcome(0.0, None, runs.done[start:], floor, False,
                                 f"even the floor, {floor:.1f} qps, failed in a run of {plan.confirm_ms / 1000:g} s "
                                 f"(p99 {result.p99_ms} ms against the {bound_ms:g} ms bound): no Server rate "
                                 "confirmed on this host (too noisy for Server, or the bound is below one "
                                 "inference's latency)")
        following = step_down(result, seen, floor, bound_ms)
        last = runs_left() == 1
        log.warning("Server search: %.1f qps INVALID in a confirmation of %g s (p99 %s ms); stepping down to "
                    "%.1f qps%s", rate, plan.confirm_ms / 1000, result.p99_ms, floor if last else following,
                    " (the floor: the last confirmation the budget allows)" if last else "")
        rate = floor if last else following


def _conclude(runs: SearchRuns, engine: EngineConfig, probes: Sequence[ServerProbe]) -> SearchOutcome:
    """After the bisection of ``engine`` (``probes``): the confirmations, or without them the highest VALID probe."""
    plan = runs.budget.plan
    if not plan.confirm_ms:
        rate = highest_valid(probes)
        message = (f"{rate:.1f} qps VALID in a {plan.probe_ms / 1000:g} s probe (not confirmed at official length)"
                   if rate else "no probe was VALID (no confirmation asked): no Server rate")
        return SearchOutcome(rate, engine if rate else None, list(probes), 0.0, False, message)
    first = first_candidate(probes) or min((p.target_qps for p in probes), default=0.0)
    if first <= 0:
        return SearchOutcome(0.0, None, list(probes), 0.0, False,
                             "no probe ran within the time budget: no Server rate confirmed")
    return confirm_down(runs, engine, first, first * FLOOR_FRACTION, probes)


def search_policies(model_dir: Path, dataset: Path, base: SystemProfile, engines: Sequence[EngineConfig],
                    ceiling: float, workspace: Workspace, user_conf: Path, plan: SearchPlan,
                    after_probe: Callable[[ServerProbe], None] | None = None,
                    say: Callable[[str], None] = log.info, bound_ms: float | None = None) -> SearchOutcome:
    """The whole search over ``(0, ceiling]``: the policies (``bisect_policies``), then the
    confirmations of the best one.

    ``say`` gets the budget line before the first run; ``after_probe`` is called after every run (a
    bench measures its reference between runs, so that both see the same phases of the host).
    ``bound_ms``: first leave out, in seconds, the policies whose queries miss it one at a time, and
    refuse a model that misses it through every policy (``reachable_policies``); the budget then
    counts the policies left."""
    if bound_ms is not None:
        kept = reachable_policies(model_dir, engines, bound_ms)
        say(f"Server search: {len(kept)} of {len(engines)} policies meet the {bound_ms:g} ms bound one query at a "
            "time: " + "; ".join(policy_words(e) for e in kept))
        engines, plan = kept, replace(plan, policies=min(plan.policies, len(kept)))
    say(plan.describe())
    runs = SearchRuns(model_dir, dataset, base, workspace, user_conf, Budget(plan), after_probe)
    engine, probes = bisect_policies(runs, engines, ceiling, plan.confirmation_s)
    outcome = _conclude(runs, engine, probes)
    log.info("Server search: %s (%.0f s counted of the %.0f s budget)", outcome.message, runs.budget.spent_s,
             plan.budget_s)
    return replace(outcome, probes=list(runs.done))


def p99_alone_ms(model_dir: Path, engine: EngineConfig, seconds: float = ALONE_SECONDS) -> float:
    """The p99 (ms) of one query at a time through ``engine``'s pool, in this process: what a Server
    query costs with no queue at all, so no Poisson rate can have a lower p99."""
    card = load_card(model_dir)
    compiled, _info = compile_model(ov.Core(), model_dir, card, engine)
    return float(np.percentile(query_latencies(compiled, engine, card, 1, seconds), 99))


def _shape(engine: EngineConfig) -> tuple[int, int, bool]:
    """What one query alone costs through ``engine`` besides its batch: its streams, threads and pinning."""
    return engine.num_streams, engine.num_threads, engine.pinning


def per_query_shapes(engines: Sequence[EngineConfig]) -> list[EngineConfig]:
    """The first batch-1 policy of each distinct streams x threads (and pinning) among ``engines``
    (among all of them when none serves batch 1): one per cost of a query alone."""
    first: dict[tuple[int, int, bool], EngineConfig] = {}
    for engine in [e for e in engines if e.batch_size == 1] or engines:
        first.setdefault(_shape(engine), engine)
    return list(first.values())


def reachable_policies(model_dir: Path, engines: Sequence[EngineConfig], bound_ms: float = BOUND_MS,
                       measure: Callable[[Path, EngineConfig], float] = p99_alone_ms) -> list[EngineConfig]:
    """``engines`` whose queries can meet ``bound_ms`` at all, in seconds instead of a search of hours.

    One query at a time through each per-query policy's streams (measured once more when over the
    bound: a burst of the host is not the model); a policy whose streams miss the bound even so is
    left out, with the batching policies on the same streams (a static batch of 2 or 4 costs more
    than one query). Raises ``HarnessError`` when no policy is left."""
    first = {_shape(e): e for e in per_query_shapes(engines)}
    alone = {shape: measure(model_dir, engine) for shape, engine in first.items()}
    for shape, engine in first.items():
        if alone[shape] > bound_ms:
            alone[shape] = min(alone[shape], measure(model_dir, engine))
    for shape, engine in first.items():
        verdict = "searched" if alone[shape] <= bound_ms else "over the bound: not searched"
        log.info("Server search: one query at a time through %s: p99 %.2f ms (bound %g ms), %s",
                 shape_words(engine), alone[shape], bound_ms, verdict)
    kept = [e for e in engines if alone.get(_shape(e), 0.0) <= bound_ms]
    if not kept:
        raise HarnessError(f"tune --scenario Server: one query at a time already has p99 {min(alone.values()):.2f} ms "
                           f"on this host (the best of {len(alone)} engine shape(s)), over the {bound_ms:g} ms bound: "
                           "no Server rate can be VALID with this model here; no Server target_qps written")
    return kept


def tune_server_and_record(model_dir: Path, dataset: Path, base: SystemProfile, user_conf: Path,
                           workspace: Workspace, offline_qps: float, *, seconds: float = PROBE_S,
                           confirm_seconds: float = OFFICIAL_SERVER_MS / 1000, steps: int = BISECTION_STEPS,
                           confirmations: int = CONFIRMATIONS, budget_seconds: float | None = None,
                           margin: float = SERVER_MARGIN, name: str | None = None,
                           profile_out: Path | None = None,
                           engines: Sequence[EngineConfig] | None = None,
                           bound_ms: float = BOUND_MS) -> tuple[list[ServerProbe], TuneOutcome]:
    """Search the policies (``engines``; default ``policies`` on ``base``'s cores) up to ``offline_qps``
    (Server cannot beat Offline) with ``seconds`` probes and confirm the best with ``confirm_seconds``
    runs (0: none, the highest VALID probe counts): ``search_policies``; then record the result.
    Raises ``HarnessError`` (naming why) when no rate was confirmed, or at once when one query
    at a time already misses ``bound_ms`` (``reachable_policies``)."""
    card = load_card(model_dir)
    if engines is None:
        engines = policies(base.cores, base.scenarios.get(Scenario.SERVER.value))
    if not engines:
        raise HarnessError("tune --scenario Server: no batching policy to search")
    plan = SearchPlan(int(seconds * 1000), steps, int(confirm_seconds * 1000), confirmations, len(engines),
                      budget_override_s=budget_seconds)
    outcome = search_policies(model_dir, dataset, base, engines, offline_qps, workspace, user_conf, plan,
                              bound_ms=bound_ms)
    if not outcome.rate or outcome.engine is None:
        raise HarnessError(f"tune --scenario Server: {outcome.message}; no Server target_qps written")
    best_rate, best_engine = outcome.rate, outcome.engine
    name = name or tuned_name(base)
    profile = with_engine(base, Scenario.SERVER, best_engine, name, card)
    path = write_profile(profile_out or DEFAULT_CONFIG_DIR / f"{name}.yaml", profile,
                         f"Written by `mlperf-cpu tune --scenario Server` for {card.label}: {outcome.message} "
                         f"on this machine ({seconds:g} s probes).")
    target = round(best_rate * margin, 1)
    model = loadgen_model(card.task)  # resnet50 or yolo: the user.conf key
    set_value(user_conf, model, Scenario.SERVER.value, "target_qps", target)
    return outcome.probes, TuneOutcome(path, name, "target_qps", target,
                                  f"best: batch {best_engine.batch_size}, wait {best_engine.max_wait_us} us, "
                                  f"{best_engine.num_streams} streams: {outcome.message} -> profile {path}; "
                                  f"{user_conf}: {model}.Server.target_qps = {target:.1f} "
                                  f"(x{margin:g} of the confirmed rate)", Pace(Scenario.SERVER, qps=target))
