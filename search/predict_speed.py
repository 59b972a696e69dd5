"""INT8 throughput of candidates on this host: measured through our own path, and predicted.

Measuring: a candidate is built with untrained seeded weights (``models.searchnet``), exported
with its card, quantized by NNCF on a few demo calibration images, compiled with the system
profile's engine settings and its pool kept busy for a few seconds (``harness.tune.measure``:
the same sequence as ``mlperf-cpu models --measure``). Results are cached in a JSON file per host
key (``search.measure.host_key``: CPU model, engine settings, OpenVINO version), so a second
search on the same host reuses them.

Predicting: time per image is modelled as a non-negative sum of costs (MACs by kind, activation
and SE elements, residual adds, a memory-traffic proxy, a fixed cost per conv and per image),
fitted by non-negative least squares on relative error, because throughput errors are judged in
percent. Its honest error is the leave-one-out MAPE over the measured candidates, and the
search reports the error on the finalists it re-measures.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from common.files import write_text_atomic
from search.descriptors import describe
from search.space import Candidate, candidate_from_dict, plan

log = logging.getLogger(__name__)

# Per-image cost terms; units keep the coefficients near 1 (ms per GMAC, per M elements, ...).
SPEED_FEATURES = ("macs_dense_kxk", "macs_dense_1x1", "macs_grouped", "macs_dw", "macs_se", "macs_linear",
                  "act_hswish", "act_silu", "se_elems", "add_elems", "memory", "convs", "one")
_SCALE = {"macs_dense_kxk": 1e9, "macs_dense_1x1": 1e9, "macs_grouped": 1e9, "macs_dw": 1e9, "macs_se": 1e9,
          "macs_linear": 1e9, "act_hswish": 1e6, "act_silu": 1e6, "se_elems": 1e6, "add_elems": 1e6,
          "memory": 1e6, "convs": 100.0, "one": 1.0}
UNTRAINED_NOTE = "untrained weights (seeded init): speed is meaningful, accuracy is not"


def speed_features(d: Mapping[str, Any]) -> np.ndarray:
    """The cost terms of descriptors ``d`` (``search.descriptors.describe``)."""
    return np.array([(1.0 if k == "one" else float(d[k])) / _SCALE[k] for k in SPEED_FEATURES])


# ----------------------------------------------------------------------------- measuring
class SpeedCache:
    """Measured samples/s per candidate key, in one JSON file per host key (the caller names it)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())

    def get(self, key: str) -> float | None:
        """Cached samples/s of ``key``, if measured."""
        entry = self.data.get(key)
        return None if entry is None else float(entry["samples_per_second"])

    def put(self, key: str, samples_per_second: float, **extra: Any) -> None:
        """Record a measurement and write the file (atomically: a crash keeps the old file)."""
        self.data[key] = {"samples_per_second": samples_per_second, **extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True))

    def candidates(self) -> list[tuple[Candidate, float]]:
        """Every cached candidate measurement (zoo/reference entries have no candidate)."""
        return [(candidate_from_dict(e["candidate"]), float(e["samples_per_second"]))
                for e in self.data.values() if "candidate" in e]


def candidate_card(cand: Candidate, name: str | None = None, notes: str = UNTRAINED_NOTE) -> dict[str, Any]:
    """The card exported with a candidate (ImageNet preprocessing at its resolution)."""
    from models._registry import DefaultCard

    d = describe(cand)
    return {"name": f"{name or 'searchnet_' + cand.key()}.untrained",
            **DefaultCard(input_size=cand.resolution).to_dict(), "macs": d["macs"], "params": d["params"],
            "trained": False, "notes": notes}


def export_candidate(cand: Candidate, out_dir: Path, seed: int = 0) -> Path:
    """Export ``cand`` with seeded untrained weights to ``<out_dir>/searchnet_<key>.onnx`` (cached)."""
    import torch

    from models.export import export_onnx
    from models.searchnet import SearchNet

    out = Path(out_dir) / f"searchnet_{cand.key()}.onnx"
    if out.is_file():
        return out
    torch.manual_seed(seed)
    model = SearchNet(plan(cand).to_dict())
    tmp = out.with_suffix(".partial")
    export_onnx(model, tmp, candidate_card(cand), "mlperf_cpu.search")
    tmp.rename(out)
    return out


@dataclass
class HostMeter:
    """Measures INT8 throughput of ONNX models on this host through the harness's own path."""

    workspace: Any  # pipeline.flows.Workspace
    engine: Any  # sut.config.EngineConfig
    seconds: float = 3.0
    calib_images: int = 16
    repeats: int = 2  # other jobs only ever slow a run down: the fastest of a few short runs is the least disturbed

    def __post_init__(self) -> None:
        import openvino as ov

        from pipeline.flows import demo_calibration

        self.core = ov.Core()
        self.calibration = demo_calibration(self.workspace, self.calib_images)

    def measure_onnx(self, source: Path, keep: bool = True) -> float:
        """Prepare ``source`` (an ONNX file or registered architecture name) as INT8 and measure it
        (samples/s, the best of ``repeats`` runs of ``seconds``)."""
        import shutil

        from harness.tune import measure
        from modelprep.card import load_card
        from pipeline.flows import prepare_model

        model_dir = prepare_model(str(source), "int8", self.workspace, self.calibration)
        try:
            card = load_card(model_dir)
            return measure(self.core, model_dir, card, self.engine, self.seconds, runs=self.repeats)
        finally:
            if not keep:  # hundreds of candidates: keep the disk small (references stay prepared)
                shutil.rmtree(model_dir, ignore_errors=True)

    def measure_candidate(self, cand: Candidate) -> float:
        """INT8 samples/s of ``cand`` (exported to the workspace's sources)."""
        source = export_candidate(cand, self.workspace.models / "sources")
        try:
            return self.measure_onnx(source, keep=False)
        finally:
            source.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- predicting
@dataclass(frozen=True)
class SpeedPredictor:
    """Non-negative per-image cost model: ms/image = coef . features."""

    coef: np.ndarray
    loo_mape: float
    n: int

    def predict(self, d: Mapping[str, Any]) -> float:
        """Predicted INT8 samples/s for descriptors ``d``."""
        ms = float(speed_features(d) @ self.coef)
        return 1000.0 / max(ms, 1e-6)

    def terms(self, d: Mapping[str, Any]) -> dict[str, float]:
        """Predicted ms per image by cost term (what the time goes to, per the model)."""
        return {k: float(v) for k, v in zip(SPEED_FEATURES, speed_features(d) * self.coef) if v > 0}


# Shrinkage towards the prior, relative to a row's relative error: a coefficient twice its prior
# costs as much as a 10 % misfit on about one measured candidate in eight.
PRIOR_WEIGHT = 0.1 / 8 ** 0.5


def _nnls(x: np.ndarray, ms: np.ndarray, prior: np.ndarray | None = None,
          scale: np.ndarray | None = None) -> np.ndarray:
    """Non-negative coefficients minimising the relative error of the predicted time, optionally
    shrunk towards ``prior`` (deviations measured in units of ``scale``)."""
    from scipy.optimize import nnls

    a, b = x / ms[:, None], np.ones_like(ms)  # relative error: each row divided by its target
    if prior is not None:
        a = np.vstack([a, np.diag(PRIOR_WEIGHT / scale)])
        b = np.concatenate([b, PRIOR_WEIGHT * prior / scale])
    coef, _ = nnls(a, b)
    return coef


def _fit(x: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """Two levels: a common cost per MAC + memory + per image (robust with few points), then every
    term shrunk towards that prior (MAC kinds towards the common rate, the rest towards it too)."""
    mac_cols = [i for i, k in enumerate(SPEED_FEATURES) if k.startswith("macs_")]
    simple = np.stack([x[:, mac_cols].sum(1), x[:, SPEED_FEATURES.index("memory")], x[:, -1]], 1)
    rate, mem, one = _nnls(simple, ms)
    prior = np.zeros(len(SPEED_FEATURES))
    prior[mac_cols] = rate
    prior[SPEED_FEATURES.index("memory")] = mem
    prior[-1] = one
    # scale: the coefficient change that moves an average candidate's time by its mean time
    means = np.maximum(x.mean(0), 1e-12)
    scale = ms.mean() / means
    return _nnls(x, ms, prior, scale)


def fit_speed(measured: list[tuple[Mapping[str, Any], float]]) -> SpeedPredictor:
    """Fit on ``(descriptors, samples/s)`` pairs; the error is leave-one-out MAPE (in %)."""
    if len(measured) < 2:
        raise ValueError(f"need at least 2 measured candidates to fit the speed model, got {len(measured)}")
    x = np.stack([speed_features(d) for d, _ in measured])
    ms = np.array([1000.0 / s for _, s in measured])
    errors = []
    for i in range(len(ms)):
        keep = np.arange(len(ms)) != i
        pred_ms = float(x[i] @ _fit(x[keep], ms[keep]))
        errors.append(abs(ms[i] / max(pred_ms, 1e-6) - 1.0))  # |predicted rate - measured| / measured
    return SpeedPredictor(_fit(x, ms), 100.0 * float(np.mean(errors)), len(ms))


def mape(predicted: list[float], measured: list[float]) -> float:
    """Mean absolute percentage error of ``predicted`` against ``measured``."""
    return 100.0 * float(np.mean([abs(p - m) / m for p, m in zip(predicted, measured)]))
