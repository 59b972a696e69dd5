"""``mlperf-cpu describe-system``: this machine's systems/<system>.json description."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.errors import SystemDescriptionError

from cli._options import add_system_field_args, system_overrides


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``describe-system`` to ``sub`` (from ``add_subparsers``)."""
    d = sub.add_parser("describe-system", help="print this machine's systems/<system>.json description")
    d.add_argument("--system", default="host", help="system profile whose 'system:' fields fill the gaps")
    d.add_argument("--out", type=Path, help="write the JSON here (refused while a field is missing)")
    d.add_argument("--sources", action="store_true", help="print where each field came from (stderr)")
    add_system_field_args(d)
    d.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the description (JSON); with ``--out`` write it; a missing field is an error."""
    from harness.profile import load_profile
    from hostinfo.describe import describe_system, missing_fields, write_system_json

    profile = load_profile(args.system, check_fits=False)
    sources: dict[str, str] = {}
    desc = describe_system(profile.system, args.org, system_overrides(args),
                           origin=f"system profile {profile.name!r}: system", sources=sources)
    print(json.dumps(desc, indent=4))
    if args.sources:
        for key, where in sources.items():
            print(f"  {key:38s} {where}", file=sys.stderr)
    if args.out is not None:
        write_system_json(args.out, desc)  # refuses a description with a missing field
        print(f"written: {args.out}", file=sys.stderr)
    missing = missing_fields(desc)
    if missing:
        raise SystemDescriptionError(
            f"system description lacks {', '.join(missing)} (not readable on this machine: set "
            f"{'it' if len(missing) == 1 else 'them'} in the profile's 'system:' mapping or with --set KEY=VALUE)")
    return 0
