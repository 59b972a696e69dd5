"""Distillation under torchrun: 2 CPU processes (gloo), interrupted after a few epochs and resumed,
then the exported student served through prepare and a LoadGen accuracy run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.errors import DatasetError
from conftest import DEMO_ONNX, REPO, prepare_model, run_loadgen_test
from models.distill import list_samples

EPOCHS, FIRST_LEG = 16, 6


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    # --standalone: a free rendezvous port, so parallel runs on one machine do not collide.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "models.distill", *args]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=400)


def test_distil_resume_and_serve(demo_data: Path, session_dir: Path, cache_dir: Path, workdir: Path) -> None:
    out = session_dir / "train" / "student.onnx"
    common = ["--teacher", str(DEMO_ONNX), "--student", "decinet_demo", "--train", str(demo_data / "train"),
              "--val", str(demo_data / "val"), "--epochs", str(EPOCHS), "--out", str(out)]
    first = _torchrun(*common, "--stop-after", str(FIRST_LEG))
    assert first.returncode == 0, first.stderr[-3000:]
    ckpt = torch.load(out.with_suffix(".ckpt") / "last.pt", weights_only=True)
    assert ckpt["epoch"] == FIRST_LEG and ckpt["world_size"] == 2 and not out.exists()
    momentum = next(iter(ckpt["optimizer"]["state"].values()))["momentum_buffer"]

    second = _torchrun(*common, "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {out.with_suffix('.ckpt') / 'last.pt'} after epoch {FIRST_LEG}" in second.stderr
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["resumed_from_epoch"] == FIRST_LEG and log["world_size"] == 2 and log["backend"] == "gloo"
    # The resumed run trained only the remaining epochs, on top of the first leg's history.
    assert [e["epoch"] for e in log["history"]] == list(range(1, EPOCHS + 1))
    assert log["history"][:FIRST_LEG] == ckpt["history"]
    assert float(momentum.abs().sum()) > 0  # the optimizer state it resumed from was real
    assert log["val_top1"] >= 0.99, log["history"]

    # The exported card describes a trained, distilled model, and the served model scores the same.
    model = prepare_model(out, "f32", session_dir / "models", cache_dir)
    card = json.loads((model / "card.json").read_text())
    assert card["trained"] is True and "distilled from decinet_demo.onnx" in card["notes"]
    assert card["name"] == "decinet_demo.distilled" and card["input_size"] == 32
    _, result = run_loadgen_test(workdir, "accuracy", model, demo_data / "val", cache_dir)
    assert result.accuracy.top1_percent >= 99.0
    assert abs(result.accuracy.top1_percent - 100 * log["val_top1"]) <= 0.25  # torch vs OpenVINO: 1 image


def test_refuses_to_run_outside_torchrun(demo_data: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    proc = subprocess.run([sys.executable, "-m", "models.distill", "--teacher", str(DEMO_ONNX), "--student",
                           "decinet_demo", "--train", str(demo_data / "train"), "--out", str(tmp_path / "s.onnx")],
                          cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "start this under torchrun" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0  # one line, no traceback


def test_imagenet_train_layout_numbers_classes_in_sorted_order(demo_data: Path, tmp_path: Path) -> None:
    files = sorted((demo_data / "train").glob("*.JPEG"))[:4]
    for wnid, chunk in (("n02", files[:2]), ("n01", files[2:])):
        (tmp_path / "train" / wnid).mkdir(parents=True)
        for f in chunk:
            shutil.copy(f, tmp_path / "train" / wnid / f.name)
    (tmp_path / "train" / "n01" / "notes.txt").write_text("not an image")
    samples = list_samples(tmp_path / "train")
    assert [(s.name.split("/")[0], s.label) for s in samples] == [("n01", 0), ("n01", 0), ("n02", 1), ("n02", 1)]
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="neither a flat_map.txt / val_map.txt nor class sub-directories"):
        list_samples(tmp_path / "flat")
