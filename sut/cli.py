"""Command line: ``mlperf-cpu {prepare,run,tune,report,models,accuracy,summary,package,check,describe-system}``.

One handler per subcommand; ``main(argv)`` is testable and is the only place
that turns errors into exit codes: a ``HarnessError`` prints one ``ERROR`` line,
anything else a traceback.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Callable, Sequence

from sut.errors import ConfigError, HarnessError

log = logging.getLogger("mlperf_cpu")

DEFAULT_WORK = Path("work")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="[ %(levelname)s ] %(message)s", stream=sys.stderr, force=True)
    for noisy in ("nncf", "openvino"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _log_arguments(args: argparse.Namespace) -> None:
    log.info("===== arguments =====")
    for key, value in sorted(vars(args).items()):
        if key not in ("handler", "command_line"):
            log.info("  %s = %s", key, value)


# ----------------------------------------------------------------------------- prepare
def _cmd_prepare(args: argparse.Namespace) -> int:
    from sut.agreement import CheckSet
    from sut.prepare import PrepareRequest, prepare, resolve_source
    from sut.quantize import CalibrationConfig

    calibration = check = None
    if args.precision == "int8":
        if args.calib_list is None or args.calib_dir is None:
            raise ConfigError("--precision int8 needs --calib-list and --calib-dir")
        calibration = CalibrationConfig(args.calib_dir, args.calib_list, args.calib_subset,
                                        args.calib_preset)
        if args.check_dataset is not None:
            check = CheckSet(args.check_dataset, args.check_val_map or args.check_dataset / "val_map.txt",
                             args.check_count)
    source = resolve_source(args.model, args.out / "sources")
    req = PrepareRequest(source, args.precision, args.out, args.cache_dir, args.layout, calibration,
                         args.int8_rest, check)
    out = prepare(req)
    print(out)
    return 0


# ----------------------------------------------------------------------------- run
def _cmd_run(args: argparse.Namespace) -> int:
    from sut.profile import load_profile
    from sut.runner import RunRequest, execute
    from sut.types import Mode, Overrides

    val_map = args.val_map or args.dataset / "val_map.txt"
    if not args.dataset.is_dir():
        raise ConfigError(f"--dataset {args.dataset}: directory not found")
    profile = load_profile(args.system)
    overrides = Overrides(args.min_duration_ms, args.min_query_count, args.target_qps,
                          args.performance_sample_count)
    req = RunRequest(Mode.parse(args.mode), args.model, args.dataset, val_map, profile, args.user_conf,
                     args.results, args.cache_dir, overrides, command=args.command_line)
    result = execute(req)
    _print_result(result)
    return 0


def _print_result(result: dict) -> None:
    print(f"run dir      : {result['run_dir']}")
    print(f"mode         : {result['mode']}")
    if "accuracy" in result:
        a = result["accuracy"]
        print(f"accuracy     : {a['top1_percent']:.3f}% ({a['good']}/{a['total']})")
    else:
        print(f"result       : {result.get('result_validity')}")
        print(f"samples/s    : {result.get('samples_per_second')}")
    print(f"precision    : {result['card']['precision']} weights, "
          f"inference precision hint {result.get('inference_precision')}")
    print(f"submittable  : {result['submittable']}"
          + ("" if result["submittable"] else f" ({'; '.join(result['not_submittable_because'])})"))


# ----------------------------------------------------------------------------- tune
def _cmd_tune(args: argparse.Namespace) -> int:
    from sut.card import load_card
    from sut.profile import DEFAULT_CONFIG_DIR, load_profile
    from sut.tune import TARGET_QPS_MARGIN, set_target_qps, tune, write_profile

    base = load_profile(args.system)
    batches = tuple(int(b) for b in args.batches.split(","))
    requests = tuple(int(r) for r in args.requests_per_stream.split(","))
    points = tune(args.model, base, args.seconds, batches, requests)
    print("| streams | threads | requests | batch | samples/s |")
    print("|---|---|---|---|---|")
    for p in points:
        e = p.engine
        print(f"| {e.num_streams} | {e.num_threads} | {e.infer_requests} | {e.batch_size} | {p.samples_per_second:.1f} |")
    best = points[0]
    name = args.name or f"{base.name}-tuned"
    path = write_profile(args.profile_out or DEFAULT_CONFIG_DIR / f"{name}.yaml", base, best, name,
                         load_card(args.model))
    target = best.samples_per_second * (args.margin or TARGET_QPS_MARGIN)
    set_target_qps(args.user_conf, target)
    print(f"best: {best.samples_per_second:.1f} samples/s -> profile {path}; "
          f"{args.user_conf}: resnet50.Offline.target_qps = {target:.1f}")
    return 0


# ----------------------------------------------------------------------------- report
def _cmd_report(args: argparse.Namespace) -> int:
    from dataset.demo import build_demo_dataset
    from sut.card import load_card
    from sut.prepare import PrepareRequest, prepare, resolve_source
    from sut.profile import load_profile
    from sut.quantize import CalibrationConfig
    from sut.report import Row, measure, write

    profile = load_profile(args.system)
    demo = build_demo_dataset(args.demo_data)
    calib = CalibrationConfig(demo / "train", demo / "cal_list.txt")
    models_root = args.work / "models"
    rows = []
    for spec in args.rows.split(","):
        arch, _, precision = spec.partition(":")
        source = resolve_source(arch, models_root / "sources")
        req = PrepareRequest(source, precision or "int8", models_root, args.cache_dir,
                             calibration=calib if precision in ("", "int8") else None)
        model_dir = prepare(req)
        rows.append(Row(f"{arch} {precision or 'int8'}", model_dir, load_card(model_dir)))
    measure(rows, demo / "val", args.system, args.out, args.cache_dir, args.user_conf, args.rounds,
            int(args.duration_s * 1000))
    md = write(rows, args.out, profile.cores, args.rounds, int(args.duration_s * 1000), profile.name)
    print(md.read_text())
    print(f"written: {md}, {md.with_suffix('.json')}, {md.with_suffix('.png')}")
    return 0


# ----------------------------------------------------------------------------- models
def _cmd_models(args: argparse.Namespace) -> int:
    from dataset.demo import build_demo_dataset
    from sut.card import load_card
    from sut.prepare import PrepareRequest, prepare, resolve_source
    from sut.profile import load_profile
    from sut.quantize import CalibrationConfig
    from sut.tune import measure

    try:
        import models
    except ImportError:
        raise ConfigError("'models' needs the train extra (torch): pip install -e '.[train]'") from None
    profile = load_profile(args.system)
    names = args.names.split(",") if args.names else models.list_models()
    print("Built-in architectures. Weights are UNTRAINED: only the speed is meaningful.")
    print(f"| model | params (M) | GMACs | INT8 samples/s ({profile.name}, {args.seconds:.0f} s, pool only) |")
    print("|---|---|---|---|")
    calib = None
    if args.measure:
        demo = build_demo_dataset(args.demo_data)
        calib = CalibrationConfig(demo / "train", demo / "cal_list.txt", subset_size=args.calib_subset)
    import openvino as ov

    core = ov.Core()
    for name in names:
        source = resolve_source(name, args.work / "models" / "sources")
        speed = ""
        if args.measure:
            model_dir = prepare(PrepareRequest(source, "int8", args.work / "models", args.cache_dir,
                                               calibration=calib))
            card = load_card(model_dir)
            speed = f"{measure(core, model_dir, card, profile.engine, args.seconds):.1f}"
        from sut.prepare import embedded_card, read_source

        meta = embedded_card(read_source(source)) or {}
        print(f"| {name} | {meta.get('params', 0) / 1e6:.2f} | {meta.get('macs', 0) / 1e9:.2f} | {speed} |")
    return 0


# ----------------------------------------------------------------------------- accuracy
def _cmd_accuracy(args: argparse.Namespace) -> int:
    from dataset.val_map import parse_val_map
    from sut.accuracy import read_accuracy_log, top1, write_accuracy_txt

    samples = parse_val_map(args.val_map)
    result = top1(read_accuracy_log(args.log), samples)
    if args.out:
        write_accuracy_txt(result, args.out)
    print(result.line())
    return 0


# ----------------------------------------------------------------------------- summary
def _cmd_summary(args: argparse.Namespace) -> int:
    from sut.summary import collect, format_table

    print(format_table(collect(args.results)))
    return 0


def main_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(prog="mlperf-cpu", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="ONNX/IR -> served FP32 or INT8 IR + model card")
    p.add_argument("--model", required=True,
                   help=".onnx file, OpenVINO .xml, or a built-in architecture name (untrained; needs torch)")
    p.add_argument("--precision", choices=("f32", "bf16", "int8"), required=True,
                   help="f32: real FP32 execution; bf16: the FP32 IR run in BF16; int8: NNCF PTQ")
    p.add_argument("--int8-rest", choices=("f32", "bf16"), default="f32",
                   help="execution precision of the layers INT8 leaves in float (default f32)")
    p.add_argument("--calib-list", type=Path, help="calibration list (file names, one per line)")
    p.add_argument("--calib-dir", type=Path, help="directory holding the calibration images")
    p.add_argument("--calib-subset", type=int, help="use this many calibration images (default: all)")
    p.add_argument("--calib-preset", choices=("performance", "mixed"), default="performance")
    p.add_argument("--check-dataset", type=Path,
                   help="held-out labelled images: INT8 vs FP32 top-1 and agreement, stored in the card")
    p.add_argument("--check-val-map", type=Path, help="default: <check-dataset>/val_map.txt")
    p.add_argument("--check-count", type=int, default=1000, help="held-out samples to check (default 1000)")
    p.add_argument("--layout", choices=("NCHW", "NHWC"), default="NCHW", help="uint8 input layout")
    p.add_argument("--out", type=Path, default=DEFAULT_WORK / "models", help="prepared-model root")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    p.set_defaults(handler=_cmd_prepare)

    r = sub.add_parser("run", help="one LoadGen Offline test (one per process)")
    r.add_argument("--mode", choices=("accuracy", "performance", "TEST01", "TEST04"), required=True,
                   help="TEST01/TEST04: compliance runs, verified against this model's normal runs")
    r.add_argument("--model", type=Path, required=True, help="prepared model directory (has card.json)")
    r.add_argument("--dataset", type=Path, required=True, help="image directory (ImageNet val layout)")
    r.add_argument("--val-map", type=Path, help="default: <dataset>/val_map.txt")
    r.add_argument("--system", required=True, help="system profile name (configs/*.yaml or 'host')")
    r.add_argument("--user-conf", type=Path, default=Path("user.conf"))
    r.add_argument("--results", type=Path, default=Path("results"))
    r.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    demo = r.add_argument_group("non-official settings (demo/tests; the run is marked not submittable)")
    demo.add_argument("--min-duration-ms", type=int)
    demo.add_argument("--min-query-count", type=int)
    demo.add_argument("--target-qps", type=float, help="0 = the warm-up throughput")
    demo.add_argument("--performance-sample-count", type=int)
    r.set_defaults(handler=_cmd_run)

    t = sub.add_parser("tune", help="measure streams x batch x requests; write the best profile and target_qps")
    t.add_argument("--model", type=Path, required=True, help="prepared model directory")
    t.add_argument("--system", default="host", help="base profile (its cores and system description)")
    t.add_argument("--batches", default="8,16,32", help="comma-separated batch sizes")
    t.add_argument("--requests-per-stream", default="1,2", help="comma-separated infer requests per stream")
    t.add_argument("--seconds", type=float, default=3.0, help="measuring time per point")
    t.add_argument("--name", help="profile name to write (default <system>-tuned)")
    t.add_argument("--profile-out", type=Path, help="profile YAML to write (default configs/<name>.yaml)")
    t.add_argument("--margin", type=float,
                   help="target_qps = best x margin (default 1.1; raise it on a machine shared with other "
                        "jobs: a run faster than 1.1 x target_qps ends before 600 s and is INVALID)")
    t.add_argument("--user-conf", type=Path, default=Path("user.conf"))
    t.set_defaults(handler=_cmd_tune)

    rp = sub.add_parser("report", help="Table 1 on this host: f32/bf16/INT8 ResNet-50 vs INT8 DeciNet-style models")
    rp.add_argument("--rows", default="resnet50:f32,resnet50:bf16,resnet50:int8,decinet_s:int8,decinet_m:int8,"
                                      "decinet_l:int8", help="comma-separated <architecture>:<precision>")
    rp.add_argument("--system", default="host")
    rp.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    rp.add_argument("--duration-s", type=float, default=20.0, help="LoadGen min duration per run")
    rp.add_argument("--demo-data", type=Path, default=Path("data/demo"),
                    help="demo dataset: calibration images and the (speed-only) performance inputs")
    rp.add_argument("--out", type=Path, default=Path("results/report"))
    rp.add_argument("--work", type=Path, default=DEFAULT_WORK)
    rp.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    rp.add_argument("--user-conf", type=Path, default=Path("user.conf"))
    rp.set_defaults(handler=_cmd_report)

    m = sub.add_parser("models", help="built-in architectures: params, MACs and (--measure) INT8 speed")
    m.add_argument("--names", help="comma-separated subset (default: all registered)")
    m.add_argument("--measure", action="store_true", help="prepare INT8 and measure the pool's throughput")
    m.add_argument("--system", default="host")
    m.add_argument("--seconds", type=float, default=5.0)
    m.add_argument("--calib-subset", type=int, default=100, help="calibration images (speed only)")
    m.add_argument("--demo-data", type=Path, default=Path("data/demo"))
    m.add_argument("--work", type=Path, default=DEFAULT_WORK)
    m.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    m.set_defaults(handler=_cmd_models)

    a = sub.add_parser("accuracy", help="accuracy.txt from mlperf_log_accuracy.json + val_map.txt")
    a.add_argument("--log", type=Path, required=True)
    a.add_argument("--val-map", type=Path, required=True)
    a.add_argument("--out", type=Path)
    a.set_defaults(handler=_cmd_accuracy)

    s = sub.add_parser("summary", help="table of every run under a results directory")
    s.add_argument("--results", type=Path, default=Path("results"))
    s.set_defaults(handler=_cmd_summary)

    from sut.cli_submission import add_subcommands

    add_subcommands(sub)  # package, check, describe-system
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = main_parser().parse_args(argv)
    args.command_line = "mlperf-cpu " + shlex.join(argv)
    _setup_logging(args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        _log_arguments(args)
        return handler(args)
    except HarnessError as exc:
        if args.verbose:
            log.exception("failed")
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
