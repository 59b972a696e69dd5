"""``mlperf-cpu summary``: every run under a results directory, as a table, JSON or the checker's CSV."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``summary`` to ``sub`` (from ``add_subparsers``)."""
    s = sub.add_parser("summary", help="table of every run under a results directory")
    s.add_argument("--results", type=Path, default=Path("results"))
    s.add_argument("--format", choices=("md", "json", "csv"), default="md",
                   help="md: a table of runs (default); json: the run records; csv: one row per scenario in the "
                        "official checker's summary.csv columns")
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the runs found under ``--results`` in ``--format``."""
    from records.summary import collect, render

    print(render(collect(args.results), args.format))
    return 0
