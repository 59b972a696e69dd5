"""A served model that passes every check but fails at inference time: the CLI run ends
(no hang), exits 3 with one ERROR line, and its record says error, never valid.

The model is real OpenVINO: it reshapes its flattened input to [max(input) + 100003, -1],
which no batch can satisfy, so the CPU plugin raises inside every asynchronous inference.
"""

from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from conftest import compile_reference, run_cli

from common.testspec import Mode, Scenario
from modelprep.card import ModelCard, load_card
from records import results as run_records
from records.results import RunResult


def _model_failing_at_runtime(out_dir: Path) -> Path:
    """u8 [N,3,32,32] in, i32 [?] out: fits the card check, raises on every inference."""
    out_dir.mkdir(parents=True, exist_ok=True)
    image = ops.parameter([-1, 3, 32, 32], ov.Type.u8, name="input")
    flat = ops.reshape(ops.convert(image, ov.Type.f32), ops.constant(np.array([-1], np.int64)), False)
    peak = ops.convert(ops.reduce_max(flat, ops.constant(np.array([0], np.int64)), keep_dims=True), ov.Type.i64)
    rows = ops.add(peak, ops.constant(np.array([100003], np.int64)))
    bad = ops.reshape(flat, ops.concat([rows, ops.constant(np.array([-1], np.int64))], 0), False)
    top1 = ops.convert(ops.reduce_max(bad, ops.constant(np.array([1], np.int64)), keep_dims=False), ov.Type.i32)
    ov.save_model(ov.Model([top1], [image], "fails_at_runtime"), str(out_dir / "model.xml"))
    ModelCard(name="fails.at.runtime", input_size=32, num_classes=10, mean=(127.5,) * 3,
              std=(64.0,) * 3).save(out_dir)
    return out_dir


def test_model_really_fails_only_at_inference(tmp_path: Path) -> None:
    """The premise: it compiles with a static batch, and inference raises."""
    from sut.engine import check_model_fits_card

    model_dir = _model_failing_at_runtime(tmp_path / "m")
    core = ov.Core()
    model = core.read_model(model_dir / "model.xml")
    check_model_fits_card(model, load_card(model_dir), "model.xml")
    model.reshape({model.inputs[0]: [2, 3, 32, 32]})
    compiled = compile_reference(model, core)
    with pytest.raises(RuntimeError, match="reshape"):
        compiled(np.zeros((2, 3, 32, 32), np.uint8))


# The failure surfaces where the pool learns of it: Offline on its dispatcher thread, SingleStream
# on LoadGen's issue thread (both waiting for the request), Server on the failure reaper (the
# request's callback never comes). Server's accuracy queries arrive at target_qps: a fast one.
@pytest.mark.parametrize("scenario", [Scenario.OFFLINE, Scenario.SINGLE_STREAM, Scenario.SERVER])
def test_inference_failure_exits_3_with_error_record(tmp_path: Path, workdir: Path, demo_data: Path,
                                                     cache_dir: Path, scenario: Scenario) -> None:
    model_dir = _model_failing_at_runtime(tmp_path / "m")
    extra = ["--target-qps", "5000"] if scenario is Scenario.SERVER else []
    proc = run_cli(["run", "--mode", "accuracy", "--model", str(model_dir), "--dataset", str(demo_data / "val"),
                    "--system", "host", "--cache-dir", str(cache_dir), "--scenario", scenario.value, *extra],
                   cwd=workdir, timeout=120)
    assert proc.returncode == 3, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, errors
    assert errors[0].startswith("ERROR: inference failed during the test:") and "reshape" in errors[0].lower()
    # Only the first failed batch is logged at error level (not one line per batch).
    assert sum("inference batch failed" in line for line in proc.stderr.splitlines()) == 1

    run_dir = run_records.run_dir(workdir / "results", "host", "fails.at.runtime-f32", scenario, Mode.ACCURACY)
    result = RunResult.load(run_dir)
    assert result.status == "error" and result.valid is False and result.submittable is False
    assert result.error.startswith("inference failed during the test:") and "reshape" in result.error.lower()
    assert "\n" not in result.error
    assert result.accuracy is None and not (run_dir / "accuracy.txt").exists()
    assert run_records.is_incomplete(run_dir)  # the logs of a failed test are never a result
