"""The submission tree's layout and the files packaging writes into it.

Layout (round v6.1; benchmark folder ``resnet50``, which the checker maps to ``resnet``, or for a
detector ``yolo-99`` / ``yolo-95``, the checker's own names)::

    <out>/<division>/<Org>/systems/<system>.json
    <out>/<division>/<Org>/src/...                         git-tracked files of the project
    <out>/<division>/<Org>/results/<system>/<resnet50|yolo-99|yolo-95>/<Scenario>/
        performance/run_1/mlperf_log_summary.txt, mlperf_log_detail.txt
        accuracy/mlperf_log_summary.txt, mlperf_log_detail.txt,
                 mlperf_log_accuracy.json (first and last 4 KiB), accuracy.txt (+ hash= line)
        measurements.json, user.conf, README.md (with a machine-readable provenance block)

The accuracy log is cut and hashed the way the official ``truncate_accuracy_log.py``
does it: ``hash=<sha256 of the full file>`` is appended to accuracy.txt after a blank
line, and the log becomes its first 4096 bytes, ``\\n\\n...\\n\\n`` and its last 4096.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from common.files import sha256_file
from common.testspec import Scenario
from modelprep.card import ModelCard

MLPERF_MODEL = "resnet"  # the checker's name for the benchmark
MAX_ACCURACY_LOG_BYTES = 10 * 1024
TRUNCATE_KEEP_BYTES = 4096
TRUNCATE_SEPARATOR = b"\n\n...\n\n"
NOT_FOR_SUBMISSION = "NOT_FOR_SUBMISSION.txt"
_PROVENANCE = re.compile(r"## Provenance \(machine-readable\)\s*```json\n(.*?)\n```", re.S)
_PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "int8": "int8"}


def org_dir(out_tree: Path, division: str, org: str) -> Path:
    """``<out>/<division>/<Org>``."""
    return Path(out_tree) / division / org


def system_json_path(out_tree: Path, division: str, org: str, system_name: str) -> Path:
    """``<out>/<division>/<Org>/systems/<system>.json``."""
    return org_dir(out_tree, division, org) / "systems" / f"{system_name}.json"


def packaged_scenario_dir(out_tree: Path, division: str, org: str, system_name: str, benchmark_folder: str,
                          scenario: Scenario) -> Path:
    """``<out>/<division>/<Org>/results/<system>/<benchmark>/<Scenario>``."""
    return org_dir(out_tree, division, org) / "results" / system_name / benchmark_folder / scenario.value


def truncate_accuracy_log(src: Path, dst_log: Path, src_txt: Path, dst_txt: Path) -> str:
    """Copy accuracy.txt with ``hash=`` appended and the accuracy log cut to its first and last 4 KiB.

    Same result as the official ``truncate_accuracy_log.py``; a log under 4 KiB is copied whole.
    Returns the sha256 of the full log.
    """
    digest = sha256_file(src)
    data = Path(src).read_bytes()
    if len(data) >= TRUNCATE_KEEP_BYTES:
        data = data[:TRUNCATE_KEEP_BYTES] + TRUNCATE_SEPARATOR + data[-TRUNCATE_KEEP_BYTES:]
    Path(dst_log).write_bytes(data)
    Path(dst_txt).write_text(Path(src_txt).read_text() + f"\nhash={digest}\n")
    return digest


def measurements_from_card(card: ModelCard) -> dict[str, str]:
    """measurements.json from the model card (our served IR always takes uint8 images)."""
    rest = _PRECISION_NAMES.get(card.inference_precision, card.inference_precision)
    weights = f"{card.source} (sha256 {card.source_sha256})" if card.source and card.source_sha256 else card.source
    conversion = ("converted to OpenVINO IR; weights unchanged; the mean/std normalisation is an input "
                  "preprocessing step inside the model")
    if card.precision == "int8":
        cal = card.calibration or {}
        cal_text = ", ".join(x for x in (
            f"preset {cal['preset']}" if cal.get("preset") else "",
            f"{cal['images']} calibration images" if cal.get("images") else "",
            f"list {Path(str(cal['list'])).name} (sha256 {cal.get('list_sha256', '?')})" if cal.get("list") else "",
        ) if x)
        transformations = (f"post-training INT8 quantization with NNCF ({cal_text}); layers left in float run "
                           f"in {rest}; converted to OpenVINO IR; no retraining")
        weight_types = f"int8, {rest}" if rest else "int8"
    elif card.precision == "bf16":
        transformations = conversion + "; executed in bf16 (INFERENCE_PRECISION_HINT bf16)"
        weight_types = "bf16"
    else:
        transformations = conversion
        weight_types = _PRECISION_NAMES.get(card.precision, card.precision)
    return {"input_data_types": "uint8", "retraining": "No", "starting_weights_filename": weights,
            "weight_data_types": weight_types, "weight_transformations": transformations}


def read_provenance(readme: Path) -> dict[str, Any] | None:
    """The machine-readable provenance block of a packaged README, if there is one."""
    m = _PROVENANCE.search(readme.read_text(errors="replace")) if readme.is_file() else None
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except json.JSONDecodeError:
        return None


def write_marker(directory: Path, waived: list[str]) -> None:
    """Mark a tree (or org folder) NOT_FOR_SUBMISSION, listing the waived rules."""
    path = directory / NOT_FOR_SUBMISSION
    old = path.read_text() if path.is_file() else \
        "This tree was packaged with --allow-nonofficial for testing. Do not submit it.\n\n"
    path.write_text(old + "".join(f"- {w}\n" for w in waived))
