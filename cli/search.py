"""``mlperf-cpu search``: hardware-aware DeciNet-style search for the fastest INT8 candidate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.errors import ConfigError

from cli._options import DEFAULT_WORK


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``search`` to ``sub`` (from ``add_subparsers``)."""
    s = sub.add_parser("search", help="hardware-aware DeciNet-style search: fastest INT8 candidate on this host whose "
                                      "top-1 lower bound reaches --min-top1 (untrained; top-1 predicted)")
    s.add_argument("--min-top1", type=float, required=True,
                   help="target FP32 top-1 (%%), e.g. 75.7, for the candidate's lower bound: prediction clamped to the "
                        "published frontier, minus the 90th percentile of its leave-one-family-out error")
    s.add_argument("--system", default="host", help="system profile whose engine settings are measured")
    s.add_argument("--budget-minutes", type=float, default=40.0, help="wall-time budget (default 40)")
    s.add_argument("--out", type=Path, help="report directory (default <work>/search/run-<min-top1>)")
    s.add_argument("--space", type=Path, help="search-space YAML (default: the built-in space)")
    s.add_argument("--seconds", type=float, default=2.0,
                   help="measuring time per run; a measurement is the best of two runs (a shared machine only slows)")
    s.add_argument("--zoo-archs", type=int, default=5, help="zoo architectures measured as references (0: none)")
    s.add_argument("--reference", default="resnet50", help="registered model measured alongside ('none': skip)")
    s.add_argument("--finalists", type=int, default=4, help="candidates re-measured per search round")
    s.add_argument("--max-samples", type=int, help="cap on newly measured random samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--demo-data", type=Path, default=Path("data/demo"), help="calibration images (speed only)")
    s.add_argument("--work", type=Path, default=DEFAULT_WORK, help="prepared models and the measurement cache")
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Search within the budget; print the report; exit 1 when no candidate reached the target."""
    from harness.profile import load_profile
    from pipeline.flows import Workspace

    try:
        from search.evolve import SearchRequest, run_search
        from search.space import DEFAULT_SPACE, load_space
    except ImportError as exc:
        raise ConfigError(f"'search' needs the train extra (torch, timm): pip install -e '.[train]' ({exc})") from None
    if args.budget_minutes <= 0:
        raise ConfigError(f"--budget-minutes: expected > 0, got {args.budget_minutes}")
    profile = load_profile(args.system)
    out = args.out or args.work / "search" / f"run-{args.min_top1:g}"
    req = SearchRequest(min_top1=args.min_top1, budget_s=60 * args.budget_minutes, out=out,
                        workspace=Workspace(work=args.work, demo_data=args.demo_data), engine=profile.engine,
                        system=profile.name, space=load_space(args.space) if args.space else DEFAULT_SPACE,
                        seed=args.seed, measure_seconds=args.seconds, zoo_archs=args.zoo_archs,
                        reference=None if args.reference == "none" else args.reference,
                        max_samples=args.max_samples, finalists=args.finalists)
    print("Weights are UNTRAINED: speeds are measured INT8 on this host, top-1 of candidates is PREDICTED.")
    result = run_search(req)
    print((out / "REPORT.md").read_text())
    print(f"written: {out}/search.json, {out}/REPORT.md" + (", winner.json, register_snippet.py"
                                                           if result["winner"] else ""))
    if result["winner"] is None:
        print(f"ERROR: no measured candidate's top-1 lower bound reached {args.min_top1}", file=sys.stderr)
        return 1
    return 0
