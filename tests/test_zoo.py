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

SMALLEST = min(zoo.load_zoo(), key=lambda e: e.gmacs)


def test_table_loads_and_every_row_resolves() -> None:
    import models

    entries, drops = zoo.load_zoo(), zoo.load_drops()
    assert len(entries) == len({e.key for e in entries}) >= 30
    for entry in entries:
        assert models.is_model(entry.model_name)
        card = models.default_card(entry.model_name)
        assert card.input_size == entry.img_size and card.mean[0] == pytest.approx(255 * entry.mean[0])
        drop = drops.for_entry(entry)  # every family of the table has its own row, with a source
        assert drop.scope != "default" and drop.source
        assert drops.expected_int8(entry) == pytest.approx(entry.top1 - drop.drop_pp)
    assert not any(name.startswith("timm/") for name in models.list_models())  # listed by `zoo`, not `models`



def test_extra_data_tags_are_flagged_and_left_out_of_the_accuracy_model() -> None:
    """A tag pretrained beyond ImageNet-1k (e.g. MobileNetV3's miil_in21k_ft_in1k) is an answer like
    any other but says so, and does not teach the architecture-to-accuracy predictor."""
    from search.predict_accuracy import load_zoo as predictor_rows

    entries = zoo.load_zoo()
    extra = {e.key for e in entries if e.extra_data}
    assert "mobilenetv3_large_100.miil_in21k_ft_in1k" in extra
    assert all(e.label.endswith("(pretrained beyond ImageNet-1k)") == (e.key in extra) for e in entries)
    rows = predictor_rows()
    assert len(rows) == len(entries) - len(extra)
    assert not extra & {f"{r['timm_name']}.{r['pretrained_tag']}" for r in rows}

def test_malformed_table_is_one_line_error(tmp_path: Path, workdir: Path) -> None:
    lines = zoo.ZOO_CSV.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[4].split(",")
    cells[header.index("top1")] = "seventy"
    bad = tmp_path / "zoo.csv"
    bad.write_text("\n".join([*lines[:4], ",".join(cells), *lines[5:]]) + "\n")
    with pytest.raises(ConfigError, match=rf"{bad}:5: column 'top1'"):
        zoo.load_zoo(bad)
    proc = run_cli(["zoo", "--table", str(bad), "--work", str(tmp_path / "work")], cwd=workdir)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and f"{bad}:5: column 'top1'" in errors[0], proc.stderr[-2000:]


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
    peak = fast_speed * fast.gmacs
    assert zoo.pruned_by_macs(replace(fast, gmacs=fast.gmacs * 1000), measured_set[0], peak)
    assert not zoo.pruned_by_macs(fast, measured_set[0], peak)
