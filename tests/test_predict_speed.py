"""search.predict_speed: the cost model recovers known per-feature costs from synthetic measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.predict_speed import SPEED_FEATURES, SpeedCache, fit_speed, mape

# Known costs in the model's units (ms per GMAC, per M elements, per 100 convs, per image); every
# feature has its own value so a swapped or dropped column shows in the recovered coefficients.
TRUE_COST = {"macs_dense_kxk": 2.0, "macs_dense_1x1": 1.0, "macs_grouped": 3.0, "macs_dw": 6.0, "macs_se": 0.5,
             "macs_linear": 1.5, "act_hswish": 0.02, "act_silu": 0.05, "se_elems": 0.01, "add_elems": 0.03,
             "memory": 0.04, "convs": 0.2, "one": 0.3}
# Raw descriptor magnitudes of a small network (MACs in the hundreds of millions, elements in millions).
MAGNITUDE = {"convs": 60.0, **{k: 3e8 for k in SPEED_FEATURES if k.startswith("macs_")}}


def _descriptors(rng: np.random.Generator) -> dict[str, float]:
    return {k: rng.uniform(0.2, 1.0) * MAGNITUDE.get(k, 2e6) for k in SPEED_FEATURES if k != "one"}


def _true_ms(d: dict[str, float], cost: dict[str, float]) -> float:
    """Per-image time from the costs, written out from the units (not from the module's own scaling)."""
    units = {"convs": 100.0, **{k: 1e9 for k in SPEED_FEATURES if k.startswith("macs_")}}
    return cost["one"] + sum(cost[k] * d[k] / units.get(k, 1e6) for k in d)


def _measured(n: int, seed: int, cost: dict[str, float], noise: float = 0.0) -> list[tuple[dict[str, Any], float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        d = _descriptors(rng)
        rows.append((d, 1000.0 / (_true_ms(d, cost) * (1.0 + rng.uniform(-noise, noise)))))
    return rows


def test_recovers_every_per_feature_cost() -> None:
    predictor = fit_speed(_measured(60, seed=1, cost=TRUE_COST))
    recovered = dict(zip(SPEED_FEATURES, predictor.coef))
    for feature, cost in TRUE_COST.items():
        assert recovered[feature] == pytest.approx(cost, rel=0.02), feature
    assert predictor.n == 60
    assert predictor.loo_mape < 0.5


def test_predicts_unseen_candidates_and_splits_their_time_by_term() -> None:
    predictor = fit_speed(_measured(60, seed=2, cost=TRUE_COST))
    unseen = _measured(20, seed=3, cost=TRUE_COST)
    predicted = [predictor.predict(d) for d, _ in unseen]
    assert mape(predicted, [rate for _, rate in unseen]) < 1.0
    d, rate = unseen[0]
    assert sum(predictor.terms(d).values()) == pytest.approx(1000.0 / rate, rel=0.01)


def test_a_feature_that_costs_nothing_gets_no_cost() -> None:
    free_silu = {**TRUE_COST, "act_silu": 0.0}
    coef = dict(zip(SPEED_FEATURES, fit_speed(_measured(60, seed=4, cost=free_silu)).coef))
    assert coef["act_silu"] < 0.01 * TRUE_COST["act_silu"] + 1e-6
    assert coef["macs_dw"] == pytest.approx(TRUE_COST["macs_dw"], rel=0.05)


def test_noisy_measurements_give_an_honest_error() -> None:
    # 5 % timing noise: the leave-one-out error reports it, neither hiding it nor blowing it up.
    predictor = fit_speed(_measured(60, seed=5, cost=TRUE_COST, noise=0.05))
    assert 0.5 < predictor.loo_mape < 6.0
    unseen = _measured(40, seed=6, cost=TRUE_COST)
    assert mape([predictor.predict(d) for d, _ in unseen], [rate for _, rate in unseen]) < 3.0


def test_one_measurement_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fit_speed(_measured(1, seed=7, cost=TRUE_COST))


def test_speed_cache_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "speed" / "host.json"
    cache = SpeedCache(path)
    assert cache.get("a") is None
    cache.put("a", 123.5, note="x")
    reloaded = SpeedCache(path)
    assert reloaded.get("a") == 123.5
    assert reloaded.data["a"]["note"] == "x"
