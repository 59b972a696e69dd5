"""``mlperf-cpu report``: Table 1 on this host (f32/bf16/INT8 ResNet-50 vs INT8 DeciNet-style models)."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.resources import default_user_conf

from cli._options import DEFAULT_WORK


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``report`` to ``sub`` (from ``add_subparsers``)."""
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
    rp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Prepare each row's model, measure the rows interleaved, write and print the table."""
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
