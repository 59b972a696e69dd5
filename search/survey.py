"""``mlperf-cpu zoo``: measure the zoo on this host and answer "which model is fastest at X % top-1".

Models are measured in MAC order, a few at a time in interleaved rounds, together with the
INT8 ResNet-50 baseline (the project's built-in ``resnet50``, the MLPerf reference
architecture). A model is skipped ("pruned") when an already-measured model is at least as
accurate (expected INT8 top-1) and the model's MACs alone make it slower: even at 1.25 x the
highest MAC rate measured so far it would not reach that model's speed. A pruned model can
be neither on the Pareto front nor an answer. Weights are untrained (speed only); accuracy
is the published FP32 figure, and the expected INT8 figure subtracts the family's drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from common.errors import ConfigError
from search.measure import UNTRAINED_NOTE, SpeedRecord, measure_many
from search.zoo import (CLOSED_TOP1, DECINET_TOP1, REFERENCE_TOP1, DropTable, Measured, ZooEntry, fastest,
                        pareto_front, pruned_by_macs)

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
    pruned: dict[str, str] = field(default_factory=dict)  # entry key -> why it was not measured


def select(entries: Sequence[ZooEntry], only: str | None) -> list[ZooEntry]:
    """The entries ``--only a,b`` names (by ``timm_name`` or ``timm_name.tag``); all without it."""
    if not only:
        return list(entries)
    wanted = [w.strip().removeprefix("timm/") for w in only.split(",") if w.strip()]
    names = {e.key for e in entries} | {e.timm_name for e in entries}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        from common.suggest import did_you_mean

        raise ConfigError(f"--only: {unknown[0]!r} is not in the zoo table{did_you_mean(unknown[0], names, many=True)}")
    return [e for e in entries if e.key in wanted or e.timm_name in wanted]


def _groups(entries: Sequence[ZooEntry]) -> dict[str, list[ZooEntry]]:
    """Entries by what their speed depends on (architecture + input size), in MAC order."""
    groups: dict[str, list[ZooEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.gmacs):
        groups.setdefault(entry.speed_key, []).append(entry)
    return groups


def _domination(group: list[ZooEntry], measured: list[Measured], drops: DropTable, peak: float) -> str | None:
    """Why ``group`` need not be measured (a faster-by-MACs, at least as accurate model), or None."""
    best_acc = max(drops.expected_int8(e) for e in group)
    for m in sorted(measured, key=lambda m: -m.samples_per_s):
        if m.expected_int8 >= best_acc and pruned_by_macs(group[0], m, peak):
            return (f"pruned: {group[0].gmacs:.2f} GMACs at <= 1.25 x the peak {peak:.0f} GMAC/s measured is slower "
                    f"than {m.entry.key} ({m.samples_per_s:.0f}/s, expected INT8 {m.expected_int8:.2f} %)")
    return None


def run_survey(req: SurveyRequest) -> Survey:
    """Measure (or read from the cache) every entry not pruned, in MAC order, batch by batch."""
    groups = _groups(req.entries)
    measured: list[Measured] = []
    pruned: dict[str, str] = {}
    baseline: SpeedRecord | None = None
    peak = 0.0  # highest GMAC/s measured so far (ResNet-50's included)
    pending = list(groups)
    while pending or baseline is None:
        batch: list[str] = []
        while pending and len(batch) < BATCH:
            key = pending.pop(0)
            why = _domination(groups[key], measured, req.drops, peak) if req.prune and measured else None
            if why:
                for entry in groups[key]:
                    pruned[entry.key] = why
            else:
                batch.append(key)
        names = [groups[k][0].model_name for k in batch] + [BASELINE]
        records = measure_many(names, req.system, req.rounds, req.seconds, req.work, req.use_cache,
                               reference=BASELINE)
        baseline = records[BASELINE]
        peak = max(peak, baseline.samples_per_s * BASELINE_GMACS)
        for key in batch:
            record = records[groups[key][0].model_name]
            peak = max(peak, record.samples_per_s * groups[key][0].gmacs)
            measured += [Measured(e, req.drops.expected_int8(e), record.samples_per_s, record.reference_samples_per_s)
                         for e in groups[key]]
    return Survey(measured, baseline, pruned)


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
        lines.append(f"{len(survey.pruned)} entries were not measured: a measured model at least as accurate is "
                     "faster than their MACs allow (MAC-ordered pruning, see the table); they cannot change the answers")
    if not_measured:
        lines.append(f"{not_measured} entries were left out by --only: the answers are among the measured ones only")
    return lines


def markdown_table(survey: Survey, drops: DropTable, system: str) -> str:
    """Every entry of the survey, fastest first; pruned ones last with the reason."""
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
    for key, why in survey.pruned.items():
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

