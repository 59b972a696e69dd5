#!/usr/bin/env python3
"""Regenerate docs/performance.md from the benches' JSON output: one current figure per bench.

    .venv/bin/python scripts/performance_table.py [JSON_OR_DIR ...] [--out docs/performance.md]

Every bench writes, with ``--json FILE``, a list of figure records under the key ``performance``
(``bench/_record.py``): bench, figure name, ratio, the two raw figures with units, UTC date, the CPU
as OpenVINO names it, its ISA, the git commit and the command line. This script reads every JSON
file given (directories are searched recursively; files without the key are skipped), keeps the
newest record per CPU, bench and figure, and writes one table per CPU. A bench of ``bench/`` with
no record for a CPU is listed as not yet measured there. The section of a CPU with no record among
the inputs is carried over from the existing page unchanged: its records were written on another
machine, whose ``work/`` this one does not have. Older figures stay in git history.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: the project's packages
from common.files import write_text_atomic  # noqa: E402

RECORD_KEY = "performance"  # the key bench/_record.py writes
SCHEMA = 1
REQUIRED = ("bench", "ratio", "ratio_is", "ours", "reference", "date_utc", "cpu", "commit", "command")
DEFAULT_INPUT = REPO / "work" / "bench"
DEFAULT_OUT = REPO / "docs" / "performance.md"


class RecordError(ValueError):
    """A JSON file holds a ``performance`` key whose records are malformed; the message names the file."""


@dataclass(frozen=True)
class Figure:
    """One bench figure as a record describes it, and the file it came from."""

    bench: str
    name: str
    ratio: float | None
    ratio_is: str
    goal: str
    ours: dict[str, Any]
    reference: dict[str, Any]
    note: str
    date_utc: str
    cpu: str
    isa: str | None
    commit: str | None
    command: str
    source: Path

    @property
    def key(self) -> tuple[str, str, str]:
        """What a newer record replaces: the same figure of the same bench on the same CPU."""
        return self.cpu, self.bench, self.name


def _value(raw: Any, field: str, path: Path) -> dict[str, Any]:
    """A raw figure ``{"name", "value", "unit"}``, checked."""
    if not (isinstance(raw, dict) and isinstance(raw.get("name"), str) and isinstance(raw.get("unit"), str)
            and (raw.get("value") is None or isinstance(raw.get("value"), (int, float)))):
        raise RecordError(f"{path}: '{field}' must be {{name, value, unit}}, got {raw!r}")
    return raw


def parse_record(raw: Any, path: Path) -> Figure:
    """One record of ``path``'s ``performance`` list as a Figure; a malformed one is a RecordError."""
    if not isinstance(raw, dict):
        raise RecordError(f"{path}: a '{RECORD_KEY}' entry is not an object")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise RecordError(f"{path}: a '{RECORD_KEY}' record lacks {', '.join(missing)}")
    if raw.get("schema", SCHEMA) != SCHEMA:
        raise RecordError(f"{path}: record schema {raw.get('schema')!r}, this script reads {SCHEMA}")
    ratio = raw["ratio"]
    if ratio is not None and not isinstance(ratio, (int, float)):
        raise RecordError(f"{path}: 'ratio' must be a number, got {ratio!r}")
    return Figure(bench=str(raw["bench"]), name=str(raw.get("figure") or ""), ratio=ratio,
                  ratio_is=str(raw["ratio_is"]), goal=str(raw.get("goal") or ""),
                  ours=_value(raw["ours"], "ours", path), reference=_value(raw["reference"], "reference", path),
                  note=str(raw.get("note") or ""), date_utc=str(raw["date_utc"]), cpu=str(raw["cpu"]),
                  isa=raw.get("isa"), commit=raw.get("commit"), command=str(raw["command"]), source=path)


def json_files(inputs: Iterable[Path]) -> list[Path]:
    """The files named, and every ``*.json`` under the directories named, in a stable order."""
    out: list[Path] = []
    for p in inputs:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.json") if q.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise RecordError(f"{p}: no such file or directory")
    return out


def read_figures(path: Path) -> list[Figure]:
    """The figure records of one JSON file; [] when it is not JSON or has no ``performance`` key."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    if not isinstance(data, dict) or RECORD_KEY not in data:
        return []
    records = data[RECORD_KEY]
    if not isinstance(records, list):
        raise RecordError(f"{path}: '{RECORD_KEY}' must be a list of records")
    return [parse_record(r, path) for r in records]


def newest(figures: Iterable[Figure]) -> dict[tuple[str, str, str], Figure]:
    """The newest figure per CPU, bench and figure name (ISO UTC dates compare as strings)."""
    out: dict[tuple[str, str, str], Figure] = {}
    for f in figures:
        if f.key not in out or f.date_utc >= out[f.key].date_utc:
            out[f.key] = f
    return out


def bench_names(bench_dir: Path) -> list[str]:
    """Every bench script of ``bench/`` (``NAME.py``, not the ``_helpers``)."""
    return sorted(p.stem for p in bench_dir.glob("*.py") if not p.name.startswith("_"))


def _num(v: float | None) -> str:
    """A figure with as many digits as it is worth."""
    if v is None:
        return "n/a"
    a = abs(v)
    return f"{v:,.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _row(f: Figure) -> str:
    """One table row."""
    ratio = "n/a" if f.ratio is None else f"**{f.ratio:.3f}**"
    goal = f" (goal {f.goal})" if f.goal else ""
    raw = (f"{_cell(f.ours['name'])} {_num(f.ours['value'])} {_cell(f.ours['unit'])} / "
           f"{_cell(f.reference['name'])} {_num(f.reference['value'])} {_cell(f.reference['unit'])}")
    what = _cell(f.name) or "-"
    note = f"; {_cell(f.note)}" if f.note else ""
    return (f"| {f.bench} | {what} | {ratio}{goal} | {raw} | {_cell(f.ratio_is)}{note} | {f.date_utc} | "
            f"{f.commit or 'n/a'} | `{_cell(f.command)}` |")


def other_cpus(page: str, cpus: Iterable[str]) -> dict[str, list[str]]:
    """The CPU sections of an existing ``page`` (heading -> lines) for CPUs other than ``cpus``: their
    records were written on other machines, so a page regenerated here keeps them as they are."""
    sections: dict[str, list[str]] = {}
    heading = None
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line
            sections[heading] = []
        elif heading is not None:
            sections[heading].append(line)
    mine = tuple(cpus)
    return {h: body for h, body in sections.items()
            if not any(h == f"## {cpu}" or h.startswith(f"## {cpu} (") for cpu in mine)}


def _section(cpu: str, current: dict[tuple[str, str, str], Figure], benches: list[str]) -> tuple[str, list[str]]:
    """One CPU's table: its heading and the lines under it."""
    rows = sorted((f for (c, _, _), f in current.items() if c == cpu), key=lambda f: (f.bench, f.name))
    isa = next((f.isa for f in rows if f.isa), None)
    body = ["", "| bench | figure | ratio | ours / reference | ratio is | date (UTC) | commit | command |",
            "|---|---|---|---|---|---|---|---|"]
    body += [_row(f) for f in rows]
    missing = [b for b in benches if b not in {f.bench for f in rows}]
    body += [""] + ([f"Not yet measured on this CPU kind: {', '.join(f'`{b}`' for b in missing)}.", ""]
                    if missing else [])
    return f"## {cpu}" + (f" ({isa})" if isa else ""), body


def render(current: dict[tuple[str, str, str], Figure], benches: list[str],
           kept: dict[str, list[str]] | None = None) -> str:
    """docs/performance.md: a header saying how it is made, then one table per CPU (``kept``: other
    CPUs' sections carried over from the existing page)."""
    lines = [
        "# Performance: one current figure per bench",
        "",
        "Generated by `scripts/performance_table.py` from the JSON the benches write; do not edit by hand.",
        "To regenerate: run each bench with `--json work/bench/json/NAME.json` (`bench/README.md` lists",
        "the benches and their options), then `.venv/bin/python scripts/performance_table.py work/bench/json`.",
        "Each row is the newest record of that bench figure on that CPU; older figures live in git history.",
        "A CPU with no record among the inputs keeps its section from the page as it was.",
        "",
        "Weights: big architectures (resnet50, decinet_*, yolo11l, the zoo's timm models) are timed with",
        "UNTRAINED seeded weights: their speed is real, their accuracy is not measured. A commit ending in",
        "`+uncommitted` was measured on a work tree with changes to tracked files.",
        "",
    ]
    sections = dict(kept or {})
    for cpu in {cpu for cpu, _, _ in current}:
        heading, body = _section(cpu, current, benches)
        sections[heading] = body
    if not sections:
        lines += ["No bench record has been read yet: every bench is not yet measured on any CPU kind.", "",
                  "Benches: " + ", ".join(f"`{b}`" for b in benches) + ".", ""]
    for heading in sorted(sections):
        lines += [heading, *sections[heading]]
    return "\n".join(lines).rstrip("\n") + "\n"


def generate(inputs: list[Path], out: Path, bench_dir: Path = REPO / "bench") -> dict[tuple[str, str, str], Figure]:
    """Read the records under ``inputs``, write ``out`` atomically; returns the rows written."""
    current = newest(f for path in json_files(inputs) for f in read_figures(path))
    page = out.read_text(errors="replace") if out.is_file() else ""
    kept = other_cpus(page, {cpu for cpu, _, _ in current})
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, render(current, bench_names(bench_dir), kept))
    return current


def main(argv: list[str] | None = None) -> int:
    """Command line: inputs (default work/bench), --out (default docs/performance.md)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", type=Path, help=f"JSON files or directories (default {DEFAULT_INPUT})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="page to write (default docs/performance.md)")
    p.add_argument("--bench-dir", type=Path, default=REPO / "bench", help="where the bench scripts are")
    args = p.parse_args(argv)
    try:
        current = generate(args.inputs or [DEFAULT_INPUT], args.out, args.bench_dir)
    except RecordError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(current)} figures from {len({f.source for f in current.values()})} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
