"""End to end on the bundled demo: real LoadGen runs, real OpenVINO inference, no mocks."""

import json
from pathlib import Path

import numpy as np
import openvino as ov
from conftest import run_cli

from dataset.cache import build_cache
from dataset.val_map import parse_val_map
from sut.accuracy import read_accuracy_log
from sut.card import load_card

RUN_DIR = "results/host/{name}/Offline/{sub}"


def _run(workdir: Path, mode: str, model: Path, demo: Path, cache: Path, *extra: str) -> dict:
    proc = run_cli(["run", "--mode", mode, "--model", str(model), "--dataset", str(demo / "val"),
                    "--system", "host", "--cache-dir", str(cache), *extra], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = load_card(model)
    sub = "accuracy" if mode == "accuracy" else "performance/run_1"
    run_dir = workdir / RUN_DIR.format(name=f"{card.name}-{card.precision}", sub=sub)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and not (run_dir / "INCOMPLETE").exists()
    return {"dir": run_dir, **result}


def _direct_labels(model: Path, demo: Path, cache: Path) -> np.ndarray:
    """The same compiled model run directly (no LoadGen, no pool) on the same cached inputs."""
    card = load_card(model)
    samples = parse_val_map(demo / "val" / "val_map.txt")
    data = np.asarray(build_cache(demo / "val", samples, card.preprocess, cache, progress=False).open())
    compiled = ov.Core().compile_model(str(model / "model.xml"), "CPU")
    return np.concatenate([compiled(data[i:i + 1])[0].reshape(-1) for i in range(len(data))])


def test_accuracy_log_equals_direct_inference(workdir: Path, demo_int8: Path, demo_data: Path,
                                              cache_dir: Path) -> None:
    # 100 samples per load: 5 load/issue/unload rounds (the last one partial), many partial batches.
    result = _run(workdir, "accuracy", demo_int8, demo_data, cache_dir, "--performance-sample-count", "100")
    labels = read_accuracy_log(result["dir"] / "mlperf_log_accuracy.json")
    direct = _direct_labels(demo_int8, demo_data, cache_dir)
    assert sorted(labels) == list(range(len(direct)))
    np.testing.assert_array_equal(np.array([labels[i] for i in range(len(direct))]), direct)
    line = (result["dir"] / "accuracy.txt").read_text().strip()
    assert line == f"accuracy={result['accuracy']['top1_percent']:.3f}%, good={result['accuracy']['good']}, total=450"
    assert result["submittable"] is False  # 450 samples, not 50,000


def test_int8_accuracy_within_half_a_point_of_f32(workdir: Path, demo_f32: Path, demo_int8: Path,
                                               demo_data: Path, cache_dir: Path) -> None:
    f32 = _run(workdir, "accuracy", demo_f32, demo_data, cache_dir)["accuracy"]["top1_percent"]
    int8 = _run(workdir, "accuracy", demo_int8, demo_data, cache_dir)["accuracy"]["top1_percent"]
    assert f32 >= 90.0, f"trained demo model should be accurate, got {f32}"
    # Issue 2 asks for 1 point, the DeciNet issue for 0.5: both read from LoadGen accuracy logs.
    assert f32 - int8 <= 0.5, (f32, int8)


def test_short_performance_run(workdir: Path, demo_int8: Path, demo_data: Path, cache_dir: Path) -> None:
    result = _run(workdir, "performance", demo_int8, demo_data, cache_dir,
                  "--min-duration-ms", "2000", "--target-qps", "0")
    summary = (result["dir"] / "mlperf_log_summary.txt").read_text()
    assert f"Result is : {result['result_validity']}" in summary
    assert result["valid"] == (result["result_validity"] == "VALID")
    assert result["samples_per_second"] > 0 and result["effective_min_duration_ms"] == 2000
    assert result["submittable"] is False
    assert any("non-official settings" in r for r in result["not_submittable_because"])
    assert result["compiled_properties"]["NUM_STREAMS"] == str(result["profile"]["engine"]["num_streams"])
    assert result["inference_precision"] == "f32"
    assert not (result["dir"] / "mlperf_log_trace.json").stat().st_size
