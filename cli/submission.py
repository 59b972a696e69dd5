"""Subcommands ``package``, ``check`` and ``describe-system`` for ``mlperf-cpu``.

``add_subcommands(sub)`` adds them to the parser of ``cli.main``. Handlers raise
``HarnessError`` subclasses for anything the user can fix; ``cli.main.main`` turns
those into one ``ERROR`` line and the error's exit code.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from common.errors import ConfigError, SubmissionError, SystemDescriptionError

DEFAULT_OUT = Path("submission")


def parse_assignments(items: list[str] | None, origin: str = "--set") -> dict[str, str]:
    """``["cooling=air", ...]`` -> ``{"cooling": "air"}``; values may contain '='."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{origin} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def load_overrides_file(path: Path) -> dict[str, Any]:
    """System description fields from a YAML or JSON mapping."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: invalid YAML/JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of system description fields")
    return data


def _system_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.system_fields is not None:
        out.update(load_overrides_file(args.system_fields))
    out.update(parse_assignments(args.set))
    return out


def _package_command(args: argparse.Namespace) -> str:
    """The package command as the user would type it (recorded in the README)."""
    model = ["--model-dir", str(args.model_dir)] if args.model_dir else ["--model", args.model]
    parts = ["mlperf-cpu", "package", "--results", str(args.results), "--system", args.system,
             *model, "--org", args.org, "--out", str(args.out)]
    if args.system_name:
        parts += ["--system-name", args.system_name]
    if args.benchmark is not None:
        parts += ["--benchmark", args.benchmark]
    if args.division != "open":
        parts += ["--division", args.division]
    if args.category != "edge":
        parts += ["--category", args.category]
    if args.scenarios:
        parts += ["--scenarios", args.scenarios]
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


def _model_label(args: argparse.Namespace) -> str:
    """The model's folder name under results/<system>/: from the prepared model's card, or as given."""
    from modelprep.card import load_card

    if (args.model_dir is None) == (args.model is None):
        raise ConfigError("package: give exactly one of --model-dir (prepared model) or --model (label)")
    return load_card(args.model_dir).label if args.model_dir is not None else args.model


def _cmd_package(args: argparse.Namespace) -> int:
    from records.rules import ROUND
    from submit.package import package

    from common.testspec import Scenario

    try:
        scenarios = tuple(Scenario.parse(x) for x in args.scenarios.split(",")) if args.scenarios else None
    except ValueError as exc:
        raise ConfigError(f"--scenarios: {exc}") from None
    done = package(args.results, args.system, _model_label(args), args.org, args.out, args.src_root,
                   division=args.division, category=args.category, scenarios=scenarios,
                   system_name=args.system_name, system_overrides=_system_overrides(args),
                   user_conf=args.user_conf, benchmark_folder=args.benchmark,
                   allow_nonofficial=args.allow_nonofficial, replace=args.replace,
                   package_command=_package_command(args))
    for path in done.scenario_dirs:
        print(f"packaged     : {path}")
    print(f"system       : {done.system_json}")
    if done.official:
        print(f"submittable  : yes, by this harness's rules; now run the official checker ({ROUND}) from a "
              f"checkout of mlcommons/inference:\n"
              f"  mlperf-cpu check --tree {done.tree.resolve()} --official INFERENCE_CHECKOUT")
    else:
        print(f"submittable  : NO (marked NOT_FOR_SUBMISSION; waived: {'; '.join(done.waived)})")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
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


def _cmd_describe_system(args: argparse.Namespace) -> int:
    from harness.profile import load_profile
    from hostinfo.describe import describe_system, missing_fields, write_system_json

    profile = load_profile(args.system, check_fits=False)
    sources: dict[str, str] = {}
    desc = describe_system(profile.system, args.org, _system_overrides(args),
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


def _add_system_field_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--org", required=True, help="submitting organisation (the open/<Org> folder name)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a system description field (wins over the profile and detection); repeatable")
    p.add_argument("--system-fields", type=Path, metavar="FILE",
                   help="YAML/JSON mapping of system description fields (--set wins over it)")


def add_subcommands(sub: Any) -> None:
    """Add ``package``, ``check`` and ``describe-system`` to ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("package", help="build the submission tree (open or closed) from finished runs")
    p.add_argument("--division", choices=("open", "closed"), default="open",
                   help="closed: the reference model, official calibration, 99 %% accuracy, TEST01/TEST04 "
                        "in every scenario, every scenario of the category")
    p.add_argument("--category", choices=("edge", "datacenter,edge"), default="edge",
                   help="edge: SingleStream + MultiStream + Offline; datacenter,edge: + Server (system_type)")
    p.add_argument("--scenarios", help="comma-separated subset to package (open division; default: every scenario "
                                       "of the category that has runs)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root of the runs")
    p.add_argument("--system", required=True, help="system profile the runs used (results/<system>/...)")
    p.add_argument("--model-dir", type=Path, help="the prepared model directory the runs served (has card.json)")
    p.add_argument("--model", help="or: the model folder under results/<system>/, e.g. resnet50-int8")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="submission tree root (default: submission)")
    p.add_argument("--system-name", help="system folder/JSON name in the tree (default: the profile name)")
    p.add_argument("--benchmark",
                   help="benchmark folder (default: resnet50, or yolo-99 for a detector; yolo-95 takes the 95 %% "
                        "target; another name is mapped to the benchmark in model_mapping.json)")
    p.add_argument("--user-conf", type=Path, help="the user.conf the runs read (default: the path in result.json)")
    p.add_argument("--src-root", type=Path, default=Path("."), help="git work tree whose tracked files go to src/")
    p.add_argument("--replace", action="store_true",
                   help="replace what exists with other content (this system's scenario folders, src/, its system "
                        "JSON, model_mapping.json); each piece is built aside and swapped in whole, other systems' "
                        "folders are never touched")
    p.add_argument("--allow-nonofficial", action="store_true",
                   help="TESTING ONLY: package short/non-official runs; the tree is marked NOT_FOR_SUBMISSION")
    _add_system_field_args(p)
    p.set_defaults(handler=_cmd_package)

    c = sub.add_parser("check", help="apply the packaging rules to an existing submission tree")
    c.add_argument("--tree", type=Path, default=DEFAULT_OUT, help="submission tree root (holds open/)")
    c.add_argument("--official", type=Path, metavar="INFERENCE_CHECKOUT",
                   help="then run MLCommons' submission checker from this local checkout of mlcommons/inference "
                        "(on a copy of the tree, without network, with a time limit) and report its verdict too")
    c.add_argument("--official-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="time limit of the official checker (default 600)")
    c.set_defaults(handler=_cmd_check)

    d = sub.add_parser("describe-system", help="print this machine's systems/<system>.json description")
    d.add_argument("--system", default="host", help="system profile whose 'system:' fields fill the gaps")
    d.add_argument("--out", type=Path, help="write the JSON here (refused while a field is missing)")
    d.add_argument("--sources", action="store_true", help="print where each field came from (stderr)")
    _add_system_field_args(d)
    d.set_defaults(handler=_cmd_describe_system)
