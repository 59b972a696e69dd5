"""The fastest zoo model on this host whose expected INT8 top-1 reaches ``--min-top1``, vs INT8 ResNet-50.

Candidates: the zoo entries (``models/zoo/zoo.csv``) whose published FP32 top-1 minus their
family's INT8 drop (``models/zoo/int8_drop.csv``) reaches the threshold, the ``--candidates``
cheapest by a MAC estimate (GMACs, x3 for depthwise nets, which run at about a third of the
dense MAC rate here), one per architecture. They and the built-in ResNet-50 (the MLPerf
reference architecture) are exported with UNTRAINED weights (speed only), quantized by NNCF
on a few demo images, compiled with the system profile's Offline engine settings, and
measured as a pool in ``--rounds`` interleaved rounds (median); nothing is read from the
cache. The last line is ``ratio <fastest qualifier's INT8 samples/s / INT8 ResNet-50's>``.

    bench/run.sh fastest_at_accuracy --min-top1 75.7     # goal >= 5.0
    bench/run.sh fastest_at_accuracy --min-top1 78.4     # goal >= 3.0
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import WORK, require_train_extra, run_main

import argparse
import os
import sys
import time
from pathlib import Path

from common.errors import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--min-top1", type=float, required=True, help="threshold on expected INT8 top-1 %%")
    p.add_argument("--candidates", type=int, default=6, help="qualifying models measured (default 6)")
    p.add_argument("--only", help="comma-separated timm names to measure instead of the chosen candidates")
    p.add_argument("--system", default="host")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--seconds", type=float, default=5.0, help="pool run per model per round (default 5)")
    p.add_argument("--json", type=Path, help="also write the figure's record (docs/performance.md) to this JSON file")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.candidates < 1:
        p.error("--rounds and --candidates >= 1, --seconds > 0")
    return args


def benchmark(args: argparse.Namespace) -> int:
    """Measure ResNet-50 and the candidates together; print the table, the answer and the ratio."""
    require_train_extra(__file__)
    from search.measure import UNTRAINED_NOTE, measure_many
    from search.survey import BASELINE, select
    from search.zoo import DEPTHWISE_COST, DEPTHWISE_SLOWDOWN, candidates, fastest, load_drops, load_zoo, Measured

    entries, drops = load_zoo(), load_drops()
    if args.only:
        chosen = [e for e in select(entries, args.only)]
    else:
        chosen = candidates(entries, drops, args.min_top1, args.candidates)
        print(f"candidates: the {args.candidates} qualifying entries with the lowest GMACs x min("
              f"{DEPTHWISE_COST:g}, 1 + {DEPTHWISE_SLOWDOWN:g} x depthwise MAC fraction), one per architecture "
              "and input size")
    if not chosen:
        raise ConfigError(f"--min-top1 {args.min_top1}: no zoo entry's expected INT8 top-1 reaches it")
    print(f"{UNTRAINED_NOTE}. Busy machine? load average {os.getloadavg()[0]:.2f} at start.", flush=True)
    start = time.monotonic()
    names = [BASELINE, *[e.model_name for e in chosen]]
    records = measure_many(names, args.system, args.rounds, args.seconds, WORK, use_cache=False, reference=BASELINE)
    base = records[BASELINE]
    measured = [Measured(e, drops.expected_int8(e), records[e.model_name].samples_per_s) for e in chosen]
    print(f"\n| model | published top-1 (FP32) | expected INT8 top-1 (drop, basis) | INT8 samples/s "
          f"(median of {args.rounds}; rounds) | vs INT8 ResNet-50 |")
    print("|---|---|---|---|---|")
    print(f"| resnet50 (built-in) | 76.46 (MLPerf) | | {base.samples_per_s:.1f} "
          f"({', '.join(f'{r:.1f}' for r in base.rounds)}) | 1.00x |")
    for m in sorted(measured, key=lambda m: -m.samples_per_s):
        drop = drops.for_entry(m.entry)
        rounds = records[m.entry.model_name].rounds
        print(f"| {m.entry.label} | {m.entry.top1:.2f} | {m.expected_int8:.2f} (-{drop.drop_pp:g}, {drop.basis}) "
              f"| {m.samples_per_s:.1f} ({', '.join(f'{r:.1f}' for r in rounds)}) "
              f"| {m.samples_per_s / base.samples_per_s:.2f}x |")
    best = fastest(measured, args.min_top1)
    print(f"\nwall time {time.monotonic() - start:.0f} s; load average {os.getloadavg()[0]:.2f} at the end")
    if best is None:
        print(f"no measured model qualifies at >= {args.min_top1} % expected INT8 top-1")
        print("ratio 0")
        return 1
    ratio = best.samples_per_s / base.samples_per_s
    print(f"fastest at >= {args.min_top1} % (expected INT8 top-1) on this host: {best.entry.label} "
          f"({best.entry.family}, {best.entry.gmacs:.3f} GMACs), published FP32 {best.entry.top1:.2f} %, expected "
          f"INT8 {best.expected_int8:.2f} %, INT8 {best.samples_per_s:.1f} samples/s vs INT8 ResNet-50 "
          f"{base.samples_per_s:.1f} samples/s (same run, untrained weights: speed only)")
    print(f"ratio {ratio:.3f}")
    if args.json:
        from bench._record import Value, figure, write_json

        goal = {75.7: ">= 5.0", 78.4: ">= 3.0"}.get(args.min_top1, "")
        write_json(args.json, {"answer": best.entry.label, "expected_int8_top1": best.expected_int8}, [figure(
            "fastest_at_accuracy", ratio, Value(best.entry.label, best.samples_per_s, "samples/s"),
            Value("resnet50 (built-in)", base.samples_per_s, "samples/s"), name=f"--min-top1 {args.min_top1:g}",
            goal=goal, ratio_is="fastest qualifying zoo model / ResNet-50, INT8 throughput",
            note="untrained weights: speed only; top-1 is the published figure minus the INT8 drop table")])
    return 0


if __name__ == "__main__":
    sys.exit(run_main(parse_args, benchmark, None))
