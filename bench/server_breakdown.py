"""Where a Server query's time goes: LoadGen's 99th percentile vs an ideal dispatcher fed THIS run's inference.

``server_vs_offline`` compares our Server rate with an ideal dispatcher built from service times
measured back to back, minutes apart from the LoadGen runs. On a virtual machine whose speed
drifts over minutes and which is slower at partial load, that comparison mixes the harness
with the host. This script separates them inside one run:

1. One in-process LoadGen Server run (PerformanceOnly, ``--qps``, ``--duration``) through the
   real per-query Server path: ``sut.sut.IssuingThreadSUT`` with callbacks, the profile's Server engine
   compiled as the harness compiles it, its ``dispatch_slice_us`` and ``issue_priority`` and,
   around the run, its ``keep_awake`` mode. The QSL is a bank of random rows (batch 1 reads one row, a view of the
   bank, as with the image cache; inference time does not depend on pixel values).
2. Per query, timestamps on our side: ``issue_query`` entry (the arrival as we see it), the
   dispatch (before an idle request is taken), OpenVINO's own ``InferRequest.latency`` (start to
   end of that request), the callback's entry and the return of ``QuerySamplesComplete``.
3. The service times OpenVINO actually delivered in this run: replaying the dispatches in order
   over ``num_streams`` FIFO servers (OpenVINO's streams take queued requests in order, each
   stream the next when it is free), a request's service is its end (dispatch + latency) minus
   the moment it could start (its dispatch, or the earlier end that freed a stream).
4. The ideal dispatcher on this run: the same FIFO servers, fed at this run's arrival times with
   this run's service times, no cost anywhere else. Its 99th percentile is what this engine on
   this host allowed for these arrivals; LoadGen's is what we delivered.

Per round: LoadGen's p99 (and VALID/INVALID), our internal p99 (``issue_query`` entry to
``QuerySamplesComplete`` returned), the ideal dispatcher's p99, the parts (``issue_query``
entry to dispatch, callback delay after inference ended, answering), and ``ideal p99 / LoadGen p99``
(1.0 = the harness adds nothing). The last line is ``ratio <median over rounds>``.
The replay starts each request no earlier than our dispatch timestamp, taken just before an
idle request is taken (about 0.05 ms before ``start_async``), so the service times it derives
are at most that much short and the ratio errs low. LoadGen measures from each query's
scheduled time, which is a little before our ``issue_query`` entry: that difference is in
LoadGen's figure and not in the ideal's, so it counts against us too.

    bench/run.sh server_breakdown [--model decinet_s] [--qps 120] [--duration 40] [--rounds 3]
        [--system host|NAME|path.yaml] [--json OUT]
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import UNTRAINED, WORK, WORKSPACE, RandomBankQSL, require_train_extra, run_main

require_train_extra(__file__)

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench._queueing import fifo_latency, replayed_service  # noqa: E402
from bench._record import Value, figure, host_tuning_label, write_json  # noqa: E402
from common.errors import HarnessError  # noqa: E402
from harness.profile import load_profile  # noqa: E402
from modelprep.card import ModelCard, load_card  # noqa: E402
from pipeline.flows import demo_calibration, prepare_model  # noqa: E402
from records.loadgen_logs import read_summary_lines  # noqa: E402
from sut.config import EngineConfig  # noqa: E402
from hostctl import HostControls, HostSettings  # noqa: E402

SERVER_BOUND_NS = 15_000_000  # the resnet50 Server latency bound
BANK_ROWS = 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="decinet_s", help="registered architecture (default decinet_s)")
    p.add_argument("--system", default="host", help="profile name or .yaml (default host)")
    p.add_argument("--qps", type=float, default=120.0, help="LoadGen server_target_qps (default 120)")
    p.add_argument("--duration", type=int, default=40, help="seconds per run (default 40)")
    p.add_argument("--rounds", type=int, default=3, help="runs (default 3)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--host-tuning", action="store_true",
                   help="the host profile's Server host settings (keep-awake, SCHED_FIFO, short slices; undone "
                        "after each run); default: off")
    args = p.parse_args(argv)
    if args.qps <= 0 or args.duration < 1 or args.rounds < 1:
        p.error("--qps > 0, --duration >= 1, --rounds >= 1")
    return args


def _stamped_sut_class(stamps: dict[int, list[float]]) -> type:
    """Step 1: IssuingThreadSUT with a timestamp at each step into ``stamps``, keyed by query id."""
    from sut.sut import IssuingThreadSUT

    class StampedSUT(IssuingThreadSUT):
        """IssuingThreadSUT (per-query Server dispatch) with a timestamp at each step; same code otherwise."""

        def issue_query(self, ids: list[int], indices: list[int]) -> None:
            stamps[ids[0]] = [time.perf_counter_ns() / 1e6, 0.0, 0.0, 0.0, 0.0]
            super().issue_query(ids, indices)

        def _submit_all(self, ids: np.ndarray, indices: np.ndarray, any_order: bool = False) -> None:
            stamps[int(ids[0])][1] = time.perf_counter_ns() / 1e6
            super()._submit_all(ids, indices, any_order)

        def _respond(self, slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
            entered = time.perf_counter_ns() / 1e6
            latency = self.pool._requests[slot].latency  # OpenVINO's own start-to-end, ms
            super()._respond(slot, ids, top1)
            stamps[int(ids[0])][2:] = [latency, entered, time.perf_counter_ns() / 1e6]

    return StampedSUT


def _server_settings(qps: float, seconds: int, out_dir: Path) -> tuple[Any, Any]:
    """Step 2: LoadGen Server PerformanceOnly settings at ``qps`` for ``seconds``, logs in ``out_dir``."""
    import mlperf_loadgen as lg

    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = qps
    settings.server_target_latency_ns = SERVER_BOUND_NS
    settings.min_duration_ms = seconds * 1000
    settings.min_query_count = 100
    log_settings = lg.LogSettings()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_settings.log_output.outdir = str(out_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    return settings, log_settings


def record_run(model_dir: Path, card: ModelCard, engine: EngineConfig, qps: float, seconds: int,
               out_dir: Path) -> tuple[np.ndarray, dict[str, str]]:
    """One LoadGen Server run through the real IssuingThreadSUT; per query (ms, perf_counter): issue entry,
    dispatch, OpenVINO latency, callback entry, answer returned; and LoadGen's summary."""
    import mlperf_loadgen as lg
    import openvino as ov

    from sut.engine import compile_model

    compiled, _ = compile_model(ov.Core(), model_dir, card, engine, WORKSPACE.cache / "ov_cache")
    stamps: dict[int, list[float]] = {}
    qsl = RandomBankQSL(BANK_ROWS, card.preprocess.sample_shape)
    controls = HostControls(HostSettings.of(engine))  # its threads' claims and the keep-awake hold
    sut = _stamped_sut_class(stamps)(qsl, compiled, engine.infer_requests, callbacks=True, threads=controls)
    sut.pool.warmup(2 * engine.infer_requests, 1.0)
    settings, log_settings = _server_settings(qps, seconds, out_dir)

    # 3. the run; host controls undone and LoadGen's handles freed on every way out
    sut_h = lg.ConstructFastSUT(sut.issue_query, sut.flush_queries)
    qsl_h = lg.ConstructQSL(BANK_ROWS, BANK_ROWS, qsl.load_samples, qsl.unload_samples)
    try:
        with controls.keep_awake():
            lg.StartTestWithLogSettings(sut_h, qsl_h, settings, log_settings, "")
        sut.close()
    finally:
        controls.undo()
        lg.DestroyQSL(qsl_h)
        lg.DestroyFastSUT(sut_h)
        sut.pool.close()
    if sut.first_error() is not None:
        raise HarnessError(f"inference failed during the run: {sut.first_error()}")
    rows = np.array(sorted(r for r in stamps.values() if r[4]), dtype=np.float64)
    if len(rows) < 100:
        raise HarnessError(f"{out_dir}: only {len(rows)} queries answered")
    return rows, read_summary_lines(out_dir)


def breakdown(rows: np.ndarray, streams: int) -> dict[str, float]:
    """p50/p99 of each part and of the ideal dispatcher over this run's arrivals and service."""
    issued, dispatched, ov_latency, callback, answered = rows.T
    ended = dispatched + ov_latency
    service = replayed_service(dispatched, ended, streams)
    ideal = fifo_latency(issued, service, streams)
    parts = {"internal": answered - issued, "ideal": ideal, "service": service, "issue_query": dispatched - issued,
             "callback_delay": callback - ended, "answer": answered - callback}
    out = {}
    for name, values in parts.items():
        out[f"{name}_p50"] = float(np.percentile(values, 50))
        out[f"{name}_p99"] = float(np.percentile(values, 99))
    out["queries"] = len(rows)
    return out


def benchmark(args: argparse.Namespace) -> int:
    """Rounds of one stamped Server run each; the parts and the ratio per round, the median last."""
    print(f"NOTE: {args.model} with {UNTRAINED}; random rows stand in for images.", flush=True)
    model_dir = prepare_model(args.model, "int8", WORKSPACE, calibration=demo_calibration(WORKSPACE))
    card = load_card(model_dir)
    engine = load_profile(args.system, host_tuning=args.host_tuning).engine_for("Server")
    if engine.batch_size != 1 or engine.max_wait_us != 0 or engine.instances != 1:
        raise HarnessError(f"profile {args.system}: Server engine {engine} is not per-query dispatch "
                           "(batch 1, max_wait_us 0, one instance), the path this script times")
    logging.getLogger().setLevel(logging.WARNING)
    print(f"Server engine: {engine}\n{args.rounds} rounds x {args.duration} s at {args.qps:g} qps", flush=True)
    ratios, results = [], []
    for k in range(args.rounds):
        rows, summary = record_run(model_dir, card, engine, args.qps, args.duration,
                                   WORK / "server_breakdown" / f"round{k + 1}")
        b = breakdown(rows, engine.num_streams)
        loadgen_p99 = int(summary["99.00 percentile latency (ns)"]) / 1e6
        ratio = b["ideal_p99"] / loadgen_p99
        ratios.append(ratio)
        results.append({"loadgen_p99_ms": loadgen_p99, "validity": summary.get("Result is"), **b, "ratio": ratio})
        print(f"round {k + 1}: {b['queries']} queries, LoadGen p99 {loadgen_p99:.2f} ms ({summary.get('Result is')}); "
              f"ours internal p99 {b['internal_p99']:.2f}; ideal dispatcher on this run's arrivals and inference "
              f"p99 {b['ideal_p99']:.2f} (service p50 {b['service_p50']:.2f}, p99 {b['service_p99']:.2f}) | "
              f"p50/p99: issue_query {b['issue_query_p50']:.2f}/{b['issue_query_p99']:.2f}, callback delay "
              f"{b['callback_delay_p50']:.2f}/{b['callback_delay_p99']:.2f}, answer {b['answer_p50']:.2f}/"
              f"{b['answer_p99']:.2f} | ideal/LoadGen {ratio:.4f}", flush=True)
    median = float(np.median(ratios))
    print(f"{args.model}: {UNTRAINED}\nideal dispatcher p99 / LoadGen p99, median of {args.rounds} rounds "
          "(1.0 = the harness adds nothing to the 99th percentile)")
    print(f"ratio {median:.4f}", flush=True)
    if args.json:
        write_json(args.json, {"note": f"{args.model}: {UNTRAINED}", "engine": str(engine), "qps": args.qps,
                               "duration_s": args.duration, "rounds": results, "ratio": median}, [figure(
            "server_breakdown", median, Value("LoadGen p99", float(np.median([r["loadgen_p99_ms"] for r in results])),
                                              "ms"),
            Value("ideal dispatcher p99", float(np.median([r["ideal_p99"] for r in results])), "ms"),
            name=f"{args.model} int8 Server {args.qps:g} qps{host_tuning_label(args.host_tuning)}",
            note="untrained weights: speed only",
            ratio_is="ideal dispatcher p99 on the run's own inference / LoadGen p99, median of rounds (1.0: "
                     "the harness adds nothing)")])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
