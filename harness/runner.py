"""One LoadGen test in one process, as a fixed sequence of numbered steps.

``TestSettings.FromConfig`` is called exactly once per process (a second call
makes LoadGen log an error the submission checker rejects), with user.conf
only: LoadGen carries the round's mlperf.conf inside itself. Every input is
checked before anything is written; then the test runs in a hidden staging
directory beside its run directory (``records.results.start_attempt``), marked
``INCOMPLETE`` from the moment LoadGen starts (or the test fails) until its logs are
checked, and only then is swapped into place.
A run that fails or is interrupted never touches an earlier complete run; a
complete run is replaced only when the request says ``replace``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError, EngineError, HarnessError, RunInterrupted
from common.files import sha256_file, write_text_atomic
from common.loadgen_conf import ConfEntry, lookup, parse_user_conf
from common.testspec import Mode, Overrides, Scenario, loadgen_model
from dataset.cache import CacheInfo, build_cache
from dataset.coco import CocoSet, load_coco, resolve_coco
from dataset.val_map import Sample, parse_val_map
from harness.compliance import (VERIFY_ACCURACY, VERIFY_FILES, VERIFY_PERFORMANCE, audit_config,
                                verify_performance, verify_test01_accuracy)
from modelprep.card import ModelCard, load_card
from records import results as run_records
from records.accuracy import ACCURACY_TXT, read_accuracy_log, top1, write_accuracy_txt
from records.detection import coco_map, read_detection_log, write_map_txt
from records.loadgen_logs import ACCURACY_LOG, DETAIL, read_detail
from records.results import LOADGEN_KEYS, AccuracyFigures, RunResult
from records.rules import performance_sample_count, run_problems
from sut.config import EngineConfig, SystemProfile
from harness.watchdog import WARMUP_LIMIT_S, Watchdog, derived_limit_s
from hostctl import HostControls, HostSettings, undo_all

log = logging.getLogger(__name__)

AUTO_QPS_MARGIN = 1.2
AUTO_SERVER_FRACTION = 0.5
AUTO_LATENCY_FRACTION = 0.5
AUTO_QPS_MEASURE_S = 2.0
_STEPS = ("Checking inputs", "Reading dataset", "Preprocessing (cached)", "Compiling model",
          "Configuring LoadGen", "Warming up", "Running LoadGen test", "Checking logs")


@dataclass(frozen=True)
class RunRequest:
    """Everything one test needs, validated at the CLI edge.

    ``command`` is the command line that asked for this run, recorded verbatim in
    result.json so a submission README can repeat it exactly.
    """

    mode: Mode
    model_dir: Path
    dataset_dir: Path
    val_map: Path
    profile: SystemProfile
    user_conf: Path
    results_dir: Path
    cache_dir: Path
    overrides: Overrides = field(default_factory=Overrides)
    warmup_batches: int = 0  # 0: two rounds over every request
    command: str = ""
    scenario: Scenario = Scenario.OFFLINE
    replace: bool = False  # run again over a complete run (it is replaced once this one is checked)
    host_tuning: bool = False  # --host-tuning: the host profile's derived host settings are on
    watchdog_s: float | None = None  # --watchdog-s (None: the profile's watchdog_s)

    def run_dir(self, card: ModelCard) -> Path:
        """Where this run's logs and record go."""
        return run_records.run_dir(self.results_dir, self.profile.name, card.label, self.scenario, self.mode)

    def scenario_dir(self, card: ModelCard) -> Path:
        """Every test of this model on this system in this scenario."""
        return run_records.scenario_dir(self.results_dir, self.profile.name, card.label, self.scenario)


class _Steps:
    """Prints ``[Step i/n] name`` like benchmark_app, and times each step."""

    def __init__(self) -> None:
        self.index = 0
        self.times_ms: dict[str, float] = {}
        self._start = time.perf_counter()
        self._name = ""

    def next(self) -> None:
        self._close()
        self._name = _STEPS[self.index]
        self.index += 1
        log.info("[Step %d/%d] %s", self.index, len(_STEPS), self._name)

    def _close(self) -> None:
        now = time.perf_counter()
        if self._name:
            self.times_ms[self._name] = round((now - self._start) * 1000, 1)
        self._start = now


def _promote(record: RunResult, attempt: Path, target: Path) -> None:
    """Make a checked attempt the run: its record names ``target``, then it is swapped into place
    (the run it replaces is deleted only afterwards) and a compliance test's verdicts are published."""
    staged, final = str(attempt.resolve()), str(target.resolve())
    record.run_dir = final
    # The reasons were found in the staged files; they name the files where they will be.
    record.not_submittable_because = [r.replace(staged, final) for r in record.not_submittable_because]
    record.save(attempt)
    run_records.clear_incomplete(attempt)
    run_records.promote(attempt, target)
    if record.mode.is_compliance:  # verify_*.txt belong in <scenario>/TEST0x/, beside the run
        for name in VERIFY_FILES:
            if (target / name).is_file():
                write_text_atomic(target.parents[1] / name, (target / name).read_text())
    log.info("run written: %s", target)


def _keep_failed(record: RunResult) -> None:
    """Save the error record of a failed or interrupted attempt and keep it where
    ``records.results.failed_attempt_home`` says: an earlier complete run is never touched."""
    attempt = record.directory
    if not run_records.is_incomplete(attempt):  # failed before LoadGen started
        run_records.mark_incomplete(attempt, f"{record.status}: {record.error}; not a result")
    home = run_records.failed_attempt_home(attempt)
    record.run_dir = str(home.resolve())
    record.save(attempt)
    if home == attempt:
        log.warning("%s: the complete run there is untouched; this attempt's logs and record are kept in %s",
                    run_records.attempt_target(attempt), attempt)
        return
    try:
        run_records.promote(attempt, home)  # over nothing, or over an earlier failed run
    except OSError as exc:
        record.run_dir = str(attempt.resolve())
        record.save(attempt)
        log.warning("%s: could not move the failed attempt there (%s); it is in %s", home, exc.strerror, attempt)


def _new_record(req: RunRequest, card: ModelCard, run_dir: Path) -> RunResult:
    from hostinfo.probe import run_versions

    versions = run_versions()  # python, loadgen, openvino, nncf, this project and every installed dependency
    return RunResult(mode=req.mode, scenario=req.scenario, card=card, profile=req.profile,
                     benchmark=loadgen_model(card.task),
                     run_dir=str(run_dir.resolve()),
                     user_conf=str(Path(req.user_conf).resolve()), user_conf_sha256=sha256_file(req.user_conf),
                     model_dir=str(Path(req.model_dir).resolve()), dataset_dir=str(Path(req.dataset_dir).resolve()),
                     val_map=str(Path(req.val_map).resolve()), command=req.command,
                     overrides=req.overrides.active(), versions=versions)


@dataclass(frozen=True)
class _Inputs:
    """What step 1 checked: the model card, user.conf, where the run goes and its engine settings."""

    card: ModelCard
    conf: list[ConfEntry]
    target: Path
    engine: EngineConfig
    model_name: str  # the user.conf / mlperf.conf key


@dataclass(frozen=True)
class _Dataset:
    """What step 2 read: the samples in QSL order, where their images are, and a detector's COCO set."""

    samples: list[Sample]
    image_dir: Path
    coco: CocoSet | None


@dataclass
class _Held:
    """What a test holds that is let go on every way out: the sample library (a shared bank with
    several instances), the SUT (their processes) and the watchdog."""

    qsl: Any = None
    sut: Any = None
    watchdog: Watchdog | None = None


def execute(req: RunRequest) -> RunResult:
    """Run one LoadGen test; return (and write) its record.

    One function per entry of ``_STEPS``, called in that order. Raises ``HarnessError``
    subclasses for anything the user can fix; the record then says ``status: error`` and never
    claims VALID.
    """
    # Heavy imports here, not at module level, so `--help` stays fast; all before step 1, since a
    # signal that lands inside an import surfaces as an ImportError instead of an interrupt.
    import mlperf_loadgen as lg
    import openvino  # noqa: F401
    import sut.engine  # noqa: F401
    import sut.qsl  # noqa: F401

    steps = _Steps()
    steps.next()
    inputs = _check_inputs(req)
    steps.next()
    data = _read_dataset(req, inputs.card)
    # Inputs checked: the test writes into a staging directory until its logs are checked.
    run_dir = run_records.start_attempt(inputs.target)
    record = _new_record(req, inputs.card, run_dir)
    controls = HostControls(HostSettings.of(inputs.engine, req.host_tuning))
    record.host_tuning = controls.report()
    _log_host_tuning(controls.settings)
    held = _Held()
    try:
        steps.next()
        cache = build_cache(data.image_dir, data.samples, inputs.card.preprocess, req.cache_dir)
        steps.next()
        compiled = _compile_model(req, inputs, data, cache, record, held)
        steps.next()
        settings = _configure_loadgen(lg, req, inputs, data, compiled, controls, held)
        steps.next()
        _warm_up(req, inputs, data, settings, record, held)
        steps.next()
        _run_test(lg, req, inputs, settings, record, controls, held)
        steps.next()
        _check_logs(req, inputs, data, record, run_dir, held.sut)
        record.timings_ms = steps.times_ms
        _promote(record, run_dir, inputs.target)
        return record
    except HarnessError as exc:
        controls.undo()
        record.host_tuning = controls.report()
        record.status, record.error, record.valid, record.submittable = "error", str(exc), False, False
        _keep_failed(record)
        raise
    except KeyboardInterrupt:  # outside the LoadGen test (inside it, _abandon ends the process)
        record.status, record.error, record.valid, record.submittable = "interrupted", "interrupted", False, False
        _keep_failed(record)
        raise
    finally:  # no process, shared memory or host change outlives the test, on any way out
        if held.watchdog is not None:
            held.watchdog.stop()
        controls.undo()
        _release(held.sut, held.qsl)


def _check_inputs(req: RunRequest) -> _Inputs:
    """Step 1: the model card, user.conf, the run directory and the engine settings, checked before
    anything is written."""
    card = load_card(req.model_dir)
    conf = parse_user_conf(req.user_conf)
    if Path("audit.config").exists():
        raise ConfigError(f"{Path('audit.config').resolve()}: a stray audit.config would change this "
                          "test's settings; remove it")
    target = req.run_dir(card)
    run_records.check_replaceable(target, req.replace)  # a complete run is replaced only on request
    engine = req.profile.engine_for(req.scenario.value)
    check_issue_priority(engine, req.scenario)
    return _Inputs(card, conf, target, engine, loadgen_model(card.task))


def _read_dataset(req: RunRequest, card: ModelCard) -> _Dataset:
    """Step 2: the samples in QSL order (a detector's in COCO annotation-file order, ``dataset.coco``)."""
    if card.is_detector:
        coco = load_coco(*resolve_coco(req.dataset_dir, req.val_map))
        return _Dataset(coco.samples, coco.image_dir, coco)
    return _Dataset(parse_val_map(req.val_map, card.num_classes), req.dataset_dir, None)


def _compile_model(req: RunRequest, inputs: _Inputs, data: _Dataset, cache: CacheInfo, record: RunResult,
                   held: _Held) -> Any:
    """Step 4: the sample library and the compiled model (None with several instances: each instance
    process compiles its own copy, ``sut.instances``, and their SUT is made here)."""
    import openvino as ov  # imported by ``execute`` already

    from sut.engine import compile_model
    from sut.qsl import SampleLibrary

    engine = inputs.engine
    perf_count = int(req.overrides.performance_sample_count
                     or lookup(inputs.conf, inputs.model_name, req.scenario.value, "performance_sample_count_override")
                     or performance_sample_count(inputs.model_name))
    # Its bank's capacity is the compiled model's bank size; in shared memory for several instances.
    held.qsl = SampleLibrary(cache, perf_count, shared=engine.instances > 1)
    compiled = None
    if engine.instances > 1 and data.coco is not None:
        raise ConfigError(f"profile {req.profile.name}: {engine.instances} instances; detectors run on one "
                          "instance (set engine.instances = 1 for this scenario)")
    if engine.instances > 1:
        held.sut = make_instances_sut(req.scenario, held.qsl, req.model_dir, engine, req.cache_dir / "ov_cache")
        properties = held.sut.compiled_properties
        record.instances = held.sut.instance_records
    else:
        compiled, info = compile_model(ov.Core(), req.model_dir, inputs.card, engine, req.cache_dir / "ov_cache")
        properties = info.properties
    for key, value in sorted(properties.items()):
        log.info("  %s: %s", key, value)
    record.compiled_properties = properties
    record.inference_precision = properties.get("INFERENCE_PRECISION_HINT")
    return compiled


def _configure_loadgen(lg: Any, req: RunRequest, inputs: _Inputs, data: _Dataset, compiled: Any,
                       controls: HostControls, held: _Held) -> Any:
    """Step 5: LoadGen's settings from user.conf (``FromConfig``, once per process), and the
    scenario's SUT over the compiled model (one instance)."""
    settings = lg.TestSettings()
    if settings.FromConfig(str(req.user_conf), inputs.model_name, req.scenario.value) != 0:
        raise ConfigError(f"{req.user_conf}: LoadGen could not read it")
    settings.scenario = getattr(lg.TestScenario, req.scenario.value)
    # Compliance modes run as performance tests; their audit config switches on the rest.
    settings.mode = lg.TestMode.AccuracyOnly if req.mode is Mode.ACCURACY else lg.TestMode.PerformanceOnly
    if held.sut is None:
        post = None
        if data.coco is not None:
            from sut.detection import post_for
            post = post_for(inputs.card, data.coco.sizes)
        held.sut = make_sut(req.scenario, held.qsl, compiled, inputs.engine, post, threads=controls)
    return settings


def _warm_up(req: RunRequest, inputs: _Inputs, data: _Dataset, settings: Any, record: RunResult,
             held: _Held) -> None:
    """Step 6: warm the pool up under the watchdog (measuring throughput when a target is derived
    from it), then set the non-official knobs and log the test's estimated length."""
    qsl, sut = held.qsl, held.sut
    warm = list(range(min(qsl.performance_count, 256)))
    qsl.load_samples(warm)
    batches = req.warmup_batches or 2 * inputs.engine.infer_requests
    measure_s = (req.overrides.rate_seconds or AUTO_QPS_MEASURE_S) if req.overrides.target_qps == 0 else 0.0
    held.watchdog = _start_watchdog(req, record, sut, qsl)
    warm_qps = sut.pool.warmup(batches, measure_s, rows=len(warm))
    _arm_watchdog(held.watchdog, req)
    qsl.unload_samples(warm)
    log.info("warm-up: %d batches%s", batches,
             f", then {warm_qps:.1f} samples/s over {measure_s} s (not a result)" if measure_s else "")
    if measure_s:
        record.warmup_samples_per_second = round(warm_qps, 1)
    _apply_overrides(settings, req.scenario, req.overrides, warm_qps)
    _warn_if_slow_server_accuracy(settings, req, len(data.samples), inputs.model_name)
    log_estimate(settings, req.scenario, req.mode, len(data.samples))


def _run_test(lg: Any, req: RunRequest, inputs: _Inputs, settings: Any, record: RunResult,
              controls: HostControls, held: _Held) -> None:
    """Step 7: the LoadGen test (a compliance test under its audit config), then the host controls
    undone and what they granted recorded."""
    if req.mode.is_compliance:
        with audit_config(req.mode.value, inputs.model_name) as audit_path:
            record.audit_config = audit_path.read_text()
            _run_loadgen(lg, settings, held.sut, held.qsl, record, audit_path, controls)
    else:
        _run_loadgen(lg, settings, held.sut, held.qsl, record, None, controls)
    controls.undo()  # the test is over: the host gets its settings back before anything else
    record.host_tuning = controls.report()
    _record_dispatch_slice(record, controls, inputs.engine)
    _record_issue_priority(record, controls, inputs.engine)


def _check_logs(req: RunRequest, inputs: _Inputs, data: _Dataset, record: RunResult, run_dir: Path,
                sut: Any) -> None:
    """Step 8: read LoadGen's logs into the record, score accuracy, verify a compliance test and
    apply the rules (``submittable``); an inference error in the test is an ``EngineError``."""
    detail = read_detail(run_dir)
    record.loadgen = {k: detail.get(k) for k in LOADGEN_KEYS if detail.get(k) is not None}
    record.loadgen_errors = list(detail.errors)
    error = sut.first_error()
    if error is not None:
        raise EngineError(f"inference failed during the test: {error}")
    if req.mode is Mode.ACCURACY:
        record.accuracy = _score_accuracy(run_dir, data)
    if req.mode.is_compliance:
        record.compliance = _verify_compliance(req, inputs.card, run_dir)
    problems = run_problems(record, detail)
    record.submittable = not problems
    record.not_submittable_because = [str(p) for p in problems]
    record.valid = req.mode is Mode.ACCURACY or record.validity == "VALID"
    record.status = "ok"


def _score_accuracy(run_dir: Path, data: _Dataset) -> AccuracyFigures:
    """Score an accuracy run's log (mAP for a detector, top-1 otherwise) and write accuracy.txt."""
    log_path = run_dir / ACCURACY_LOG
    if data.coco is not None:
        mean_ap = coco_map(read_detection_log(log_path), data.coco, str(log_path))
        write_map_txt(mean_ap, run_dir / ACCURACY_TXT)
        return AccuracyFigures(round(mean_ap.percent, 3), 0, mean_ap.images, len(data.samples), "mAP")
    acc = top1(read_accuracy_log(log_path), data.samples, str(log_path))
    write_accuracy_txt(acc, run_dir / ACCURACY_TXT)
    return AccuracyFigures(round(acc.percent, 3), acc.good, acc.total, len(data.samples))


def _log_host_tuning(settings: HostSettings) -> None:
    """Say in the log which host controls this test uses (none unless the user asked)."""
    if settings.active:
        log.info("host tuning: %s (%s); undone when the test ends", ", ".join(settings.active),
                 "--host-tuning" if settings.requested else "set in the profile")
    else:
        log.info("host tuning: off (the host's power and scheduler settings are left as they are%s)",
                 "" if settings.requested else "; --host-tuning turns on the host profile's")


def _start_watchdog(req: RunRequest, record: RunResult, sut: Any, qsl: Any) -> Watchdog | None:
    """Watch the warm-up and then the test for inference that stops finishing (``harness.watchdog``):
    on expiry the run is marked INCOMPLETE, its host controls undone, and the process exits 3."""
    progress = getattr(sut, "progress", None)
    if progress is None:  # several instances: their pools are in other processes
        log.info("watchdog: off (engine.instances > 1)")
        return None
    limit = _set_watchdog_s(req) or WARMUP_LIMIT_S

    def expire(stalled_s: float) -> None:
        _abandon(record, f"watchdog: inference made no progress for {stalled_s:.0f} s", sut, qsl,
                 exit_code=EngineError.exit_code)

    return Watchdog(progress, limit, expire).start()


def _set_watchdog_s(req: RunRequest) -> float:
    """The watchdog limit the user set (``--watchdog-s``, else the profile's ``watchdog_s``), 0 if none."""
    return req.watchdog_s if req.watchdog_s is not None else req.profile.watchdog_s


def _arm_watchdog(watchdog: Watchdog | None, req: RunRequest) -> None:
    """After the warm-up: the limit for the test, the set one or one derived from the warm-up."""
    if watchdog is None:
        return
    limit = _set_watchdog_s(req) or derived_limit_s(watchdog.longest_wait_s)
    watchdog.set_limit(limit)
    how = "set" if _set_watchdog_s(req) else f"derived: the warm-up waited at most {watchdog.longest_wait_s:.1f} s"
    log.info("watchdog: a test whose inference makes no progress for %.0f s ends INCOMPLETE, exit %d (%s)",
             limit, EngineError.exit_code, how)


def _record_dispatch_slice(record: RunResult, controls: HostControls, engine: EngineConfig) -> None:
    """Keep and print what the query-carrying threads were granted (``engine.dispatch_slice_us``);
    a kernel without custom slices (Linux < 6.12) is a warning, the run stands as run."""
    if not engine.dispatch_slice_us:  # (refused with instances > 1: the SUT is one of sut.sut's)
        return
    report = controls.slice.report()
    record.dispatch_slice = report
    granted = report["granted_us"]
    if granted == [engine.dispatch_slice_us]:
        log.info("dispatch_slice_us: %d query-carrying threads ran with a %d us scheduler slice",
                 report["threads"], engine.dispatch_slice_us)
    else:
        log.warning("dispatch_slice_us: asked %d us for %d threads, the kernel reports %s us (custom "
                    "slices need Linux >= 6.12); the run used the kernel's default", engine.dispatch_slice_us,
                    report["threads"], granted)


def _record_issue_priority(record: RunResult, controls: HostControls, engine: EngineConfig) -> None:
    """Keep and print what the issuing threads were granted (``engine.issue_priority``); a thread
    the kernel refused is a warning (``_check_inputs`` checked the permission first)."""
    if not engine.issue_priority:
        return
    report = controls.priority.report()
    record.issue_priority = report
    if report["granted"] == [engine.issue_priority]:
        log.info("issue_priority: %d issuing threads ran under SCHED_FIFO %d", report["threads"],
                 engine.issue_priority)
    else:
        log.warning("issue_priority: asked SCHED_FIFO %d for %d threads, the kernel granted %s",
                    engine.issue_priority, report["threads"], report["granted"])


def check_issue_priority(engine: EngineConfig, scenario: Scenario) -> None:
    """Refuse, before anything runs, an ``issue_priority`` this process may not set."""
    from hostctl.threadpriority import realtime_allowed

    if engine.issue_priority and not realtime_allowed(engine.issue_priority):
        raise EngineError(f"engine.issue_priority {engine.issue_priority}: this process may not use SCHED_FIFO "
                          f"(it needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO >= {engine.issue_priority}): run "
                          f"as root, or set 'issue_priority: 0' in the profile's scenarios.{scenario.value}")


def _release(sut: Any, qsl: Any) -> None:
    """Kill what is left of a multi-instance SUT (a no-op after its ``close``) and unlink a shared
    bank (a no-op for a private one)."""
    for step in (getattr(sut, "abort", None), getattr(qsl, "release", None)):
        if step is not None:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the test's outcome
                log.debug("cleanup: %s", exc)


def make_instances_sut(scenario: Scenario, qsl: Any, model_dir: Path, engine: EngineConfig,
                       cache_dir: Path | None) -> Any:
    """Offline/Server over ``engine.instances`` processes (sut.instances); they compile the model."""
    from sut.instances import MultiInstanceSUT

    if scenario is Scenario.OFFLINE:
        engine.warn_if_throughput_starved()
    return MultiInstanceSUT(scenario.value, qsl, model_dir, engine, cache_dir)


def make_sut(scenario: Scenario, qsl: Any, compiled: Any, engine: EngineConfig, post: Any = None,
             threads: Any = None) -> Any:
    """The SUT of ``scenario`` over a pool of ``engine.infer_requests`` requests (``post``: a
    detector's post-processor, sut.detection; ``threads``: the per-thread host controls its
    threads claim, ``hostctl.HostControls``)."""
    from sut.sut import IssuingThreadSUT, OfflineSUT, ServerSUT

    threads = {"threads": threads}
    if scenario is Scenario.OFFLINE:
        engine.warn_if_throughput_starved()
        return OfflineSUT(qsl, compiled, engine.infer_requests, post, **threads)
    if scenario is Scenario.SERVER and not (engine.batch_size == 1 and engine.max_wait_us == 0):
        return ServerSUT(qsl, compiled, engine.infer_requests, engine.max_wait_us, post, **threads)
    # SingleStream, MultiStream, and per-query Server dispatch (batch 1, no wait): straight into an
    # idle request on LoadGen's issue thread, which keeps a thread hop off the measured latency
    # (docs/notes/2026-11-30-server-tail-on-vms.md). Server arrivals must not wait for earlier
    # queries, so those are answered on callbacks.
    return IssuingThreadSUT(qsl, compiled, engine.infer_requests, post, callbacks=scenario is Scenario.SERVER,
                            **threads)


def _apply_overrides(settings: Any, scenario: Scenario, overrides: Overrides, warm_qps: float) -> None:
    """Set the non-official knobs after FromConfig (demo/tests); each is logged as such.

    ``target_qps = 0`` means: the scenario's target from the warm-up throughput (Offline: x1.2 so
    the run meets its duration; Server: x0.5, a rate a latency-bound run can usually keep;
    SingleStream/MultiStream: expected latency at half the warm-up's; demo and tests only).
    """
    if overrides.min_duration_ms is not None:
        settings.min_duration_ms = overrides.min_duration_ms
    if overrides.min_query_count is not None:
        settings.min_query_count = overrides.min_query_count
    if overrides.performance_sample_count is not None:
        settings.performance_sample_count_override = overrides.performance_sample_count
    if overrides.target_qps is not None and scenario is Scenario.OFFLINE:
        # A short warm-up underestimates steady throughput; aim high so the run meets min_duration.
        settings.offline_expected_qps = overrides.target_qps or warm_qps * AUTO_QPS_MARGIN
    elif overrides.target_qps is not None and scenario is Scenario.SERVER:
        settings.server_target_qps = overrides.target_qps or warm_qps * AUTO_SERVER_FRACTION
    elif overrides.target_qps == 0 and scenario is Scenario.SINGLE_STREAM:
        # An expected latency below the real one makes LoadGen generate enough queries.
        settings.single_stream_expected_latency_ns = int(1e9 / warm_qps * AUTO_LATENCY_FRACTION)
    elif overrides.target_qps == 0 and scenario is Scenario.MULTI_STREAM:
        per_query = settings.multi_stream_samples_per_query
        settings.multi_stream_expected_latency_ns = int(per_query * 1e9 / warm_qps * AUTO_LATENCY_FRACTION)
    if overrides.active():
        log.warning("NON-OFFICIAL settings (this run cannot be submitted): %s", overrides.active())


def log_estimate(settings: Any, scenario: Scenario, mode: Mode, total: int) -> float:
    """Log (and return) how long the test will take at the pace its LoadGen settings state
    (``harness.run_length``; Offline: as if the system ran at ``target_qps``)."""
    from harness.run_length import Pace, describe_seconds, run_seconds

    latency_ns = (settings.multi_stream_expected_latency_ns if scenario is Scenario.MULTI_STREAM
                  else settings.single_stream_expected_latency_ns)
    qps = settings.offline_expected_qps if scenario is Scenario.OFFLINE else settings.server_target_qps
    pace = Pace(scenario, qps=qps, latency_ms=latency_ns / 1e6, min_duration_s=settings.min_duration_ms / 1000,
                min_queries=settings.min_query_count)
    seconds = run_seconds(pace, mode, total)
    pace_text = f"target_qps {qps:g}" if scenario in (Scenario.OFFLINE, Scenario.SERVER) else \
        f"expected latency {latency_ns / 1e6:g} ms"
    log.info("%s %s: about %s of LoadGen at %s (min_duration %g s)", scenario.value, mode.value,
             describe_seconds(seconds), pace_text, settings.min_duration_ms / 1000)
    return seconds


def _warn_if_slow_server_accuracy(settings: Any, req: RunRequest, total: int, model_name: str) -> None:
    """Server accuracy queries arrive at target_qps: a low one makes the run last for hours."""
    if req.scenario is Scenario.SERVER and req.mode is Mode.ACCURACY:
        seconds = total / max(settings.server_target_qps, 1e-9)
        if seconds > 600:
            log.warning("Server accuracy run: %d samples at target_qps %.1f take about %.0f s; set "
                        "%s.Server.target_qps in %s (mlperf-cpu tune --scenario Server)", total,
                        settings.server_target_qps, seconds, model_name, req.user_conf)


def _verify_compliance(req: RunRequest, card: ModelCard, run_dir: Path) -> dict[str, Any]:
    """Verify a TEST01/TEST04 run against this model's normal runs; write verify_*.txt into its
    (staging) run directory."""
    base = req.scenario_dir(card)
    reference = run_records.run_dir_in(base, Mode.PERFORMANCE)
    if not (reference / DETAIL).is_file():
        return {"passed": None, "why": f"{reference}: no performance run to compare with"}
    official = not req.overrides.active()
    perf = verify_performance(req.mode.value, reference, run_dir, require_valid=official)
    (run_dir / VERIFY_PERFORMANCE).write_text(perf.text())  # published beside the run once it is in place
    out: dict[str, Any] = {"performance": {"passed": perf.passed, **perf.details}}
    passed = perf.passed
    if req.mode is Mode.TEST01:
        acc = verify_test01_accuracy(run_records.run_dir_in(base, Mode.ACCURACY) / ACCURACY_LOG, run_dir / ACCURACY_LOG)
        (run_dir / VERIFY_ACCURACY).write_text(acc.text())
        out["accuracy"] = {"passed": acc.passed, **acc.details}
        passed = passed and acc.passed
    out["passed"] = passed
    log.info("%s verification: %s", req.mode.value, "TEST PASS" if passed else "TEST FAIL")
    return out


def _run_loadgen(lg: Any, settings: Any, sut: Any, qsl: Any, record: RunResult, audit_path: Path | None,
                 controls: HostControls | None = None) -> None:
    """StartTest on a worker thread so SIGINT/SIGTERM are seen within a fraction of a second.

    ``audit_path`` is passed to LoadGen explicitly ("" = none), so a stray audit.config
    in the working directory can never leak into a normal run. ``controls``: the host controls
    whose keep-awake hold lasts for the test (started here, on the main thread, whose exit is what
    ends the loops or the latency limit if this process dies).
    """
    run_dir = record.directory
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(run_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    run_records.mark_incomplete(run_dir, "LoadGen test started; not finished or not yet checked")
    sut_handle = lg.ConstructFastSUT(sut.issue_query, sut.flush_queries)
    qsl_handle = lg.ConstructQSL(qsl.total_count, qsl.performance_count, qsl.load_samples, qsl.unload_samples)
    done = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings,
                                        str(audit_path) if audit_path else "")
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            failure.append(exc)
        finally:
            done.set()

    # Installed explicitly: a shell starts background jobs with SIGINT ignored.
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=target, name="loadgen", daemon=True)
    start = time.perf_counter()
    try:
        with controls.keep_awake() if controls is not None else contextlib.nullcontext():
            thread.start()
            while not done.wait(0.2):
                pass
    except KeyboardInterrupt:
        if audit_path is not None:
            audit_path.unlink(missing_ok=True)  # os._exit below skips the context manager
        _abandon(record, "interrupted by signal", sut, qsl)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    record.loadgen_wall_s = round(time.perf_counter() - start, 2)
    sut.close()
    lg.DestroyQSL(qsl_handle)
    lg.DestroyFastSUT(sut_handle)
    if failure:
        raise EngineError(f"LoadGen test failed: {failure[0]}")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _abandon(record: RunResult, why: str, sut: Any = None, qsl: Any = None,
             exit_code: int = RunInterrupted.exit_code) -> None:
    """Mark the run incomplete and leave at once: LoadGen cannot be stopped mid-test. os._exit skips
    every finally, so the host controls, the SUT's instance processes and a shared bank are undone
    and cleaned up here first. Also called from the watchdog's thread."""
    undo_all()
    if record.host_tuning:
        record.host_tuning = {**record.host_tuning, "undone": True}
    run_records.mark_incomplete(record.directory, f"{why}; these logs are not a result")
    record.status, record.error, record.valid, record.submittable = "interrupted", why, False, False
    _keep_failed(record)
    _release(sut, qsl)
    log.error("%s: %s marked INCOMPLETE", why, record.directory)
    logging.shutdown()
    os._exit(exit_code)
