"""A table of every run record under a results directory."""

from __future__ import annotations

from pathlib import Path

from common.errors import HarnessError
from common.testspec import Mode
from records.results import RunResult, find_results


def collect(results_dir: Path) -> list[RunResult | tuple[Path, str]]:
    """Every run record below ``results_dir`` by path; an unreadable one as (directory, reason)."""
    rows: list[RunResult | tuple[Path, str]] = []
    for path in find_results(results_dir):
        try:
            result = RunResult.load(path.parent)
            result.run_dir = str(path.parent)  # where it is now (a results tree may have been moved)
            rows.append(result)
        except HarnessError as exc:
            rows.append((path.parent, str(exc).split(": ", 1)[-1]))
    return rows


def format_table(rows: list[RunResult | tuple[Path, str]]) -> str:
    """Markdown table: run, status, precision, result, samples/s or accuracy, submittable."""
    head = "| run | status | precision | result | metric | top-1 % / mAP % | submittable |"
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        if isinstance(r, tuple):
            lines.append(f"| {r[0]} | unreadable: {r[1]} | | | | | no |")
            continue
        performance = r.mode is not Mode.ACCURACY
        value, unit = r.metric
        sps = f"{value:.{3 if 'ms' in unit else 1}f} {unit}" if performance and value is not None else ""
        validity = (r.validity or "") if performance else "accuracy run"
        acc = "" if r.accuracy is None else f"{r.accuracy.top1_percent:.3f}" + (
            " (mAP)" if r.accuracy.metric == "mAP" else "")
        prec = f"{r.card.precision} (hint {r.inference_precision or '?'})"
        lines.append(f"| {r.run_dir} | {r.status} | {prec} | {validity} | {sps} | {acc} | "
                     f"{'yes' if r.submittable else 'no'} |")
    return "\n".join(lines)
