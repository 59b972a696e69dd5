"""``mlperf-cpu train``: distillation (the default, under torchrun), demo and detector training."""

from __future__ import annotations

import argparse
import logging
import os

from common.errors import ConfigError

TRAIN_USAGE = ("torchrun --standalone --nproc-per-node 2 -m cli train --teacher T.onnx --student NAME --train DIR ...; "
               "mlperf-cpu train demo|detector [--out FILE.onnx ...]")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` to ``sub`` (from ``add_subparsers``)."""
    t = sub.add_parser("train", add_help=False, prefix_chars="+",
                       help=f"training: distillation (the default, under torchrun), demo, detector: {TRAIN_USAGE}")
    # Every option belongs to the program's own parser (``mlperf-cpu train [demo|detector] --help``).
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the training program named first in the arguments with the rest of them."""
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
