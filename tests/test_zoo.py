"""The zoo: the table and its validation, a real timm architecture measured INT8 through our
path and cached, and the qualifying logic (published top-1 minus INT8 drop) on real speeds."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import REPO, run_cli

pytest.importorskip("torch")
if importlib.util.find_spec("timm") is None:  # not imported here: models._timm imports it after its shim
    pytest.skip("timm (train extra) is not installed", allow_module_level=True)

from common.errors import ConfigError  # noqa: E402
from search import measure, zoo  # noqa: E402

SMALLEST = min((e for e in zoo.load_zoo() if e.counted and e.timm_name.startswith("mobilenetv3")),
               key=lambda e: e.gmacs)
REAL_SHA = "aa4b5850c1543fa488abf260f18390eda46cf85d"


def test_table_loads_and_every_row_resolves() -> None:
    import models

    entries, drops = zoo.load_zoo(), zoo.load_drops()
    assert len(entries) >= 1500 and len({(e.key, e.img_size) for e in entries}) == len(entries)
    assert len({e.row_key for e in entries}) == len(entries)
    for entry in entries:
        assert entry.source == f"huggingface/pytorch-image-models/results/results-imagenet.csv@{REAL_SHA}"
        assert models.is_model(entry.model_name)
        drop = drops.for_entry(entry)  # the family's own row where it has one, else the stated default
        assert drop.source and drops.expected_int8(entry) == pytest.approx(entry.top1 - drop.drop_pp)
        assert entry.counted == (entry.gmacs > 0) and (entry.counted or entry.note)
    card = models.default_card(SMALLEST.model_name)
    assert card.input_size == SMALLEST.img_size and card.mean[0] == pytest.approx(255 * SMALLEST.mean[0])
    assert not any(name.startswith("timm/") for name in models.list_models())  # listed by `zoo`, not `models`


def test_committed_table_names_its_source_and_counts_its_macs() -> None:
    """The header names the repository, file and commit; the low-MAC families the issue names are
    in it with our own MAC count, and timm's benchmark figure beside it."""
    head = [line for line in zoo.ZOO_CSV.read_text().splitlines()[:10] if line.startswith("#")]
    assert head[0] == f"# source: huggingface/pytorch-image-models results/results-imagenet.csv @ {REAL_SHA}"
    by_row = {e.row_key: e for e in zoo.load_zoo()}
    hg = by_row["hgnetv2_b0.ssld_stage2_ft_in1k@224"]
    assert (hg.img_size, hg.top1, hg.crop_pct, hg.interpolation) == (224, 77.362, 0.965, "bicubic")
    assert hg.gmacs == pytest.approx(0.32, abs=0.01) and hg.macs_check == "agree" and hg.timm_gmacs == 0.33
    assert hg.extra_data  # SSLD distils with unlabelled ImageNet-22k images
    for family in ("ghostnetv3_100.in1k", "repghostnet_100.in1k", "repvit_m1.dist_in1k", "efficientvit_b0.r224_in1k",
                   "fastvit_t8.apple_in1k"):
        assert by_row[family].counted and not by_row[family].extra_data
    resnet = by_row["resnet50.a1_in1k@224"]  # the tag is published at 288 (its first row) and at 224
    assert resnet.gmacs == pytest.approx(4.09, abs=0.01) and resnet.macs_check == "agree"
    at_288 = by_row["resnet50.a1_in1k"]
    assert at_288.img_size == 288 and at_288.gmacs == pytest.approx(6.76, abs=0.01)  # counted at its own size


def test_extra_data_tags_are_flagged_and_left_out_of_the_accuracy_model() -> None:
    """A tag pretrained beyond ImageNet-1k (e.g. MobileNetV3's miil_in21k_ft_in1k) is an answer like
    any other but says so, and does not teach the architecture-to-accuracy predictor."""
    from search.predict_accuracy import load_zoo as predictor_rows

    entries = zoo.load_zoo()
    extra = {e.row_key for e in entries if e.extra_data}
    for key in ("mobilenetv3_large_100.miil_in21k_ft_in1k", "convnext_base.clip_laion2b_augreg_ft_in1k",
                "resnext101_32x16d.fb_wsl_ig1b_ft_in1k", "tf_efficientnet_b0.ns_jft_in1k"):
        assert key in extra
    assert "deit_tiny_patch16_224.fb_in1k" not in extra and "resnet50.a1_in1k" not in extra
    assert all(e.label.endswith("(pretrained beyond ImageNet-1k)") == (e.row_key in extra) for e in entries)
    rows = predictor_rows()
    assert len(rows) == sum(1 for e in entries if e.counted and not e.extra_data)
    assert not extra & {r["key"] for r in rows}


def _data_line(lines: list[str], n: int = 3) -> int:
    """Index of the ``n``-th data row (after the '#' header and the column names)."""
    return next(i for i, line in enumerate(lines) if not line.startswith("#")) + n


def test_malformed_table_is_one_line_error(tmp_path: Path, workdir: Path) -> None:
    lines = zoo.ZOO_CSV.read_text().splitlines()
    header = next(line for line in lines if not line.startswith("#")).split(",")
    i = _data_line(lines)
    cells = lines[i].split(",")
    cells[header.index("top1")] = "seventy"
    bad = tmp_path / "zoo.csv"
    bad.write_text("\n".join([*lines[:i], ",".join(cells), *lines[i + 1:]]) + "\n")
    with pytest.raises(ConfigError, match=rf"{bad}:{i + 1}: column 'top1'"):
        zoo.load_zoo(bad)
    proc = run_cli(["zoo", "--table", str(bad), "--work", str(tmp_path / "work")], cwd=workdir)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and f"{bad}:{i + 1}: column 'top1'" in errors[0], proc.stderr[-2000:]
    # No source in the header; a counted column filled in on a row that was not counted.
    bad.write_text("\n".join(line for line in lines if not line.startswith("# source")) + "\n")
    with pytest.raises(ConfigError, match=rf"{bad}:1: the header names no source"):
        zoo.load_zoo(bad)
    i = next(k for k, line in enumerate(lines) if ",ok," in line)
    cells = lines[i].split(",")  # a row marked not counted must not carry a count
    cells[header.index("status")], cells[header.index("note")] = "not_counted", "build failed"
    bad.write_text("\n".join([*lines[:i], ",".join(cells), *lines[i + 1:]]) + "\n")
    with pytest.raises(ConfigError, match=rf"{bad}:{i + 1}: column 'gmacs': must be empty"):
        zoo.load_zoo(bad)


def test_malformed_drop_table_names_the_line(tmp_path: Path) -> None:
    lines = zoo.DROP_CSV.read_text().splitlines()
    bad = tmp_path / "int8_drop.csv"
    bad.write_text("\n".join([lines[0], lines[1].replace(",measured,", ",guess,"), *lines[2:]]) + "\n")
    with pytest.raises(ConfigError, match=rf"{bad}:2: column 'basis'"):
        zoo.load_drops(bad)
    bad.write_text("\n".join(line for line in lines if not line.startswith("default,")) + "\n")
    with pytest.raises(ConfigError, match="default"):
        zoo.load_drops(bad)


def test_unknown_timm_name_suggests() -> None:
    import models

    with pytest.raises(ConfigError, match="did you mean 'timm/ghostnet_100'"):
        models.get_builder("timm/ghostnet_10")


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, demo_data: Path, tiny_onnx: Path):
    """The smallest zoo architecture and a tiny ONNX classifier, measured INT8 for real (1 round)."""
    work = tmp_path_factory.mktemp("zoo-work")
    records = measure.measure_many([SMALLEST.model_name, tiny_onnx], rounds=1, seconds=1.0, work=work,
                                   progress=False, demo_data=demo_data, reference=tiny_onnx)
    return work, records


def test_smallest_arch_measured_and_cached(measured, demo_data: Path, tiny_onnx: Path) -> None:
    work, records = measured
    record = records[SMALLEST.model_name]
    assert record.samples_per_s > 0 and len(record.rounds) == 1
    data = json.loads(measure.cache_path(work).read_text())
    (host,) = data
    assert "OpenVINO" in host and '"batch_size"' in host
    assert data[host][SMALLEST.model_name]["samples_per_s"] == record.samples_per_s
    # The reference was measured in the same rounds, and its figure travels with the record.
    assert record.reference_samples_per_s == records[measure.model_key(tiny_onnx)].samples_per_s > 0
    # The second call reads the cache: nothing is prepared again (the prepared models are gone).
    shutil.rmtree(work / "models")
    again = measure.measure_int8(SMALLEST.model_name, rounds=1, seconds=1.0, work=work)
    assert again == record.samples_per_s and not (work / "models").exists()
    # More rounds than cached: measured again.
    assert measure.SpeedCache(measure.cache_path(work), host).get(SMALLEST.model_name, rounds=2) is None


def test_qualifying_subtracts_the_drop(measured, tiny_onnx: Path) -> None:
    _, records = measured
    speeds = sorted([records[SMALLEST.model_name].samples_per_s, records[measure.model_key(tiny_onnx)].samples_per_s])
    slow_speed, fast_speed = speeds
    drops = zoo.DropTable([zoo.Int8Drop("family", "Lossy", 0.5, "default", "test"),
                           zoo.Int8Drop("family", "Robust", 0.1, "published", "test"),
                           zoo.Int8Drop("default", "*", 1.5, "default", "test")])
    # The faster model has the higher published top-1 but loses more in INT8.
    fast = replace(SMALLEST, timm_name="fast", top1=76.0, family="Lossy")
    slow = replace(SMALLEST, timm_name="slow", top1=75.9, family="Robust")
    measured_set = [zoo.Measured(e, drops.expected_int8(e), s) for e, s in ((fast, fast_speed), (slow, slow_speed))]
    assert drops.expected_int8(fast) == pytest.approx(75.5) and drops.expected_int8(slow) == pytest.approx(75.8)
    assert zoo.fastest(measured_set, 75.7).entry is slow
    assert zoo.fastest(measured_set, 75.5).entry is fast
    assert zoo.fastest(measured_set, 75.81) is None
    assert zoo.pareto_front(measured_set)[0].entry is fast
    # MAC pruning: a model with 1000x the MACs cannot beat the faster one at 1.25x the peak rate.
    peak = zoo.measured_rate(fast, fast_speed)
    assert zoo.pruned_by_macs(replace(fast, gmacs=fast.gmacs * 1000), measured_set[0], peak)
    assert not zoo.pruned_by_macs(fast, measured_set[0], peak)


def test_pruning_answers_each_threshold_from_real_speeds(measured) -> None:
    """A row is skipped only when, at every threshold it reaches, a measured qualifying model is
    faster than the row could be at best; rows below every threshold or without MACs are skipped
    with their own reason, and the summary says how many and why."""
    from search import survey

    _, records = measured
    speed = records[SMALLEST.model_name].samples_per_s
    drops = zoo.DropTable([zoo.Int8Drop("default", "*", 1.0, "default", "test")])
    small = replace(SMALLEST, top1=79.9)  # expected INT8 78.9: qualifies at 75.7 and 78.4
    done = [zoo.Measured(small, drops.expected_int8(small), speed)]
    peak = zoo.measured_rate(small, speed)
    thresholds = (75.7, 78.4)
    big = replace(SMALLEST, timm_name="big", gmacs=SMALLEST.gmacs * 10, top1=81.0)
    why = survey._domination([big], done, drops, peak, thresholds)
    assert why and f"{small.row_key} {speed:.0f}/s" in why and "75.7 %" in why and "78.4 %" in why
    # Reaching a threshold nothing measured reaches keeps it; so does a cost the peak rate could beat.
    assert survey._domination([big], done, drops, peak, (*thresholds, 80.0)) is None
    assert survey._domination([replace(big, gmacs=SMALLEST.gmacs)], done, drops, peak, thresholds) is None
    low = replace(SMALLEST, timm_name="low", top1=70.0)
    assert survey._unmeasurable(low, drops, thresholds)[0] == "below"
    uncounted = replace(small, timm_name="huge", status="not_counted", gmacs=0.0, note="too large")
    assert survey._unmeasurable(uncounted, drops, thresholds) == \
        ("uncounted", "MACs not counted (not_counted: too large)")
    result = survey.Survey(done, records[SMALLEST.model_name], {"big": why, "low": "x", "huge": "y"},
                           {"big": "slower", "low": "below", "huge": "uncounted"})
    lines = survey.answer_lines(result, thresholds, 0)
    assert "3 of 4 rows were not measured" in "\n".join(lines)
    assert any(line.strip().startswith("pruned 1 rows: slower at best than a measured model") for line in lines)


def test_a_row_published_at_a_second_size_exports_and_prepares(tmp_path: Path) -> None:
    """A tag published at several sizes is named ``timm/<tag>@<size>``; its export and prepared
    model get a valid name (``...-<size>px``), so the zoo can measure it."""
    from models.export import export_architecture
    from modelprep.card import load_card
    from conftest import prepare_model

    sized = min((e for e in zoo.load_zoo() if e.counted and "@" in e.model_name), key=lambda e: e.gmacs)
    onnx = export_architecture(sized.model_name, tmp_path / "sources")
    card = load_card(prepare_model(onnx, "f32", tmp_path / "m", tmp_path / "c"))
    assert card.name.endswith(f"-{sized.img_size}px.untrained") and card.input_size == sized.img_size


def test_a_model_that_cannot_be_built_is_reported_and_the_others_measured(tmp_path: Path, demo_data: Path,
                                                                            tiny_onnx: Path) -> None:
    """The zoo and fastest_at_accuracy measure foreign timm code: one failure must not stop the rest."""
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an ONNX model")
    shutil.copytree(demo_data, tmp_path / "w" / "demo")
    records, failed = measure.measure_each([broken, SMALLEST.model_name], "host", 1, 1.0, tmp_path / "w", False,
                                           tiny_onnx)
    assert list(failed) == [str(broken)] and failed[str(broken)]
    assert records[SMALLEST.model_name].samples_per_s > 0
    assert records[SMALLEST.model_name].reference_samples_per_s == records[measure.model_key(tiny_onnx)].samples_per_s
