"""Compliance tests TEST01 and TEST04: their audit settings and our own verification.

Each is a performance-mode LoadGen run with an audit config. The config is
written to a temporary file OUTSIDE the run and working directories and passed
to LoadGen by path, then deleted, so no ``audit.config`` is ever left behind,
even by an interrupted run. Verification follows the same rules as the official
scripts (``compliance/TEST01/verify_accuracy.py``, ``verify_performance.py``,
``compliance/TEST04/verify_performance.py``):

- TEST01: every sample logged in the performance run must carry the same
  response as in the accuracy run (and at least one must be compared), and its
  samples/s must be within 10 % of the normal performance run.
- TEST04: one sample issued repeatedly must not run more than 10 % faster than
  the normal performance run (which would reveal result caching).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from common.errors import HarnessError
from records.loadgen_logs import read_detail

TEST01_ACCURACY_LOG_SEED = 720381539243781796
TEST01_SAMPLING_TARGET = 4096
# compliance/TEST01/<model>/audit.config: the responses TEST01 samples into its log, per LoadGen model.
TEST01_SAMPLING_TARGETS = {"resnet50": TEST01_SAMPLING_TARGET, "yolo": 64}
TEST04_SAME_INDEX = 3
PERFORMANCE_TOLERANCE = 0.10

_AUDIT_SETTINGS = {
    "TEST01": {"mode": 2, "accuracy_log_rng_seed": TEST01_ACCURACY_LOG_SEED,
               "accuracy_log_sampling_target": TEST01_SAMPLING_TARGET},
    "TEST04": {"mode": 2, "performance_issue_unique": 0, "performance_issue_same": 1,
               "performance_issue_same_index": TEST04_SAME_INDEX},
}
TESTS = tuple(_AUDIT_SETTINGS)
VERIFY_PERFORMANCE, VERIFY_ACCURACY = "verify_performance.txt", "verify_accuracy.txt"
VERIFY_FILES = (VERIFY_PERFORMANCE, VERIFY_ACCURACY)


def audit_config_text(test: str, model: str = "resnet50") -> str:
    """The audit settings of ``test`` for LoadGen model ``model`` in LoadGen's conf format, for every
    scenario (LoadGen applies an audit config with model "*")."""
    lines = [f"# {test} audit settings (written by mlperf-cpu; deleted after the run)"]
    settings = dict(_AUDIT_SETTINGS[test])
    if test == "TEST01":
        settings["accuracy_log_sampling_target"] = TEST01_SAMPLING_TARGETS.get(model, TEST01_SAMPLING_TARGET)
    lines += [f"*.*.{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def audit_config(test: str, model: str = "resnet50") -> Iterator[Path]:
    """A temporary audit config file for ``test`` (of LoadGen model ``model``), removed on exit whatever happens."""
    fd, name = tempfile.mkstemp(prefix=f"mlperf-cpu-{test}-", suffix=".config")
    path = Path(name)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(audit_config_text(test, model))
        yield path
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Verdict:
    """Outcome of one verification, with the figures it rests on."""

    passed: bool
    details: dict

    def text(self) -> str:
        """Human-readable report ending in TEST PASS / TEST FAIL like the official scripts."""
        body = "\n".join(f"{k} = {v}" for k, v in self.details.items())
        return f"{body}\n{'TEST PASS' if self.passed else 'TEST FAIL'}\n"


def _load_log(path: Path) -> list[dict]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"{path}: accuracy log missing (run the accuracy test first)") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def verify_test01_accuracy(accuracy_log: Path, performance_log: Path) -> Verdict:
    """Compare responses logged in the TEST01 performance run with the accuracy run's."""
    reference: dict[int, str] = {}
    for rec in _load_log(accuracy_log):
        reference.setdefault(int(rec["qsl_idx"]), rec["data"])
    matched = mismatched = missing = 0
    for rec in _load_log(performance_log):
        ref = reference.get(int(rec["qsl_idx"]))
        if ref is None:
            missing += 1
        elif ref.upper() == rec["data"].upper():
            matched += 1
        else:
            mismatched += 1
    details = {"num_acc_log_entries": len(reference), "num_perf_log_qsl_idx_match": matched + mismatched,
               "num_perf_log_data_mismatch": mismatched, "num_missing_qsl_idxs": missing}
    return Verdict(mismatched == 0 and matched > 0, details)


# The figure each scenario's verification compares (the official scripts' RESULT_FIELD).
RESULT_FIELDS = {"Offline": "result_samples_per_second", "SingleStream": "early_stopping_latency_ss",
                 "MultiStream": "early_stopping_latency_ms", "Server": "result_completed_samples_per_sec"}
LATENCY_SCENARIOS = ("SingleStream", "MultiStream")
# Short latencies are noisier: the official scripts allow 20 % below these (ns).
SHORT_LATENCY_NS = {"SingleStream": 200_000, "MultiStream": 1_600_000}
SHORT_LATENCY_TOLERANCE = 0.20


def _score(run_dir: Path, require_valid: bool) -> tuple[str, float, object]:
    """(scenario, the scenario's figure, Server target latency) of a run's detail log."""
    detail = read_detail(run_dir)
    if require_valid and detail.get("result_validity") != "VALID":
        raise HarnessError(f"{run_dir}: run is {detail.get('result_validity')}; compliance needs VALID runs")
    scenario = str(detail.get("effective_scenario"))
    value = detail.get(RESULT_FIELDS.get(scenario, "result_samples_per_second"))
    if value is None:
        raise HarnessError(f"{run_dir}: detail log has no {RESULT_FIELDS.get(scenario)} for {scenario}")
    return scenario, float(value), detail.get("effective_target_latency_ns")


def verify_performance(test: str, reference_run: Path, test_run: Path, require_valid: bool = True) -> Verdict:
    """The official scripts' performance verdicts, per scenario.

    TEST01: the compliance run's figure within +-10 % of the reference run's (latency for
    SingleStream/MultiStream, 20 % for short latencies). TEST04: the run of one repeated
    sample must not be 10 % faster (SingleStream/MultiStream compare 1/latency and, as the
    official script does, allow 20 %).
    """
    scenario, ref, ref_bound = _score(reference_run, require_valid)
    test_scenario, got, got_bound = _score(test_run, require_valid)
    if test_scenario != scenario:
        raise HarnessError(f"{test_run}: {test_scenario} run, but the reference {reference_run} is {scenario}")
    details: dict = {"scenario": scenario, "metric": RESULT_FIELDS.get(scenario), "reference_score": ref,
                     "test_score": got, "ratio": round(got / ref, 4) if ref else None}
    if scenario in ("Offline", "Server"):
        details.update(reference_samples_per_second=ref, test_samples_per_second=got)
    if scenario == "Server" and ref_bound != got_bound:
        details["why"] = f"Server target latency differs ({ref_bound} vs {got_bound} ns)"
        return Verdict(False, details)
    if test == "TEST04":
        if scenario in LATENCY_SCENARIOS:  # compared as queries per second, like the official script
            ref, got, tolerance = 1e9 / ref, 1e9 / got, SHORT_LATENCY_TOLERANCE
        else:
            tolerance = PERFORMANCE_TOLERANCE
        details["tolerance"] = tolerance
        return Verdict(got < ref * (1 + tolerance), details)
    tolerance = SHORT_LATENCY_TOLERANCE if ref <= SHORT_LATENCY_NS.get(scenario, -1) else PERFORMANCE_TOLERANCE
    details["tolerance"] = tolerance
    return Verdict(ref * (1 - tolerance) <= got <= ref * (1 + tolerance), details)
