"""Harness vs benchmark_app on the latency scenarios: SingleStream p90 and MultiStream p99.

For each model (default resnet50 and decinet_s: registered architectures exported with
UNTRAINED seeded weights, prepared INT8 by ``pipeline.flows.prepare_model`` on the demo
calibration list; only speed is meaningful) and each interleaved round, one process at a
time, each after a quiet wait:

SingleStream (the profile's ``engine_for("SingleStream")``; host: 1 stream x all cores,
1 request, batch 1)
    benchmark_app ``-b 1 -nireq 1 -latency_percentile 90`` (async with one request: one
    inference after the other, like LoadGen's SingleStream) vs our LoadGen SingleStream
    performance run (``run_test(..., scenario=SingleStream)``): its 90th-percentile latency
    ``RunResult.latency_ms("90.00")``; the early-stopping estimate (``RunResult.metric``,
    what a submission reports) is printed beside it. Ratio = ours p90 / benchmark_app p90.

MultiStream (the profile's ``engine_for("MultiStream")``; host: 1 stream x all cores,
1 request, batch 8; queries of 8 samples)
    Ours: the 99th percentile of LoadGen's per-query latency (``latency_ms("99.00")``; the
    early-stopping estimate beside it). benchmark_app: the faster (lower p99) of
      (a) ``-b 8 -nireq 1 -latency_percentile 99`` with the profile's MultiStream streams and
          threads (only when its batch is 8): one inference IS one 8-sample query, so its
          per-inference p99 is the query p99;
      (b) ``-b 1 -nireq 8 -latency_percentile 99`` with the profile's MultiStream streams and
          threads: 8 batch-1 requests in flight, back to back. The figure used is
          benchmark_app's per-REQUEST p99 as is. Why that is the fair query latency: in the
          steady state every request, from its start to its completion, shares the streams
          with exactly 7 others (nireq 8 = samples per query), so it spans the same work as
          an 8-sample query whose samples are issued together and which completes when its
          slowest sample does (one stream: 8 service times in series; S streams: 8/S). The
          per-request latency is NOT the time of one batch-1 inference alone (that would
          understate a query 8x), and a "max of 8 independent request latencies" would
          double-count the queueing. The throughput-derived mean query time (8 / FPS) is
          printed as a cross-check.
    Ratio = ours p99 / min(a, b).

Each figure's line ends ``ratio <median over rounds of the per-round ratios>`` (over the
clean rounds when some were busy, as in ``bench/_rounds.py``); target <= 1.05.

    bench/run.sh latency_vs_benchmark_app [--model resnet50,decinet_s] [--rounds 3] [--duration 20]
        [--system host|NAME|path.yaml] [--quiet-wait S] [--busy-threshold C] [--json OUT]

LoadGen runs use non-official overrides: ``min_duration_ms = duration``, ``min_query_count 1``
(the round's query counts take far longer than a benchmark round) and ``target_qps 0`` (the
expected latency from a warm-up), so a run may be INVALID (too few queries for early
stopping); its latency percentiles are still measured over the whole run.
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
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

from bench._bapp import BappResult, run_benchmark_app  # noqa: E402
from bench._record import Value, figure, host_tuning_label, write_json  # noqa: E402
from bench._rounds import Quiet, Round, summary, timed  # noqa: E402
from common.errors import HarnessError  # noqa: E402
from common.testspec import Mode, Overrides, Scenario  # noqa: E402
from harness.profile import load_profile  # noqa: E402
from harness.tune_latency import MULTI_STREAM_SAMPLES  # noqa: E402
from modelprep.card import load_card  # noqa: E402
from pipeline.flows import TestSpec, demo_calibration, prepare_model, run_test  # noqa: E402
from records.results import RunResult  # noqa: E402
from sut.config import EngineConfig  # noqa: E402



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50,decinet_s",
                   help="comma-separated registered architectures (default resnet50,decinet_s)")
    p.add_argument("--calib-subset", type=int, help="calibration images (default: the whole demo list)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--duration", type=int, default=20, help="seconds per run, each tool (default 20)")
    p.add_argument("--system", default="host", help="profile name or .yaml (default host)")
    p.add_argument("--quiet-wait", type=float, default=20, help="wait up to S s for an idle machine (0: no)")
    p.add_argument("--busy-threshold", type=float, default=0.15,
                   help="other load (cores) that marks a round busy, out of the 'clean' medians")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--host-tuning", action="store_true",
                   help="pass --host-tuning to our runs (the host profile sets host controls for Server only, so "
                        "SingleStream and MultiStream are unchanged unless a profile of your own sets them)")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.model.split(",") if m.strip()]
    if not args.models:
        p.error("--model: name at least one architecture")
    if args.rounds < 1 or args.duration < 1:
        p.error("--rounds and --duration must be >= 1")
    return args


@dataclass
class Figure:
    """One compared figure (a model's SingleStream p90 or MultiStream p99) over the rounds."""

    model: str
    scenario: Scenario
    percentile: str  # LoadGen's spelling: "90.00" / "99.00"
    engine: EngineConfig
    spec: TestSpec
    reference: Callable[[int], dict[str, Any]]  # round -> {"ms": reference latency, ...}
    rounds: list[Round] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``resnet50 SingleStream p90``."""
        return f"{self.model} {self.scenario.value} p{int(float(self.percentile))}"


def engine_text(e: EngineConfig) -> str:
    """``1 stream x 2 threads, 1 request, batch 1``."""
    return (f"{e.num_streams} stream{'s' * (e.num_streams > 1)} x {e.num_threads} threads, "
            f"{e.infer_requests} request{'s' * (e.infer_requests > 1)}, batch {e.batch_size}")


def bapp_line(tag: str, r: BappResult) -> dict[str, Any]:
    """The figures of one benchmark_app run worth keeping."""
    return {"tag": tag, "p_ms": r.latency.percentile_ms, "percentile": r.latency.percentile,
            "avg_ms": r.latency.avg_ms, "fps": r.throughput_fps, "command": shlex.join(r.command)}


def figures_for(model: str, args: argparse.Namespace) -> list[Figure]:
    """Prepare ``model`` and describe its two figures (nothing is measured yet)."""
    start = time.perf_counter()
    print(f"\n=== {model}: {UNTRAINED}; demo images stand in for ImageNet.", flush=True)
    calibration = demo_calibration(WORKSPACE, args.calib_subset)
    model_dir = prepare_model(model, "int8", WORKSPACE, calibration=calibration)
    card = load_card(model_dir)
    profile = load_profile(args.system, host_tuning=args.host_tuning)
    ss, ms = profile.engine_for("SingleStream"), profile.engine_for("MultiStream")
    xml, precision = model_dir / "model.xml", card.inference_precision
    cache = WORKSPACE.cache / "ov_cache"
    out = WORK / "bapp" / "latency"
    print(f"model   : {model_dir.relative_to(REPO)} ({card.label}, inference precision {precision}); "
          f"setup {time.perf_counter() - start:.1f} s\n"
          f"SingleStream engine (profile {profile.name}): {engine_text(ss)}\n"
          f"MultiStream engine  (profile {profile.name}): {engine_text(ms)}", flush=True)

    def spec(scenario: Scenario) -> TestSpec:
        return TestSpec(Mode.PERFORMANCE, model_dir, WORKSPACE.demo_data / "val", args.system, WORKSPACE,
                        REPO / "user.conf", scenario=scenario, host_tuning=args.host_tuning,
                        overrides=Overrides(min_duration_ms=args.duration * 1000, min_query_count=1, target_qps=0))

    def single_stream(i: int) -> dict[str, Any]:
        r = run_benchmark_app(xml, ss, precision, args.duration, latency_percentile=90, cache_dir=cache,
                              out_dir=out / f"{model}-SingleStream-r{i}")
        return {"ms": r.latency.percentile_ms, "how": "b1 nireq1", "runs": [bapp_line("b1-nireq1", r)]}

    def multi_stream(i: int) -> dict[str, Any]:
        runs: list[tuple[str, float, BappResult]] = []
        if ms.batch_size == MULTI_STREAM_SAMPLES:  # (a): one inference is one query
            r = run_benchmark_app(xml, ms, precision, args.duration, latency_percentile=99, cache_dir=cache,
                                  out_dir=out / f"{model}-MultiStream-a-r{i}")
            runs.append((f"b{MULTI_STREAM_SAMPLES} nireq1", r.latency.percentile_ms, r))
        # (b): 8 batch-1 requests in flight on the same streams/threads; per-request p99 = query p99
        eb = dataclasses.replace(ms, batch_size=1, infer_requests=max(MULTI_STREAM_SAMPLES, ms.num_streams))
        r = run_benchmark_app(xml, eb, precision, args.duration, latency_percentile=99, cache_dir=cache,
                              out_dir=out / f"{model}-MultiStream-b-r{i}")
        runs.append((f"b1 nireq{eb.infer_requests}", r.latency.percentile_ms, r))
        how, best, _ = min(runs, key=lambda t: t[1])
        lines = [bapp_line(tag, res) for tag, _, res in runs]
        for line in lines:
            line["mean_query_ms_from_fps"] = MULTI_STREAM_SAMPLES * 1000 / line["fps"]
        return {"ms": best, "how": how, "runs": lines}

    return [Figure(model, Scenario.SINGLE_STREAM, "90.00", ss, spec(Scenario.SINGLE_STREAM), single_stream),
            Figure(model, Scenario.MULTI_STREAM, "99.00", ms, spec(Scenario.MULTI_STREAM), multi_stream)]


def run_round(fig: Figure, i: int, quiet: Quiet, threshold: float) -> None:
    """benchmark_app, then our LoadGen run; one row."""
    quiet.wait()
    ref = timed(lambda: fig.reference(i))
    quiet.wait()
    ours = timed(lambda: run_test(fig.spec, quiet=True))
    run: RunResult = ours.value
    p = run.latency_ms(fig.percentile)
    if p is None:
        raise HarnessError(f"{run.run_dir}: LoadGen recorded no {fig.percentile} percentile latency")
    early, _unit = run.metric
    early = early or None  # LoadGen writes 0 when early stopping was not met
    fig.rounds.append(Round(i, ref.value["ms"], p, ref.foreign_cores, ours.foreign_cores, run.validity or "?"))
    fig.details.append({"round": i, "benchmark_app": ref.value, "ours_ms": p, "ours_early_stopping_ms": early,
                        "ours_validity": run.validity, "ours_invalid_because": run.invalid_because(),
                        "ours_queries": run.loadgen.get("result_query_count"), "ours_run_dir": run.run_dir,
                        "ours_command": shlex.join(["mlperf-cpu", *fig.spec.argv()]),
                        "ours_compiled": {k: run.compiled_properties.get(k) for k in
                                          ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING",
                                           "INFERENCE_PRECISION_HINT")},
                        "foreign_cores": [round(ref.foreign_cores, 2), round(ours.foreign_cores, 2)]})
    r = fig.rounds[-1]
    extra = "; ".join(f"{b['tag']} p{b['percentile']} {b['p_ms']:.2f} ms"
                      + (f" (8/FPS {b['mean_query_ms_from_fps']:.2f} ms)" if "mean_query_ms_from_fps" in b else "")
                      for b in ref.value["runs"])
    flag = "" if r.clean(threshold) else "  <- busy, not in 'clean'"
    es = f"{early:.2f} ms" if early is not None else "n/a (not met)"
    print(f"  round {i} {fig.label}: benchmark_app {r.reference:.2f} ms [{ref.value['how']}], ours {r.ours:.2f} ms "
          f"(early-stopping {es}, {run.validity}, {run.loadgen.get('result_query_count')} queries), ratio "
          f"{r.ratio:.3f}; other load {r.reference_foreign:.2f} / {r.ours_foreign:.2f} cores{flag}\n"
          f"      benchmark_app: {extra}", flush=True)
    if run.invalid_because():
        print(f"      ours INVALID because: {'; '.join(run.invalid_because())}", flush=True)


def figure_line(fig: Figure, threshold: float) -> tuple[str, dict[str, Any]]:
    """``<label> ...: ours X ms vs benchmark_app Y ms ... ratio <median of per-round ratios>``."""
    clean = [r for r in fig.rounds if r.clean(threshold)]
    chosen = clean or fig.rounds
    s = summary(chosen)
    early = [d["ours_early_stopping_ms"] for d in fig.details if d["ours_early_stopping_ms"] is not None]
    es = f"; ours early-stopping estimate {sorted(early)[len(early) // 2]:.2f} ms" if early else ""
    which = f"{len(clean)} clean" if clean else "all rounds busy"
    line = (f"{fig.label} [UNTRAINED, speed only]: ours {s['ours_median']:.2f} ms vs benchmark_app "
            f"{s['reference_median']:.2f} ms (medians of {s['rounds']} rounds, {which} of {len(fig.rounds)}"
            f"{es}; range {s['min_ratio']:.3f}..{s['max_ratio']:.3f}) ratio {s['median_of_ratios']:.4f}")
    return line, {"all": summary(fig.rounds), "chosen": s, "clean_rounds": len(clean)}


def benchmark(args: argparse.Namespace) -> int:
    """Prepare each model, run the interleaved rounds, print one ``ratio`` line per figure."""
    start = time.perf_counter()
    figures = []
    for model in args.models:
        figures += figures_for(model, args)
    logging.getLogger().setLevel(logging.WARNING)  # the rounds print their own lines
    quiet = Quiet(args.quiet_wait, args.busy_threshold)
    per_round = 4 + (figures[1].engine.batch_size == MULTI_STREAM_SAMPLES)  # runs per model per round
    print(f"\n{args.rounds} rounds x {len(args.models)} models x ~{per_round} runs x ~{args.duration} s "
          f"(target: every ratio <= 1.05)", flush=True)
    for i in range(1, args.rounds + 1):
        for fig in figures:
            run_round(fig, i, quiet, args.busy_threshold)
    print(f"\nwall time {time.perf_counter() - start:.1f} s; every model has {UNTRAINED}")
    print("ratio = ours / benchmark_app latency (lower is better for us; median of per-round ratios)")
    lines, record, perf = [], [], []
    for fig in figures:
        line, s = figure_line(fig, args.busy_threshold)
        lines.append(line)
        c = s["chosen"]
        if args.json:
            perf.append(figure("latency_vs_benchmark_app", c["median_of_ratios"],
                               Value("ours", c["ours_median"], "ms"),
                               Value("benchmark_app", c["reference_median"], "ms"),
                               name=fig.label + host_tuning_label(args.host_tuning),
                               goal="<= 1.05", note="untrained weights: speed only",
                               ratio_is="ours / benchmark_app latency, median of per-round ratios (lower is better)"))
        record.append({"figure": fig.label, "engine": dataclasses.asdict(fig.engine), "summary": s,
                       "rounds": [{**dataclasses.asdict(r), "ratio": round(r.ratio, 4), **d}
                                  for r, d in zip(fig.rounds, fig.details)]})
    for line in lines:
        print(line, flush=True)
    if args.json:
        write_json(args.json, {"note": UNTRAINED, "system": args.system, "duration_s": args.duration,
                               "figures": record}, perf)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
