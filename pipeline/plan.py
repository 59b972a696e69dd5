"""The submission flow's plan: each step with how long it will take, logged at the start, after
tuning (with the tuned paces) and before each LoadGen run.

The estimates come from ``harness.run_length`` (LoadGen's rules) at each scenario's pace: the
tune's measurement when there is one, else the targets in user.conf (``paces_from_user_conf``);
a step whose pace is unknown is listed without a figure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.loadgen_conf import lookup, parse_user_conf
from common.testspec import Mode, Scenario
from harness.run_length import (DEFAULT_MIN_QUERIES, MULTI_STREAM_MIN_QUERIES, OFFLINE_MIN_QUERIES, Pace,
                                describe_seconds, run_seconds)

log = logging.getLogger(__name__)

# A tune's parts, besides LoadGen runs: compiling and measuring one grid point or latency candidate.
TUNE_POINT_OVERHEAD_S = 4.0
OFFLINE_TUNE_S = 3.0  # tune_and_record's seconds per grid point
LATENCY_TUNE_S = 5.0  # tune_latency_and_record's seconds per candidate
OFFLINE_GRID = ((8, 16, 32), (1, 2))  # tune_and_record's batches and requests per stream
RUN_OVERHEAD_S = 20.0  # a LoadGen test besides its timed part: process start, cache, compile, warm-up, logs


@dataclass(frozen=True)
class Step:
    """One step of the flow and its estimated length (None: not known yet)."""

    name: str
    seconds: float | None
    pending: str = "after tuning"  # what an unknown estimate waits for


def paces_from_user_conf(user_conf: Path, model: str, scenarios: Iterable[Scenario]) -> dict[Scenario, Pace]:
    """Each scenario's pace as user.conf states it (Offline/Server ``target_qps``, SingleStream/MultiStream
    ``target_latency`` in ms); scenarios without a value are left out."""
    conf = parse_user_conf(user_conf) if Path(user_conf).is_file() else []
    paces = {}
    for s in scenarios:
        key = "target_qps" if s in (Scenario.OFFLINE, Scenario.SERVER) else "target_latency"
        value = lookup(conf, model, s.value, key)
        if not value:
            continue
        if s is Scenario.OFFLINE:
            paces[s] = Pace(s, qps=value, min_queries=OFFLINE_MIN_QUERIES)
        elif s is Scenario.SERVER:
            paces[s] = Pace(s, qps=value)
        else:
            queries = MULTI_STREAM_MIN_QUERIES if s is Scenario.MULTI_STREAM else DEFAULT_MIN_QUERIES
            paces[s] = Pace(s, latency_ms=value, min_queries=queries)
    return paces


def tune_steps(scenarios: Sequence[Scenario], cores: int) -> list[Step]:
    """The tune of each scenario with its estimate (Server: the search's stated time budget)."""
    from harness.tune import grid
    from harness.tune_latency import candidates
    from pipeline.server_search import SearchPlan, policies

    steps = []
    for s in scenarios:
        if s is Scenario.OFFLINE:
            points = len(grid(cores, *OFFLINE_GRID))
            seconds = points * (OFFLINE_TUNE_S + TUNE_POINT_OVERHEAD_S)
            steps.append(Step(f"tune Offline ({points} grid points)", seconds))
        elif s is Scenario.SERVER:
            plan = SearchPlan(policies=len(policies(cores)))
            steps.append(Step("tune Server (search budget, worst case)", plan.budget_s))
        else:
            count = len(candidates(s, cores))
            steps.append(Step(f"tune {s.value} ({count} candidates)", count * (LATENCY_TUNE_S + TUNE_POINT_OVERHEAD_S)))
    return steps


def run_steps(scenarios: Sequence[Scenario], modes: Sequence[Mode], paces: Mapping[Scenario, Pace],
              accuracy_samples: int) -> list[Step]:
    """Every LoadGen test of the flow, in order, with its estimate at its scenario's pace."""
    out = []
    for s in scenarios:
        for mode in modes:
            pace = paces.get(s)
            seconds = run_seconds(pace, mode, accuracy_samples) + RUN_OVERHEAD_S if pace is not None else None
            out.append(Step(f"{s.value} {mode.value}", seconds))
    return out


def log_plan(title: str, steps: Sequence[Step]) -> None:
    """Log the steps with their estimates and the total of the known ones."""
    known = [st.seconds for st in steps if st.seconds is not None]
    unknown = len(steps) - len(known)
    log.info("%s: %d steps, about %s%s", title, len(steps), describe_seconds(sum(known)),
             f" plus {unknown} not yet estimated" if unknown else "")
    for number, st in enumerate(steps, 1):
        log.info("  %2d. %-34s %s", number, st.name,
                 describe_seconds(st.seconds) if st.seconds is not None else f"({st.pending})")


def log_step(number: int, total: int, step: Step) -> None:
    """The line before a LoadGen test: which one, and how long it will take."""
    log.info("step %d/%d: %s, about %s", number, total, step.name,
             describe_seconds(step.seconds) if step.seconds is not None else "? (no target known)")
