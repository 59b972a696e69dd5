"""Top-1 accuracy from ``mlperf_log_accuracy.json``, equal in logic to the reference
``accuracy-imagenet.py`` (with ``--dtype int32``: each response is one int32 label).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dataset.val_map import Sample
from sut.errors import HarnessError
from sut.types import AccuracyResult


def read_accuracy_log(path: Path) -> dict[int, int]:
    """qsl_idx -> predicted label for every record; a sample logged twice must agree."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"{path}: accuracy log missing") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    labels: dict[int, int] = {}
    for rec in records:
        data = bytes.fromhex(rec["data"])
        if len(data) != 4:
            raise HarnessError(f"{path}: sample {rec['qsl_idx']} has a {len(data)}-byte response, "
                               "expected one int32 label (did inference fail?)")
        label = int(np.frombuffer(data, dtype=np.int32)[0])
        idx = int(rec["qsl_idx"])
        if labels.setdefault(idx, label) != label:
            raise HarnessError(f"{path}: sample {idx} logged with different labels")
    return labels


def top1(labels: dict[int, int], samples: list[Sample]) -> AccuracyResult:
    """Count predictions equal to the val_map label, over the samples that were logged."""
    good = sum(1 for idx, label in labels.items() if samples[idx].label == label)
    return AccuracyResult(good=good, total=len(labels))


def write_accuracy_txt(result: AccuracyResult, path: Path) -> None:
    """Write the reference result line (the submission checker parses it)."""
    Path(path).write_text(result.line() + "\n")
