"""``mlperf-cpu package``: build the submission tree (open or closed) from finished runs."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from common.errors import ConfigError

from cli._options import add_system_field_args, system_overrides

DEFAULT_OUT = Path("submission")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``package`` to ``sub`` (from ``add_subparsers``)."""
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
    add_system_field_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Package the runs; print where they went and whether the tree is submittable."""
    from records.rules import ROUND
    from submit.package import package

    from common.testspec import Scenario

    try:
        scenarios = tuple(Scenario.parse(x) for x in args.scenarios.split(",")) if args.scenarios else None
    except ValueError as exc:
        raise ConfigError(f"--scenarios: {exc}") from None
    done = package(args.results, args.system, _model_label(args), args.org, args.out, args.src_root,
                   division=args.division, category=args.category, scenarios=scenarios,
                   system_name=args.system_name, system_overrides=system_overrides(args),
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
