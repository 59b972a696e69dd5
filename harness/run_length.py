"""How long a LoadGen run lasts, and the targets that make an official run last just over its minimum.

Pure arithmetic on LoadGen 6.0.17's rules (no heavy imports), shared by ``tune`` (the targets it
writes), the runner (an estimate before each run) and the submission flow (its plan):

- Offline: one query of ``max(min_query_count, 1.1 x min_duration x target_qps)`` samples; the run
  lasts that many samples at the real rate and is VALID when that is at least ``min_duration``.
- SingleStream / MultiStream: queries generated for ``2 x min_duration`` at the expected latency;
  the run ends once ``min_duration`` and ``min_query_count`` are both met, so it lasts
  ``max(min_duration, min_query_count x latency)`` unless the real queries are more than twice as
  fast as expected (then it runs out of queries and is INVALID).
- Server: arrivals scheduled over ``min_duration`` (at least ``min_query_count`` of them).
- Accuracy: every sample once, at the scenario's pace.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.testspec import Mode, Scenario

OFFLINE_SLACK = 1.1  # LoadGen's kSlack: an Offline query holds 1.1 x min_duration x target_qps samples
LATENCY_GENERATION = 2.0  # SingleStream/MultiStream queries are generated for 2 x min_duration
MIN_DURATION_S = 600.0  # the round's min_duration, every scenario
OFFLINE_MIN_QUERIES = 24_576  # resnet50.Offline.min_query_count (samples, as LoadGen counts them)
MULTI_STREAM_MIN_QUERIES = 662
DEFAULT_MIN_QUERIES = 100  # LoadGen's default min_query_count (SingleStream, Server)
MULTI_STREAM_SAMPLES = 8

# Offline target_qps = the tuned rate x this: at the tuned rate the run lasts 1.1 x 1.05 x 600 s
# = 693 s (15.5 % over the minimum), and it stays VALID unless the real run is more than 15.5 %
# faster than the tune measured.
OFFLINE_TARGET_MARGIN = 1.05
# SingleStream/MultiStream expected latency = the tuned median x this: the run lasts
# max(600 s, min queries x latency) whatever the value, and stays VALID unless real queries take
# under 0.4 x the tuned median (queries for 2 x 600 s are generated at 0.8 x the median).
EXPECTED_LATENCY_FRACTION = 0.8


def offline_target(measured_qps: float, margin: float = OFFLINE_TARGET_MARGIN) -> float:
    """The Offline ``target_qps`` for a tuned rate (one decimal, as user.conf keeps it)."""
    return round(measured_qps * margin, 1)


def offline_samples(target_qps: float, min_duration_s: float = MIN_DURATION_S,
                    min_query_count: int = OFFLINE_MIN_QUERIES) -> int:
    """Samples in an Offline performance run's one query."""
    return max(min_query_count, int(OFFLINE_SLACK * min_duration_s * target_qps))


def offline_seconds(target_qps: float, rate: float, min_duration_s: float = MIN_DURATION_S,
                    min_query_count: int = OFFLINE_MIN_QUERIES) -> float:
    """How long an Offline performance run at ``target_qps`` lasts on a system doing ``rate`` samples/s."""
    return offline_samples(target_qps, min_duration_s, min_query_count) / rate


def offline_fastest_valid(margin: float = OFFLINE_TARGET_MARGIN) -> float:
    """How much faster than the tune the real Offline run may be and still last ``min_duration``."""
    return OFFLINE_SLACK * margin


def expected_latency(median_ms: float, fraction: float = EXPECTED_LATENCY_FRACTION) -> float:
    """The SingleStream/MultiStream expected latency (ms, three decimals) for a tuned median query latency."""
    return round(median_ms * fraction, 3)


def latency_seconds(latency_ms: float, expected_ms: float, min_duration_s: float = MIN_DURATION_S,
                    min_queries: int = DEFAULT_MIN_QUERIES) -> float:
    """How long a SingleStream/MultiStream performance run lasts at real query latency ``latency_ms``
    with LoadGen's ``expected_ms``; ``inf`` when it would run out of generated queries first (INVALID)."""
    generated = max(min_queries, LATENCY_GENERATION * min_duration_s * 1000 / expected_ms)
    needed = max(min_queries, min_duration_s * 1000 / latency_ms)
    if generated < needed:
        return float("inf")
    return max(min_duration_s, min_queries * latency_ms / 1000)


def server_seconds(target_qps: float, min_duration_s: float = MIN_DURATION_S,
                   min_queries: int = DEFAULT_MIN_QUERIES) -> float:
    """How long a Server performance run at ``target_qps`` lasts (its arrivals' schedule)."""
    return max(min_duration_s, min_queries / target_qps)


@dataclass(frozen=True)
class Pace:
    """How fast one scenario's test goes, as LoadGen's settings (or a tune) state it."""

    scenario: Scenario
    qps: float = 0.0  # LoadGen's target: Offline samples/s, Server arrivals/s
    latency_ms: float = 0.0  # SingleStream/MultiStream: one query's latency
    min_duration_s: float = MIN_DURATION_S
    min_queries: int = DEFAULT_MIN_QUERIES
    rate: float = 0.0  # Offline: the rate the system is expected to reach (0: the target)

    @property
    def samples_per_second(self) -> float:
        """The expected Offline rate: ``rate``, or the target when none is known."""
        return self.rate or self.qps


def run_seconds(pace: Pace, mode: Mode, accuracy_samples: int) -> float:
    """Estimated length of one test (performance, compliance or accuracy) at ``pace``: what the
    runner prints before LoadGen starts and what the submission flow plans with."""
    s = pace.scenario
    if mode is Mode.ACCURACY:
        if s is Scenario.SINGLE_STREAM:
            return accuracy_samples * pace.latency_ms / 1000
        if s is Scenario.MULTI_STREAM:
            return accuracy_samples / MULTI_STREAM_SAMPLES * pace.latency_ms / 1000
        return accuracy_samples / (pace.samples_per_second if s is Scenario.OFFLINE else pace.qps)
    if s is Scenario.OFFLINE:
        return offline_seconds(pace.qps, pace.samples_per_second, pace.min_duration_s, pace.min_queries)
    if s is Scenario.SERVER:
        return server_seconds(pace.qps, pace.min_duration_s, pace.min_queries)
    return max(pace.min_duration_s, pace.min_queries * pace.latency_ms / 1000)


def describe_seconds(seconds: float) -> str:
    """``693 s (11.6 min)``; minutes only past two of them."""
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)" if seconds >= 120 else f"{seconds:.0f} s"
