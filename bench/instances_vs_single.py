"""Several instances vs one: the same model, the same cores, LoadGen Offline samples/s, interleaved rounds.

Reference: ONE instance over every core (``--cores`` single-thread streams, 2 requests per
stream, batch 16: the ``host`` profile's Offline engine). Ours: ``--instances`` K processes
(``sut.instances``), each with cores/K single-thread streams, 2 requests per stream, batch 16,
pinned to its own cores and fed from the one shared bank. Both are real LoadGen Offline
performance tests through the harness (``pipeline.flows.run_test``), each in its own process,
alternating. The model is INT8 ResNet-50 v1.5 with UNTRAINED seeded weights (speed only),
prepared by ``pipeline.flows.prepare_model`` (or ``--model-dir`` for one prepared already).
The last line printed is ``ratio <median over rounds of instances / single>`` (goal >= 0.95).

    bench/run.sh instances_vs_single [--rounds 3] [--duration 20] [--instances 2] [--model-dir DIR]
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import REPO, UNTRAINED, WORK, WORKSPACE, require_train_extra, run_main

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

from bench._record import Value, chosen_summary, figure, write_json
from bench._rounds import Quiet, Round, interleave, print_header, print_row, print_summary
from common.errors import HarnessError
from common.testspec import Mode, Overrides
from dataset.demo import build_demo_dataset
from harness.profile import load_profile
from hostinfo.probe import physical_cores
from modelprep.card import load_card
from pipeline.flows import TestSpec, demo_calibration, prepare_model, run_test
from records.results import RunResult


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50", help="registered architecture (default resnet50)")
    p.add_argument("--model-dir", type=Path, help="an already prepared model directory (skips prepare)")
    p.add_argument("--instances", type=int, default=2, help="instances of the tested setting (default 2)")
    p.add_argument("--cores", type=int, default=physical_cores(), help="cores used by both (default: all)")
    p.add_argument("--batch", type=int, default=16, help="batch size of both (default 16)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--duration", type=int, default=20, help="seconds per run (default 20)")
    p.add_argument("--quiet-wait", type=float, default=20, help="wait up to S s for an idle machine (0: no)")
    p.add_argument("--busy-threshold", type=float, default=0.15,
                   help="other load (cores) that marks a round busy, out of the 'clean' medians")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.instances < 2 or args.cores % args.instances:
        p.error("--rounds, --duration >= 1; --instances >= 2 dividing --cores")
    return args


def write_profile(name: str, cores: int, instances: int, batch: int) -> str:
    """A profile YAML under work/bench/profiles: ``instances`` x (cores/instances single-thread streams)."""
    per = cores // instances
    engine = {"instances": instances, "num_streams": per, "num_threads": per, "infer_requests": 2 * per,
              "batch_size": batch, "pinning": True}
    path = WORK / "profiles" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by bench/instances_vs_single.py\n"
                    + yaml.safe_dump({"name": name, "cores": cores, "engine": engine}, sort_keys=False))
    load_profile(str(path))  # validated (and fits this machine) before anything runs
    return str(path)


def benchmark(args: argparse.Namespace) -> int:
    """Prepare once, run the interleaved rounds, print the table, medians and ratio."""
    start = time.perf_counter()
    print(f"NOTE: {args.model} with {UNTRAINED}; demo images stand in for ImageNet.", flush=True)
    if args.model_dir is not None:
        model_dir = args.model_dir.resolve()
        build_demo_dataset(WORKSPACE.demo_data)
    else:
        require_train_extra(__file__)
        model_dir = prepare_model(args.model, "int8", WORKSPACE, calibration=demo_calibration(WORKSPACE))
    single = write_profile(f"bench-single-{args.cores}c", args.cores, 1, args.batch)
    multi = write_profile(f"bench-instances{args.instances}-{args.cores}c", args.cores, args.instances, args.batch)
    print(f"model   : {model_dir} ({load_card(model_dir).label})\n"
          f"single  : 1 instance x {args.cores} streams x 1 thread ({single})\n"
          f"ours    : {args.instances} instances x {args.cores // args.instances} streams x 1 thread ({multi})\n"
          f"setup   : {time.perf_counter() - start:.1f} s; {args.rounds} rounds x 2 runs x ~{args.duration} s\n",
          flush=True)
    logging.getLogger().setLevel(logging.WARNING)
    overrides = Overrides(min_duration_ms=args.duration * 1000, min_query_count=1, target_qps=0)

    def spec(system: str) -> TestSpec:
        return TestSpec(Mode.PERFORMANCE, model_dir, WORKSPACE.demo_data / "val", system, WORKSPACE,
                        REPO / "user.conf", overrides=overrides)

    rounds: list[Round] = []
    runs: list[tuple[RunResult, RunResult]] = []
    print_header("1 instance sps", f"{args.instances} instances sps")
    for i, ref, ours in interleave(args.rounds, lambda i: run_test(spec(single), quiet=True),
                                   lambda i: run_test(spec(multi), quiet=True),
                                   Quiet(args.quiet_wait, args.busy_threshold)):
        for run in (ref.value, ours.value):
            if run.samples_per_second is None:
                raise HarnessError(f"{run.run_dir}: the harness recorded no samples/s")
        rounds.append(Round(i, ref.value.samples_per_second, ours.value.samples_per_second, ref.foreign_cores,
                            ours.foreign_cores, ours.value.validity or "?"))
        runs.append((ref.value, ours.value))
        print_row(rounds[-1], args.busy_threshold)
    print(f"\nwall time {time.perf_counter() - start:.1f} s; {args.model}: {UNTRAINED}; note = LoadGen validity "
          "of the instances run (INVALID only means the warm-up target_qps was off)")
    summaries = print_summary(rounds, args.busy_threshold)  # last line: "ratio <number>"
    if args.json:
        record = {"note": f"{args.model}: {UNTRAINED}", "model_dir": str(model_dir), "duration_s": args.duration,
                  "summary": summaries, "rounds": [{**r.__dict__, "ratio": round(r.ratio, 4), "single_run": a.run_dir,
                                                    "instances_run": b.run_dir} for r, (a, b) in zip(rounds, runs)]}
        s = chosen_summary(summaries)
        write_json(args.json, record, [figure(
            "instances_vs_single", s["median_of_ratios"],
            Value(f"{args.instances} instances", s["ours_median"], "samples/s"),
            Value("1 instance", s["reference_median"], "samples/s"), name=f"{args.model} int8 Offline",
            ratio_is=f"{args.instances} instances / one instance over the same cores, median of per-round ratios",
            goal=">= 0.95", note="untrained weights: speed only")])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
