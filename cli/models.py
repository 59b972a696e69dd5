"""``mlperf-cpu models``: built-in architectures, their params, MACs and (``--measure``) INT8 speed."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError

from cli._options import DEFAULT_WORK


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``models`` to ``sub`` (from ``add_subparsers``)."""
    m = sub.add_parser("models", help="built-in architectures: params, MACs and (--measure) INT8 speed")
    m.add_argument("--names", help="comma-separated subset (default: all registered)")
    m.add_argument("--measure", action="store_true", help="prepare INT8 and measure the pool's throughput")
    m.add_argument("--system", default="host")
    m.add_argument("--seconds", type=float, default=5.0)
    m.add_argument("--calib-subset", type=int, default=100, help="calibration images (speed only)")
    m.add_argument("--demo-data", type=Path, default=Path("data/demo"))
    m.add_argument("--work", type=Path, default=DEFAULT_WORK)
    m.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print one row per architecture (prepared, and with ``--measure`` measured)."""
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
