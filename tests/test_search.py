"""The DeciNet-style search: space validation, candidates that build with the counted MACs, the
zoo descriptors reproduced, the accuracy model's LOFO evaluation on the real table, and a tiny
search that measures real INT8 candidates (no speed is asserted)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")

from common.errors import ConfigError  # noqa: E402
from search.descriptors import describe  # noqa: E402
from search.predict_accuracy import fit_accuracy, load_zoo  # noqa: E402
from search.space import (DEFAULT_SPACE, candidate_from_dict, load_candidate, load_space, plan,  # noqa: E402
                          space_to_dict)

# A small space whose candidates quantize and compile in seconds, inside the zoo's descriptor range.
TINY_SPACE = {
    "resolution": [224], "stem_width": [32], "stem": [[3, 2]], "stem_act": ["relu"], "head_width": [1920],
    "stages": [
        {"stride": 2, "depth": [1], "width": [32], "block": ["ir"], "expansion": [4], "kernel": [3]},
        {"stride": 2, "depth": [1], "width": [48], "block": ["ir"], "expansion": [4], "kernel": [3, 5]},
        {"stride": 2, "depth": [1, 2], "width": [96], "block": ["ir", "fused"], "expansion": [4], "kernel": [3]},
        {"stride": 1, "depth": [1], "width": [128], "block": ["ir"], "expansion": [6], "kernel": [3]},
        {"stride": 2, "depth": [1], "width": [320], "block": ["ir"], "expansion": [6], "kernel": [3]},
    ],
}
for _stage in TINY_SPACE["stages"]:  # MobileNetV2-like: inside the zoo's descriptor distribution
    _stage.update(se=[False], act=["relu"])

def test_space_and_candidate_round_trip_and_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space_to_dict(DEFAULT_SPACE)))
    assert load_space(path) == DEFAULT_SPACE
    cand = DEFAULT_SPACE.sample(random.Random(3))
    cpath = tmp_path / "cand.json"
    cpath.write_text(json.dumps(cand.to_dict()))
    assert load_candidate(cpath) == cand

    bad = space_to_dict(DEFAULT_SPACE)
    bad["stages"][2]["act"] = ["relu", "gelu"]
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=r"space.yaml.stages\[2\].act: .*'gelu'") as err:
        load_space(path)
    assert "\n" not in str(err.value)
    bad = cand.to_dict()
    bad["stages"][1]["blok"] = "ir"
    with pytest.raises(ConfigError, match=r"candidate.stages\[1\]: unknown key 'blok' \(did you mean 'block'\?\)"):
        candidate_from_dict(bad)
    bad = cand.to_dict()
    bad["stages"][0]["stride"] = 1
    with pytest.raises(ConfigError, match="total stride"):
        candidate_from_dict(bad)


def test_cli_bad_space_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cli.main import main

    path = tmp_path / "space.yaml"
    path.write_text("resolution: [224]\nstem_widht: [16]\n")
    code = main(["search", "--min-top1", "75", "--space", str(path), "--work", str(tmp_path / "work")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("ERROR: ") and "stem_widht" in err[-1]


def test_candidates_build_with_the_counted_macs_and_descriptors() -> None:
    from models._macs import count_macs, count_params
    from models.descriptors import describe_module
    from models.searchnet import SearchNet

    rng = random.Random(7)
    for _ in range(2):
        cand = DEFAULT_SPACE.sample(rng)
        assert candidate_from_dict(cand.to_dict()) == cand  # sampled candidates validate
        d = describe(cand)
        net = SearchNet(plan(cand).to_dict())
        assert count_macs(net, cand.resolution) == d["macs"]
        assert count_params(net) == d["params"]
        hooked = describe_module(net, cand.resolution)
        assert (hooked["activation"], hooked["has_se"], hooked["se_blocks"]) == \
            (d["activation"], d["has_se"], d["se_blocks"])
        assert hooked["depthwise_mac_fraction"] == pytest.approx(d["depthwise_mac_fraction"], abs=1e-12)


def test_hook_descriptors_reproduce_the_zoo_row() -> None:
    from models._timm import create_timm
    from models.descriptors import describe_module

    row = next(r for r in load_zoo() if r["arch"] == "mobilenetv3_large_100")
    d = describe_module(create_timm("mobilenetv3_large_100"), int(row["img_size"]))
    assert round(d["gmacs"], 4) == float(row["gmacs"])
    assert round(d["depthwise_mac_fraction"], 4) == float(row["depthwise_mac_fraction"])
    assert d["has_se"] == int(row["has_se"]) == 1
    assert d["activation"] == row["activation"] == "relu+hswish"
    assert round(d["params_m"], 2) == float(row["params_m"])


def test_accuracy_model_lofo_on_the_real_table() -> None:
    acc = fit_accuracy()
    rows = load_zoo()
    assert acc.rows == len(rows) >= 30
    assert set(acc.lofo_by_family) == {r["family"] for r in rows}
    assert 0.3 < acc.lofo_mae < 5.0  # a real error, neither a fit on itself nor noise
    # the full fit ranks a big ResNet above a tiny RegNet, as the table does
    by_arch = {r["arch"]: r for r in rows}
    assert acc.predict(by_arch["resnet101"]) > acc.predict(by_arch["regnetx_002"]) + 3
    assert not any(acc.extrapolation(r) for r in rows)  # the table is inside its own range
    mixed = {**by_arch["fbnetv3_b"], "activation": "hswish+silu"}  # no zoo row mixes the two
    assert "se/activation combination" in acc.extrapolation(mixed)
    text = acc.describe(acc.predict(describe(DEFAULT_SPACE.sample(random.Random(0)))))
    assert text.startswith("predicted ") and text.endswith(f"+- {acc.lofo_mae:.1f} (LOFO MAE)")


def test_lower_bound_and_published_frontier_clamp() -> None:
    """A prediction above the best published ImageNet-1k top-1 at <= its MACs is clamped to it; the
    lower bound subtracts the LOFO error's 90th percentile; below every published model's MACs
    nothing qualifies."""
    from dataclasses import replace

    from search.predict_accuracy import Frontier

    acc = fit_accuracy()
    rows = load_zoo()
    assert 0 < acc.lofo_mae < acc.lofo_p90 < 10
    published = [{"key": "a", "gmacs": 0.2, "top1": 70.0}, {"key": "b", "gmacs": 0.4, "top1": 76.0},
                 {"key": "c", "gmacs": 0.6, "top1": 74.0}, {"key": "d", "gmacs": 1.0, "top1": 79.0}]
    frontier = Frontier.of(published)
    assert frontier.at(0.1) is None and frontier.at(0.2) == (70.0, "a") and frontier.at(0.59) == (76.0, "b")
    assert frontier.at(0.6) == (76.0, "b") and frontier.at(5.0) == (79.0, "d")
    bounded = replace(acc, frontier=frontier, lofo_p90=2.0)
    cand = describe(DEFAULT_SPACE.sample(random.Random(0)))
    raw = acc.predict(cand)
    cases = [  # (gmacs, expected frontier, expected clamped top-1)
        (0.1, None, raw), (0.3, 70.0, min(raw, 70.0)), (0.7, 76.0, min(raw, 76.0)), (2.0, 79.0, min(raw, 79.0))]
    for gmacs, front, top1 in cases:
        b = bounded.bound({**cand, "gmacs": gmacs})
        raw_here = acc.predict({**cand, "gmacs": gmacs})
        assert b.predicted == pytest.approx(raw_here) and b.frontier == front
        assert b.top1 == pytest.approx(raw_here if front is None else min(raw_here, front))
        assert b.lower == pytest.approx(b.top1 - 2.0) and b.clamped == (front is not None and raw_here > front)
        assert b.qualifies(b.lower) == (front is not None) and not b.qualifies(b.lower + 0.01)
        assert [n[0] for n in b.nearest][:1] == [min(published, key=lambda r: abs(np.log(r["gmacs"] / gmacs)))["key"]]
    # On the real table: a candidate predicted above every published model with its MACs is clamped.
    def cost(r: dict) -> float:  # a published row sits at the larger of our MAC count and timm's
        return max(r["gmacs"], r["timm_gmacs"])

    small = min(rows, key=cost)
    over = {**small, "gmacs": cost(small), "params_m": 300.0, "img_size": 448, "activation": "gelu",
            "depthwise_mac_fraction": 0.0}
    b = acc.bound(over)
    assert b.predicted > b.frontier == small["top1"] and b.top1 == b.frontier and b.clamped
    assert b.to_dict()["clamped_to_frontier"] and b.to_dict()["nearest_published"][0]["key"]


def test_tiny_search_measures_real_candidates(tmp_path: Path, demo_data: Path) -> None:
    from harness.profile import load_profile
    from pipeline.flows import Workspace
    from search.evolve import SearchRequest, run_search
    from search.space import space_from_dict

    space = space_from_dict(TINY_SPACE)
    acc = fit_accuracy()
    descs = [describe(space.sample(random.Random(i))) for i in range(20)]
    assert not any(acc.extrapolation(d) for d in descs)  # the tiny space sits inside the zoo's range
    target = min(acc.bound(d).lower for d in descs) - 0.5  # every candidate qualifies: this tests the machinery
    req = SearchRequest(min_top1=target, budget_s=10, out=tmp_path / "out",
                        workspace=Workspace(work=tmp_path / "work", demo_data=demo_data),
                        engine=load_profile("host").engine, space=space, measure_seconds=1.0, zoo_archs=0,
                        reference=None, max_samples=2, finalists=1, final_runs=0, calib_images=4, measure_repeats=1,
                        leaders=1, progress=False)
    result = run_search(req)
    measured = [m for m in result["measured"] if m["samples_per_second"] > 0]
    assert len(measured) >= 2
    assert result["speed_model"]["fitted_on"] >= 2
    assert result["winner"] is not None and result["winner"]["samples_per_second"] > 0
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "UNTRAINED" in report and "PREDICTED" in report and "LOFO MAE" in report
    assert "published frontier" in report and "lower bound" in report and "nearest published models" in report
    winner = result["winner"]
    assert winner["top1_lower_bound"] >= target and winner["top1_predicted"] <= winner["accuracy"]["frontier"]
    stored = json.loads((tmp_path / "out" / "winner.json").read_text())
    assert "predicted" in stored["card"]["notes"].lower() and "lower bound" in stored["card"]["notes"]
    accuracy = stored["accuracy"]
    assert {"predicted", "frontier", "frontier_model", "top1", "lower_bound", "nearest_published"} <= set(accuracy)
    assert accuracy["lower_bound"] == pytest.approx(accuracy["top1"] - result["accuracy_model"]["lofo_p90"])
    from models.searchnet import SearchNet
    from models._macs import count_macs

    assert count_macs(SearchNet(stored["plan"]), stored["plan"]["resolution"]) == \
        describe(candidate_from_dict(stored["candidate"]))["macs"]


def test_the_registered_searched_model_builds_with_its_provenance() -> None:
    import models
    from models._macs import count_macs
    from models.searched import _stored

    for name in ("searchnet_epyc", "searchnet_epyc_avx2"):
        card = models.default_card(name)
        assert "PREDICTED" in card.notes and "AMD" in card.notes and "EPYC" in card.notes
        stored = _stored(name)
        net = models.create(name)
        assert count_macs(net, card.input_size) == describe(candidate_from_dict(stored["candidate"]))["macs"]
    # The winner under the evidence rule states its lower bound, which reaches the target it was searched for.
    accuracy = _stored("searchnet_epyc_avx2")["accuracy"]
    assert accuracy["lower_bound"] >= 75.7 and accuracy["top1"] <= accuracy["frontier"]


def test_a_zoo_reference_that_cannot_be_built_is_skipped(tmp_path: Path, demo_data: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Zoo references are foreign timm code (two published CondConv rows do not export to ONNX):
    one that fails is reported and the search goes on."""
    from dataclasses import replace

    from harness.profile import load_profile
    from models.zoo_table import load_zoo
    from pipeline.flows import Workspace
    from search import evolve
    from search.space import space_from_dict

    broken = replace(next(e for e in load_zoo() if e.counted), timm_name="no_such_net")
    monkeypatch.setattr(evolve, "zoo_references", lambda min_top1, count: [broken])
    req = evolve.SearchRequest(min_top1=75.7, budget_s=10, out=tmp_path / "out",
                               workspace=Workspace(work=tmp_path / "work", demo_data=demo_data),
                               engine=load_profile("host").engine, space=space_from_dict(TINY_SPACE),
                               measure_seconds=1.0, zoo_archs=1, reference=None, max_samples=0, finalists=1,
                               final_runs=0, calib_images=4, measure_repeats=1, leaders=1, progress=False)
    search = evolve.Search(req)
    with caplog.at_level(logging.DEBUG, logger="search.evolve"):
        search.measure_references()
    assert search.zoo == []
    assert any("zoo " in r.getMessage() and "skipped, could not be exported" in r.getMessage() for r in caplog.records)
