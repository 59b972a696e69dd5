"""Harness ceiling: our LoadGen Offline harness vs benchmark_app on a model that does (almost) nothing.

The model is built here: a "null" 224x224 classifier (u8 [N,3,224,224] -> Convert -> ReduceMean over
H,W -> MatMul 3x1000 -> TopK, i32 top-1), so inference costs a few microseconds per sample and
what is measured is the feed: how many samples/s the harness can move through LoadGen and the
pool, against benchmark_app's async loop over fixed input tensors, with the same engine settings.
Each round runs benchmark_app and then our Offline performance test (``pipeline.flows.run_test``),
one process at a time (``bench/_rounds.py``); the last line of the rounds is ``ratio <median of
per-round ours / benchmark_app>`` (goal >= 0.70).

Then, unless ``--no-cpu-split``, one in-process LoadGen Offline run through the real ``OfflineSUT``
(a bank of random rows instead of the image cache) splits the harness's CPU per sample:
``time.thread_time`` around each part on the thread that runs it, plus per-thread CPU from
``/proc/self/task/*/stat`` for the rest, and how many batches were fed as views of the bank or
copied.

    .venv/bin/python bench/harness_ceiling.py [--rounds 3] [--duration 10] [--system host]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: the project's packages and bench/
from bench._common import RandomBankQSL, run_main  # noqa: E402

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench._bapp import BappResult, run_benchmark_app  # noqa: E402
from bench._rounds import Quiet, offline_rounds, print_summary  # noqa: E402
from common.testspec import Mode, Overrides  # noqa: E402
from harness.profile import load_profile  # noqa: E402
from modelprep.card import MODEL_FILE, ModelCard  # noqa: E402
from pipeline.flows import TestSpec, Workspace, run_test  # noqa: E402
from sut.config import EngineConfig  # noqa: E402

WORK = REPO / "work" / "bench-ceiling"
WORKSPACE = Workspace(work=WORK, results=WORK / "results", demo_data=WORK / "demo")
SIZE, CLASSES = 224, 1000


def build_null_model(out_dir: Path) -> Path:
    """``out_dir/model.xml`` + ``card.json``: the null classifier (built with openvino.opset13)."""
    import openvino as ov
    import openvino.opset13 as ops

    if (out_dir / MODEL_FILE).is_file() and (out_dir / "card.json").is_file():
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    image = ops.parameter([-1, 3, SIZE, SIZE], ov.Type.u8, name="input")
    pooled = ops.reduce_mean(ops.convert(image, ov.Type.f32), ops.constant(np.array([2, 3], np.int64)), False)
    weights = np.random.default_rng(0).standard_normal((3, CLASSES)).astype(np.float32)
    logits = ops.matmul(pooled, ops.constant(weights), False, False)
    top = ops.topk(logits, ops.constant(np.int64(1)), 1, "max", "value", ov.Type.i32)
    top1 = ops.squeeze(top.output(1), ops.constant(np.array([1], np.int64)))
    ov.save_model(ov.Model([top1], [image], "null224"), str(out_dir / MODEL_FILE))
    # mean/std in 0..255 units: the card check refuses 0..1-looking values.
    ModelCard(name="null224", input_size=SIZE, num_classes=CLASSES, mean=(128.0,) * 3, std=(64.0,) * 3,
              trained=False, notes="bench/harness_ceiling.py: near-zero compute, measures the feed").save(out_dir)
    return out_dir


# ----------------------------------------------------------------------------- the CPU split
def _task_cpu_s() -> dict[int, float]:
    """CPU seconds (utime + stime) of every thread of this process, by native thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_split(model_dir: Path, engine: EngineConfig, seconds: float, bank_rows: int = 1024) -> dict[str, float]:
    """One in-process LoadGen Offline run (PerformanceOnly, ``seconds``) through the real OfflineSUT
    over a bank of ``bank_rows`` random rows; CPU microseconds per sample by part."""
    import mlperf_loadgen as lg
    import openvino as ov

    from modelprep.card import load_card
    from sut.engine import compile_model
    from sut.sut import OfflineSUT

    card = load_card(model_dir)
    compiled, _ = compile_model(ov.Core(), model_dir, card, engine)
    acc = {"issue": 0.0, "set_ids": 0.0, "complete": 0.0, "dispatcher": 0.0, "feed": 0.0, "samples": 0}
    lock = threading.Lock()
    threads: dict[str, int] = {}

    class TimedSUT(OfflineSUT):
        """OfflineSUT with thread_time around each part (same code, split for timing)."""

        def issue_query(self, ids: list[int], indices: list[int]) -> None:
            t = time.thread_time()
            super().issue_query(ids, indices)
            acc["issue"] += time.thread_time() - t

        def _dispatch_loop(self) -> None:
            threads["dispatcher"] = threading.get_native_id()
            t = time.thread_time()
            super()._dispatch_loop()
            acc["dispatcher"] += time.thread_time() - t

        def _respond(self, slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
            t0 = time.thread_time()
            responses = self._responses[slot]
            for response, sid in zip(responses, ids.tolist()):
                response.id = sid
            part = responses if len(ids) == len(responses) else responses[: len(ids)]
            t1 = time.thread_time()
            lg.QuerySamplesComplete(part)
            t2 = time.thread_time()
            with lock:
                acc["set_ids"] += t1 - t0
                acc["complete"] += t2 - t1
                acc["samples"] += len(ids)

    qsl = RandomBankQSL(bank_rows, card.preprocess.sample_shape)
    sut = TimedSUT(qsl, compiled, engine.infer_requests)
    feed = sut.pool._input_for  # the view-or-copy step, timed on the dispatcher thread

    def timed_feed(slot: int, rows: np.ndarray) -> Any:
        t = time.thread_time()
        try:
            return feed(slot, rows)
        finally:
            acc["feed"] += time.thread_time() - t

    sut.pool.warmup(2 * engine.infer_requests, 1.0)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(seconds * 1000)
    settings.min_query_count = 1
    settings.offline_expected_qps = max(1000.0, sut.pool.warmup(0, 2.0))
    log_settings = lg.LogSettings()
    out = WORK / "cpu_split"
    out.mkdir(parents=True, exist_ok=True)
    log_settings.log_output.outdir = str(out)
    log_settings.enable_trace = False
    sut_h = lg.ConstructFastSUT(sut.issue_query, sut.flush_queries)
    qsl_h = lg.ConstructQSL(bank_rows, bank_rows, qsl.load_samples, qsl.unload_samples)
    before, usage0 = _task_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
    wall0, main0 = time.perf_counter(), time.thread_time()
    sut.pool.fed.update(view=0, copy=0)
    sut.pool._input_for = timed_feed
    lg.StartTestWithLogSettings(sut_h, qsl_h, settings, log_settings, "")
    sut.close()
    main_s, wall = time.thread_time() - main0, time.perf_counter() - wall0
    after, usage1 = _task_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
    lg.DestroyQSL(qsl_h)
    lg.DestroyFastSUT(sut_h)
    samples = int(acc["samples"])
    total = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)

    us = 1e6 / samples
    dispatcher = after.get(threads["dispatcher"], 0.0) - before.get(threads["dispatcher"], 0.0)
    known = {threads["dispatcher"], threading.get_native_id()}
    other = sum(after[t] - before.get(t, 0.0) for t in after if t not in known)
    return {
        "samples": samples, "samples_per_s": samples / wall,
        "views": sut.pool.fed["view"], "copies": sut.pool.fed["copy"],
        "feed": acc["feed"] * us,
        "dispatch": (acc["dispatcher"] + acc["issue"] - acc["feed"] - acc["set_ids"] - acc["complete"]) * us,
        "responses": acc["set_ids"] * us,
        "loadgen_complete": acc["complete"] * us,
        "loadgen_main": (main_s - acc["issue"]) * us,
        "dispatcher_proc": dispatcher * us,
        "other_threads": other * us,
        "process_total": total * us,
    }


def print_split(s: dict[str, float]) -> None:
    """The CPU split, one line per part."""
    print(f"\nharness CPU per sample (one in-process LoadGen Offline run, "
          f"{s['samples']} samples, {s['samples_per_s']:.0f} samples/s):")
    rows = [
        (f"feed: bank views ({s['views']} batches) or copies ({s['copies']} batches)", s["feed"]),
        ("dispatch (issue_query + dispatcher: rows, order, submit, start_async, wait)", s["dispatch"]),
        ("responses (set .id on the request's response objects)", s["responses"]),
        ("LoadGen: QuerySamplesComplete", s["loadgen_complete"]),
        ("LoadGen: StartTest thread (query generation, bookkeeping)", s["loadgen_main"]),
        ("other threads (OpenVINO inference, LoadGen's own threads)", s["other_threads"]),
        ("whole process", s["process_total"]),
    ]
    for name, value in rows:
        print(f"  {name:<70} {value:7.2f} us")
    print("  (thread_time around each part on its own thread; 'other' from /proc/self/task/*/stat. The "
          "dispatcher thread also answers LoadGen, so feed, dispatch, responses and QuerySamplesComplete "
          "are all its time)")


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
    model_dir = build_null_model(WORK / "models" / "null224")
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
        split = cpu_split(model_dir, e, float(args.duration))
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
