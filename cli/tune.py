"""``mlperf-cpu tune``: measure engine settings per scenario; write the best profile and the user.conf target."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import ConfigError
from common.names import check_name

from cli._options import DEFAULT_WORK, add_host_tuning

if TYPE_CHECKING:
    from pipeline.tuning import TuneOptions


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
    from pipeline.testrun import Workspace
    from pipeline.tuning import TuneOptions, tune_scenario

    try:
        scenario = Scenario.parse(args.scenario)
    except ValueError as exc:
        raise ConfigError(f"--scenario: {exc}") from None
    if args.name is not None:
        check_name(args.name, "--name")  # the profile's name and its configs/<name>.yaml
    options = TuneOptions(seconds=args.seconds, margin=args.margin, name=args.name, profile_out=args.profile_out,
                          replace=args.replace, batches=_ints(args.batches, "--batches"),
                          requests_per_stream=_ints(args.requests_per_stream, "--requests-per-stream"),
                          dataset=args.dataset, workspace=Workspace(work=args.work),
                          confirm_seconds=args.confirm_seconds, confirmations=args.confirmations,
                          budget_seconds=args.budget_seconds)
    if scenario is Scenario.SERVER:
        _check_server_options(options)
    tuned = tune_scenario(scenario, args.model, load_profile(args.system, host_tuning=args.host_tuning),
                          args.user_conf, options)
    if tuned.preface:
        print(tuned.preface)
    _print_table(tuned.header, tuned.rows)
    print(tuned.outcome.summary)
    return 0


def _ints(text: str, flag: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers, or a ``ConfigError`` naming the flag."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated integers >= 1")
    return values


def _check_server_options(o: TuneOptions) -> None:
    """The Server search's numbers, refused before any measuring."""
    if o.confirm_seconds < 0:
        raise ConfigError(f"--confirm-seconds: expected seconds >= 0 (0: no confirmation run), "
                          f"got {o.confirm_seconds:g}")
    if o.confirmations < 1 or (o.budget_seconds is not None and o.budget_seconds <= 0):
        raise ConfigError(f"--confirmations {o.confirmations} / --budget-seconds {o.budget_seconds}: expected "
                          ">= 1 confirmation and a budget > 0 s")


def _print_table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    """A markdown table: the header, its rule, then one line per row."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
