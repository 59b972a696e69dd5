"""Predicted ImageNet top-1 from architecture descriptors, fitted on the zoo table.

A ridge regression on zoo.csv's descriptor columns (log GMACs, log parameters, the depthwise
share of the MACs, squeeze-excitation, the activation(s), log input size) against published FP32
top-1. Its honest error is leave-one-family-out (LOFO): every family (ResNet, RegNetY,
EfficientNet, ...) is predicted by a fit on the other families, which is the situation of a new
architecture. Every prediction is shown with that error.

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
    """The zoo table's entries trained on ImageNet-1k only: a tag with extra pretraining data (e.g.
    ImageNet-21k) says what those weights reach, not what the architecture reaches on 1k, which is
    what this predictor and the search's zoo references are about."""
    return [entry for entry in load_entries(path) if not entry.extra_data]


def load_zoo(path: Path = ZOO_CSV) -> list[dict[str, Any]]:
    """``entries_1k`` as descriptor mappings (the keys ``features`` reads, as a candidate's have)."""
    return [asdict(entry) for entry in entries_1k(path)]


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

    def predict(self, descriptors: Mapping[str, Any]) -> float:
        """Predicted FP32 top-1 (%) of an architecture with these descriptors."""
        return float(self.fit.predict(features(descriptors))[0])

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


def lofo(rows: list[dict[str, Any]], alpha: float = RIDGE) -> tuple[float, dict[str, float], np.ndarray]:
    """Leave-one-family-out: MAE over all rows, MAE per family, and the held-out predictions."""
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
    """Fit on the whole zoo table and evaluate it leave-one-family-out."""
    rows = load_zoo(path)
    x = np.stack([features(r) for r in rows])
    y = np.array([float(r["top1"]) for r in rows])
    mae, by_family, _ = lofo(rows, alpha)
    fit = fit_ridge(x, y, alpha)
    z = (x - fit.mean) / fit.scale
    return AccuracyPredictor(fit, mae, by_family, x.min(0), x.max(0), len(rows), z,
                             frozenset(_combo(v) for v in x), nearest_row_reach(z, [r["family"] for r in rows]))
