"""Reading what LoadGen wrote: the detail log's MLLOG records and the summary.

The detail log is the source of truth (the submission checker reads it too);
the summary is only used for the human-readable result line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import HarnessError

DETAIL = "mlperf_log_detail.txt"
SUMMARY = "mlperf_log_summary.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"
_MARKER = ":::MLLOG"


@dataclass
class DetailLog:
    """Key -> last value of every MLLOG record, plus every error and warning record."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # MLLOG lines that are not a record LoadGen writes ("line N: why"): a tampered or damaged log.
    malformed: list[str] = field(default_factory=list)
    source: str = ""  # the file it was read from, for messages

    def get(self, key: str, default: Any = None) -> Any:
        """The last value logged under ``key``."""
        return self.values.get(key, default)


def read_detail(run_dir: Path) -> DetailLog:
    """Parse ``mlperf_log_detail.txt`` in ``run_dir``."""
    path = Path(run_dir) / DETAIL
    if not path.is_file():
        raise HarnessError(f"{path}: LoadGen detail log missing")
    return parse_detail(path.read_text(errors="replace"), str(path))


def parse_detail(text: str, source: str = "") -> DetailLog:
    """The MLLOG records of a detail log's text. A line that does not parse, or is not a JSON object
    with a string ``key``, is listed in ``malformed`` (never raised): the log may come from anyone."""
    log = DetailLog(source=source)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(_MARKER):
            continue
        try:
            rec = json.loads(line[len(_MARKER):])
        except (json.JSONDecodeError, RecursionError):
            log.malformed.append(f"line {lineno}: MLLOG record is not valid JSON")
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
            what = type(rec).__name__ if not isinstance(rec, dict) else f"key of type {type(rec.get('key')).__name__}"
            log.malformed.append(f"line {lineno}: MLLOG record is not an object with a string key ({what})")
            continue
        key, value = rec["key"], rec.get("value")
        log.values[key] = value
        meta = rec.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            log.malformed.append(f"line {lineno}: MLLOG record {key!r}: metadata is a {type(meta).__name__}, "
                                 "not an object")
            meta = None
        meta = meta or {}
        if meta.get("is_error") or key.startswith("error"):
            log.errors.append(f"{key}: {value}")
        elif meta.get("is_warning") or key.startswith("warning"):
            log.warnings.append(f"{key}: {value}")
    return log


def read_summary_lines(run_dir: Path) -> dict[str, str]:
    """``key : value`` pairs of ``mlperf_log_summary.txt`` (e.g. 'Result is', 'Samples per second')."""
    path = Path(run_dir) / SUMMARY
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        if " : " in line:
            key, value = line.split(" : ", 1)
            out.setdefault(key.strip(), value.strip())
    return out
