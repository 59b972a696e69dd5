"""The watchdog: a run whose inference stops finishing ends INCOMPLETE with exit 3, in the warm-up
or inside the LoadGen test, its record saying why.

The hang is real OpenVINO, no mock: the served model runs a ``Loop`` whose trip count is the
batch's brightest pixel times 10^12, so a black image is answered at once and a white one is
never answered; the harness's own pool, SUT and LoadGen carry it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from conftest import run_loadgen_test
from PIL import Image

from common.testspec import Mode, Scenario
from harness.watchdog import derived_limit_s
from modelprep.card import ModelCard
from records import results as run_records

NAME = "hangs.on.white"


def _model_hanging_on_white(out_dir: Path) -> Path:
    """u8 [N,3,32,32] in, i32 [N] out (each sample's brightest value as its 'label')."""
    out_dir.mkdir(parents=True, exist_ok=True)
    image = ops.parameter([-1, 3, 32, 32], ov.Type.u8, name="input")
    per_sample = ops.reduce_max(ops.convert(image, ov.Type.f32), ops.constant(np.array([1, 2, 3], np.int64)),
                                keep_dims=False)
    peak = ops.convert(ops.reduce_max(per_sample, ops.constant(np.array([0], np.int64)), keep_dims=False),
                       ov.Type.i64)
    counter = ops.parameter([], ov.Type.f32, name="counter")
    body = ov.Model([ops.constant(np.array(True)), ops.add(counter, ops.constant(np.array(1.0, np.float32)))],
                    [counter])
    loop = ops.loop(ops.multiply(peak, ops.constant(np.array(10**12, np.int64))), ops.constant(np.array(True)))
    loop.set_function(body)
    loop.set_special_body_ports([-1, 0])
    loop.set_merged_input(counter, ops.constant(np.array(0.0, np.float32)).output(0), body.outputs[1])
    # min(count, 0) is 0 but depends on the loop, so the loop is never optimised away
    zero = ops.minimum(ops.convert(loop.get_iter_value(body.outputs[1], -1), ov.Type.i32),
                       ops.constant(np.array(0, np.int32)))
    top1 = ops.add(ops.convert(per_sample, ov.Type.i32), zero)
    ov.save_model(ov.Model([top1], [image], "hangs_on_white"), str(out_dir / "model.xml"))
    ModelCard(name=NAME, input_size=32, num_classes=10, mean=(127.5,) * 3, std=(64.0,) * 3).save(out_dir)
    return out_dir


def _black_then_white(root: Path) -> Path:
    """A two-image dataset in ImageNet val layout: sample 0 black, sample 1 white."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in (("black", 0), ("white", 255)):
        Image.new("RGB", (48, 48), (value,) * 3).save(root / f"{name}.JPEG", quality=100)
    (root / "val_map.txt").write_text("black.JPEG 0\nwhite.JPEG 1\n")
    return root


@pytest.fixture(scope="module")
def hanging(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("hang")
    return _model_hanging_on_white(base / "model"), _black_then_white(base / "data")


# performance_sample_count 1: the warm-up reads sample 0 (black) only, and the accuracy test then
# reaches sample 1 (white) inside LoadGen; without it the warm-up itself takes the white one.
@pytest.mark.parametrize("where, extra", [("test", ["--performance-sample-count", "1"]), ("warm-up", [])])
def test_a_hung_request_ends_the_run_incomplete_with_exit_3(hanging: tuple[Path, Path], workdir: Path,
                                                             cache_dir: Path, where: str, extra: list[str]) -> None:
    model, data = hanging
    proc, record = run_loadgen_test(workdir, "accuracy", model, data, cache_dir, "--watchdog-s", "3", *extra,
                                    scenario="SingleStream", expect_ok=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 3, log[-3000:]
    armed = "watchdog: a test whose inference makes no progress for 3 s ends INCOMPLETE, exit 3 (set)" in log
    assert armed == (where == "test"), log[-3000:]  # the warm-up never finished
    fired = re.search(r"watchdog: (\d+) inference batches in flight and none finished for (\d+) s \(limit 3 s\)", log)
    assert fired and int(fired.group(1)) >= 1 and int(fired.group(2)) >= 3, log[-3000:]
    run_dir = run_records.run_dir(workdir / "results", "host", f"{NAME}-f32", Scenario.SINGLE_STREAM, Mode.ACCURACY)
    assert run_records.is_incomplete(run_dir) and "watchdog" in (run_dir / "INCOMPLETE").read_text()
    assert record is not None and record.status == "interrupted" and not record.valid and not record.submittable
    assert record.error.startswith("watchdog: inference made no progress for ")
    assert not (run_dir / "accuracy.txt").exists()


def test_a_healthy_run_prints_the_limit_it_derived(demo_f32: Path, demo_data: Path, workdir: Path,
                                                   cache_dir: Path) -> None:
    proc, run = run_loadgen_test(workdir, "performance", demo_f32, demo_data / "val", cache_dir,
                                 "--min-duration-ms", "1000", "--target-qps", "0", scenario="SingleStream")
    found = re.search(r"watchdog: a test whose inference makes no progress for (\d+) s ends INCOMPLETE, exit 3 "
                      r"\(derived: the warm-up waited at most ([\d.]+) s\)", proc.stdout + proc.stderr)
    assert found, (proc.stdout + proc.stderr)[-3000:]
    assert int(found.group(1)) >= 60 and run.status == "ok"  # the floor: a demo model's waits are milliseconds


@pytest.mark.parametrize("longest, limit", [(0.0, 60.0), (0.5, 60.0), (3.0, 60.0), (4.0, 80.0), (10.0, 200.0)])
def test_the_derived_limit_is_a_multiple_of_the_warm_up_wait_with_a_floor(longest: float, limit: float) -> None:
    assert derived_limit_s(longest) == limit
