"""``mlperf-cpu zoo``: the timm zoo measured INT8 on this host, fastest model at a top-1 threshold."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError

from cli._options import DEFAULT_WORK


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``zoo`` to ``sub`` (from ``add_subparsers``)."""
    z = sub.add_parser("zoo", help="measure the timm zoo INT8 on this host: fastest model at a top-1 threshold")
    z.add_argument("--system", default="host")
    z.add_argument("--min-top1", type=float, action="append", default=[],
                   help="extra threshold(s) on expected INT8 top-1 %% (always answered: 75.70 and 78.4)")
    z.add_argument("--only", help="comma-separated timm names, name.tag or name.tag@size to measure "
                                  "(default: the whole table)")
    z.add_argument("--rounds", type=int, default=3, help="interleaved rounds per model (median)")
    z.add_argument("--seconds", type=float, default=5.0, help="pool run per round")
    z.add_argument("--no-prune", action="store_true", help="measure every entry (no MAC-ordered pruning)")
    z.add_argument("--refresh", action="store_true", help="measure again even if cached")
    z.add_argument("--table", type=Path, default=None, help="zoo table (default: models/zoo/zoo.csv)")
    z.add_argument("--drops", type=Path, default=None, help="INT8 drop table (default: models/zoo/int8_drop.csv)")
    z.add_argument("--chart", type=Path, default=None, help="Pareto chart PNG (default: <work>/zoo/pareto.png)")
    z.add_argument("--work", type=Path, default=DEFAULT_WORK)
    z.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Measure the selected zoo entries; print the table, the answers and the chart's path."""
    try:
        from search import survey, zoo
    except ImportError:
        raise ConfigError("'zoo' needs the train extra (torch, timm): pip install -e '.[train]'") from None
    if args.rounds < 1 or args.seconds <= 0:
        raise ConfigError("--rounds must be >= 1 and --seconds > 0")
    entries = survey.select(zoo.load_zoo(args.table or zoo.ZOO_CSV), args.only)
    drops = zoo.load_drops(args.drops or zoo.DROP_CSV)
    thresholds = tuple(dict.fromkeys([zoo.CLOSED_TOP1, zoo.DECINET_TOP1, *args.min_top1]))
    req = survey.SurveyRequest(tuple(entries), drops, args.system, thresholds, args.rounds, args.seconds, args.work,
                               prune=not args.no_prune, use_cache=not args.refresh)
    result = survey.run_survey(req)
    full = args.work / "zoo" / "survey.md"
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_text(survey.markdown_table(result, drops, args.system) + "\n")
    print(survey.markdown_table(result, drops, args.system, pruned_rows=False))
    print(f"every row with the reason it was not measured: {full}")
    print()
    left_out = len(zoo.load_zoo(args.table or zoo.ZOO_CSV)) - len(entries)
    for line in survey.answer_lines(result, thresholds, left_out):
        print(line)
    import openvino as ov

    host = ov.Core().get_property("CPU", "FULL_DEVICE_NAME")
    chart = survey.pareto_chart(result, args.chart or args.work / "zoo" / "pareto.png", f"{host} ({args.system} profile)")
    print(f"Pareto chart: {chart}")
    return 0
