"""``mlperf-cpu pipeline``: the main job (what ./run_offline.sh runs): demo, real run or submission."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError
from common.names import check_name
from common.resources import default_user_conf, is_packaged_copy

from cli._options import DEFAULT_WORK, add_host_tuning, add_weights_options, parse_assignments, weights_choice


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``pipeline`` to ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("pipeline", help="the main job (what ./run_offline.sh runs): demo, real run or submission",
                       description="No model, dataset or calibration list: the bundled demo (demo data, the committed "
                                   "demo model as FP32 and INT8, LoadGen accuracy + short NON-OFFICIAL performance "
                                   "runs). With them: a real run with official settings. With --submission: "
                                   "everything for one system, packaged and checked (no model: the demo task at "
                                   "official length).")
    p.add_argument("--model", type=Path, help="resnet50_v1.onnx (or any ONNX/IR classifier; its card is derived), "
                                               "or timm/NAME[.tag] with --weights FILE or --pretrained")
    add_weights_options(p)
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
    add_host_tuning(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The demo, a real run or a whole submission, then the table of runs."""
    from pipeline.flows import PipelineRequest, Workspace, run_demo, run_real, run_submission
    from records.summary import collect, format_table

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
    if (args.weights is not None or args.pretrained) and args.model is None:
        raise ConfigError("--weights/--pretrained load trained weights for --model timm/NAME[.tag]; no --model given")
    if args.category and not args.submission:
        raise ConfigError("--category is for --submission (it chooses the scenarios a submission needs)")
    req = PipelineRequest(ws, args.model, args.dataset, args.calib_list, args.calib_dir, args.val_map, args.system,
                          args.precision, args.mode, args.user_conf, args.submission, args.org, args.out,
                          args.compliance, args.tune, parse_assignments(args.set), scenarios, args.category,
                          args.division, args.task, replace=args.replace, host_tuning=args.host_tuning,
                          official_checker=args.official_checker, weights=weights_choice(args))
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
