"""Top-1 accuracy from ``mlperf_log_accuracy.json``, equal in logic to the reference
``accuracy-imagenet.py`` (with ``--dtype int32``: each response is one int32 label).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import HarnessError
from dataset.val_map import Sample

LABEL_BYTES = 4  # one int32 label per response
ACCURACY_TXT = "accuracy.txt"


@dataclass(frozen=True)
class AccuracyResult:
    """Top-1 accuracy as the reference accuracy script reports it."""

    good: int
    total: int

    @property
    def percent(self) -> float:
        """Top-1 in percent."""
        return 100.0 * self.good / self.total if self.total else 0.0

    def line(self) -> str:
        """The reference line the submission checker parses."""
        return f"accuracy={self.percent:.3f}%, good={self.good}, total={self.total}"


def _record_label(rec: object, path: Path, position: int) -> tuple[int, int]:
    """(qsl_idx, label) of one accuracy-log record; a malformed record names its position."""
    if not isinstance(rec, dict) or "qsl_idx" not in rec or "data" not in rec:
        raise HarnessError(f"{path}: record {position} is not {{'qsl_idx', 'data'}}")
    try:
        idx = int(rec["qsl_idx"])
        data = bytes.fromhex(str(rec["data"]))
    except (TypeError, ValueError):
        raise HarnessError(f"{path}: record {position} has a malformed qsl_idx or data field") from None
    if len(data) != LABEL_BYTES:
        raise HarnessError(f"{path}: sample {idx} has a {len(data)}-byte response, expected one int32 "
                           "label (did inference fail?)")
    return idx, int(np.frombuffer(data, dtype=np.int32)[0])


def load_accuracy_records(path: Path) -> list:
    """The records of an accuracy log (a JSON list), with one-line errors naming the file."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"{path}: accuracy log missing") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(records, list):
        raise HarnessError(f"{path}: expected a JSON list of records")
    return records


def read_accuracy_log(path: Path) -> dict[int, int]:
    """qsl_idx -> predicted label for every record; a sample logged twice must agree."""
    path = Path(path)
    records = load_accuracy_records(path)
    labels: dict[int, int] = {}
    for position, rec in enumerate(records):
        idx, label = _record_label(rec, path, position)
        if labels.setdefault(idx, label) != label:
            raise HarnessError(f"{path}: sample {idx} logged with different labels")
    return labels


def top1(labels: dict[int, int], samples: list[Sample], origin: str = "accuracy log") -> AccuracyResult:
    """Count predictions equal to the val_map label, over the samples that were logged.

    A sample index outside the val_map is an error (the log belongs to another dataset);
    a negative predicted label simply counts as wrong, as in the reference script.
    """
    bad = [idx for idx in labels if not 0 <= idx < len(samples)]
    if bad:
        raise HarnessError(f"{origin}: qsl_idx {min(bad)} is outside the val_map's 0..{len(samples) - 1} "
                           "(log and val_map of different datasets?)")
    good = sum(1 for idx, label in labels.items() if samples[idx].label == label)
    return AccuracyResult(good=good, total=len(labels))


def write_accuracy_txt(result: AccuracyResult, path: Path) -> None:
    """Write the reference result line (the submission checker parses it)."""
    Path(path).write_text(result.line() + "\n")
