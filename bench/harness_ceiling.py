"""Harness ceiling: our LoadGen Offline harness vs benchmark_app on a model that does (almost) nothing.

The model is a "null" 224x224 classifier (``bench/_null_model.py``: u8 [N,3,224,224] -> Convert ->
ReduceMean over H,W -> MatMul 3x1000 -> TopK, i32 top-1), so inference costs a few microseconds per
sample and what is measured is the feed: how many samples/s the harness can move through LoadGen and
the pool, against benchmark_app's async loop over fixed input tensors, with the same engine settings.
Each round runs benchmark_app and then our Offline performance test (``pipeline.flows.run_test``),
one process at a time (``bench/_rounds.py``); the last line of the rounds is ``ratio <median of
per-round ours / benchmark_app>`` (goal >= 0.70).

Then, unless ``--no-cpu-split``, one in-process LoadGen Offline run through the real ``OfflineSUT``
(a bank of random rows instead of the image cache; ``bench/_cpu_split.py``) splits the harness's
CPU per sample: ``time.thread_time`` around each part on the thread that runs it, plus per-thread
CPU from ``/proc/self/task/*/stat`` for the rest, and how many batches were fed as views of the
bank or copied.

    bench/run.sh harness_ceiling [--rounds 3] [--duration 10] [--system host]
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import REPO, run_main

import argparse
import logging
import sys
import time
from pathlib import Path

from bench._bapp import BappResult, run_benchmark_app
from bench._cpu_split import cpu_split, print_split
from bench._null_model import NULL_MODEL, build_null_model
from bench._rounds import Quiet, offline_rounds, print_summary
from common.testspec import Mode, Overrides
from harness.profile import load_profile
from modelprep.card import MODEL_FILE
from pipeline.flows import TestSpec, Workspace, run_test

WORK = NULL_MODEL.parents[1]  # work/bench-ceiling: the null model, its demo data, results, reports
WORKSPACE = Workspace(work=WORK, results=WORK / "results", demo_data=WORK / "demo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--duration", type=int, default=10, help="seconds per run, each tool (default 10)")
    p.add_argument("--system", default="host", help="profile name or .yaml (default host)")
    p.add_argument("--quiet-wait", type=float, default=20, help="wait up to S s for an idle machine (0: no)")
    p.add_argument("--busy-threshold", type=float, default=0.15,
                   help="other load (cores) that marks a round busy, out of the 'clean' medians")
    p.add_argument("--no-cpu-split", action="store_true", help="skip the per-part CPU measurement")
    p.add_argument("--split-only", action="store_true", help="only the per-part CPU measurement")
    p.add_argument("--json", type=Path, help="also write the figures and their record (docs/performance.md) here")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.duration < 1:
        p.error("--rounds and --duration must be >= 1")
    return args


def benchmark(args: argparse.Namespace) -> int:
    """Build the model and the demo data, run the rounds, print the table, the ratio and the split."""
    from dataset.demo import build_demo_dataset

    start = time.perf_counter()
    model_dir = build_null_model(NULL_MODEL)
    profile = load_profile(args.system)
    e = profile.engine
    print(f"model   : {model_dir} (null 224x224 classifier: the feed is what is measured)\n"
          f"engine  : {e.num_streams} streams, {e.num_threads} threads, {e.infer_requests} requests, "
          f"batch {e.batch_size}, pinning {e.pinning} (system {args.system})", flush=True)
    if not args.split_only:
        build_demo_dataset(WORKSPACE.demo_data)
        logging.getLogger().setLevel(logging.WARNING)
        spec = TestSpec(Mode.PERFORMANCE, model_dir, WORKSPACE.demo_data / "val", args.system, WORKSPACE,
                        REPO / "user.conf",
                        overrides=Overrides(min_duration_ms=args.duration * 1000, min_query_count=1, target_qps=0))

        def reference(i: int) -> BappResult:
            return run_benchmark_app(model_dir / MODEL_FILE, e, "f32", args.duration,
                                     cache_dir=WORKSPACE.cache / "ov_cache", out_dir=WORK / "bapp" / f"round{i}")

        rounds = [row for row, _, _ in offline_rounds(args.rounds, reference, lambda i: run_test(spec, quiet=True),
                                                      Quiet(args.quiet_wait, args.busy_threshold),
                                                      args.busy_threshold)]
        print(f"wall time {time.perf_counter() - start:.1f} s")
        summaries = print_summary(rounds, args.busy_threshold)  # last line of the rounds: "ratio <number>"
    split = None
    if not args.no_cpu_split:
        split = cpu_split(model_dir, e, float(args.duration), WORK / "cpu_split")
        print_split(split)
    if args.json and not args.split_only:
        from bench._record import Value, chosen_summary, figure, write_json

        c = chosen_summary(summaries)
        write_json(args.json, {"summary": summaries, "cpu_split_us_per_sample": split}, [figure(
            "harness_ceiling", c["median_of_ratios"], Value("ours", c["ours_median"], "samples/s"),
            Value("benchmark_app", c["reference_median"], "FPS"), name="null model Offline", goal=">= 0.70",
            ratio_is="ours / benchmark_app throughput on a null model, median of per-round ratios",
            note="null model: the feed is what is measured")])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
