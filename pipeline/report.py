"""``report``: Table 1 of the Deci/Intel post, measured on this host through the real harness.

Every row is a prepared model run as a LoadGen Offline performance test (each
its own process, same system profile, same duration), in interleaved rounds so
drift on a noisy machine hits every row alike; the median over rounds is kept.
Writes ``table1.md``, ``table1.json`` and ``table1.png`` into the output directory.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import HarnessError
from common.testspec import Mode, Overrides
from modelprep.card import ModelCard

if TYPE_CHECKING:
    from pipeline.flows import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One model in the table and what was measured for it."""

    label: str
    model_dir: Path
    card: ModelCard
    samples_per_second: list[float] = field(default_factory=list)
    accuracy_percent: float | None = None

    @property
    def median(self) -> float:
        """Median samples/s over the rounds."""
        return statistics.median(self.samples_per_second) if self.samples_per_second else 0.0


def measure(rows: list[Row], dataset: Path, system: str, workspace: "Workspace", user_conf: Path,
            rounds: int, duration_ms: int, progress: bool = True) -> None:
    """Fill every row's samples/s list, interleaving the rows within each round.

    Each figure is a LoadGen Offline performance test in its own process (``pipeline.flows.run_test``),
    with a short non-official duration and target QPS from a timed warm-up.
    """
    from dataclasses import replace

    from tqdm import tqdm

    from pipeline.flows import TestSpec, run_test

    overrides = Overrides(min_duration_ms=duration_ms, min_query_count=1, target_qps=0)
    with tqdm(total=rounds * len(rows), desc="report", unit="run", disable=not progress) as bar:
        for index in range(rounds):
            ws = replace(workspace, results=workspace.results / f"round{index + 1}")
            for row in rows:
                bar.set_postfix_str(f"round {index + 1}: {row.label}")
                run = run_test(TestSpec(Mode.PERFORMANCE, row.model_dir, dataset, system, ws, user_conf,
                                        overrides=overrides), quiet=True)
                if run.samples_per_second is None:
                    raise HarnessError(f"report: {run.run_dir} has no samples/s")
                row.samples_per_second.append(run.samples_per_second)
                bar.update()


def _reference(rows: list[Row], precision: str) -> float:
    """Median samples/s of the ResNet-50 row of ``precision`` (0 if absent)."""
    for row in rows:
        if row.card.name.startswith("resnet50") and row.card.precision == precision:
            return row.median
    return 0.0


def format_markdown(rows: list[Row], cores: int, rounds: int, duration_ms: int, system: str) -> str:
    """The table, with a header that says what the numbers are and are not."""
    f32, int8 = _reference(rows, "f32"), _reference(rows, "int8")
    lines = [
        f"Offline samples/s through the harness (LoadGen performance mode, non-official {duration_ms / 1000:.0f} s "
        f"runs), median of {rounds} interleaved rounds, system profile `{system}` ({cores} cores).",
        "Rows marked untrained use seeded random weights: their speed is real (compute does not depend on "
        "weight values), their ImageNet accuracy is not measurable here.",
        "",
        "| model | precision (execution) | weights | GMACs | samples/s | per core | vs f32 ResNet-50 | "
        "vs INT8 ResNet-50 | top-1 % (demo task) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        c = row.card
        prec = c.precision if c.precision != "int8" else f"int8 (rest {c.inference_precision})"
        macs = f"{c.macs / 1e9:.2f}" if c.macs else "?"
        acc = f"{row.accuracy_percent:.3f}" if row.accuracy_percent is not None else "n/a"
        lines.append(
            f"| {row.label} | {prec} | {'trained' if c.trained else 'untrained'} | {macs} | {row.median:.1f} | "
            f"{row.median / cores:.1f} | {row.median / f32 if f32 else float('nan'):.2f}x | "
            f"{row.median / int8 if int8 else float('nan'):.2f}x | {acc} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path, title: str) -> None:
    """Horizontal bar chart of median samples/s (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.5))
    labels = [r.label for r in rows]
    values = [r.median for r in rows]
    bars = ax.barh(labels[::-1], values[::-1], color="#3b75af")
    for bar, value in zip(bars, values[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.0f}", va="center")
    ax.set_xlabel("Offline samples/s (median)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(values) * 1.15 if values else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(rows: list[Row], out: Path, cores: int, rounds: int, duration_ms: int, system: str) -> Path:
    """Write table1.md, table1.json and table1.png into ``out``; return the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    md = out / "table1.md"
    md.write_text(format_markdown(rows, cores, rounds, duration_ms, system))
    data: list[dict[str, Any]] = [{"label": r.label, "model_dir": str(r.model_dir), "card": asdict(r.card),
                                   "samples_per_second": r.samples_per_second, "median": r.median,
                                   "accuracy_percent": r.accuracy_percent} for r in rows]
    (out / "table1.json").write_text(json.dumps({"system": system, "cores": cores, "rounds": rounds,
                                                 "duration_ms": duration_ms, "rows": data}, indent=2,
                                                default=str) + "\n")
    plot(rows, out / "table1.png", f"{system}, {cores} cores: Offline samples/s (untrained weights except demo)")
    return md
