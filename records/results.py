"""The results tree and the run record: the one contract between a test and everything after it.

Layout (the only place that builds these paths)::

    <results>/<system>/<model label>/<Scenario>/
        accuracy/                       an accuracy run
        performance/run_1/              a performance run
        TEST01/ TEST04/                 compliance: verify_*.txt here,
            performance/run_1/          the compliance run's own logs

Every run directory holds LoadGen's logs and ``result.json``: a ``RunResult`` written
by the runner and read back by rules, report, summary and packaging. A run directory
holding ``INCOMPLETE`` was interrupted or never checked; it is never a result.

A test runs in a hidden staging directory beside its run directory
(``.<leaf>.staging-<utc>-<pid>-<random>``) and is swapped into place only once its logs are
checked, so a later run that fails never touches an earlier complete one. Every reader of the
tree (``find_results``, summary, package, check) passes over hidden (dot) directories.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from common.errors import ConfigError, HarnessError
from common.files import swap_in, unique_sibling, write_text_atomic
from common.testspec import BENCHMARK, Mode, Scenario
from modelprep.card import ModelCard, card_from_dict
from sut.config import SystemProfile

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
RESULT_FILE = "result.json"
INCOMPLETE = "INCOMPLETE"
STAGING = "staging"  # the tag of a run's staging directory name
_STAGING_NAME = re.compile(rf"\.(?P<leaf>.+)\.{STAGING}-\d{{8}}T\d{{6}}Z-\d+-[0-9a-f]+")
STATUSES = ("running", "ok", "error", "interrupted")
# The detail-log keys a run record keeps (LoadGen's own names: the checker reads the same).
LOADGEN_KEYS = ("result_validity", "result_samples_per_second", "result_min_duration_met",
                "result_min_queries_met", "effective_min_duration_ms", "effective_min_query_count",
                "effective_target_qps", "effective_performance_sample_count", "effective_sample_index_rng_seed",
                "effective_qsl_rng_seed", "effective_schedule_rng_seed", "loadgen_version",
                "effective_accuracy_sample_count", "result_query_count", "effective_scenario",
                "effective_test_mode", "effective_target_latency_ns", "effective_samples_per_query",
                "result_completed_samples_per_sec", "result_scheduled_samples_per_sec",
                "result_90.00_percentile_latency_ns", "result_99.00_percentile_latency_ns",
                "early_stopping_latency_ss", "early_stopping_latency_ms", "early_stopping_met",
                "early_stopping_result", "result_perf_constraints_met", "result_invalid_reason",
                "result_overlatency_query_count")
# The figure the checker reports per scenario: (detail-log key, unit, how to scale the raw value).
METRICS = {Scenario.OFFLINE: ("result_samples_per_second", "samples/s", 1.0),
           Scenario.SINGLE_STREAM: ("early_stopping_latency_ss", "ms (90th percentile, early stopping)", 1e-6),
           Scenario.MULTI_STREAM: ("early_stopping_latency_ms", "ms (99th percentile, early stopping)", 1e-6),
           Scenario.SERVER: ("result_completed_samples_per_sec", "samples/s", 1.0)}


# ----------------------------------------------------------------------------- paths
def scenario_dir(results: Path, system: str, model_label: str, scenario: Scenario) -> Path:
    """``<results>/<system>/<model label>/<Scenario>``: every test of one model on one system."""
    return Path(results) / system / model_label / Scenario(scenario).value


def compliance_dir(scenario_root: Path, mode: Mode) -> Path:
    """``<scenario>/TEST0x``: where a compliance test's verification files go."""
    if not mode.is_compliance:
        raise ValueError(f"{mode.value} is not a compliance test")
    return Path(scenario_root) / mode.value


def run_dir_in(scenario_root: Path, mode: Mode, run: int = 1) -> Path:
    """The directory of one run of ``mode`` under a scenario directory."""
    if mode is Mode.ACCURACY:
        return Path(scenario_root) / "accuracy"
    if mode.is_compliance:
        return compliance_dir(scenario_root, mode) / "performance" / f"run_{run}"
    return Path(scenario_root) / "performance" / f"run_{run}"


def run_dir(results: Path, system: str, model_label: str, scenario: Scenario, mode: Mode, run: int = 1) -> Path:
    """``<results>/<system>/<model label>/<Scenario>/{accuracy,performance/run_N,TEST0x/performance/run_N}``."""
    return run_dir_in(scenario_dir(results, system, model_label, scenario), mode, run)


def result_path(run_directory: Path) -> Path:
    """``result.json`` of a run directory."""
    return Path(run_directory) / RESULT_FILE


def is_incomplete(run_directory: Path) -> bool:
    """True while a run directory carries the ``INCOMPLETE`` marker."""
    return (Path(run_directory) / INCOMPLETE).exists()


def mark_incomplete(run_directory: Path, why: str) -> None:
    """Mark a run directory as not (yet) a result."""
    (Path(run_directory) / INCOMPLETE).write_text(why.rstrip() + "\n")


def clear_incomplete(run_directory: Path) -> None:
    """Remove the marker once the run's logs have been checked."""
    (Path(run_directory) / INCOMPLETE).unlink(missing_ok=True)


def is_hidden(path: Path, root: Path) -> bool:
    """True when ``path`` lies in a hidden (dot) directory below ``root``: a staging directory,
    an attempt kept for diagnosis, anything being built aside; never a result."""
    return any(part.startswith(".") for part in Path(path).relative_to(root).parts[:-1])


def find_results(results: Path) -> list[Path]:
    """Every ``result.json`` under a results root, sorted by path (hidden directories passed over)."""
    root = Path(results)
    return sorted(p for p in root.rglob(RESULT_FILE) if not is_hidden(p, root))


# ----------------------------------------------------------------------------- staging a run
def holds_complete_run(run_directory: Path) -> bool:
    """True when a run directory holds a finished run: a record that is not an error, and no
    ``INCOMPLETE`` marker. An unreadable record counts as finished (its logs may be a result)."""
    path = result_path(run_directory)
    if not path.is_file() or is_incomplete(run_directory):
        return False
    try:
        status = json.loads(path.read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return True
    return status not in ("error", "interrupted", "running")


def check_replaceable(run_directory: Path, replace: bool) -> None:
    """Refuse to run into a directory holding a complete run unless ``replace`` was asked for."""
    run_directory = Path(run_directory)
    if holds_complete_run(run_directory):
        if not replace:
            raise ConfigError(f"{run_directory}: holds a complete run; pass --replace to run it again (the "
                              "new run replaces it only once it has finished and its logs are checked)")
        log.info("%s: holds a complete run; --replace: the new run replaces it once it has finished and its "
                 "logs are checked", run_directory)
    elif run_directory.exists():
        log.info("%s: holds an incomplete or failed run (not a result); this run replaces it", run_directory)


def start_attempt(run_directory: Path) -> Path:
    """A fresh, hidden staging directory beside ``run_directory`` (same filesystem, so the run is
    moved in by a rename). The runner marks it ``INCOMPLETE`` when LoadGen starts or the test fails."""
    run_directory = Path(run_directory)
    attempt = unique_sibling(run_directory, STAGING)
    try:
        run_directory.parent.mkdir(parents=True, exist_ok=True)
        attempt.mkdir()
    except OSError as exc:
        raise ConfigError(f"{run_directory}: output directory not writable ({exc.strerror})") from None
    return attempt


def attempt_target(attempt: Path) -> Path | None:
    """The run directory a staging directory belongs to (None: not a staging directory)."""
    m = _STAGING_NAME.fullmatch(Path(attempt).name)
    return Path(attempt).with_name(m.group("leaf")) if m else None


def attempts(run_directory: Path) -> list[Path]:
    """The staging directories of a run directory that are still there (failed attempts kept beside
    a complete run, or a run in progress), oldest first."""
    run_directory = Path(run_directory)
    if not run_directory.parent.is_dir():
        return []
    return sorted(p for p in run_directory.parent.glob(f".{run_directory.name}.{STAGING}-*")
                  if attempt_target(p) == run_directory)


def promote(attempt: Path, run_directory: Path) -> None:
    """Swap a finished, checked attempt into place; the run it replaces is deleted only afterwards."""
    swap_in(attempt, run_directory)


def failed_attempt_home(attempt: Path) -> Path:
    """Where a failed or interrupted attempt is kept: its run directory when that holds no complete
    run (the error record then shows in ``summary``), else its own hidden staging directory, so
    the earlier run stays byte-identical."""
    target = attempt_target(attempt)
    return attempt if target is None or holds_complete_run(target) else target


def invalid_reasons(values: Any) -> list[str]:
    """Which of LoadGen's validity rules a run failed, with the numbers, from detail-log values
    (a ``DetailLog`` or the ``loadgen`` mapping of a record: anything with ``.get``)."""
    out = []
    if values.get("result_min_duration_met") is False:
        out.append(f"min duration not met (min_duration {values.get('effective_min_duration_ms')} ms)")
    if values.get("result_min_queries_met") is False:
        out.append(f"min queries not met ({values.get('result_query_count')} queries < min_query_count "
                   f"{values.get('effective_min_query_count')})")
    if values.get("result_perf_constraints_met") is False:
        bound = (values.get("effective_target_latency_ns") or 0) / 1e6
        p99 = (values.get("result_99.00_percentile_latency_ns") or 0) / 1e6
        out.append(f"latency bound not met: 99th percentile {p99:.2f} ms > {bound:g} ms "
                   f"({values.get('result_overlatency_query_count')} queries over it)")
    if values.get("early_stopping_met") is False:
        out.append(f"early stopping not met ({' '.join(str(values.get('early_stopping_result') or '').split())})")
    if not out and values.get("result_invalid_reason"):
        out.append(str(values.get("result_invalid_reason")))
    return out


def failed_only_early_stopping(values: Any) -> bool:
    """True when a run was INVALID on early stopping alone (the latency bound, duration and query
    count were met, but too few queries to prove the percentile); same inputs as ``invalid_reasons``."""
    return (values.get("result_validity") != "VALID" and values.get("early_stopping_met") is False
            and all(values.get(key) is not False for key in ("result_perf_constraints_met",
                                                              "result_min_duration_met", "result_min_queries_met")))


# ----------------------------------------------------------------------------- the record
@dataclass(frozen=True)
class AccuracyFigures:
    """Accuracy of an accuracy run, as computed from its LoadGen accuracy log."""

    top1_percent: float  # the metric in percent: top-1, or mAP for a detector (metric "mAP")
    good: int
    total: int
    dataset_size: int
    metric: str = "acc"  # the submission checker's name: "acc" (top-1) or "mAP"


@dataclass
class RunResult:
    """What one LoadGen test was, and what came of it (``result.json``).

    ``loadgen`` holds the detail-log values named in ``LOADGEN_KEYS``, under LoadGen's
    own key names; the properties below are the ways to read them.
    """

    mode: Mode
    scenario: Scenario
    card: ModelCard
    profile: SystemProfile
    run_dir: str
    status: str = "running"
    benchmark: str = BENCHMARK
    user_conf: str = ""
    user_conf_sha256: str = ""
    model_dir: str = ""
    dataset_dir: str = ""
    val_map: str = ""
    command: str = ""
    overrides: dict[str, float] = field(default_factory=dict)
    valid: bool = False
    submittable: bool = False
    not_submittable_because: list[str] = field(default_factory=list)
    error: str = ""
    compiled_properties: dict[str, str] = field(default_factory=dict)
    inference_precision: str | None = None
    # engine.instances > 1: per instance its index, pid, CPUs, compile time and compiled properties
    # (compiled_properties above is instance 0's)
    instances: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    loadgen: dict[str, Any] = field(default_factory=dict)
    loadgen_errors: list[str] = field(default_factory=list)
    accuracy: AccuracyFigures | None = None
    compliance: dict[str, Any] | None = None
    audit_config: str | None = None
    warmup_samples_per_second: float | None = None
    loadgen_wall_s: float | None = None
    # engine.dispatch_slice_us set: what the query-carrying threads asked for and the kernel granted
    # (hostctl.threadslice.SliceClaim.report)
    dispatch_slice: dict[str, Any] | None = None
    # engine.issue_priority set: what the issuing threads asked for and the kernel granted
    # (hostctl.threadpriority.PriorityClaim.report)
    issue_priority: dict[str, Any] | None = None
    # The host controls of the run (hostctl.HostControls.report): ``requested`` (--host-tuning),
    # ``active`` (the controls that were on; [] = the host was left as it was), ``undone``
    host_tuning: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # --------------------------------------------------------------- readers
    @property
    def validity(self) -> str | None:
        """LoadGen's verdict on a performance run (VALID / INVALID), None for accuracy runs."""
        return self.loadgen.get("result_validity")

    @property
    def samples_per_second(self) -> float | None:
        """The Offline metric."""
        value = self.loadgen.get("result_samples_per_second")
        return float(value) if value is not None else None

    @property
    def metric_key(self) -> str:
        """The detail-log key of the scenario's reported figure."""
        return METRICS[self.scenario][0]

    @property
    def metric(self) -> tuple[float | None, str]:
        """The scenario's reported figure (as the checker reads it) and its unit."""
        key, unit, scale = METRICS[self.scenario]
        value = self.loadgen.get(key)
        if self.scenario in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM) and not value:
            value = None  # LoadGen logs 0 when early stopping had too few queries for an estimate
        return (float(value) * scale if value is not None else None), unit

    def latency_ms(self, percentile: str = "99.00") -> float | None:
        """A latency percentile LoadGen measured (``"90.00"``, ``"99.00"``), in ms."""
        value = self.loadgen.get(f"result_{percentile}_percentile_latency_ns")
        return float(value) / 1e6 if value is not None else None

    def invalid_because(self) -> list[str]:
        """Which of LoadGen's validity rules a performance run failed, with the numbers."""
        return invalid_reasons(self.loadgen)

    @property
    def min_duration_ms(self) -> int | None:
        """The min_duration LoadGen used."""
        return self.loadgen.get("effective_min_duration_ms")

    @property
    def target_qps(self) -> float | None:
        """The target_qps LoadGen used."""
        return self.loadgen.get("effective_target_qps")

    @property
    def model_label(self) -> str:
        """The model folder name in the results tree."""
        return self.card.label

    @property
    def directory(self) -> Path:
        """The run directory."""
        return Path(self.run_dir)

    @property
    def engine(self) -> dict[str, Any]:
        """The engine settings the run compiled with, as plain data."""
        return asdict(self.profile.engine_for(self.scenario.value))

    def identity(self) -> dict[str, Any]:
        """What must be equal between runs that go into one submission: model, engine, precision."""
        return run_identity(self.card, self.profile, self.scenario, self.inference_precision, self.overrides)

    # --------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain data (enums as their values)."""
        data = asdict(self)
        data["mode"], data["scenario"] = self.mode.value, self.scenario.value
        return data

    def save(self, directory: Path | None = None) -> Path:
        """Write ``result.json`` atomically into ``directory`` (default: the run directory; a run
        being staged writes its record, naming its final directory, into the staging one)."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
        return write_text_atomic(result_path(directory if directory is not None else self.run_dir), text)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str) -> "RunResult":
        """Rebuild a record; a record of another schema or shape is an error naming ``origin``."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise HarnessError(f"{origin}: result schema_version {version!r}, this harness reads "
                               f"{SCHEMA_VERSION} (rerun the test with this version)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HarnessError(f"{origin}: unknown result field(s) {unknown}")
        try:
            values = dict(data)
            values["mode"] = Mode.parse(values["mode"])
            values["scenario"] = Scenario.parse(values["scenario"])
            values["card"] = card_from_dict(values["card"], f"{origin}: card")
            values["profile"] = SystemProfile.from_dict(values["profile"])
            if values.get("accuracy") is not None:
                values["accuracy"] = AccuracyFigures(**values["accuracy"])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise HarnessError(f"{origin}: not a run record ({exc})") from None

    @classmethod
    def load(cls, run_directory: Path) -> "RunResult":
        """Read ``result.json`` of a run directory."""
        path = result_path(run_directory)
        if not path.is_file():
            raise HarnessError(f"{path}: missing: no finished run here")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}:{exc.lineno}: invalid JSON") from None
        if not isinstance(data, dict):
            raise HarnessError(f"{path}: expected a JSON object")
        return cls.from_dict(data, str(path))


def run_identity(card: ModelCard, profile: SystemProfile, scenario: Scenario, inference_precision: str | None,
                 overrides: dict[str, Any]) -> dict[str, Any]:
    """``RunResult.identity`` from its parts, so a run can be compared before it is made."""
    identity = {"card": {k: getattr(card, k) for k in ModelCard.IDENTITY_FIELDS},
                "engine": asdict(profile.engine_for(Scenario(scenario).value)),
                "inference_precision": inference_precision, "profile": profile.name, "overrides": dict(overrides)}
    return json.loads(json.dumps(identity))  # the JSON form, so a stored copy compares equal


def identity_differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """The dotted names of the values that differ between two identities (or any JSON data)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += identity_differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".") or "value"]
