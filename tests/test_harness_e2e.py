"""End to end on the bundled demo: real LoadGen runs, real OpenVINO inference, no mocks."""

from pathlib import Path

import numpy as np
from conftest import assert_int8_labels_agree, compile_reference, run_loadgen_test, run_valid_performance

from dataset.cache import build_cache
from dataset.val_map import parse_val_map
from records.accuracy import read_accuracy_log
from modelprep.card import load_card
from records.results import RunResult

def _run(workdir: Path, mode: str, model: Path, demo: Path, cache: Path, *extra: str) -> RunResult:
    return run_loadgen_test(workdir, mode, model, demo / "val", cache, *extra)[1]


def _direct_labels(model: Path, demo: Path, cache: Path) -> np.ndarray:
    """The same compiled model run directly (no LoadGen, no pool) on the same cached inputs."""
    card = load_card(model)
    samples = parse_val_map(demo / "val" / "val_map.txt")
    data = np.asarray(build_cache(demo / "val", samples, card.preprocess, cache, progress=False).open())
    compiled = compile_reference(model / "model.xml")
    return np.concatenate([compiled(data[i:i + 1])[0].reshape(-1) for i in range(len(data))])


def test_accuracy_log_equals_direct_inference(workdir: Path, demo_int8: Path, demo_data: Path,
                                              cache_dir: Path) -> None:
    # 100 samples per load: 5 load/issue/unload rounds (the last one partial), many partial batches.
    result = _run(workdir, "accuracy", demo_int8, demo_data, cache_dir, "--performance-sample-count", "100")
    labels = read_accuracy_log(result.directory / "mlperf_log_accuracy.json")
    direct = _direct_labels(demo_int8, demo_data, cache_dir)
    assert sorted(labels) == list(range(len(direct)))
    assert_int8_labels_agree(labels, direct, "LoadGen run against direct batch-1 inference")
    line = (result.directory / "accuracy.txt").read_text().strip()
    acc = result.accuracy
    assert acc is not None and line == f"accuracy={acc.top1_percent:.3f}%, good={acc.good}, total=450"
    assert result.submittable is False  # 450 samples, not 50,000
    assert any("accuracy run over 450 samples" in r for r in result.not_submittable_because)


def test_int8_accuracy_within_half_a_point_of_f32(workdir: Path, demo_f32: Path, demo_int8: Path,
                                               demo_data: Path, cache_dir: Path) -> None:
    f32 = _run(workdir, "accuracy", demo_f32, demo_data, cache_dir).accuracy.top1_percent
    int8 = _run(workdir, "accuracy", demo_int8, demo_data, cache_dir).accuracy.top1_percent
    assert f32 >= 90.0, f"trained demo model should be accurate, got {f32}"
    # The INT8 model may lose at most half a point of top-1, read from LoadGen accuracy logs.
    assert f32 - int8 <= 0.5, (f32, int8)


def test_short_performance_run(workdir: Path, demo_int8: Path, demo_data: Path, cache_dir: Path) -> None:
    result = run_valid_performance(workdir, demo_int8, demo_data / "val", cache_dir)
    summary = (result.directory / "mlperf_log_summary.txt").read_text()
    assert "Result is : VALID" in summary and result.valid
    assert result.samples_per_second > 0 and result.min_duration_ms == 2000
    assert result.submittable is False
    assert any("non-official command-line settings" in r for r in result.not_submittable_because)
    assert result.compiled_properties["NUM_STREAMS"] == str(result.profile.engine.num_streams)
    assert result.inference_precision == "f32"
    assert not (result.directory / "mlperf_log_trace.json").stat().st_size
