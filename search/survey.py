"""``mlperf-cpu zoo``: measure the zoo on this host and answer "which model is fastest at X % top-1".

The zoo is the whole published timm table (``models/zoo/zoo.csv``, about 1,550 rows), so most
rows must be answered without measuring them. A row is pruned ("not measured") when it cannot
change any answer asked (the ``--min-top1`` thresholds, always 75.70 and 78.4):

* its expected INT8 top-1 (published FP32 minus its family's drop) is below every threshold;
* its MACs were not counted here (the pinned timm cannot build it): it cannot be measured either;
* at every threshold it reaches, a model already measured is faster than the row could be at
  best: its MACs weighted by op kind (depthwise slower than dense, ``search.zoo.estimated_cost``)
  at 1.25 x the highest weighted MAC rate measured so far.

Rows are measured cheapest first (weighted MACs), a few at a time in interleaved rounds, together
with the INT8 ResNet-50 baseline (the project's built-in ``resnet50``, the MLPerf reference
architecture), so the fast qualifying models are known early and most of the table is pruned by
them. A pruned row can be no answer. Weights are untrained (speed only); accuracy is the
published FP32 figure, and the expected INT8 figure subtracts the family's drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from common.errors import ConfigError
from search.measure import UNTRAINED_NOTE, SpeedRecord, measure_each
from search.zoo import (CLOSED_TOP1, DECINET_TOP1, PRUNE_MARGIN, REFERENCE_TOP1, DropTable, Measured, ZooEntry,
                        best_possible_speed, estimated_cost, fastest, measured_rate, pareto_front, qualifies)

BASELINE = "resnet50"  # built-in ResNet-50 v1.5: the MLPerf reference architecture
BASELINE_GMACS = 4.09
BATCH = 4  # models measured together in one set of interleaved rounds


@dataclass(frozen=True)
class SurveyRequest:
    """What ``mlperf-cpu zoo`` was asked."""

    entries: tuple[ZooEntry, ...]
    drops: DropTable
    system: str = "host"
    thresholds: tuple[float, ...] = (CLOSED_TOP1, DECINET_TOP1)
    rounds: int = 3
    seconds: float = 5.0
    work: Path = Path("work")
    prune: bool = True
    use_cache: bool = True


@dataclass
class Survey:
    """The measured set, the baseline's speed and what was skipped and why."""

    measured: list[Measured]
    baseline: SpeedRecord
    pruned: dict[str, str] = field(default_factory=dict)  # entry row key -> why it was not measured
    pruned_kind: dict[str, str] = field(default_factory=dict)  # entry row key -> PRUNE_KINDS key


# Why rows were not measured, as the summary line names them.
PRUNE_KINDS = {"below": "expected INT8 top-1 below every threshold asked",
               "uncounted": "MACs not counted here (the pinned timm could not build or count them)",
               "slower": "slower at best than a measured model at every threshold they reach",
               "failed": "could not be exported or measured here (the reason is in the table)"}


def select(entries: Sequence[ZooEntry], only: str | None) -> list[ZooEntry]:
    """The entries ``--only a,b`` names (by ``timm_name``, ``timm_name.tag`` or ``timm_name.tag@size``);
    all without it."""
    if not only:
        return list(entries)
    wanted = [w.strip().removeprefix("timm/") for w in only.split(",") if w.strip()]
    names = {e.key for e in entries} | {e.row_key for e in entries} | {e.timm_name for e in entries}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        from common.suggest import did_you_mean

        raise ConfigError(f"--only: {unknown[0]!r} is not in the zoo table{did_you_mean(unknown[0], names, many=True)}")
    return [e for e in entries if e.key in wanted or e.row_key in wanted or e.timm_name in wanted]


def _groups(entries: Sequence[ZooEntry]) -> dict[str, list[ZooEntry]]:
    """Entries by what their speed depends on (architecture + input size), cheapest first."""
    groups: dict[str, list[ZooEntry]] = {}
    for entry in sorted(entries, key=estimated_cost):
        groups.setdefault(entry.speed_key, []).append(entry)
    return groups


def _unmeasurable(entry: ZooEntry, drops: DropTable, thresholds: Sequence[float]) -> tuple[str, str] | None:
    """(kind, why) for a row no measurement could make an answer, or None."""
    expected = drops.expected_int8(entry)
    if not any(qualifies(expected, t) for t in thresholds):
        return "below", f"expected INT8 {expected:.2f} % < every threshold ({', '.join(f'{t:g}' for t in thresholds)})"
    if not entry.counted:
        return "uncounted", f"MACs not counted ({entry.status}: {entry.note})"
    return None


def _domination(group: list[ZooEntry], measured: list[Measured], drops: DropTable, peak: float,
                thresholds: Sequence[float]) -> str | None:
    """Why ``group`` need not be measured: at every threshold one of its rows reaches, a measured
    model that qualifies is faster than the group's best possible speed. None if it may matter."""
    best = best_possible_speed(group[0], peak)
    reached = [t for t in thresholds if any(qualifies(drops.expected_int8(e), t) for e in group)]
    beaten = []
    for t in reached:
        winner = fastest(measured, t)
        if winner is None or winner.samples_per_s <= best:
            return None
        beaten.append(f"{t:g} %: {winner.entry.row_key} {winner.samples_per_s:.0f}/s")
    return (f"at best {best:.0f}/s ({estimated_cost(group[0]):.2f} weighted GMACs at {PRUNE_MARGIN:g} x the peak "
            f"{peak:.0f} weighted GMAC/s measured); faster measured: " + "; ".join(beaten))


def run_survey(req: SurveyRequest) -> Survey:
    """Measure (or read from the cache) every entry not pruned, cheapest first, batch by batch."""
    thresholds = tuple(req.thresholds)
    pruned: dict[str, str] = {}
    kinds: dict[str, str] = {}
    candidates = []
    for entry in req.entries:
        why = _unmeasurable(entry, req.drops, thresholds) if req.prune else (
            None if entry.counted else ("uncounted", f"MACs not counted ({entry.status}: {entry.note})"))
        if why:
            kinds[entry.row_key], pruned[entry.row_key] = why
        else:
            candidates.append(entry)
    groups = _groups(candidates)
    measured: list[Measured] = []
    baseline: SpeedRecord | None = None
    peak = 0.0  # highest weighted GMAC/s measured so far (ResNet-50's included)
    pending = list(groups)
    while pending or baseline is None:
        batch: list[str] = []
        while pending and len(batch) < BATCH:
            key = pending.pop(0)
            why = _domination(groups[key], measured, req.drops, peak, thresholds) if req.prune and measured else None
            if why:
                for entry in groups[key]:
                    kinds[entry.row_key], pruned[entry.row_key] = "slower", why
            else:
                batch.append(key)
        records, failed = measure_each([groups[k][0].model_name for k in batch], req.system, req.rounds,
                                       req.seconds, req.work, req.use_cache, BASELINE)
        baseline = records[BASELINE]
        peak = max(peak, baseline.samples_per_s * BASELINE_GMACS)
        for key in batch:
            first = groups[key][0]
            if first.model_name in failed:
                for entry in groups[key]:
                    kinds[entry.row_key], pruned[entry.row_key] = "failed", failed[first.model_name]
                continue
            record = records[first.model_name]
            peak = max(peak, measured_rate(first, record.samples_per_s))
            measured += [Measured(e, req.drops.expected_int8(e), record.samples_per_s, record.reference_samples_per_s)
                         for e in groups[key]]
    return Survey(measured, baseline, pruned, kinds)


def pruned_summary(survey: Survey) -> list[str]:
    """``pruned N rows: why`` lines, one per reason."""
    counts: dict[str, int] = {}
    for kind in survey.pruned_kind.values():
        counts[kind] = counts.get(kind, 0) + 1
    return [f"pruned {n} rows: {PRUNE_KINDS[kind]}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def answer_lines(survey: Survey, thresholds: Sequence[float], not_measured: int) -> list[str]:
    """``fastest at >= 75.70 % ...: <model> <speed>/s, <x> x INT8 ResNet-50`` per threshold."""
    lines = []
    for t in thresholds:
        label = {CLOSED_TOP1: f"{t:.2f} % (99 % of {REFERENCE_TOP1} %)", DECINET_TOP1: f"{t:.1f} % (DeciNet's)"}.get(
            t, f"{t:.2f} %")
        best = fastest(survey.measured, t)
        if best is None:
            lines.append(f"fastest at >= {label}: no measured model qualifies (expected INT8 top-1)")
            continue
        reference = best.reference_samples_per_s or survey.baseline.samples_per_s
        lines.append(f"fastest at >= {label}: {best.entry.label} ({best.entry.family}), published FP32 "
                     f"{best.entry.top1:.2f} %, expected INT8 {best.expected_int8:.2f} %, INT8 "
                     f"{best.samples_per_s:.1f} samples/s = {best.speedup(reference):.2f} x "
                     f"INT8 ResNet-50 ({reference:.1f}/s in the same rounds)")
    if survey.pruned:
        lines.append(f"{len(survey.pruned)} of {len(survey.pruned) + len(survey.measured)} rows were not measured "
                     "(each row's reason is in the table); they cannot change the answers:")
        lines += [f"  {line}" for line in pruned_summary(survey)]
    if not_measured:
        lines.append(f"{not_measured} entries were left out by --only: the answers are among the measured ones only")
    return lines


def markdown_table(survey: Survey, drops: DropTable, system: str, pruned_rows: bool = True) -> str:
    """Every measured entry of the survey, fastest first; with ``pruned_rows`` the pruned ones
    last, each with its reason."""
    base = survey.baseline.samples_per_s
    out = [f"INT8 samples/s on this host (`{system}` profile, median of the rounds). {UNTRAINED_NOTE}.",
           "Each speed-up is over INT8 ResNet-50 measured in the same interleaved rounds as that model.",
           "",
           "| arch (timm name.tag) | family | GMACs | published top-1 (FP32) | expected INT8 top-1 (drop) "
           "| INT8 samples/s | vs INT8 ResNet-50 |",
           "|---|---|---|---|---|---|---|",
           f"| resnet50 (built-in, MLPerf reference) | ResNet | {BASELINE_GMACS:.2f} | {REFERENCE_TOP1:.2f} (MLPerf) "
           f"| | {base:.1f} (latest) | 1.00x |"]
    for m in sorted(survey.measured, key=lambda m: -m.samples_per_s):
        drop = drops.for_entry(m.entry)
        out.append(f"| {m.entry.label} | {m.entry.family} | {m.entry.gmacs:.3f} | {m.entry.top1:.2f} "
                   f"| {m.expected_int8:.2f} (-{drop.drop_pp:g}, {drop.basis}) | {m.samples_per_s:.1f} "
                   f"| {m.speedup(base):.2f}x |")
    for key, why in survey.pruned.items() if pruned_rows else ():
        out.append(f"| {key} | | | | | not measured | {why} |")
    return "\n".join(out)


def pareto_chart(survey: Survey, path: Path, host: str) -> Path:
    """Published top-1 vs measured INT8 samples/s, the Pareto front highlighted, ResNet-50 marked."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("the Pareto chart needs matplotlib: pip install -e '.[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(survey.measured)
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.scatter([m.samples_per_s for m in survey.measured], [m.entry.top1 for m in survey.measured], s=18,
               color="tab:gray", label="zoo (published FP32 top-1)")
    ax.plot([m.samples_per_s for m in front], [m.entry.top1 for m in front], "o-", color="tab:blue",
            label="Pareto front")
    for m in front:
        ax.annotate(m.entry.timm_name, (m.samples_per_s, m.entry.top1), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.scatter([survey.baseline.samples_per_s], [REFERENCE_TOP1], marker="*", s=160, color="tab:red",
               label="INT8 ResNet-50 (MLPerf reference, 76.46 %)")
    ax.set_xscale("log")
    for t, style in ((CLOSED_TOP1, ":"), (DECINET_TOP1, "--")):
        ax.axhline(t, linestyle=style, color="tab:green", linewidth=0.8)
        ax.text(0.01, t, f"{t:.2f} %", transform=ax.get_yaxis_transform(), fontsize=7, color="tab:green",
                va="bottom")
    ax.set_xlabel("INT8 samples/s on this host (log scale)")
    ax.set_ylabel("published ImageNet-1k top-1 % (FP32)")
    ax.set_title(f"INT8 on the host CPU: {host}\nuntrained weights: speed only; accuracy is the published FP32 "
                 "figure", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

