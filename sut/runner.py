"""One LoadGen test in one process, as a fixed sequence of numbered steps.

``TestSettings.FromConfig`` is called exactly once per process (a second call
makes LoadGen log an error the submission checker rejects), with user.conf
only: LoadGen carries the round's mlperf.conf inside itself. The run directory
holds an ``INCOMPLETE`` marker from the moment LoadGen starts until the logs
are checked, so a killed or interrupted run can never pass for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataset.cache import build_cache
from dataset.val_map import parse_val_map
from sut.card import ModelCard, load_card
from sut.compliance import audit_config, verify_performance, verify_test01_accuracy
from sut.errors import ConfigError, EngineError, HarnessError, RunInterrupted
from sut.loadgen_logs import ACCURACY_LOG, DETAIL, SUMMARY, read_detail, read_summary_lines
from sut.profile import SystemProfile
from sut.types import Mode, Overrides
from sut.userconf import lookup, parse_user_conf

log = logging.getLogger(__name__)

BENCHMARK = "resnet50"  # LoadGen keys its rules on this exact name
SCENARIO = "Offline"
RESULT_FILE = "result.json"
INCOMPLETE = "INCOMPLETE"
OFFICIAL_MIN_DURATION_MS = 600_000
OFFICIAL_ACCURACY_SAMPLES = 50_000
AUTO_QPS_MARGIN = 1.2
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

    def model_label(self, card: ModelCard) -> str:
        """Folder name of the model under results/<system>/."""
        return f"{card.name}-{card.precision}"


def run_dir_for(req: RunRequest, card: ModelCard) -> Path:
    """``results/<system>/<model>/Offline/{accuracy,performance/run_1}``."""
    base = scenario_dir(req, card)
    if req.mode is Mode.ACCURACY:
        return base / "accuracy"
    if req.mode.is_compliance:
        return base / req.mode.value / "performance" / "run_1"
    return base / "performance" / "run_1"


def scenario_dir(req: RunRequest, card: ModelCard) -> Path:
    """``results/<system>/<model>/Offline``: every test of one model on one system."""
    return Path(req.results_dir) / req.profile.name / req.model_label(card) / SCENARIO


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
    for name in (RESULT_FILE, DETAIL, SUMMARY, ACCURACY_LOG, "mlperf_log_trace.json", "accuracy.txt"):
        (run_dir / name).unlink(missing_ok=True)


def write_result(run_dir: Path, result: dict[str, Any]) -> Path:
    """Write ``result.json`` (atomically, so a half-written file never exists)."""
    path = run_dir / RESULT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def check_validity(detail: Any, overrides: Overrides, mode: Mode, loadgen_errors: list[str]) -> list[str]:
    """Reasons this run cannot be submitted (empty list: submittable)."""
    reasons: list[str] = []
    if mode is not Mode.ACCURACY and detail.get("result_validity") != "VALID":
        reasons.append(f"LoadGen result is {detail.get('result_validity')}")
    if overrides.active():
        reasons.append(f"non-official settings: {overrides.active()}")
    if mode is Mode.ACCURACY and (detail.get("effective_accuracy_sample_count") or 0) < OFFICIAL_ACCURACY_SAMPLES:
        reasons.append(f"accuracy run over {detail.get('effective_accuracy_sample_count')} samples, "
                       f"not {OFFICIAL_ACCURACY_SAMPLES}")
    if (detail.get("effective_min_duration_ms") or 0) < OFFICIAL_MIN_DURATION_MS:
        reasons.append(f"min_duration {detail.get('effective_min_duration_ms')} ms < {OFFICIAL_MIN_DURATION_MS}")
    reasons += [f"LoadGen error: {e}" for e in loadgen_errors]
    return reasons


def execute(req: RunRequest) -> dict[str, Any]:
    """Run one LoadGen test; return (and write) the result record.

    Raises ``HarnessError`` subclasses for anything the user can fix; the result
    JSON then says ``status: error`` and never claims VALID.
    """
    # Heavy imports here so `--help` and input checks stay fast.
    import mlperf_loadgen as lg
    import openvino as ov

    from sut.accuracy import read_accuracy_log, top1, write_accuracy_txt
    from sut.engine import compile_model
    from sut.qsl import SampleLibrary
    from sut.sut import OfflineSUT

    steps = _Steps()
    steps.next()  # Checking inputs
    card = load_card(req.model_dir)
    conf = parse_user_conf(req.user_conf)
    if Path("audit.config").exists():
        raise ConfigError(f"{Path('audit.config').resolve()}: a stray audit.config would change this "
                          "test's settings; remove it")
    run_dir = run_dir_for(req, card)
    prepare_run_dir(run_dir)
    result: dict[str, Any] = {"status": "running", "mode": req.mode.value, "run_dir": str(run_dir),
                              "benchmark": BENCHMARK, "scenario": SCENARIO, "card": asdict(card),
                              "profile": req.profile.to_dict(), "user_conf": str(Path(req.user_conf).resolve()),
                              "user_conf_sha256": hashlib.sha256(Path(req.user_conf).read_bytes()).hexdigest(),
                              "model_dir": str(Path(req.model_dir).resolve()),
                              "dataset_dir": str(Path(req.dataset_dir).resolve()),
                              "val_map": str(Path(req.val_map).resolve()), "command": req.command,
                              "overrides": req.overrides.active(), "valid": False}
    try:
        steps.next()  # Reading dataset
        samples = parse_val_map(req.val_map, card.num_classes)
        steps.next()  # Preprocessing
        cache = build_cache(req.dataset_dir, samples, card.preprocess, req.cache_dir)
        steps.next()  # Compiling
        core = ov.Core()
        compiled, info = compile_model(core, req.model_dir, card, req.profile.engine,
                                       req.cache_dir / "ov_cache")
        for key, value in sorted(info.properties.items()):
            log.info("  %s: %s", key, value)
        result["compiled_properties"] = info.properties
        result["inference_precision"] = info.properties.get("INFERENCE_PRECISION_HINT")
        steps.next()  # Configuring LoadGen
        settings = lg.TestSettings()
        if settings.FromConfig(str(req.user_conf), BENCHMARK, SCENARIO) != 0:
            raise ConfigError(f"{req.user_conf}: LoadGen could not read it")
        settings.scenario = lg.TestScenario.Offline
        # Compliance modes run as performance tests; their audit config switches on the rest.
        settings.mode = lg.TestMode.AccuracyOnly if req.mode is Mode.ACCURACY else lg.TestMode.PerformanceOnly
        perf_count = int(req.overrides.performance_sample_count
                         or lookup(conf, BENCHMARK, SCENARIO, "performance_sample_count_override") or 1024)
        qsl = SampleLibrary(cache, perf_count)
        sut = OfflineSUT(qsl, compiled, req.profile.engine.infer_requests)
        steps.next()  # Warming up
        qsl.load_samples(list(range(min(qsl.performance_count, 256))))
        batches = req.warmup_batches or 2 * req.profile.engine.infer_requests
        measure_s = AUTO_QPS_MEASURE_S if req.overrides.target_qps == 0 else 0.0
        warm_qps = sut.pool.warmup(qsl.data, batches, measure_s)
        qsl.unload_samples(list(range(min(qsl.performance_count, 256))))
        log.info("warm-up: %d batches%s", batches,
                 f", then {warm_qps:.1f} samples/s over {measure_s} s (not a result)" if measure_s else "")
        if measure_s:
            result["warmup_samples_per_second"] = round(warm_qps, 1)
        _apply_overrides(settings, req.overrides, warm_qps)
        steps.next()  # Running
        if req.mode.is_compliance:
            with audit_config(req.mode.value) as audit_path:
                result["audit_config"] = audit_path.read_text()
                _run_loadgen(lg, settings, sut, qsl, run_dir, result, audit_path)
        else:
            _run_loadgen(lg, settings, sut, qsl, run_dir, result, None)
        steps.next()  # Checking logs
        detail = read_detail(run_dir)
        result.update(_performance_fields(detail, read_summary_lines(run_dir)))
        error = sut.first_error()
        if error is not None:
            raise EngineError(f"inference failed during the test: {error}")
        if req.mode is Mode.ACCURACY:
            labels = read_accuracy_log(run_dir / ACCURACY_LOG)
            acc = top1(labels, samples)
            write_accuracy_txt(acc, run_dir / "accuracy.txt")
            result["accuracy"] = {"top1_percent": round(acc.percent, 3), "good": acc.good,
                                  "total": acc.total, "dataset_size": len(samples)}
            if acc.total != len(samples):
                detail.errors.append(f"accuracy log holds {acc.total} of {len(samples)} samples")
        if req.mode.is_compliance:
            result["compliance"] = _verify_compliance(req, card, run_dir)
        reasons = check_validity(detail, req.overrides, req.mode, detail.errors)
        if result.get("compliance", {}).get("passed") is False:
            reasons.append(f"{req.mode.value} verification failed")
        result["loadgen_errors"] = detail.errors
        result["submittable"] = not reasons
        result["not_submittable_because"] = reasons
        result["valid"] = req.mode is Mode.ACCURACY or detail.get("result_validity") == "VALID"
        result["status"] = "ok"
        result["timings_ms"] = steps.times_ms
        write_result(run_dir, result)
        (run_dir / INCOMPLETE).unlink(missing_ok=True)
        return result
    except HarnessError as exc:
        result.update(status="error", error=str(exc), valid=False, submittable=False)
        write_result(run_dir, result)
        raise


def _apply_overrides(settings: Any, overrides: Overrides, warm_qps: float) -> None:
    """Set the non-official knobs after FromConfig (demo/tests); each is logged as such."""
    if overrides.min_duration_ms is not None:
        settings.min_duration_ms = overrides.min_duration_ms
    if overrides.min_query_count is not None:
        settings.min_query_count = overrides.min_query_count
    if overrides.performance_sample_count is not None:
        settings.performance_sample_count_override = overrides.performance_sample_count
    if overrides.target_qps is not None:
        # A short warm-up underestimates steady throughput; aim high so the run meets min_duration.
        settings.offline_expected_qps = overrides.target_qps or warm_qps * AUTO_QPS_MARGIN
    if overrides.active():
        log.warning("NON-OFFICIAL settings (this run cannot be submitted): %s", overrides.active())


def _verify_compliance(req: RunRequest, card: ModelCard, run_dir: Path) -> dict[str, Any]:
    """Verify a TEST01/TEST04 run against this model's normal runs; write verify_*.txt."""
    base = scenario_dir(req, card)
    test_dir = base / req.mode.value
    reference = base / "performance" / "run_1"
    if not (reference / DETAIL).is_file():
        return {"passed": None, "why": f"{reference}: no performance run to compare with"}
    official = not req.overrides.active()
    perf = verify_performance(req.mode.value, reference, run_dir, require_valid=official)
    (test_dir / "verify_performance.txt").write_text(perf.text())
    out: dict[str, Any] = {"performance": {"passed": perf.passed, **perf.details}}
    passed = perf.passed
    if req.mode is Mode.TEST01:
        acc = verify_test01_accuracy(base / "accuracy" / ACCURACY_LOG, run_dir / ACCURACY_LOG)
        (test_dir / "verify_accuracy.txt").write_text(acc.text())
        out["accuracy"] = {"passed": acc.passed, **acc.details}
        passed = passed and acc.passed
    out["passed"] = passed
    log.info("%s verification: %s", req.mode.value, "TEST PASS" if passed else "TEST FAIL")
    return out


def _run_loadgen(lg: Any, settings: Any, sut: Any, qsl: Any, run_dir: Path, result: dict[str, Any],
                 audit_path: Path | None) -> None:
    """StartTest on a worker thread so SIGINT/SIGTERM are seen within a fraction of a second.

    ``audit_path`` is passed to LoadGen explicitly ("" = none), so a stray audit.config
    in the working directory can never leak into a normal run.
    """
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(run_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    (run_dir / INCOMPLETE).write_text("LoadGen test started; not finished or not yet checked\n")
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
    thread.start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        if audit_path is not None:
            audit_path.unlink(missing_ok=True)  # os._exit below skips the context manager
        _abandon(run_dir, result, "interrupted by signal")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    result["loadgen_wall_s"] = round(time.perf_counter() - start, 2)
    sut.close()
    lg.DestroyQSL(qsl_handle)
    lg.DestroyFastSUT(sut_handle)
    if failure:
        raise EngineError(f"LoadGen test failed: {failure[0]}")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _abandon(run_dir: Path, result: dict[str, Any], why: str) -> None:
    """Mark the run incomplete and leave at once: LoadGen cannot be stopped mid-test."""
    (run_dir / INCOMPLETE).write_text(f"{why}; these logs are not a result\n")
    result.update(status="interrupted", valid=False, submittable=False, error=why)
    write_result(run_dir, result)
    log.error("%s: %s marked INCOMPLETE", why, run_dir)
    logging.shutdown()
    os._exit(RunInterrupted.exit_code)


def _performance_fields(detail: Any, summary: dict[str, str]) -> dict[str, Any]:
    """The figures and effective settings a reader of result.json wants."""
    keys = ("result_validity", "result_samples_per_second", "result_min_duration_met",
            "result_min_queries_met", "effective_min_duration_ms", "effective_min_query_count",
            "effective_target_qps", "effective_performance_sample_count", "effective_sample_index_rng_seed",
            "effective_qsl_rng_seed", "effective_schedule_rng_seed", "loadgen_version",
            "effective_accuracy_sample_count", "result_query_count")
    out = {k: detail.get(k) for k in keys if detail.get(k) is not None}
    out["samples_per_second"] = detail.get("result_samples_per_second")
    out["summary_result"] = summary.get("Result is")
    return out
