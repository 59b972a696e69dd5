"""Predicted ImageNet top-1 from architecture descriptors, fitted on the zoo table, and bounded
by the evidence.

A ridge regression on zoo.csv's descriptor columns (log GMACs, log parameters, the depthwise
share of the MACs, squeeze-excitation, the activation(s), log input size) against published FP32
top-1, fitted on every counted ImageNet-1k-only row of the table (the whole published timm table).
Its honest error is leave-one-family-out (LOFO): every family (ResNet, RegNetY, EfficientNet,
...) is predicted by a fit on the other families, which is the situation of a new architecture.

Two bounds turn a prediction into an answer (``AccuracyPredictor.bound``):

* the published frontier: a new block mix without a new training recipe does not beat the best
  published ImageNet-1k-only top-1 at less than or equal MACs, so the prediction is clamped to it;
* the lower bound: the (clamped) prediction minus the 90th percentile of the LOFO absolute error.
  A candidate qualifies at a threshold only when its lower bound reaches it.

What it cannot know: training recipes differ inside the table (resnet50 is there at 76.2 and 80.8
with the same descriptors), and DeciNet-style candidates mix block types no zoo family has, so
they are out of the table's distribution; ``extrapolation`` names the descriptors outside the
table's range. Weights of searched models are untrained: their top-1 is only this prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from models.zoo_table import ZOO_CSV, ZooEntry
from models.zoo_table import load_zoo as load_entries

FEATURES = ("log_gmacs", "log_params", "dw_fraction", "se", "hswish", "silu", "gelu", "log_resolution")
RIDGE = 1.0  # on standardised features; chosen for stability, not tuned on the LOFO error


def features(d: Mapping[str, Any]) -> np.ndarray:
    """The predictor's inputs from zoo.csv-style descriptors (``gmacs``, ``params_m``,
    ``depthwise_mac_fraction``, ``has_se``, ``activation``, ``img_size``)."""
    acts = str(d["activation"]).split("+")
    return np.array([math.log(float(d["gmacs"])), math.log(float(d["params_m"])),
                     float(d["depthwise_mac_fraction"]), float(d["has_se"]),
                     float("hswish" in acts), float("silu" in acts), float("gelu" in acts),
                     math.log(float(d["img_size"]) / 224.0)])


def entries_1k(path: Path = ZOO_CSV) -> list[ZooEntry]:
    """The zoo table's counted entries trained on ImageNet-1k only: a tag with extra pretraining data
    (e.g. ImageNet-21k) says what those weights reach, not what the architecture reaches on 1k,
    which is what this predictor and the search's zoo references are about."""
    return [entry for entry in load_entries(path, counted_only=True) if not entry.extra_data]


def load_zoo(path: Path = ZOO_CSV) -> list[dict[str, Any]]:
    """``entries_1k`` as descriptor mappings (the keys ``features`` reads, as a candidate's have),
    with ``arch`` and ``key`` (``row_key``) added."""
    return [{**asdict(entry), "arch": entry.arch, "key": entry.row_key} for entry in entries_1k(path)]


LOWER_QUANTILE = 0.9  # the lower bound subtracts this quantile of the LOFO absolute error
NEAREST = 3  # published models shown beside a bounded prediction


@dataclass(frozen=True)
class Bounded:
    """A prediction with the evidence around it (every top-1 in %, FP32).

    ``predicted``: the ridge fit; ``frontier``: the best published ImageNet-1k-only top-1 at <= the
    candidate's MACs (None: no published model is that small) and ``frontier_model`` its row;
    ``top1``: the prediction clamped to the frontier; ``lower``: ``top1`` minus the LOFO error's
    90th percentile; ``nearest``: the published rows closest in MACs (key, GMACs, top-1)."""

    predicted: float
    frontier: float | None
    frontier_model: str | None
    top1: float
    lower: float
    margin: float
    nearest: tuple[tuple[str, float, float], ...]

    @property
    def clamped(self) -> bool:
        """The prediction was above the published frontier."""
        return self.top1 < self.predicted

    def qualifies(self, threshold: float) -> bool:
        """The lower bound reaches ``threshold`` (a candidate below every published model's MACs never does)."""
        return self.frontier is not None and self.lower >= threshold - 1e-9

    def to_dict(self) -> dict[str, Any]:
        """JSON form for search.json / winner.json."""
        return {"predicted": self.predicted, "frontier": self.frontier, "frontier_model": self.frontier_model,
                "clamped_to_frontier": self.clamped, "top1": self.top1, "lower_bound": self.lower,
                "lower_bound_margin": self.margin,
                "nearest_published": [{"key": k, "gmacs": g, "top1": t} for k, g, t in self.nearest]}


def _frontier_gmacs(row: Mapping[str, Any]) -> float:
    return max(float(row["gmacs"]), float(row.get("timm_gmacs") or 0.0))


@dataclass(frozen=True)
class Frontier:
    """The published ImageNet-1k-only frontier: best top-1 at <= each MAC count."""

    gmacs: np.ndarray  # ascending
    best: np.ndarray  # running maximum of top-1 over rows with <= gmacs
    best_key: tuple[str, ...]
    rows: tuple[tuple[str, float, float], ...]  # every row (key, gmacs, top1), by gmacs

    @classmethod
    def of(cls, rows: list[dict[str, Any]]) -> "Frontier":
        """The frontier of descriptor rows carrying ``key``, ``gmacs`` and ``top1`` (and optionally
        ``timm_gmacs``). A row sits at the larger of our count and timm's: where our Conv2d + Linear
        count misses compute (attention matmuls, CondConv experts) the row must not look cheaper
        than it is, or the clamp would let a candidate claim more than the evidence."""
        ordered = sorted(({**r, "gmacs": _frontier_gmacs(r)} for r in rows),
                         key=lambda r: (float(r["gmacs"]), -float(r["top1"])))
        best, keys, top, top_key = [], [], -math.inf, ""
        for r in ordered:
            if float(r["top1"]) > top:
                top, top_key = float(r["top1"]), str(r["key"])
            best.append(top)
            keys.append(top_key)
        return cls(np.array([float(r["gmacs"]) for r in ordered]), np.array(best), tuple(keys),
                   tuple((str(r["key"]), float(r["gmacs"]), float(r["top1"])) for r in ordered))

    def at(self, gmacs: float) -> tuple[float, str] | None:
        """Best published top-1 and its row at <= ``gmacs`` (None below the smallest row)."""
        i = int(np.searchsorted(self.gmacs, gmacs * (1 + 1e-9), side="right")) - 1
        return None if i < 0 else (float(self.best[i]), self.best_key[i])

    def nearest(self, gmacs: float, count: int = NEAREST) -> tuple[tuple[str, float, float], ...]:
        """The ``count`` rows closest in log MACs."""
        order = np.argsort(np.abs(np.log(self.gmacs) - math.log(gmacs)), kind="stable")[:count]
        return tuple(self.rows[i] for i in order)


@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge model on standardised features."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for rows of ``x``."""
        return (np.atleast_2d(x) - self.mean) / self.scale @ self.coef + self.intercept


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = RIDGE) -> RidgeFit:
    """Ridge regression (closed form); constant columns get unit scale."""
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return RidgeFit(mean, scale, coef, float(y.mean()))


@dataclass(frozen=True)
class AccuracyPredictor:
    """The fit on the whole table, its LOFO error and the table's feature range."""

    fit: RidgeFit
    lofo_mae: float
    lofo_by_family: dict[str, float]
    low: np.ndarray
    high: np.ndarray
    rows: int
    table: np.ndarray  # the rows' standardised features
    combos: frozenset  # (se, hswish, silu, gelu) combinations the table has
    reach: float  # how far (standardised) a row may be from the table: see ``nearest_row_reach``
    lofo_p90: float  # 90th percentile of the LOFO absolute error
    frontier: Frontier

    def predict(self, descriptors: Mapping[str, Any]) -> float:
        """Predicted FP32 top-1 (%) of an architecture with these descriptors (the raw fit)."""
        return float(self.fit.predict(features(descriptors))[0])

    def bound(self, descriptors: Mapping[str, Any]) -> Bounded:
        """The prediction clamped to the published frontier at <= its MACs, and its lower bound."""
        raw = self.predict(descriptors)
        gmacs = float(descriptors["gmacs"])
        at = self.frontier.at(gmacs)
        top1 = raw if at is None else min(raw, at[0])
        return Bounded(raw, None if at is None else at[0], None if at is None else at[1], top1,
                       top1 - self.lofo_p90, self.lofo_p90, self.frontier.nearest(gmacs))

    def extrapolation(self, descriptors: Mapping[str, Any]) -> list[str]:
        """Why a prediction for these descriptors would extrapolate (empty: inside the table):
        descriptors outside the table's range, an SE/activation combination no row has, or a point
        farther from every row than rows of one family are from the nearest other family."""
        x = features(descriptors)
        out = [n for n, v, lo, hi in zip(FEATURES, x, self.low, self.high) if v < lo - 1e-9 or v > hi + 1e-9]
        if _combo(x) not in self.combos:
            out.append("se/activation combination")
        distance = float(np.min(np.linalg.norm(self.table - (x - self.fit.mean) / self.fit.scale, axis=1)))
        if distance > self.reach:
            out.append(f"distance {distance:.2f} > {self.reach:.2f}")
        return out

    def describe(self, top1: float) -> str:
        """``predicted 78.1 +- 1.9 (LOFO MAE)``."""
        return f"predicted {top1:.1f} +- {self.lofo_mae:.1f} (LOFO MAE)"

    def describe_bound(self, b: Bounded) -> str:
        """``predicted 78.1 (clamped to the published frontier 77.4), lower bound 74.2``."""
        clamp = f" (clamped to the published frontier {b.frontier:.1f})" if b.clamped else ""
        return f"predicted {b.top1:.1f}{clamp}, lower bound {b.lower:.1f} (LOFO p90 {b.margin:.1f})"


def lofo(rows: list[dict[str, Any]], alpha: float = RIDGE) -> tuple[float, dict[str, float], np.ndarray]:
    """Leave-one-family-out: MAE over all rows, MAE per family, and the held-out predictions
    (``abs(pred - top1)`` are the LOFO absolute errors)."""
    x = np.stack([features(r) for r in rows])
    y = np.array([float(r["top1"]) for r in rows])
    families = np.array([r["family"] for r in rows])
    pred = np.empty_like(y)
    for fam in np.unique(families):
        held = families == fam
        pred[held] = fit_ridge(x[~held], y[~held], alpha).predict(x[held])
    err = np.abs(pred - y)
    return float(err.mean()), {f: float(err[families == f].mean()) for f in np.unique(families)}, pred


def _combo(x: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in x[3:7])  # se, hswish, silu, gelu


REACH_QUANTILE = 0.9


def nearest_row_reach(z: np.ndarray, families: list[str]) -> float:
    """The 90th percentile, over rows, of the distance to the nearest row of another family: how
    new a family's architecture was allowed to be when LOFO measured the error."""
    fam = np.array(families)
    d = np.linalg.norm(z[:, None, :] - z[None, :, :], axis=2)
    d[fam[:, None] == fam[None, :]] = np.inf
    return float(np.quantile(d.min(1), REACH_QUANTILE))


def fit_accuracy(path: Path = ZOO_CSV, alpha: float = RIDGE) -> AccuracyPredictor:
    """Fit on the zoo table's counted ImageNet-1k-only rows, evaluate it leave-one-family-out and
    keep the published frontier of the same rows."""
    rows = load_zoo(path)
    x = np.stack([features(r) for r in rows])
    y = np.array([float(r["top1"]) for r in rows])
    mae, by_family, held_out = lofo(rows, alpha)
    fit = fit_ridge(x, y, alpha)
    z = (x - fit.mean) / fit.scale
    return AccuracyPredictor(fit, mae, by_family, x.min(0), x.max(0), len(rows), z,
                             frozenset(_combo(v) for v in x), nearest_row_reach(z, [r["family"] for r in rows]),
                             float(np.quantile(np.abs(held_out - y), LOWER_QUANTILE)), Frontier.of(rows))
