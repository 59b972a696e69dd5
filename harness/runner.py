"""One LoadGen test in one process, as a fixed sequence of numbered steps.

``TestSettings.FromConfig`` is called exactly once per process (a second call
makes LoadGen log an error the submission checker rejects), with user.conf
only: LoadGen carries the round's mlperf.conf inside itself. The run directory
holds an ``INCOMPLETE`` marker from the moment LoadGen starts until the logs
are checked, so a killed or interrupted run can never pass for a finished one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError, EngineError, HarnessError, RunInterrupted
from common.files import sha256_file
from common.loadgen_conf import lookup, parse_user_conf
from common.testspec import Mode, Overrides, Scenario, loadgen_model
from dataset.cache import build_cache
from dataset.coco import CocoSet, load_coco, resolve_coco
from dataset.val_map import parse_val_map
from harness.compliance import (VERIFY_ACCURACY, VERIFY_PERFORMANCE, audit_config, verify_performance,
                                verify_test01_accuracy)
from modelprep.card import ModelCard, load_card
from records import results as tree
from records.accuracy import ACCURACY_TXT, read_accuracy_log, top1, write_accuracy_txt
from records.detection import coco_map, read_detection_log, write_map_txt
from records.loadgen_logs import ACCURACY_LOG, DETAIL, SUMMARY, read_detail
from records.results import LOADGEN_KEYS, AccuracyFigures, RunResult
from records.rules import performance_sample_count, run_problems
from sut.config import EngineConfig, SystemProfile
from sut.keepawake import kept_awake

log = logging.getLogger(__name__)

AUTO_QPS_MARGIN = 1.2
AUTO_SERVER_FRACTION = 0.5
AUTO_LATENCY_FRACTION = 0.5
AUTO_QPS_MEASURE_S = 2.0
_STEPS = ("Checking inputs", "Reading dataset", "Preprocessing (cached)", "Compiling model",
          "Configuring LoadGen", "Warming up", "Running LoadGen test", "Checking logs")
_STALE = (tree.RESULT_FILE, DETAIL, SUMMARY, ACCURACY_LOG, "mlperf_log_trace.json", ACCURACY_TXT)


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

    def run_dir(self, card: ModelCard) -> Path:
        """Where this run's logs and record go."""
        return tree.run_dir(self.results_dir, self.profile.name, card.label, self.scenario, self.mode)

    def scenario_dir(self, card: ModelCard) -> Path:
        """Every test of this model on this system in this scenario."""
        return tree.scenario_dir(self.results_dir, self.profile.name, card.label, self.scenario)


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


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run directory and remove any earlier run's logs and results from it."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{run_dir}: output directory not writable ({exc.strerror})") from None
    for name in _STALE:
        (run_dir / name).unlink(missing_ok=True)


def _new_record(req: RunRequest, card: ModelCard, run_dir: Path) -> RunResult:
    from hostinfo.probe import distribution_version

    versions = {name: distribution_version(dist) or "" for name, dist in
                (("loadgen", "mlcommons-loadgen"), ("openvino", "openvino"), ("nncf", "nncf"))}
    return RunResult(mode=req.mode, scenario=req.scenario, card=card, profile=req.profile,
                     benchmark=loadgen_model(card.task),
                     run_dir=str(run_dir.resolve()),
                     user_conf=str(Path(req.user_conf).resolve()), user_conf_sha256=sha256_file(req.user_conf),
                     model_dir=str(Path(req.model_dir).resolve()), dataset_dir=str(Path(req.dataset_dir).resolve()),
                     val_map=str(Path(req.val_map).resolve()), command=req.command,
                     overrides=req.overrides.active(), versions=versions)


def execute(req: RunRequest) -> RunResult:
    """Run one LoadGen test; return (and write) its record.

    Raises ``HarnessError`` subclasses for anything the user can fix; the record
    then says ``status: error`` and never claims VALID.
    """
    # Heavy imports here so `--help` and input checks stay fast.
    import mlperf_loadgen as lg
    import openvino as ov

    from sut.engine import compile_model
    from sut.qsl import SampleLibrary

    steps = _Steps()
    steps.next()  # Checking inputs
    card = load_card(req.model_dir)
    conf = parse_user_conf(req.user_conf)
    if Path("audit.config").exists():
        raise ConfigError(f"{Path('audit.config').resolve()}: a stray audit.config would change this "
                          "test's settings; remove it")
    run_dir = req.run_dir(card)
    prepare_run_dir(run_dir)
    record = _new_record(req, card, run_dir)
    qsl: Any = None
    sut: Any = None
    model_name = loadgen_model(card.task)  # the user.conf / mlperf.conf key
    try:
        check_issue_priority(req.profile.engine_for(req.scenario.value), req.scenario)
        steps.next()  # Reading dataset
        coco: CocoSet | None = None
        if card.is_detector:  # COCO layout: images in annotation-file order (dataset.coco)
            coco = load_coco(*resolve_coco(req.dataset_dir, req.val_map))
            samples, image_dir = coco.samples, coco.image_dir
        else:
            samples, image_dir = parse_val_map(req.val_map, card.num_classes), req.dataset_dir
        steps.next()  # Preprocessing
        cache = build_cache(image_dir, samples, card.preprocess, req.cache_dir)
        steps.next()  # Compiling
        core = ov.Core()
        engine = req.profile.engine_for(req.scenario.value)
        perf_count = int(req.overrides.performance_sample_count
                         or lookup(conf, model_name, req.scenario.value, "performance_sample_count_override")
                         or performance_sample_count(model_name))
        # Its bank's capacity is the compiled model's bank size; in shared memory for several instances.
        qsl = SampleLibrary(cache, perf_count, shared=engine.instances > 1)
        if engine.instances > 1 and coco is not None:
            raise ConfigError(f"profile {req.profile.name}: {engine.instances} instances; detectors run on one "
                              "instance (set engine.instances = 1 for this scenario)")
        if engine.instances > 1:  # each instance process compiles its own copy (sut.instances)
            sut = make_instances_sut(req.scenario, qsl, req.model_dir, engine, req.cache_dir / "ov_cache")
            properties = sut.compiled_properties
            record.instances = sut.instance_records
        else:
            compiled, info = compile_model(core, req.model_dir, card, engine, req.cache_dir / "ov_cache")
            properties = info.properties
        for key, value in sorted(properties.items()):
            log.info("  %s: %s", key, value)
        record.compiled_properties = properties
        record.inference_precision = properties.get("INFERENCE_PRECISION_HINT")
        steps.next()  # Configuring LoadGen
        settings = lg.TestSettings()
        if settings.FromConfig(str(req.user_conf), model_name, req.scenario.value) != 0:
            raise ConfigError(f"{req.user_conf}: LoadGen could not read it")
        settings.scenario = getattr(lg.TestScenario, req.scenario.value)
        # Compliance modes run as performance tests; their audit config switches on the rest.
        settings.mode = lg.TestMode.AccuracyOnly if req.mode is Mode.ACCURACY else lg.TestMode.PerformanceOnly
        if sut is None:
            post = None
            if coco is not None:
                from sut.detection import post_for
                post = post_for(card, coco.sizes)
            sut = make_sut(req.scenario, qsl, compiled, engine, post)
        steps.next()  # Warming up
        warm = list(range(min(qsl.performance_count, 256)))
        qsl.load_samples(warm)
        batches = req.warmup_batches or 2 * engine.infer_requests
        measure_s = AUTO_QPS_MEASURE_S if req.overrides.target_qps == 0 else 0.0
        warm_qps = sut.pool.warmup(batches, measure_s, rows=len(warm))
        qsl.unload_samples(warm)
        log.info("warm-up: %d batches%s", batches,
                 f", then {warm_qps:.1f} samples/s over {measure_s} s (not a result)" if measure_s else "")
        if measure_s:
            record.warmup_samples_per_second = round(warm_qps, 1)
        _apply_overrides(settings, req.scenario, req.overrides, warm_qps)
        _warn_if_slow_server_accuracy(settings, req, len(samples), model_name)
        steps.next()  # Running
        if req.mode.is_compliance:
            with audit_config(req.mode.value, model_name) as audit_path:
                record.audit_config = audit_path.read_text()
                _run_loadgen(lg, settings, sut, qsl, record, audit_path, engine.keep_awake)
        else:
            _run_loadgen(lg, settings, sut, qsl, record, None, engine.keep_awake)
        _record_dispatch_slice(record, sut, engine)
        _record_issue_priority(record, sut, engine)
        steps.next()  # Checking logs
        detail = read_detail(run_dir)
        record.loadgen = {k: detail.get(k) for k in LOADGEN_KEYS if detail.get(k) is not None}
        record.loadgen_errors = list(detail.errors)
        error = sut.first_error()
        if error is not None:
            raise EngineError(f"inference failed during the test: {error}")
        if req.mode is Mode.ACCURACY and coco is not None:
            mean_ap = coco_map(read_detection_log(run_dir / ACCURACY_LOG), coco, str(run_dir / ACCURACY_LOG))
            write_map_txt(mean_ap, run_dir / ACCURACY_TXT)
            record.accuracy = AccuracyFigures(round(mean_ap.percent, 3), 0, mean_ap.images, len(samples), "mAP")
        elif req.mode is Mode.ACCURACY:
            acc = top1(read_accuracy_log(run_dir / ACCURACY_LOG), samples, str(run_dir / ACCURACY_LOG))
            write_accuracy_txt(acc, run_dir / ACCURACY_TXT)
            record.accuracy = AccuracyFigures(round(acc.percent, 3), acc.good, acc.total, len(samples))
        if req.mode.is_compliance:
            record.compliance = _verify_compliance(req, card, run_dir)
        problems = run_problems(record, detail)
        record.submittable = not problems
        record.not_submittable_because = [str(p) for p in problems]
        record.valid = req.mode is Mode.ACCURACY or record.validity == "VALID"
        record.status = "ok"
        record.timings_ms = steps.times_ms
        record.save()
        tree.clear_incomplete(run_dir)
        return record
    except HarnessError as exc:
        record.status, record.error, record.valid, record.submittable = "error", str(exc), False, False
        record.save()
        raise
    finally:  # several instances: no process and no shared memory outlives the test, on any way out
        _release(sut, qsl)


def _record_dispatch_slice(record: RunResult, sut: Any, engine: EngineConfig) -> None:
    """Keep and print what the query-carrying threads were granted (``engine.dispatch_slice_us``);
    a kernel without custom slices (Linux < 6.12) is a warning, the run stands as run."""
    if not engine.dispatch_slice_us:  # (refused with instances > 1: the SUT is one of sut.sut's)
        return
    report = sut.claim_slice.report()
    record.dispatch_slice = report
    granted = report["granted_us"]
    if granted == [engine.dispatch_slice_us]:
        log.info("dispatch_slice_us: %d query-carrying threads ran with a %d us scheduler slice",
                 report["threads"], engine.dispatch_slice_us)
    else:
        log.warning("dispatch_slice_us: asked %d us for %d threads, the kernel reports %s us (custom "
                    "slices need Linux >= 6.12); the run used the kernel's default", engine.dispatch_slice_us,
                    report["threads"], granted)


def _record_issue_priority(record: RunResult, sut: Any, engine: EngineConfig) -> None:
    """Keep and print what the issuing threads were granted (``engine.issue_priority``); a thread
    the kernel refused is a warning (``execute`` checked the permission first)."""
    if not engine.issue_priority:
        return
    report = sut.claim_priority.report()
    record.issue_priority = report
    if report["granted"] == [engine.issue_priority]:
        log.info("issue_priority: %d issuing threads ran under SCHED_FIFO %d", report["threads"],
                 engine.issue_priority)
    else:
        log.warning("issue_priority: asked SCHED_FIFO %d for %d threads, the kernel granted %s",
                    engine.issue_priority, report["threads"], report["granted"])


def check_issue_priority(engine: EngineConfig, scenario: Scenario) -> None:
    """Refuse, before anything runs, an ``issue_priority`` this process may not set."""
    from sut.threadpriority import realtime_allowed

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


def make_sut(scenario: Scenario, qsl: Any, compiled: Any, engine: EngineConfig, post: Any = None) -> Any:
    """The SUT of ``scenario`` over a pool of ``engine.infer_requests`` requests (``post``: a
    detector's post-processor, sut.detection)."""
    from sut.sut import DirectSUT, OfflineSUT, ServerSUT

    threads = {"dispatch_slice_us": engine.dispatch_slice_us, "issue_priority": engine.issue_priority}
    if scenario is Scenario.OFFLINE:
        engine.warn_if_throughput_starved()
        return OfflineSUT(qsl, compiled, engine.infer_requests, post, **threads)
    if scenario is Scenario.SERVER and not (engine.batch_size == 1 and engine.max_wait_us == 0):
        return ServerSUT(qsl, compiled, engine.infer_requests, engine.max_wait_us, post, **threads)
    # SingleStream, MultiStream, and per-query Server dispatch (batch 1, no wait): straight into an
    # idle request on LoadGen's issue thread. Measured for Server on 2 cores (decinet_s, 80 qps,
    # 20 s runs): p99 13.6 / 12.6 ms this way vs 17.3 / 14.5 ms through the dispatcher thread.
    # Server arrivals must not wait for earlier queries, so those are answered on callbacks.
    return DirectSUT(qsl, compiled, engine.infer_requests, post, callbacks=scenario is Scenario.SERVER, **threads)


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


def _warn_if_slow_server_accuracy(settings: Any, req: RunRequest, total: int, model_name: str) -> None:
    """Server accuracy queries arrive at target_qps: a low one makes the run last for hours."""
    if req.scenario is Scenario.SERVER and req.mode is Mode.ACCURACY:
        seconds = total / max(settings.server_target_qps, 1e-9)
        if seconds > 600:
            log.warning("Server accuracy run: %d samples at target_qps %.1f take about %.0f s; set "
                        "%s.Server.target_qps in %s (mlperf-cpu tune --scenario Server)", total,
                        settings.server_target_qps, seconds, model_name, req.user_conf)


def _verify_compliance(req: RunRequest, card: ModelCard, run_dir: Path) -> dict[str, Any]:
    """Verify a TEST01/TEST04 run against this model's normal runs; write verify_*.txt."""
    base = req.scenario_dir(card)
    test_dir = tree.compliance_dir(base, req.mode)
    reference = tree.run_dir_in(base, Mode.PERFORMANCE)
    if not (reference / DETAIL).is_file():
        return {"passed": None, "why": f"{reference}: no performance run to compare with"}
    official = not req.overrides.active()
    perf = verify_performance(req.mode.value, reference, run_dir, require_valid=official)
    (test_dir / VERIFY_PERFORMANCE).write_text(perf.text())
    out: dict[str, Any] = {"performance": {"passed": perf.passed, **perf.details}}
    passed = perf.passed
    if req.mode is Mode.TEST01:
        acc = verify_test01_accuracy(tree.run_dir_in(base, Mode.ACCURACY) / ACCURACY_LOG, run_dir / ACCURACY_LOG)
        (test_dir / VERIFY_ACCURACY).write_text(acc.text())
        out["accuracy"] = {"passed": acc.passed, **acc.details}
        passed = passed and acc.passed
    out["passed"] = passed
    log.info("%s verification: %s", req.mode.value, "TEST PASS" if passed else "TEST FAIL")
    return out


def _run_loadgen(lg: Any, settings: Any, sut: Any, qsl: Any, record: RunResult, audit_path: Path | None,
                 keep_awake: str = "off") -> None:
    """StartTest on a worker thread so SIGINT/SIGTERM are seen within a fraction of a second.

    ``audit_path`` is passed to LoadGen explicitly ("" = none), so a stray audit.config
    in the working directory can never leak into a normal run. ``keep_awake``: the
    ``sut.keepawake`` mode held for the test's duration (started here, on the main thread, whose
    exit is what ends the loops or the latency limit if this process dies).
    """
    run_dir = record.directory
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(run_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    tree.mark_incomplete(run_dir, "LoadGen test started; not finished or not yet checked")
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
        with kept_awake(keep_awake):
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


def _abandon(record: RunResult, why: str, sut: Any = None, qsl: Any = None) -> None:
    """Mark the run incomplete and leave at once: LoadGen cannot be stopped mid-test. os._exit skips
    every finally, so the SUT's instance processes and a shared bank are cleaned up here first."""
    tree.mark_incomplete(record.directory, f"{why}; these logs are not a result")
    record.status, record.error, record.valid, record.submittable = "interrupted", why, False, False
    record.save()
    _release(sut, qsl)
    log.error("%s: %s marked INCOMPLETE", why, record.directory)
    logging.shutdown()
    os._exit(RunInterrupted.exit_code)
