"""Harness vs benchmark_app: the same prepared IR, the same engine settings, interleaved rounds.

The model is a registered architecture (default resnet50; any name from
``models.list_models()``, e.g. decinet_s) exported with its registered card and
UNTRAINED seeded weights, prepared by ``pipeline.flows.prepare_model`` (INT8 calibrated
on the demo list). Only speed is meaningful. Each round runs OpenVINO's
``benchmark_app`` (``bench/_bapp.py``) and then the harness's LoadGen Offline
performance test (``pipeline.flows.run_test``), one process at a time
(``bench/_bapp_rounds.py``). The last line printed is ``ratio <median over rounds of
ours / benchmark_app>``.

    bench/run.sh harness_vs_benchmark_app [--model decinet_s] [--rounds 3] [--duration 20]
        [--system host|NAME|path.yaml] [--streams S] [--threads T] [--requests R] [--batch B]
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import REPO, UNTRAINED, WORK, WORKSPACE, require_train_extra, run_main

require_train_extra(__file__)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from bench._bapp import BappResult, run_benchmark_app  # noqa: E402
from bench._bapp_rounds import add_round_args, bench_system, parse_round_args, run_rounds  # noqa: E402
from bench._record import Value, chosen_summary, figure, write_json  # noqa: E402
from bench._rounds import print_summary  # noqa: E402
from common.testspec import Mode, Overrides  # noqa: E402
from modelprep.card import load_card  # noqa: E402
from pipeline.flows import TestSpec, demo_calibration, prepare_model  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50", help="registered architecture (default resnet50)")
    p.add_argument("--precision", default="int8", choices=("int8", "f32", "bf16"), help="default int8")
    p.add_argument("--calib-subset", type=int, help="calibration images (default: the whole demo list)")
    add_round_args(p, duration=20)
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    return parse_round_args(p, argv)


def benchmark(args: argparse.Namespace) -> int:
    """Prepare once, run the interleaved rounds, print the table, medians and ratio."""
    start = time.perf_counter()
    print(f"NOTE: {args.model} with {UNTRAINED}; demo images stand in for ImageNet.", flush=True)
    system, profile = bench_system(args)
    calibration = demo_calibration(WORKSPACE, args.calib_subset) if args.precision == "int8" else None
    model_dir = prepare_model(args.model, args.precision, WORKSPACE, calibration=calibration)
    card, e = load_card(model_dir), profile.engine
    print(f"model   : {model_dir.relative_to(REPO)} ({card.label}, inference precision {card.inference_precision})\n"
          f"engine  : {e.num_streams} streams, {e.num_threads} threads, {e.infer_requests} requests, "
          f"batch {e.batch_size}, pinning {e.pinning} (system {system})\n"
          f"setup   : {time.perf_counter() - start:.1f} s; {args.rounds} rounds x 2 runs x ~{args.duration} s\n",
          flush=True)
    logging.getLogger().setLevel(logging.WARNING)  # the rounds print their own table
    spec = TestSpec(Mode.PERFORMANCE, model_dir, WORKSPACE.demo_data / "val", system, WORKSPACE, REPO / "user.conf",
                    overrides=Overrides(min_duration_ms=args.duration * 1000, min_query_count=1, target_qps=0))

    def reference(i: int) -> BappResult:
        return run_benchmark_app(model_dir / "model.xml", e, card.inference_precision, args.duration,
                                 cache_dir=WORKSPACE.cache / "ov_cache", out_dir=WORK / "bapp" / f"round{i}")

    rounds, runs = run_rounds(args, reference, spec)
    print(f"wall time {time.perf_counter() - start:.1f} s; {args.model}: {UNTRAINED}; "
          "note = LoadGen validity (INVALID only means the warm-up target_qps was off)")
    summaries = print_summary(rounds, args.busy_threshold)  # last line: "ratio <number>"
    if args.json:
        rows = [{**dataclasses.asdict(r), "ratio": round(r.ratio, 4), "harness_run_dir": o.run_dir,
                 "benchmark_app_latency_ms": dataclasses.asdict(b.latency)} for r, (b, o) in zip(rounds, runs)]
        record = {"note": f"{args.model}: {UNTRAINED}", "model_dir": str(model_dir), "profile": profile.to_dict(),
                  "duration_s": args.duration, "summary": summaries, "rounds": rows,
                  "commands": [shlex.join(runs[-1][0].command), shlex.join(["mlperf-cpu", *spec.argv()])]}
        s = chosen_summary(summaries)
        write_json(args.json, record, [figure(
            "harness_vs_benchmark_app", s["median_of_ratios"], Value("ours", s["ours_median"], "samples/s"),
            Value("benchmark_app", s["reference_median"], "FPS"), name=f"{args.model} {args.precision} Offline",
            ratio_is="ours / benchmark_app throughput, median of per-round ratios", goal=">= 0.95",
            note="untrained weights: speed only")])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
