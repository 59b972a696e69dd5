"""Command line: ``mlperf-cpu {pipeline,prepare,run,tune,report,models,zoo,search,train,accuracy,summary,package,check,describe-system}``.

One handler per subcommand; ``main(argv)`` is testable and is the only place that turns
errors into exit codes: a ``HarnessError`` prints one ``ERROR`` line (after closing any
progress bar), anything else a traceback. Handlers validate the edge and call the
stage or flow that does the work; they print, the library only logs.
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
from common.resources import default_user_conf, is_packaged_copy
from common.names import check_name
from common.telemetry import allow_hub_downloads, telemetry_off

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


def _close_progress_bars() -> None:
    """End any open tqdm bar's line, so an ERROR line starts on a line of its own."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    for bar in list(getattr(tqdm, "_instances", [])):
        bar.close()


# ----------------------------------------------------------------------------- prepare
def _card_overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    for key in ("name", "crop_pct", "interpolation", "label_offset"):
        if getattr(args, key, None) is not None:
            out[key] = getattr(args, key)
    for key in ("mean", "std"):
        text = getattr(args, key, None)
        if text is not None:
            try:
                values = tuple(float(v) for v in text.split(","))
            except ValueError:
                raise ConfigError(f"--{key} {text!r}: expected three numbers, e.g. 123.675,116.28,103.53") from None
            if len(values) != 3:
                raise ConfigError(f"--{key} {text!r}: expected three comma-separated numbers (R,G,B)")
            out[key] = values
    return out


def _weights_choice(args: argparse.Namespace) -> "WeightsChoice":  # noqa: F821
    """``--weights FILE`` / ``--pretrained``: trained weights for ``--model timm/NAME[.tag]``."""
    from modelprep.weights import WeightsChoice

    return WeightsChoice(args.weights, args.pretrained)


def _add_weights_options(parser: argparse.ArgumentParser) -> None:
    """``--weights`` and ``--pretrained`` (prepare and pipeline)."""
    w = parser.add_mutually_exclusive_group()
    w.add_argument("--weights", type=Path, metavar="FILE",
                   help="with --model timm/NAME[.tag]: a trained timm checkpoint (.safetensors, .pth, .bin), loaded "
                        "strictly; the card records its sha256, the tag's published top-1 and timm's preprocessing")
    w.add_argument("--pretrained", action="store_true",
                   help="with --model timm/NAME[.tag]: the tag's weights from timm's hub loader (needs the network)")


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


# ----------------------------------------------------------------------------- run
def _cmd_run(args: argparse.Namespace) -> int:
    from common.testspec import Mode, Overrides, Scenario
    from harness.profile import load_profile
    from harness.runner import RunRequest, execute
    from hostctl.lifetime import die_with_parent

    die_with_parent()  # started by a pipeline: never finish the test alone

    from dataset.coco import default_label_file

    val_map = args.val_map or default_label_file(args.dataset)  # val_map.txt, or a COCO annotation file
    if not args.dataset.is_dir():
        raise ConfigError(f"--dataset {args.dataset}: directory not found")
    try:
        scenario = Scenario.parse(args.scenario)
    except ValueError as exc:
        raise ConfigError(f"--scenario: {exc}") from None
    profile = load_profile(args.system, host_tuning=args.host_tuning)
    overrides = Overrides(args.min_duration_ms, args.min_query_count, args.target_qps,
                          args.performance_sample_count)
    req = RunRequest(Mode.parse(args.mode), args.model, args.dataset, val_map, profile, args.user_conf,
                     args.results, args.cache_dir, overrides, command=args.command_line, scenario=scenario,
                     replace=args.replace, host_tuning=args.host_tuning, watchdog_s=args.watchdog_s)
    _print_result(execute(req))
    return 0


def _print_result(result: "RunResult") -> None:  # noqa: F821 - imported lazily
    print(f"run dir      : {result.run_dir}")
    print(f"mode         : {result.mode.value} ({result.scenario.value})")
    if result.accuracy is not None:
        a = result.accuracy
        if a.metric == "mAP":
            print(f"accuracy     : mAP={a.top1_percent:.3f}% ({a.total} images)")
        else:
            print(f"accuracy     : {a.top1_percent:.3f}% ({a.good}/{a.total})")
    else:
        value, unit = result.metric
        print(f"result       : {result.validity}" + (f" ({'; '.join(result.invalid_because())})"
                                                      if result.validity != "VALID" else ""))
        print(f"metric       : {value} {unit}")
        for percentile in ("90.00", "99.00"):
            if result.latency_ms(percentile) is not None:
                print(f"latency p{percentile[:2]}  : {result.latency_ms(percentile):.3f} ms")
    print(f"precision    : {result.card.precision} weights, inference precision hint {result.inference_precision}")
    print(f"submittable  : {result.submittable}"
          + ("" if result.submittable else f" ({'; '.join(result.not_submittable_because)})"))


# ----------------------------------------------------------------------------- tune
def _cmd_tune(args: argparse.Namespace) -> int:
    from common.testspec import Scenario
    from harness.profile import load_profile
    from harness.tune import (TARGET_QPS_MARGIN, check_profile_destination, profile_destination, tune_and_record,
                              tune_latency_and_record)

    try:
        scenario = Scenario.parse(args.scenario)
    except ValueError as exc:
        raise ConfigError(f"--scenario: {exc}") from None
    if args.name is not None:
        check_name(args.name, "--name")  # the profile's name and its configs/<name>.yaml
    base = load_profile(args.system, host_tuning=args.host_tuning)
    # Refused before minutes of measuring: writing over a shipped profile needs --replace.
    check_profile_destination(profile_destination(base, args.name, args.profile_out), args.replace)
    common = dict(name=args.name, profile_out=args.profile_out)
    if scenario is Scenario.OFFLINE:
        batches = tuple(int(b) for b in args.batches.split(","))
        requests = tuple(int(r) for r in args.requests_per_stream.split(","))
        points, done = tune_and_record(args.model, base, args.user_conf, seconds=args.seconds, batches=batches,
                                       requests_per_stream=requests, margin=args.margin or TARGET_QPS_MARGIN,
                                       replace=args.replace, **common)
        print("| streams | threads | requests | batch | samples/s |")
        print("|---|---|---|---|---|")
        for p in points:
            e = p.engine
            print(f"| {e.num_streams} | {e.num_threads} | {e.infer_requests} | {e.batch_size} | "
                  f"{p.samples_per_second:.1f} |")
    elif scenario is Scenario.SERVER:
        done = _tune_server(args, base, common)
    else:
        points, done = tune_latency_and_record(args.model, base, scenario, args.user_conf, seconds=args.seconds,
                                               replace=args.replace, **common)
        print(f"| streams | threads | requests | batch | pinning | p{points[0].percentile:g} ms | median ms |")
        print("|---|---|---|---|---|---|---|")
        for p in points:
            e = p.engine
            print(f"| {e.num_streams} | {e.num_threads} | {e.infer_requests} | {e.batch_size} | {e.pinning} | "
                  f"{p.latency_ms:.3f} | {p.median_ms:.3f} |")
    print(done.summary)
    return 0


def _tune_server(args: argparse.Namespace, base: "SystemProfile", common: dict) -> "TuneOutcome":  # noqa: F821
    import openvino as ov

    from harness.tune import measure
    from modelprep.card import load_card
    from pipeline.flows import Workspace
    from pipeline.server_search import SERVER_MARGIN, tune_server_and_record

    if args.dataset is None:
        raise ConfigError("tune --scenario Server needs --dataset (its short LoadGen runs read real samples)")
    if args.confirm_seconds < 0:
        raise ConfigError(f"--confirm-seconds: expected seconds >= 0 (0: no confirmation run), got {args.confirm_seconds:g}")
    if args.confirmations < 1 or (args.budget_seconds is not None and args.budget_seconds <= 0):
        raise ConfigError(f"--confirmations {args.confirmations} / --budget-seconds {args.budget_seconds}: expected "
                          ">= 1 confirmation and a budget > 0 s")
    card = load_card(args.model)
    ceiling = measure(ov.Core(), args.model, card, base.engine, min(args.seconds, 5.0))
    probes, done = tune_server_and_record(args.model, args.dataset, base, args.user_conf,
                                          Workspace(work=args.work), ceiling, seconds=max(args.seconds, 5.0),
                                          confirm_seconds=args.confirm_seconds, confirmations=args.confirmations,
                                          budget_seconds=args.budget_seconds, margin=args.margin or SERVER_MARGIN,
                                          **common)
    print(f"Offline ceiling {ceiling:.1f} samples/s; probes:")
    print("| streams | batch | wait us | target qps | result | completed qps | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for p in probes:
        e = p.engine
        print(f"| {e.num_streams} | {e.batch_size} | {e.max_wait_us} | {p.target_qps:.1f} | "
              f"{'VALID' if p.valid else 'INVALID'} | {p.completed_qps} | {p.p99_ms} |")
    return done


# ----------------------------------------------------------------------------- report
def _cmd_report(args: argparse.Namespace) -> int:
    from harness.profile import load_profile
    from pipeline.flows import Workspace, demo_calibration, prepare_model
    from pipeline.report import Row, measure, write
    from modelprep.card import load_card

    profile = load_profile(args.system)
    ws = Workspace(work=args.work, results=args.out / "runs", demo_data=args.demo_data)
    calibration = demo_calibration(ws)
    rows = []
    for spec in args.rows.split(","):
        arch, _, precision = spec.partition(":")
        model_dir = prepare_model(arch, precision or "int8", ws, calibration)
        rows.append(Row(f"{arch} {precision or 'int8'}", model_dir, load_card(model_dir)))
    measure(rows, ws.demo_data / "val", args.system, ws, args.user_conf, args.rounds, int(args.duration_s * 1000))
    md = write(rows, args.out, profile.cores, args.rounds, int(args.duration_s * 1000), profile.name)
    print(md.read_text())
    print(f"written: {md}, {md.with_suffix('.json')}, {md.with_suffix('.png')}")
    return 0


# ----------------------------------------------------------------------------- models
def _cmd_models(args: argparse.Namespace) -> int:
    from harness.profile import load_profile
    from harness.tune import measure
    from modelprep.card import load_card
    from pipeline.flows import Workspace, demo_calibration, prepare_model

    try:
        import models
    except ImportError:
        raise ConfigError("'models' needs the train extra (torch): pip install -e '.[train]'") from None
    profile = load_profile(args.system)
    names = args.names.split(",") if args.names else models.list_models()
    ws = Workspace(work=args.work, demo_data=args.demo_data)
    print("Built-in architectures. Weights are UNTRAINED: only the speed is meaningful.")
    print(f"| model | input | params (M) | GMACs | INT8 samples/s ({profile.name}, {args.seconds:.0f} s, pool only) |")
    print("|---|---|---|---|---|")
    calibration = demo_calibration(ws, args.calib_subset) if args.measure else None
    import openvino as ov

    core = ov.Core()
    for name in names:
        model_dir = prepare_model(name, "int8" if args.measure else "f32", ws, calibration)
        card = load_card(model_dir)
        speed = f"{measure(core, model_dir, card, profile.engine, args.seconds):.1f}" if args.measure else ""
        print(f"| {name} | {card.input_size} | {card.params / 1e6:.2f} | {card.macs / 1e9:.2f} | {speed} |")
    return 0


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


# ----------------------------------------------------------------------------- accuracy, summary
def _cmd_accuracy(args: argparse.Namespace) -> int:
    from dataset.val_map import parse_val_map
    from records.accuracy import read_accuracy_log, top1, write_accuracy_txt

    if args.val_map.suffix == ".json":  # a COCO annotation file: the detection benchmark's mAP
        from dataset.coco import load_coco
        from records.detection import coco_map, read_detection_log, write_map_txt

        coco = load_coco(args.val_map.parent, args.val_map, check_images=False)
        mean_ap = coco_map(read_detection_log(args.log), coco, str(args.log))
        if args.out:
            write_map_txt(mean_ap, args.out)
        print(f"{mean_ap.summary}{mean_ap.line()}")
        return 0
    samples = parse_val_map(args.val_map)
    result = top1(read_accuracy_log(args.log), samples, str(args.log))
    if args.out:
        write_accuracy_txt(result, args.out)
    print(result.line())
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from records.summary import collect, render

    print(render(collect(args.results), args.format))
    return 0


# ----------------------------------------------------------------------------- pipeline
def _cmd_pipeline(args: argparse.Namespace) -> int:
    from pipeline.flows import PipelineRequest, Workspace, run_demo, run_real, run_submission
    from records.summary import collect, format_table

    from cli.submission import parse_assignments

    if args.mode not in ("all", "accuracy", "performance"):
        raise ConfigError(f"--mode must be all, accuracy or performance, got {args.mode!r}")
    check_name(args.org, "--org")  # the submission tree's <division>/<org>/ folder
    if args.tune and args.model is not None and is_packaged_copy(args.user_conf):
        raise ConfigError(f"--tune writes target_qps into --user-conf, and {args.user_conf} is the installed "
                          "package's copy: copy it to ./user.conf (or pass --user-conf FILE)")
    from common.testspec import Scenario

    ws = Workspace(work=args.work, results=args.results, demo_data=args.demo_data)
    try:
        scenarios = tuple(Scenario) if args.scenario == "all" else \
            tuple(Scenario.parse(x) for x in args.scenario.split(","))
    except ValueError as exc:
        raise ConfigError(f"--scenario: {exc} (or 'all')") from None
    if args.category and not args.submission:
        raise ConfigError("--category is for --submission (it chooses the scenarios a submission needs)")
    req = PipelineRequest(ws, args.model, args.dataset, args.calib_list, args.calib_dir, args.val_map, args.system,
                          args.precision, args.mode, args.user_conf, args.submission, args.org, args.out,
                          args.compliance, args.tune, parse_assignments(args.set), scenarios, args.category,
                          args.division, args.task, replace=args.replace, host_tuning=args.host_tuning,
                          official_checker=args.official_checker, weights=_weights_choice(args))
    if args.official_checker is not None:
        if not args.submission:
            raise ConfigError("--official-checker is for --submission (it checks the packaged tree)")
        from submit.official import checker_root

        checker_root(args.official_checker)  # a wrong checkout is refused now, not after hours of runs
    if args.submission:
        done = run_submission(req, args.command_line)
        print(f"packaged     : {', '.join(str(d) for d in done.scenario_dirs)}")
        print(f"{args.out}: OK by this harness's rules" + (" and the official checker" if args.official_checker
                                                           else "; now run the official checker on it "
                                                                "(mlperf-cpu check --official)"))
    elif args.model is None and args.dataset is None and args.calib_list is None:
        run_demo(req)
    else:
        if args.model is None or args.dataset is None:
            raise ConfigError("a real run needs --model and --dataset (see --help)")
        run_real(req)
    print(format_table(collect(args.results)))
    return 0


def _add_pipeline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="the main job (what ./run_offline.sh runs): demo, real run or submission",
                       description="No model, dataset or calibration list: the bundled demo (demo data, the committed "
                                   "demo model as FP32 and INT8, LoadGen accuracy + short NON-OFFICIAL performance "
                                   "runs). With them: a real run with official settings. With --submission: "
                                   "everything for one system, packaged and checked (no model: the demo task at "
                                   "official length).")
    p.add_argument("--model", type=Path, help="resnet50_v1.onnx (or any ONNX/IR classifier; its card is derived), "
                                               "or timm/NAME[.tag] with --weights FILE or --pretrained")
    _add_weights_options(p)
    p.add_argument("--dataset", type=Path, help="ImageNet 2012 val directory holding the JPEGs and val_map.txt")
    p.add_argument("--calib-list", type=Path, help="calibration list (MLCommons cal_image_list_option_1.txt)")
    p.add_argument("--calib-dir", type=Path, help="where the calibration images are (default: --dataset)")
    p.add_argument("--val-map", type=Path, help="default: <dataset>/val_map.txt")
    p.add_argument("--system", default="host", help="system profile: host (default) or one of configs/*.yaml")
    p.add_argument("--precision", choices=("int8", "f32", "bf16"), default="int8")
    p.add_argument("--mode", default="all", help="all (default), accuracy or performance")
    p.add_argument("--scenario", default="Offline",
                   help="Offline (default), SingleStream, MultiStream, Server, a comma-separated list, or all")
    p.add_argument("--user-conf", type=Path, default=default_user_conf(),
                   help="LoadGen user.conf (set target_qps from a measurement; default ./user.conf, else the "
                        "shipped one)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root (default: ./results)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help="prepared models and the preprocessed-image cache (default: ./work)")
    p.add_argument("--demo-data", type=Path, default=Path("data/demo"), help="where the demo dataset is built")
    p.add_argument("--task", choices=("classification", "detection"), default="classification",
                   help="detection: a YOLO-style detector on a COCO-layout --dataset (<dir>/val2017 + "
                        "annotations/instances_val2017.json), scored in mAP; no model: the detection demo")
    p.add_argument("--replace", action="store_true",
                   help="run every test again even where a complete run exists (each is replaced once the new one "
                        "has finished), and replace an existing package; without it a complete run of the same "
                        "model and settings is reused, and one of other settings stops the pipeline")
    s = p.add_argument_group("a whole submission for one system")
    s.add_argument("--submission", action="store_true",
                   help="run everything with official settings and build an open-division tree")
    s.add_argument("--org", default="Demo", help="submitter: the tree's open/<NAME> folder (default Demo)")
    s.add_argument("--out", type=Path, default=Path("submission"), help="submission tree (default: submission)")
    s.add_argument("--compliance", action="store_true", help="also run TEST01 and TEST04 (closed: always)")
    s.add_argument("--category", choices=("edge", "datacenter,edge"),
                   help="a complete entry: edge = SingleStream + MultiStream + Offline; datacenter,edge adds Server "
                        "(default: the --scenario list, open division)")
    s.add_argument("--division", choices=("open", "closed"), default="open",
                   help="closed needs the reference resnet50_v1.onnx, the official calibration list and "
                        "TEST01/TEST04")
    s.add_argument("--tune", action="store_true",
                   help="measure the engine grid first and set target_qps (writes configs/<system>-tuned.yaml)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a systems/<name>.json field this machine cannot read; repeatable")
    s.add_argument("--official-checker", type=Path, metavar="INFERENCE_CHECKOUT",
                   help="last step: MLCommons' submission checker from this local checkout of mlcommons/inference "
                        "(as mlperf-cpu check --official)")
    _add_host_tuning(p)
    p.set_defaults(handler=_cmd_pipeline)


def _add_host_tuning(parser: argparse.ArgumentParser) -> None:
    """``--host-tuning``, the one switch for changes beyond the harness's own process."""
    parser.add_argument("--host-tuning", action="store_true",
                        help="Server on the host profile: hold the CPU latency limit at 0 us (pm_qos; a busy loop "
                             "per CPU without root) on a virtual machine, run the issuing threads under SCHED_FIFO "
                             "and give the query threads short scheduler slices, for the test only (undone at its "
                             "end). Default: off, the host is left as it is")


def _watchdog_seconds(text: str) -> float:
    """``--watchdog-s``: seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


# ----------------------------------------------------------------------------- parser
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


def _add_run(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="one LoadGen test (one per process)")
    r.add_argument("--mode", choices=("accuracy", "performance", "TEST01", "TEST04"), required=True,
                   help="TEST01/TEST04: compliance runs, verified against this model's normal runs")
    r.add_argument("--scenario", default="Offline", help="LoadGen scenario (default Offline)")
    r.add_argument("--model", type=Path, required=True, help="prepared model directory (has card.json)")
    r.add_argument("--dataset", type=Path, required=True, help="image directory (ImageNet val layout)")
    r.add_argument("--val-map", type=Path, help="default: <dataset>/val_map.txt")
    r.add_argument("--system", required=True, help="system profile name (configs/*.yaml or 'host')")
    r.add_argument("--user-conf", type=Path, default=default_user_conf(),
                   help="default ./user.conf, else the shipped one")
    r.add_argument("--results", type=Path, default=Path("results"))
    r.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    _add_host_tuning(r)
    r.add_argument("--watchdog-s", type=_watchdog_seconds, metavar="SECONDS",
                   help="end the run INCOMPLETE (exit 3) when inference makes no progress for this long (default: "
                        "the profile's watchdog_s, else 20 x the warm-up's longest wait, at least 60 s)")
    r.add_argument("--replace", action="store_true",
                   help="run again where a complete run exists (it is replaced only once the new run has finished "
                        "and its logs are checked; a failed run leaves it untouched)")
    demo = r.add_argument_group("non-official settings (demo/tests; the run is marked not submittable)")
    demo.add_argument("--min-duration-ms", type=int)
    demo.add_argument("--min-query-count", type=int)
    demo.add_argument("--target-qps", type=float, help="0 = the warm-up throughput")
    demo.add_argument("--performance-sample-count", type=int)
    r.set_defaults(handler=_cmd_run)


def _add_tools(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tune", help="measure engine settings per scenario; write the best profile and the "
                                    "user.conf target (Offline/Server target_qps, SingleStream/MultiStream "
                                    "target_latency)")
    t.add_argument("--model", type=Path, required=True, help="prepared model directory")
    t.add_argument("--scenario", default="Offline", help="Offline (default), SingleStream, MultiStream or Server")
    t.add_argument("--dataset", type=Path, help="Server only: the image directory its short LoadGen runs read")
    t.add_argument("--work", type=Path, default=DEFAULT_WORK, help="Server only: where the image cache is")
    t.add_argument("--system", default="host", help="base profile (its cores and system description)")
    t.add_argument("--batches", default="8,16,32", help="comma-separated batch sizes")
    t.add_argument("--requests-per-stream", default="1,2", help="comma-separated infer requests per stream")
    t.add_argument("--seconds", type=float, default=3.0,
                   help="measuring time per point (Server: per LoadGen run, at least 5)")
    t.add_argument("--confirm-seconds", type=float, default=600.0,
                   help="Server only: the confirmation runs' length (default 600, the official duration; 0: none, "
                        "the highest VALID probe counts); after a failed one the search steps down until one is VALID")
    t.add_argument("--confirmations", type=int, default=4,
                   help="Server only: confirmation runs at most, the last at the floor (default 4)")
    t.add_argument("--budget-seconds", type=float,
                   help="Server only: the search's time budget (default: its plan's worst case, printed at the start)")
    t.add_argument("--name", help="profile name to write (default <system>-tuned)")
    t.add_argument("--profile-out", type=Path, help="profile YAML to write (default configs/<name>.yaml)")
    t.add_argument("--margin", type=float,
                   help="Offline: target_qps = best x margin (default 1.05: an official run lasts ~693 s at the "
                        "measured rate; raise it on a machine shared with other jobs: a run over 1.1 x margin times "
                        "as fast as measured ends before 600 s and is INVALID); Server: target_qps = the rate "
                        "confirmed VALID x margin (default 0.95)")
    t.add_argument("--user-conf", type=Path, default=Path("user.conf"))
    t.add_argument("--replace", action="store_true",
                   help="write over a profile shipped with the harness (configs/*.yaml other than *-tuned.yaml); "
                        "every profile and user.conf it changes keeps its previous version as <file>.bak-<utc>")
    _add_host_tuning(t)
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
    rp.add_argument("--user-conf", type=Path, default=default_user_conf(),
                    help="default ./user.conf, else the shipped one")
    rp.set_defaults(handler=_cmd_report)

    m = sub.add_parser("models", help="built-in architectures: params, MACs and (--measure) INT8 speed")
    m.add_argument("--names", help="comma-separated subset (default: all registered)")
    m.add_argument("--measure", action="store_true", help="prepare INT8 and measure the pool's throughput")
    m.add_argument("--system", default="host")
    m.add_argument("--seconds", type=float, default=5.0)
    m.add_argument("--calib-subset", type=int, default=100, help="calibration images (speed only)")
    m.add_argument("--demo-data", type=Path, default=Path("data/demo"))
    m.add_argument("--work", type=Path, default=DEFAULT_WORK)
    m.set_defaults(handler=_cmd_models)

    a = sub.add_parser("accuracy", help="accuracy.txt from mlperf_log_accuracy.json + val_map.txt "
                                        "(or a COCO instances_*.json: mAP)")
    a.add_argument("--log", type=Path, required=True)
    a.add_argument("--val-map", type=Path, required=True, help="val_map.txt, or a COCO annotation file (.json)")
    a.add_argument("--out", type=Path)
    a.set_defaults(handler=_cmd_accuracy)

    s = sub.add_parser("summary", help="table of every run under a results directory")
    s.add_argument("--results", type=Path, default=Path("results"))
    s.add_argument("--format", choices=("md", "json", "csv"), default="md",
                   help="md: a table of runs (default); json: the run records; csv: one row per scenario in the "
                        "official checker's summary.csv columns")
    s.set_defaults(handler=_cmd_summary)


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
    from cli.submission import add_subcommands

    parser = argparse.ArgumentParser(prog="mlperf-cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_pipeline(sub)
    _add_prepare(sub)
    _add_run(sub)
    _add_tools(sub)
    _add_zoo(sub)
    _add_train(sub)
    _add_search(sub)
    add_subcommands(sub)  # package, check, describe-system
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
        _log_arguments(args)
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
