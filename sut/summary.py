"""A table of every run's ``result.json`` under a results directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def collect(results_dir: Path) -> list[dict[str, Any]]:
    """Every result.json below ``results_dir``, sorted by path."""
    rows = []
    for path in sorted(Path(results_dir).rglob("result.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            rows.append({"run_dir": str(path.parent), "status": "unreadable result.json"})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: run, status, precision, result, samples/s or accuracy, submittable."""
    head = "| run | status | precision | result | samples/s | top-1 % | submittable |"
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        card = r.get("card", {})
        acc = r.get("accuracy", {}).get("top1_percent", "")
        sps = r.get("samples_per_second")
        sps_text = f"{sps:.1f}" if isinstance(sps, (int, float)) and r.get("mode") == "performance" else ""
        validity = r.get("result_validity", "") if r.get("mode") == "performance" else "accuracy run"
        prec = f"{card.get('precision', '?')} (hint {r.get('inference_precision', '?')})"
        lines.append(f"| {r.get('run_dir', '?')} | {r.get('status', '?')} | {prec} | {validity} | "
                     f"{sps_text} | {acc} | {'yes' if r.get('submittable') else 'no'} |")
    return "\n".join(lines)
