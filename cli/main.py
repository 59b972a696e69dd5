"""Command line: ``mlperf-cpu {pipeline,prepare,run,tune,report,models,zoo,search,train,accuracy,summary,package,check,describe-system}``.

The entry point: ``main(argv)`` is testable and is the only place that turns errors into
exit codes: a ``HarnessError`` prints one ``ERROR`` line (after closing any progress bar),
anything else a traceback. Each subcommand is one module of this package, its parser
(``add_parser(sub)``) beside its handler (``run(args) -> int``); handlers validate the edge
and call the stage or flow that does the work; they print, the library only logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Callable, Sequence

from common.childproc import protect_children
from common.errors import ConfigError, HarnessError
from common.telemetry import allow_hub_downloads, telemetry_off

from cli._options import DEFAULT_WORK, log_arguments
from cli._options import add_weights_options as _add_weights_options
from cli._options import card_overrides as _card_overrides
from cli._options import weights_choice as _weights_choice

log = logging.getLogger("mlperf_cpu")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="[ %(levelname)s ] %(message)s", stream=sys.stderr, force=True)
    for noisy in ("nncf", "openvino"):
        logging.getLogger(noisy).setLevel(logging.WARNING)



def _close_progress_bars() -> None:
    """End any open tqdm bar's line, so an ERROR line starts on a line of its own."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    for bar in list(getattr(tqdm, "_instances", [])):
        bar.close()



# ----------------------------------------------------------------------------- prepare
def _cmd_prepare(args: argparse.Namespace) -> int:
    from modelprep.agreement import CheckSet
    from modelprep.card import load_card
    from modelprep.prepare import PrepareRequest, describe_preprocessing, prepare
    from modelprep.quantize import CalibrationConfig
    from modelprep.source import resolve_source

    calibration = check = None
    if args.precision == "int8":
        if args.calib_list is None or args.calib_dir is None:
            raise ConfigError("--precision int8 needs --calib-list and --calib-dir")
        calibration = CalibrationConfig(args.calib_dir, args.calib_list, args.calib_subset,
                                        args.calib_preset, fast_bias_correction=args.bias_correction == "fast")
        if args.check_dataset is not None:
            check = CheckSet(args.check_dataset, args.check_val_map or args.check_dataset / "val_map.txt",
                             args.check_count)
    source = resolve_source(args.model, args.out / "sources", _weights_choice(args))
    req = PrepareRequest(source, args.precision, args.out, args.cache_dir, args.layout, calibration,
                         args.int8_rest, check, _card_overrides(args), args.task,
                         max_accuracy_drop=args.max_accuracy_drop)
    out = prepare(req)
    card = load_card(out)
    if card.is_detector:
        from modelprep.detector import describe_detector
        print(f"preprocessing: {describe_detector(card)}", file=sys.stderr)
    else:
        print(f"preprocessing: {describe_preprocessing(card)}", file=sys.stderr)
    print(out)
    return 0


# ----------------------------------------------------------------------------- train
TRAIN_USAGE = ("torchrun --standalone --nproc-per-node 2 -m cli train --teacher T.onnx --student NAME --train DIR ...; "
               "mlperf-cpu train demo|detector [--out FILE.onnx ...]")


def _cmd_train(args: argparse.Namespace) -> int:
    from training import split_program, load_program

    name, argv = split_program(args.train_args)
    try:
        program = load_program(name)  # torch: the 'train' extra
    except ImportError as exc:
        raise ConfigError(f"train needs the 'train' extra (pip install -e '.[train]'): {exc}") from None
    if os.environ.get("RANK", "0") != "0":  # torchrun's other processes: rank 0 speaks for the job
        logging.getLogger().setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog=f"mlperf-cpu train {name}", description=program.DESCRIPTION)
    program.add_arguments(parser)
    summary = program.run(parser.parse_args(argv), args.command_line)
    if summary:
        print(summary)
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", add_help=False, prefix_chars="+",
                       help=f"training: distillation (the default, under torchrun), demo, detector: {TRAIN_USAGE}")
    # Every option belongs to the program's own parser (``mlperf-cpu train [demo|detector] --help``).
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(handler=_cmd_train)


# ----------------------------------------------------------------------------- zoo (search/)
def _add_zoo(sub: argparse._SubParsersAction) -> None:
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
    z.set_defaults(handler=_cmd_zoo)


def _cmd_zoo(args: argparse.Namespace) -> int:
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


# ----------------------------------------------------------------------------- search
def _cmd_search(args: argparse.Namespace) -> int:
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


def _add_search(sub: argparse._SubParsersAction) -> None:
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
    s.set_defaults(handler=_cmd_search)


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="ONNX/IR -> served FP32 or INT8 IR + model card")
    p.add_argument("--model", required=True,
                   help=".onnx file, OpenVINO .xml, or a built-in architecture name (untrained unless --weights "
                        "or --pretrained; needs torch)")
    _add_weights_options(p)
    p.add_argument("--precision", choices=("f32", "bf16", "int8"), required=True,
                   help="f32: real FP32 execution; bf16: the FP32 IR run in BF16; int8: NNCF PTQ")
    p.add_argument("--int8-rest", choices=("f32", "bf16"), default="f32",
                   help="execution precision of the layers INT8 leaves in float (default f32)")
    p.add_argument("--calib-list", type=Path, help="calibration list (file names, one per line)")
    p.add_argument("--calib-dir", type=Path, help="directory holding the calibration images")
    p.add_argument("--calib-subset", type=int, help="use this many calibration images (default: all)")
    p.add_argument("--calib-preset", choices=("performance", "mixed"), default="performance")
    p.add_argument("--bias-correction", choices=("fast", "full"), default="fast",
                   help="NNCF bias correction (default fast); full is slower to prepare and is what NNCF's "
                        "published MobileNetV3 figures need (models/zoo/int8_drop.csv)")
    p.add_argument("--check-dataset", type=Path,
                   help="held-out labelled images: INT8 vs FP32 top-1 and agreement, stored in the card")
    p.add_argument("--check-val-map", type=Path, help="default: <check-dataset>/val_map.txt")
    p.add_argument("--check-count", type=int, default=1000, help="held-out samples to check (default 1000)")
    p.add_argument("--max-accuracy-drop", type=float, metavar="POINTS",
                   help="int8: keep the layers that cost accuracy in float (NNCF accuracy control) until the "
                        "held-out top-1 drop (--check-dataset minus the calibration list) is <= POINTS")
    p.add_argument("--layout", choices=("NCHW", "NHWC"), default="NCHW", help="uint8 input layout")
    p.add_argument("--task", choices=("classification", "detection"), default="classification",
                   help="detection: a YOLO-style [N, 4+classes, anchors] detector (COCO mAP; README "
                        "'Object detection')")
    p.add_argument("--out", type=Path, default=DEFAULT_WORK / "models", help="prepared-model root")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    c = p.add_argument_group("model card (override what the model's metadata or class count implies; see README)")
    c.add_argument("--name", help="model name (default: the card's, else the file name)")
    c.add_argument("--mean", help="R,G,B mean in 0..255 pixel units, e.g. 123.675,116.28,103.53")
    c.add_argument("--std", help="R,G,B std in 0..255 pixel units, e.g. 58.395,57.12,57.375")
    c.add_argument("--crop-pct", type=float, help="centre-crop fraction: resize short side to size/crop_pct")
    c.add_argument("--interpolation", choices=("area", "linear", "cubic"), help="resize filter")
    c.add_argument("--label-offset", type=int, help="added to the argmax (-1 for 1001-class models)")
    p.set_defaults(handler=_cmd_prepare)


class _VersionAction(argparse.Action):
    """``--version``: this project's installed version (package metadata), LoadGen's and OpenVINO's."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: object) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0,
                         help="print the versions of mlperf-cpu, LoadGen and OpenVINO and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from hostinfo.probe import PROJECT, distribution_version

        versions = [(PROJECT, PROJECT), ("LoadGen", "mlcommons-loadgen"), ("OpenVINO", "openvino")]
        print(", ".join(f"{label} {distribution_version(dist) or 'not installed'}" for label, dist in versions))
        parser.exit()


def main_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    # Imported here, not at the top: main() has turned telemetry off before any command module loads.
    from cli import accuracy, check, describe_system, models, package, pipeline, report, run, summary, tune

    parser = argparse.ArgumentParser(prog="mlperf-cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (pipeline.add_parser, _add_prepare, run.add_parser, tune.add_parser, report.add_parser,
                models.add_parser, accuracy.add_parser, summary.add_parser, _add_zoo, _add_train, _add_search,
                package.add_parser, check.add_parser, describe_system.add_parser):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    # Before any handler imports OpenVINO or NNCF: no telemetry, no hub access, and every child
    # process immune to modules in its working directory (common.telemetry, common.childproc).
    telemetry_off()
    protect_children()
    argv = list(sys.argv[1:] if argv is None else argv)
    # A non-interactive shell starts background jobs (`cmd &`, nohup) with SIGINT ignored, and Python
    # then keeps it ignored: a `kill -INT` during preprocessing or compiling would do nothing and
    # the run would go on to a result. Every phase is interruptible, so take SIGINT back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = main_parser().parse_args(argv)
    if getattr(args, "pretrained", False):
        allow_hub_downloads()  # the user asked for the hub's weights; its telemetry stays off
    args.command_line = "mlperf-cpu " + shlex.join(argv)
    _setup_logging(args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        log_arguments(args)
        return handler(args)
    except HarnessError as exc:
        _close_progress_bars()
        if args.verbose:
            log.exception("failed")
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        _close_progress_bars()
        print("ERROR: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
