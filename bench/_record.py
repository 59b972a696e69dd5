"""The record every bench adds to its ``--json`` output: what ``docs/performance.md`` is built from.

    figures = [figure("harness_vs_benchmark_app", ratio, Value("ours", 102.4, "samples/s"),
                      Value("benchmark_app", 100.9, "FPS"), ratio_is="ours / benchmark_app", goal=">= 0.95")]
    write_json(args.json, {"rounds": ...}, figures)

Each figure carries its bench, an optional name inside the bench (a model, a threshold), the
ratio the bench prints last, the two raw figures it is made of with their units, and where and
how it was measured: UTC date, the CPU as OpenVINO names it, the CPU's widest vector ISA, the git
commit and the command line. ``scripts/performance_table.py`` reads these records (the key
``RECORD_KEY`` of any JSON file) and keeps the newest per bench figure.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.cpuflags import cpu_flags
from common.files import write_text_atomic

REPO = Path(__file__).resolve().parent.parent
RECORD_KEY = "performance"
SCHEMA = 1
# Widest first: the first flag the CPU has names the vector ISA OpenVINO's CPU kernels can use.
ISA_FLAGS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx512f", "AVX-512"),
             ("avx_vnni", "AVX2 VNNI"), ("avx2", "AVX2"), ("sse4_2", "SSE4.2"))


@dataclass(frozen=True)
class Value:
    """One raw figure of a comparison: who measured it, the number and its unit."""

    name: str
    value: float
    unit: str


def cpu_name() -> str:
    """The CPU as OpenVINO names it (``FULL_DEVICE_NAME``)."""
    import openvino as ov

    return str(ov.Core().get_property("CPU", "FULL_DEVICE_NAME"))


def cpu_isa(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The widest vector ISA in the CPU's flags (what the engine's kernels can use), or None."""
    flags = cpu_flags(cpuinfo)
    return next((label for flag, label in ISA_FLAGS if flag in flags), None)


def git_commit(repo: Path = REPO) -> str | None:
    """``HEAD``'s short hash, with ``+uncommitted`` when tracked files differ from it; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+uncommitted" if dirty else "")


def command_line(argv: list[str] | None = None) -> str:
    """The bench's command as a user types it: ``bench/run.sh NAME ARGS`` (run.sh runs
    ``python -P -m bench.NAME``, whose ``sys.argv[0]`` is ``bench/NAME.py``'s path)."""
    argv = list(sys.argv if argv is None else argv)
    return shlex.join(["bench/run.sh", Path(argv[0]).stem, *argv[1:]])


def figure(bench: str, ratio: float, ours: Value, reference: Value, *, ratio_is: str, name: str = "",
           goal: str = "", note: str = "") -> dict[str, Any]:
    """One figure's record, stamped with date, CPU, ISA, commit and command line."""
    return {"schema": SCHEMA, "bench": bench, "figure": name, "ratio": None if math.isnan(ratio) else ratio,
            "ratio_is": ratio_is, "goal": goal, "ours": asdict(ours), "reference": asdict(reference),
            "note": note, "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cpu": cpu_name(), "isa": cpu_isa(), "commit": git_commit(), "command": command_line()}


def host_tuning_label(on: bool) -> str:
    """The suffix a figure's name carries when host tuning was on, so it never replaces the untuned figure."""
    return ", host tuning" if on else ""


def write_json(path: Path, payload: dict[str, Any], figures: list[dict[str, Any]]) -> None:
    """Write ``payload`` with the figures' records under ``RECORD_KEY``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({**payload, RECORD_KEY: figures}, indent=2, default=str) + "\n")


def chosen_summary(summaries: dict[str, dict[str, float]]) -> dict[str, float]:
    """Of ``bench._rounds.print_summary``'s medians, the ones its ``ratio`` line printed (clean rounds if any)."""
    return summaries.get("clean", summaries["all"])
