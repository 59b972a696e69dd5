"""What every bench script shares: where it works, the train-extra check, the untrained-weights note.

A bench imports it before anything else of the project's: importing it switches telemetry off and
protects child processes (``common.telemetry``, ``common.childproc``) before OpenVINO or NNCF are
loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Callable

from common.childproc import protect_children
from common.telemetry import telemetry_off

telemetry_off()  # a bench script's entry point: before pipeline.flows loads OpenVINO and NNCF
protect_children()

import numpy as np  # noqa: E402

from pipeline.flows import Workspace  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "work" / "bench"
WORKSPACE = Workspace(work=WORK, results=WORK / "results", demo_data=WORK / "demo")
UNTRAINED = "UNTRAINED weights (seeded init): speed only, accuracy is meaningless"


class RandomBankQSL:
    """What the SUTs read of a QSL (``bank``, ``rows_for``) over ``rows`` seeded random rows, index i
    being row i, with LoadGen's load/unload callbacks as no-ops: for benches that time the feed or
    the dispatch in-process (inference time does not depend on pixel values)."""

    def __init__(self, rows: int, sample_shape: tuple[int, ...]) -> None:
        self.total_count = rows
        self.bank = np.random.default_rng(0).integers(0, 256, (rows, *sample_shape), np.uint8)

    def load_samples(self, indices: list[int]) -> None: ...

    def unload_samples(self, indices: list[int]) -> None: ...

    @staticmethod
    def rows_for(indices: np.ndarray) -> np.ndarray:
        return indices.astype(np.int32)


def require_train_extra(script: str) -> None:
    """Built-in architectures are exported with torch and onnx (the 'train' extra): say how to get them."""
    # Found, not imported: importing torch costs seconds, and a bench imports it only where it uses it.
    if any(importlib.util.find_spec(name) is None for name in ("onnx", "torch")):
        sys.exit(f"ERROR: the 'train' extra (torch, onnx) is missing: run bench/run.sh {Path(script).stem} "
                 "(or .venv/bin/pip install -e '.[train]')")


def run_main(parse_args: Callable[[list[str] | None], argparse.Namespace],
             benchmark: Callable[[argparse.Namespace], int], argv: list[str] | None) -> int:
    """A bench script's entry point: logging, then any failure is one ERROR line and a non-zero exit."""
    import logging
    import subprocess

    from common.errors import HarnessError

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[ %(name)s ] %(message)s")
    try:
        return benchmark(args)
    except HarnessError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code or 1
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"ERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
