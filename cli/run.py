"""``mlperf-cpu run``: one LoadGen test (one per process)."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError
from common.resources import default_user_conf

from cli._options import DEFAULT_WORK, add_host_tuning, watchdog_seconds


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` to ``sub`` (from ``add_subparsers``)."""
    r = sub.add_parser("run", help="one LoadGen test (one per process)")
    r.add_argument("--mode", choices=("accuracy", "performance", "TEST01", "TEST04"), required=True,
                   help="TEST01/TEST04: compliance runs, verified against this model's normal runs")
    r.add_argument("--scenario", default="Offline", help="LoadGen scenario (default Offline)")
    r.add_argument("--model", type=Path, required=True, help="prepared model directory (has card.json)")
    r.add_argument("--dataset", type=Path, required=True, help="image directory (ImageNet val layout)")
    r.add_argument("--val-map", type=Path, help="default: <dataset>/val_map.txt")
    r.add_argument("--system", required=True, help="system profile name (configs/*.yaml or 'host')")
    r.add_argument("--user-conf", type=Path, default=default_user_conf(),
                   help="default ./user.conf, else the shipped one")
    r.add_argument("--results", type=Path, default=Path("results"))
    r.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    add_host_tuning(r)
    r.add_argument("--watchdog-s", type=watchdog_seconds, metavar="SECONDS",
                   help="end the run INCOMPLETE (exit 3) when inference makes no progress for this long (default: "
                        "the profile's watchdog_s, else 20 x the warm-up's longest wait, at least 60 s)")
    r.add_argument("--replace", action="store_true",
                   help="run again where a complete run exists (it is replaced only once the new run has finished "
                        "and its logs are checked; a failed run leaves it untouched)")
    demo = r.add_argument_group("non-official settings (demo/tests; the run is marked not submittable)")
    demo.add_argument("--min-duration-ms", type=int)
    demo.add_argument("--min-query-count", type=int)
    demo.add_argument("--target-qps", type=float, help="0 = the warm-up throughput")
    demo.add_argument("--performance-sample-count", type=int)
    demo.add_argument("--rate-seconds", type=float,
                      help="with --target-qps 0: how long the warm-up measures the throughput (default 2; 0.1..60)")
    r.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run one LoadGen test and print its result."""
    from common.testspec import Mode, Overrides, Scenario
    from harness.profile import load_profile
    from harness.runner import RunRequest, execute
    from hostctl.lifetime import die_with_parent

    die_with_parent()  # started by a pipeline: never finish the test alone

    from dataset.coco import default_label_file

    val_map = args.val_map or default_label_file(args.dataset)  # val_map.txt, or a COCO annotation file
    if not args.dataset.is_dir():
        raise ConfigError(f"--dataset {args.dataset}: directory not found")
    try:
        scenario = Scenario.parse(args.scenario)
    except ValueError as exc:
        raise ConfigError(f"--scenario: {exc}") from None
    if args.rate_seconds is not None and (args.target_qps != 0 or not 0.1 <= args.rate_seconds <= 60):
        raise ConfigError(f"--rate-seconds {args.rate_seconds:g}: only with --target-qps 0, and 0.1..60 seconds")
    profile = load_profile(args.system, host_tuning=args.host_tuning)
    overrides = Overrides(args.min_duration_ms, args.min_query_count, args.target_qps,
                          args.performance_sample_count, args.rate_seconds)
    req = RunRequest(Mode.parse(args.mode), args.model, args.dataset, val_map, profile, args.user_conf,
                     args.results, args.cache_dir, overrides, command=args.command_line, scenario=scenario,
                     replace=args.replace, host_tuning=args.host_tuning, watchdog_s=args.watchdog_s)
    _print_result(execute(req))
    return 0


def _print_result(result: "RunResult") -> None:  # noqa: F821 - imported lazily
    print(f"run dir      : {result.run_dir}")
    print(f"mode         : {result.mode.value} ({result.scenario.value})")
    if result.accuracy is not None:
        a = result.accuracy
        if a.metric == "mAP":
            print(f"accuracy     : mAP={a.top1_percent:.3f}% ({a.total} images)")
        else:
            print(f"accuracy     : {a.top1_percent:.3f}% ({a.good}/{a.total})")
    else:
        value, unit = result.metric
        print(f"result       : {result.validity}" + (f" ({'; '.join(result.invalid_because())})"
                                                      if result.validity != "VALID" else ""))
        print(f"metric       : {value} {unit}")
        for percentile in ("90.00", "99.00"):
            if result.latency_ms(percentile) is not None:
                print(f"latency p{percentile[:2]}  : {result.latency_ms(percentile):.3f} ms")
    print(f"precision    : {result.card.precision} weights, inference precision hint {result.inference_precision}")
    print(f"submittable  : {result.submittable}"
          + ("" if result.submittable else f" ({'; '.join(result.not_submittable_because)})"))
