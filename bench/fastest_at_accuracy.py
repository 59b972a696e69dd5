"""The fastest zoo model on this host whose expected INT8 top-1 reaches ``--min-top1``, vs INT8 ResNet-50.

Candidates, drawn from the whole zoo table (``models/zoo/zoo.csv``): the entries whose
published FP32 top-1 minus their INT8 drop (``models/zoo/int8_drop.csv``) reaches the
threshold, the ``--candidates`` cheapest by a MAC estimate (GMACs, up to x3 for depthwise
nets), one per architecture and input size; and the same number among the ImageNet-1k-only
entries. They and the built-in ResNet-50 (the MLPerf reference architecture) are exported with
UNTRAINED weights (speed only), quantized by NNCF on a few demo images, compiled with the
system profile's Offline engine settings, and measured as a pool in ``--rounds`` interleaved
rounds (median); nothing is read from the cache. A candidate the pinned timm cannot export is
reported and skipped. The run prints the fastest qualifier (any training data, flagged) and the
fastest ImageNet-1k-only one; the last line is ``ratio <the fastest qualifier's INT8 samples/s /
INT8 ResNet-50's>``.

    bench/run.sh fastest_at_accuracy --min-top1 75.7     # goals >= 10.0 (any data), >= 5.5 (ImageNet-1k only)
    bench/run.sh fastest_at_accuracy --min-top1 78.4     # goal >= 4.0
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


GOALS = {(75.7, False): ">= 10.0", (75.7, True): ">= 5.5", (78.4, False): ">= 4.0"}


def _short_list(args: argparse.Namespace, entries: list, drops) -> list:
    """``--only``'s entries, or the cheapest qualifiers over all rows and over ImageNet-1k-only rows."""
    from search.survey import select
    from search.zoo import DEPTHWISE_COST, DEPTHWISE_SLOWDOWN, candidates

    if args.only:
        return list(select(entries, args.only))
    chosen = {e.speed_key: e for e in candidates(entries, drops, args.min_top1, args.candidates)}
    for e in candidates([e for e in entries if not e.extra_data], drops, args.min_top1, args.candidates):
        chosen.setdefault(e.speed_key, e)
    print(f"candidates: the {args.candidates} qualifying entries with the lowest GMACs x min({DEPTHWISE_COST:g}, "
          f"1 + {DEPTHWISE_SLOWDOWN:g} x depthwise MAC fraction), one per architecture and input size, over all "
          f"rows and over the ImageNet-1k-only rows: {len(chosen)} to measure")
    return list(chosen.values())


def _answer(best, base, min_top1: float, scope: str) -> str:
    return (f"fastest at >= {min_top1} % (expected INT8 top-1, {scope}) on this host: {best.entry.label} "
            f"({best.entry.family}, {best.entry.gmacs:.3f} GMACs), published FP32 {best.entry.top1:.2f} %, expected "
            f"INT8 {best.expected_int8:.2f} %, INT8 {best.samples_per_s:.1f} samples/s = "
            f"{best.samples_per_s / base.samples_per_s:.2f} x INT8 ResNet-50 {base.samples_per_s:.1f} samples/s "
            "(same run, untrained weights: speed only)")


def benchmark(args: argparse.Namespace) -> int:
    """Measure ResNet-50 and the candidates together; print the table, both answers and the ratio."""
    require_train_extra(__file__)
    from search.measure import UNTRAINED_NOTE, measure_each
    from search.survey import BASELINE
    from search.zoo import fastest, load_drops, load_zoo, Measured

    entries, drops = load_zoo(), load_drops()
    chosen = _short_list(args, entries, drops)
    if not chosen:
        raise ConfigError(f"--min-top1 {args.min_top1}: no zoo entry's expected INT8 top-1 reaches it")
    print(f"{UNTRAINED_NOTE}. Busy machine? load average {os.getloadavg()[0]:.2f} at start.", flush=True)
    start = time.monotonic()
    records, failed = measure_each([e.model_name for e in chosen], args.system, args.rounds, args.seconds, WORK,
                                   False, BASELINE)
    for name, why in failed.items():
        print(f"skipped {name}: could not be exported or measured here: {why}")
    base = records[BASELINE]
    measured = [Measured(e, drops.expected_int8(e), records[e.model_name].samples_per_s)
                for e in chosen if e.model_name not in failed]
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
    best_1k = fastest([m for m in measured if not m.entry.extra_data], args.min_top1)
    print(f"\nwall time {time.monotonic() - start:.0f} s; load average {os.getloadavg()[0]:.2f} at the end")
    if best_1k is not None:
        print(_answer(best_1k, base, args.min_top1, "ImageNet-1k only"))
    if best is None:
        print(f"no measured model qualifies at >= {args.min_top1} % expected INT8 top-1")
        print("ratio 0")
        return 1
    print(_answer(best, base, args.min_top1, "any training data"))
    ratio = best.samples_per_s / base.samples_per_s
    print(f"ratio {ratio:.3f}")
    if args.json:
        _write_record(args, base, [(best, False), *([(best_1k, True)] if best_1k is not None else [])])
    return 0


def _write_record(args: argparse.Namespace, base, answers: list) -> None:
    """One figure per answer (any data; ImageNet-1k only) for docs/performance.md."""
    from bench._record import Value, figure, write_json

    figures = [figure(
        "fastest_at_accuracy", m.samples_per_s / base.samples_per_s, Value(m.entry.label, m.samples_per_s, "samples/s"),
        Value("resnet50 (built-in)", base.samples_per_s, "samples/s"),
        name=f"--min-top1 {args.min_top1:g}" + (", ImageNet-1k only" if in1k else ""),
        goal=GOALS.get((args.min_top1, in1k), ""),
        ratio_is="fastest qualifying zoo model / ResNet-50, INT8 throughput",
        note="untrained weights: speed only; top-1 is the published figure minus the INT8 drop table")
        for m, in1k in answers]
    write_json(args.json, {"answer": answers[0][0].entry.label, "expected_int8_top1": answers[0][0].expected_int8},
               figures)


if __name__ == "__main__":
    sys.exit(run_main(parse_args, benchmark, None))
