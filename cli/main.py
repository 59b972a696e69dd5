"""Command line: ``mlperf-cpu {pipeline,prepare,run,tune,report,models,zoo,search,train,accuracy,summary,package,check,describe-system}``.

The entry point: ``main(argv)`` is testable and is the only place that turns errors into
exit codes: a ``HarnessError`` prints one ``ERROR`` line (after closing any progress bar),
anything else a traceback. Each subcommand is one module of this package, its parser
(``add_parser(sub)``) beside its handler (``run(args) -> int``); handlers validate the edge
and call the stage or flow that does the work; they print, the library only logs.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import shlex
import signal
import sys
from typing import Callable, Sequence

from common.childproc import protect_children
from common.errors import HarnessError
from common.telemetry import allow_hub_downloads, telemetry_off

from cli._options import log_arguments

log = logging.getLogger("mlperf_cpu")


def _setup_logging(verbose: bool) -> None:
    """INFO (DEBUG with -v) to stderr; OpenVINO's and NNCF's own loggers only from WARNING."""
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
    from cli import (accuracy, check, describe_system, models, package, pipeline, prepare, report, run, search,
                     summary, train, tune, zoo)

    parser = argparse.ArgumentParser(prog="mlperf-cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    # The order of `mlperf-cpu --help`.
    for command in (pipeline, prepare, run, tune, report, models, accuracy, summary, zoo, train, search,
                    package, check, describe_system):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    # Before any handler imports OpenVINO or NNCF: no telemetry, no hub access, and every child
    # process immune to modules in its working directory (common.telemetry, common.childproc).
    telemetry_off()
    protect_children()
    # A crash inside LoadGen or OpenVINO (native code) prints every thread's Python stack: what a
    # user can report instead of a bare "Segmentation fault". Not when stderr is no file (in-process calls).
    with contextlib.suppress(AttributeError, ValueError, OSError):
        faulthandler.enable(file=sys.stderr)
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
