"""The zoo as data: published FP32 top-1, expected INT8 top-1, and which model qualifies.

The rows come from ``models/zoo/zoo.csv`` (``models.zoo_table``: typed and validated, and
every row registered as ``timm/<timm_name>.<tag>``). Published top-1 is an FP32 figure; a
model qualifies at a threshold when its EXPECTED INT8 top-1 (published minus the INT8 drop
of its family, ``models/zoo/int8_drop.csv``: measured here, published with its source, or a
stated conservative default) reaches it. Speeds come from ``search.measure`` (untrained
weights: speed only).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from common.errors import ConfigError
from models.zoo_table import ZOO_CSV, ZooEntry, load_zoo

__all__ = ["DROP_CSV", "ZOO_CSV", "ZooEntry", "load_zoo", "Int8Drop", "load_drops", "DropTable", "Measured",
           "REFERENCE_TOP1", "CLOSED_TOP1", "DECINET_TOP1", "qualifies", "fastest", "pareto_front", "candidates",
           "pruned_by_macs", "best_possible_speed", "measured_rate", "estimated_cost"]

DROP_CSV = ZOO_CSV.parent / "int8_drop.csv"
REFERENCE_TOP1 = 76.46  # MLPerf ResNet-50 reference FP32 top-1
CLOSED_TOP1 = round(0.99 * REFERENCE_TOP1, 2)  # 75.70: the closed division's 99 % target
DECINET_TOP1 = 78.4  # Deci's DeciNet on the target CPUs
BASES = ("measured", "published", "default", "pending")
SCOPES = ("arch", "family", "default")
# Depthwise convolutions lower the INT8 MAC rate in proportion to their share of the MACs
# (quiet AMD EPYC, 2026-11-29: dense nets 370-400 GMAC/s; MobileNetV4-M, 3 % depthwise MACs,
# 324; MobileNetV3-L-1.5, 5.5 %, 222; HardCoReNAS-F, 10.6 %, 165): cost = GMACs x (1 +
# DEPTHWISE_SLOWDOWN x depthwise fraction), at most DEPTHWISE_COST, orders the candidates
# before anything is measured. A flat x3 for any depthwise net left MobileNetV4 out.
DEPTHWISE_SLOWDOWN = 14.0
DEPTHWISE_COST = 3.0


@dataclass(frozen=True)
class Int8Drop:
    """Expected top-1 loss (points) of plain INT8 PTQ for an architecture or a family, and why."""

    scope: str
    name: str
    drop_pp: float
    basis: str
    source: str
    note: str = ""

    def describe(self) -> str:
        """``1.11 (published: <source>)``."""
        return f"{self.drop_pp:g} ({self.basis}: {self.source})"


class DropTable:
    """INT8 drops by architecture, then by family, then the default row."""

    def __init__(self, rows: Iterable[Int8Drop], origin: str = "int8 drops") -> None:
        self._by: dict[tuple[str, str], Int8Drop] = {(r.scope, r.name): r for r in rows}
        if ("default", "*") not in self._by:
            raise ConfigError(f"{origin}: needs a 'default,*' row (the drop of a family without one)")

    def for_entry(self, entry: ZooEntry) -> Int8Drop:
        """The drop that applies to ``entry``: its architecture's row, its family's, or the default."""
        return (self._by.get(("arch", entry.timm_name)) or self._by.get(("family", entry.family))
                or self._by[("default", "*")])

    def expected_int8(self, entry: ZooEntry) -> float:
        """Published FP32 top-1 minus the INT8 drop that applies."""
        return round(entry.top1 - self.for_entry(entry).drop_pp, 3)


def load_drops(path: Path = DROP_CSV) -> DropTable:
    """Read and validate the INT8 drop table; a bad cell is a one-line error naming file:line, column."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the INT8 drop table ({exc.strerror})") from None
    reader = csv.DictReader(lines)
    rows = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if row.get("scope") not in SCOPES:
            raise ConfigError(f"{where}: column 'scope': expected one of {SCOPES}, got {row.get('scope')!r}")
        if row.get("basis") not in BASES:
            raise ConfigError(f"{where}: column 'basis': expected one of {BASES}, got {row.get('basis')!r}")
        try:
            drop = float(row.get("drop_pp") or "")
        except ValueError:
            raise ConfigError(f"{where}: column 'drop_pp': expected points of top-1, got {row.get('drop_pp')!r}") from None
        if not -5 <= drop <= 50 or not (row.get("name") and row.get("source")):
            raise ConfigError(f"{where}: needs a name, a source and a drop_pp in -5..50")
        rows.append(Int8Drop(row["scope"], row["name"], drop, row["basis"], row["source"], row.get("note") or ""))
    return DropTable(rows, str(path))


@dataclass(frozen=True)
class Measured:
    """A zoo entry with its expected INT8 top-1 and its measured INT8 samples/s on this host."""

    entry: ZooEntry
    expected_int8: float
    samples_per_s: float
    reference_samples_per_s: float = 0.0  # INT8 ResNet-50 in the same interleaved rounds (0: unknown)

    def speedup(self, fallback_reference: float) -> float:
        """samples/s over the reference measured in the same rounds (else over ``fallback_reference``)."""
        return self.samples_per_s / (self.reference_samples_per_s or fallback_reference)


def qualifies(expected_int8: float, min_top1: float) -> bool:
    """A model qualifies when its expected INT8 top-1 reaches the threshold (no rounding up)."""
    return expected_int8 >= min_top1 - 1e-9


def fastest(measured: Sequence[Measured], min_top1: float) -> Measured | None:
    """The fastest measured model whose expected INT8 top-1 qualifies, or None."""
    ok = [m for m in measured if qualifies(m.expected_int8, min_top1)]
    return max(ok, key=lambda m: m.samples_per_s, default=None)


def pareto_front(measured: Sequence[Measured]) -> list[Measured]:
    """Models no other is both faster and more accurate than (published top-1), fastest first."""
    front: list[Measured] = []
    for m in sorted(measured, key=lambda m: (-m.samples_per_s, -m.entry.top1)):
        if not front or m.entry.top1 > front[-1].entry.top1:
            front.append(m)
    return front


def estimated_cost(entry: ZooEntry) -> float:
    """A MAC-based cost before anything is measured: GMACs, scaled up by the depthwise share."""
    return entry.gmacs * min(DEPTHWISE_COST, 1.0 + DEPTHWISE_SLOWDOWN * entry.depthwise_mac_fraction)


def candidates(entries: Sequence[ZooEntry], drops: DropTable, min_top1: float, count: int) -> list[ZooEntry]:
    """The ``count`` qualifying counted entries with the lowest estimated cost, one per architecture
    and input size (the tag does not change the speed)."""
    ok = sorted((e for e in entries if e.counted and qualifies(drops.expected_int8(e), min_top1)),
                key=estimated_cost)
    picked: dict[str, ZooEntry] = {}
    for entry in ok:
        picked.setdefault(entry.speed_key, entry)
    return list(picked.values())[:count]


PRUNE_MARGIN = 1.25  # a row is granted this much more than the best MAC rate measured before it is pruned


def best_possible_speed(entry: ZooEntry, peak_rate: float, margin: float = PRUNE_MARGIN) -> float:
    """The most samples/s ``entry`` could reach: its MACs weighted by op kind (``estimated_cost``,
    depthwise MACs slower than dense ones) at ``margin`` x ``peak_rate``, the highest weighted MAC
    rate (``measured_rate``) measured so far."""
    return margin * peak_rate / estimated_cost(entry)


def measured_rate(entry: ZooEntry, samples_per_s: float) -> float:
    """The weighted MAC rate (weighted GMACs x samples/s) of a measured entry."""
    return estimated_cost(entry) * samples_per_s


def pruned_by_macs(entry: ZooEntry, best: Measured, peak_rate: float, margin: float = PRUNE_MARGIN) -> bool:
    """True when ``entry`` cannot beat ``best`` even at ``margin`` x the highest weighted MAC rate
    measured so far: its MACs alone make it slower, so it need not be measured."""
    return entry.gmacs > 0 and best_possible_speed(entry, peak_rate, margin) < best.samples_per_s
