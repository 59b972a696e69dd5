"""Subcommands ``package``, ``check`` and ``describe-system`` for ``mlperf-cpu``.

``add_subcommands(sub)`` adds them to the parser of ``sut.cli``. Handlers raise
``HarnessError`` subclasses for anything the user can fix; ``sut.cli.main`` turns
those into one ``ERROR`` line and the error's exit code.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("submission")


def _system_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from sut.system import load_overrides_file, parse_assignments

    out: dict[str, Any] = {}
    if args.system_fields is not None:
        out.update(load_overrides_file(args.system_fields))
    out.update(parse_assignments(args.set))
    return out


def _package_command(args: argparse.Namespace) -> str:
    """The package command as the user would type it (recorded in the README)."""
    parts = ["mlperf-cpu", "package", "--results", str(args.results), "--system", args.system,
             "--model", args.model, "--org", args.org, "--out", str(args.out)]
    if args.system_name:
        parts += ["--system-name", args.system_name]
    if args.benchmark != "resnet50":
        parts += ["--benchmark", args.benchmark]
    if args.user_conf is not None:
        parts += ["--user-conf", str(args.user_conf)]
    if args.system_fields is not None:
        parts += ["--system-fields", str(args.system_fields)]
    for item in args.set or []:
        parts += ["--set", item]
    if args.src_root != Path("."):
        parts += ["--src-root", str(args.src_root)]
    if args.allow_nonofficial:
        parts.append("--allow-nonofficial")
    if args.replace:
        parts.append("--replace")
    return shlex.join(parts)


def _cmd_package(args: argparse.Namespace) -> int:
    from sut.submission import ROUND, package

    done = package(args.results, args.system, args.model, args.org, args.out, args.src_root,
                   system_name=args.system_name, system_overrides=_system_overrides(args),
                   user_conf=args.user_conf, benchmark_folder=args.benchmark,
                   allow_nonofficial=args.allow_nonofficial, replace=args.replace,
                   package_command=_package_command(args))
    print(f"packaged     : {done.scenario_dir}")
    print(f"system       : {done.system_json}")
    if done.official:
        print(f"submittable  : yes, by this harness's rules; now run the official checker:\n"
              f"  python3 -m submission_checker.main --input {done.tree.resolve()} --version {ROUND}")
    else:
        print(f"submittable  : NO (marked NOT_FOR_SUBMISSION; waived: {'; '.join(done.waived)})")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from sut.submission import SubmissionError, check_tree

    problems = check_tree(args.tree)
    for problem in problems:
        print(problem)
    if problems:
        raise SubmissionError(f"{args.tree}: {len(problems)} problem{'s' if len(problems) > 1 else ''}; "
                              f"first: {problems[0]}")
    print(f"{args.tree}: OK")
    return 0


def _cmd_describe_system(args: argparse.Namespace) -> int:
    from sut.profile import load_profile
    from sut.system import SystemDescriptionError, describe_system, missing_fields, write_system_json

    profile = load_profile(args.system, check_fits=False)
    sources: dict[str, str] = {}
    desc = describe_system(profile, args.org, _system_overrides(args), sources=sources)
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


def _add_system_field_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--org", required=True, help="submitting organisation (the open/<Org> folder name)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a system description field (wins over the profile and detection); repeatable")
    p.add_argument("--system-fields", type=Path, metavar="FILE",
                   help="YAML/JSON mapping of system description fields (--set wins over it)")


def add_subcommands(sub: Any) -> None:
    """Add ``package``, ``check`` and ``describe-system`` to ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("package", help="build the open-division submission tree from finished runs")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root of the runs")
    p.add_argument("--system", required=True, help="system profile the runs used (results/<system>/...)")
    p.add_argument("--model", required=True, help="model folder under results/<system>/, e.g. resnet50-int8")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="submission tree root (default: submission)")
    p.add_argument("--system-name", help="system folder/JSON name in the tree (default: the profile name)")
    p.add_argument("--benchmark", default="resnet50",
                   help="benchmark folder (default resnet50; another name is mapped to resnet in model_mapping.json)")
    p.add_argument("--user-conf", type=Path, help="the user.conf the runs read (default: the path in result.json)")
    p.add_argument("--src-root", type=Path, default=Path("."), help="git work tree whose tracked files go to src/")
    p.add_argument("--replace", action="store_true", help="overwrite this result and system JSON if present")
    p.add_argument("--allow-nonofficial", action="store_true",
                   help="TESTING ONLY: package short/non-official runs; the tree is marked NOT_FOR_SUBMISSION")
    _add_system_field_args(p)
    p.set_defaults(handler=_cmd_package)

    c = sub.add_parser("check", help="apply the packaging rules to an existing submission tree")
    c.add_argument("--tree", type=Path, default=DEFAULT_OUT, help="submission tree root (holds open/)")
    c.set_defaults(handler=_cmd_check)

    d = sub.add_parser("describe-system", help="print this machine's systems/<system>.json description")
    d.add_argument("--system", default="host", help="system profile whose 'system:' fields fill the gaps")
    d.add_argument("--out", type=Path, help="write the JSON here (refused while a field is missing)")
    d.add_argument("--sources", action="store_true", help="print where each field came from (stderr)")
    _add_system_field_args(d)
    d.set_defaults(handler=_cmd_describe_system)
