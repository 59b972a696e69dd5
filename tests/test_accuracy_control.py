"""prepare --max-accuracy-drop: NNCF accuracy-controlled INT8 on the trained demo model, held-out demo val images.

Calibrating on three dimmed train images makes every activation range too narrow, so plain PTQ clips
and misses the target. How dim is enough depends on the CPU's INT8 kernels (AVX2, AVX-512 VNNI and AMX
round differently), so the test dims step by step until plain PTQ on this host misses the target, within
bounds, and fails if even the darkest step does not. Accuracy control then has layers to give back to
float; the card must name them and hold the measured drop.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from conftest import DEMO_ONNX, REPO, run_cli
from dataset.val_map import parse_name_list

MAX_DROP = 0.25  # points; one demo val image is 0.22
# Calibration brightness, tried in order until plain PTQ misses MAX_DROP; the darkest still keeps the digits'
# shapes (pixel values up to ~50) so accuracy control can win the loss back.
DIMS = (0.45, 0.3, 0.2)


def _dimmed_calibration(demo: Path, out: Path, dim: float, count: int = 3) -> tuple[Path, Path]:
    """The first ``count`` calibration images at ``dim`` brightness, and their list."""
    names = parse_name_list(demo / "cal_list.txt")[:count]
    (out / "images").mkdir(parents=True, exist_ok=True)
    for name in names:
        image = cv2.imread(str(demo / "train" / name))
        assert image is not None, name
        cv2.imwrite(str(out / "images" / name), (image * dim).astype(np.uint8))
    cal_list = out / "cal_list.txt"
    cal_list.write_text("".join(f"{name}\n" for name in names))
    return out / "images", cal_list


def _prepare(demo: Path, out: Path, cache: Path, cal_dir: Path, cal_list: Path, max_drop: float | None) -> dict:
    from modelprep.agreement import CheckSet
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    req = PrepareRequest(DEMO_ONNX, "int8", out, cache, calibration=CalibrationConfig(cal_dir, cal_list),
                         check=CheckSet(demo / "val", demo / "val" / "val_map.txt"), max_accuracy_drop=max_drop)
    return json.loads((prepare(req) / "card.json").read_text())


def test_layers_go_back_to_float_until_the_drop_is_met(demo_data: Path, session_dir: Path, cache_dir: Path,
                                                       tmp_path: Path) -> None:
    drops = {}
    for dim in DIMS:  # the premise: plain PTQ on this host misses the target
        cal_dir, cal_list = _dimmed_calibration(demo_data, tmp_path / f"cal-{dim}", dim)
        out = session_dir / f"models-ac-{dim}"  # the prepared-model cache does not key on image content
        ptq = _prepare(demo_data, out, cache_dir, cal_dir, cal_list, None)
        assert ptq["calibration"]["tool"] == "nncf.quantize"
        drops[dim] = ptq["accuracy_check"]["top1_drop_points"]
        if drops[dim] > MAX_DROP:
            break
    assert drops[dim] > MAX_DROP, f"plain PTQ met the target at every brightness tried: {drops}"

    card = _prepare(demo_data, out, cache_dir, cal_dir, cal_list, MAX_DROP)
    cal, check = card["calibration"], card["accuracy_check"]
    assert cal["tool"] == "nncf.quantize_with_accuracy_control" and cal["max_accuracy_drop_points"] == MAX_DROP
    assert cal["validation_images"] == check["samples"] == 450  # val minus the calibration list (all train)
    # How many go back depends on the CPU's INT8 kernels (on the AVX2 host, all of them)
    assert 1 <= len(cal["float_layers"]) <= cal["compute_layers"] == 14
    assert all(name.endswith("WithoutBiases") for name in cal["float_layers"])  # conv/FC names from the ONNX
    assert check["top1_drop_points"] <= MAX_DROP
    assert check["top1_drop_points"] == round(check["fp32_top1_percent"] - check["int8_top1_percent"], 3)


def test_needs_held_out_images(tmp_path: Path, demo_data: Path) -> None:
    proc = run_cli(["prepare", "--model", str(DEMO_ONNX), "--precision", "int8", "--calib-list",
                    str(demo_data / "cal_list.txt"), "--calib-dir", str(demo_data / "train"),
                    "--max-accuracy-drop", "0.5", "--out", str(tmp_path / "m")], cwd=REPO)
    assert proc.returncode != 0
    assert "ERROR: --max-accuracy-drop: needs --precision int8, held-out images (--check-dataset)" in proc.stderr
