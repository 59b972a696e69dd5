"""``mlperf-cpu tune``: measure engine settings per scenario; write the best profile and the user.conf target."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError
from common.names import check_name

from cli._options import DEFAULT_WORK, add_host_tuning


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``tune`` to ``sub`` (from ``add_subparsers``)."""
    t = sub.add_parser("tune", help="measure engine settings per scenario; write the best profile and the "
                                    "user.conf target (Offline/Server target_qps, SingleStream/MultiStream "
                                    "target_latency)")
    t.add_argument("--model", type=Path, required=True, help="prepared model directory")
    t.add_argument("--scenario", default="Offline", help="Offline (default), SingleStream, MultiStream or Server")
    t.add_argument("--dataset", type=Path, help="Server only: the image directory its short LoadGen runs read")
    t.add_argument("--work", type=Path, default=DEFAULT_WORK, help="Server only: where the image cache is")
    t.add_argument("--system", default="host", help="base profile (its cores and system description)")
    t.add_argument("--batches", default="8,16,32", help="comma-separated batch sizes")
    t.add_argument("--requests-per-stream", default="1,2", help="comma-separated infer requests per stream")
    t.add_argument("--seconds", type=float, default=3.0,
                   help="measuring time per point (Server: per LoadGen run, at least 5)")
    t.add_argument("--confirm-seconds", type=float, default=600.0,
                   help="Server only: the confirmation runs' length (default 600, the official duration; 0: none, "
                        "the highest VALID probe counts); after a failed one the search steps down until one is VALID")
    t.add_argument("--confirmations", type=int, default=4,
                   help="Server only: confirmation runs at most, the last at the floor (default 4)")
    t.add_argument("--budget-seconds", type=float,
                   help="Server only: the search's time budget (default: its plan's worst case, printed at the start)")
    t.add_argument("--name", help="profile name to write (default <system>-tuned)")
    t.add_argument("--profile-out", type=Path, help="profile YAML to write (default configs/<name>.yaml)")
    t.add_argument("--margin", type=float,
                   help="Offline: target_qps = best x margin (default 1.05: an official run lasts ~693 s at the "
                        "measured rate; raise it on a machine shared with other jobs: a run over 1.1 x margin times "
                        "as fast as measured ends before 600 s and is INVALID); Server: target_qps = the rate "
                        "confirmed VALID x margin (default 0.95)")
    t.add_argument("--user-conf", type=Path, default=Path("user.conf"))
    t.add_argument("--replace", action="store_true",
                   help="write over a profile shipped with the harness (configs/*.yaml other than *-tuned.yaml); "
                        "every profile and user.conf it changes keeps its previous version as <file>.bak-<utc>")
    add_host_tuning(t)
    t.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Measure, write the tuned profile and user.conf target, print the measured points."""
    from common.testspec import Scenario
    from harness.profile import load_profile
    from harness.tune import (TARGET_QPS_MARGIN, check_profile_destination, profile_destination, tune_and_record,
                              tune_latency_and_record)

    try:
        scenario = Scenario.parse(args.scenario)
    except ValueError as exc:
        raise ConfigError(f"--scenario: {exc}") from None
    if args.name is not None:
        check_name(args.name, "--name")  # the profile's name and its configs/<name>.yaml
    base = load_profile(args.system, host_tuning=args.host_tuning)
    # Refused before minutes of measuring: writing over a shipped profile needs --replace.
    check_profile_destination(profile_destination(base, args.name, args.profile_out), args.replace)
    common = dict(name=args.name, profile_out=args.profile_out)
    if scenario is Scenario.OFFLINE:
        batches = tuple(int(b) for b in args.batches.split(","))
        requests = tuple(int(r) for r in args.requests_per_stream.split(","))
        points, done = tune_and_record(args.model, base, args.user_conf, seconds=args.seconds, batches=batches,
                                       requests_per_stream=requests, margin=args.margin or TARGET_QPS_MARGIN,
                                       replace=args.replace, **common)
        _print_table(("streams", "threads", "requests", "batch", "samples/s"),
                     [(p.engine.num_streams, p.engine.num_threads, p.engine.infer_requests, p.engine.batch_size,
                       f"{p.samples_per_second:.1f}") for p in points])
    elif scenario is Scenario.SERVER:
        done = _tune_server(args, base, common)
    else:
        points, done = tune_latency_and_record(args.model, base, scenario, args.user_conf, seconds=args.seconds,
                                               replace=args.replace, **common)
        _print_table(("streams", "threads", "requests", "batch", "pinning", f"p{points[0].percentile:g} ms",
                      "median ms"),
                     [(p.engine.num_streams, p.engine.num_threads, p.engine.infer_requests, p.engine.batch_size,
                       p.engine.pinning, f"{p.latency_ms:.3f}", f"{p.median_ms:.3f}") for p in points])
    print(done.summary)
    return 0


def _tune_server(args: argparse.Namespace, base: "SystemProfile", common: dict) -> "TuneOutcome":  # noqa: F821
    import openvino as ov

    from harness.tune import measure
    from modelprep.card import load_card
    from pipeline.flows import Workspace
    from pipeline.server_search import SERVER_MARGIN, tune_server_and_record

    if args.dataset is None:
        raise ConfigError("tune --scenario Server needs --dataset (its short LoadGen runs read real samples)")
    if args.confirm_seconds < 0:
        raise ConfigError(f"--confirm-seconds: expected seconds >= 0 (0: no confirmation run), got {args.confirm_seconds:g}")
    if args.confirmations < 1 or (args.budget_seconds is not None and args.budget_seconds <= 0):
        raise ConfigError(f"--confirmations {args.confirmations} / --budget-seconds {args.budget_seconds}: expected "
                          ">= 1 confirmation and a budget > 0 s")
    card = load_card(args.model)
    ceiling = measure(ov.Core(), args.model, card, base.engine, min(args.seconds, 5.0))
    probes, done = tune_server_and_record(args.model, args.dataset, base, args.user_conf,
                                          Workspace(work=args.work), ceiling, seconds=max(args.seconds, 5.0),
                                          confirm_seconds=args.confirm_seconds, confirmations=args.confirmations,
                                          budget_seconds=args.budget_seconds, margin=args.margin or SERVER_MARGIN,
                                          **common)
    print(f"Offline ceiling {ceiling:.1f} samples/s; probes:")
    _print_table(("streams", "batch", "wait us", "target qps", "result", "completed qps", "p99 ms"),
                 [(p.engine.num_streams, p.engine.batch_size, p.engine.max_wait_us, f"{p.target_qps:.1f}",
                   "VALID" if p.valid else "INVALID", p.completed_qps, p.p99_ms) for p in probes])
    return done


def _print_table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    """A markdown table: the header, its rule, then one line per row."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
