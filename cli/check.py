"""``mlperf-cpu check``: this harness's packaging rules (and, on request, MLCommons' checker) on a submission tree."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import SubmissionError

from cli.package import DEFAULT_OUT


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``check`` to ``sub`` (from ``add_subparsers``)."""
    c = sub.add_parser("check", help="apply the packaging rules to an existing submission tree")
    c.add_argument("--tree", type=Path, default=DEFAULT_OUT, help="submission tree root (holds open/)")
    c.add_argument("--official", type=Path, metavar="INFERENCE_CHECKOUT",
                   help="then run MLCommons' submission checker from this local checkout of mlcommons/inference "
                        "(on a copy of the tree, without network, with a time limit) and report its verdict too")
    c.add_argument("--official-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="time limit of the official checker (default 600)")
    c.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print every problem and each verdict; a problem or a failed official check is an error."""
    from submit.check import check_tree

    problems = check_tree(args.tree)
    for problem in problems:
        print(problem)
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    print(f"{args.tree}: this harness's rules: {count if problems else 'OK'}")
    failures = [f"{count}; first: {problems[0]}"] if problems else []
    if args.official is not None:  # after our rules, whatever they found: both verdicts are reported
        from records.rules import ROUND
        from submit.official import run_official_checker

        verdict = run_official_checker(args.tree, args.official, args.official_timeout)
        for line in verdict.lines:
            print(f"official: {line}")
        official = f"official checker {ROUND}: {'OK' if verdict.ok else 'FAILED'} ({verdict.summary})"
        print(f"{args.tree}: {official}")
        failures += [] if verdict.ok else [official]
    if failures:
        raise SubmissionError(f"{args.tree}: " + "; ".join(failures))
    print(f"{args.tree}: OK")
    return 0
