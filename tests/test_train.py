"""Training through ``mlperf-cpu train``: distillation under torchrun (2 CPU processes, gloo),
interrupted after a few epochs, refused a resume with another run's settings, resumed, then the
exported student served through prepare and a LoadGen accuracy run; the one learning-rate schedule."""

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
from training.distill import list_samples
from training.schedule import lr_at

EPOCHS, FIRST_LEG = 10, 4  # with --lr 0.2: about 99 % val top-1 on the demo digits


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    # --standalone: a free rendezvous port, so parallel runs on one machine do not collide.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "cli", "train", *args]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=400)


def test_distil_resume_and_serve(demo_data: Path, session_dir: Path, cache_dir: Path, workdir: Path) -> None:
    out = session_dir / "train" / "student.onnx"
    common = ["--teacher", str(DEMO_ONNX), "--student", "decinet_demo", "--train", str(demo_data / "train"),
              "--val", str(demo_data / "val"), "--epochs", str(EPOCHS), "--lr", "0.2", "--out", str(out)]
    first = _torchrun(*common, "--stop-after", str(FIRST_LEG))
    assert first.returncode == 0, first.stderr[-3000:]
    ckpt = torch.load(out.with_suffix(".ckpt") / "last.pt", weights_only=True)
    assert ckpt["epoch"] == FIRST_LEG and ckpt["world_size"] == 2 and not out.exists()
    momentum = next(iter(ckpt["optimizer"]["state"].values()))["momentum_buffer"]

    # A checkpoint of another run (here: another teacher file) is refused, and left as it was.
    ckpt_file = out.with_suffix(".ckpt") / "last.pt"
    saved = ckpt_file.read_bytes()
    other_teacher = session_dir / "train" / "teacher_copy.onnx"
    shutil.copy(DEMO_ONNX, other_teacher)
    mixed = [other_teacher if arg == str(DEMO_ONNX) else arg for arg in common]
    refused = _torchrun("distill", *map(str, mixed), "--resume")
    assert refused.returncode != 0
    assert (f"ERROR: --resume: {ckpt_file} was made with --teacher {DEMO_ONNX}, this run has {other_teacher}"
            in refused.stderr), refused.stderr[-3000:]
    assert "training/distill.py" not in refused.stderr  # one line, no traceback of ours (torchrun adds its own)
    assert ckpt_file.read_bytes() == saved and not out.exists()

    second = _torchrun(*common, "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {out.with_suffix('.ckpt') / 'last.pt'} after epoch {FIRST_LEG}" in second.stderr
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["resumed_from_epoch"] == FIRST_LEG and log["world_size"] == 2 and log["backend"] == "gloo"
    # The resumed run trained only the remaining epochs, on top of the first leg's history.
    assert [e["epoch"] for e in log["history"]] == list(range(1, EPOCHS + 1))
    assert log["history"][:FIRST_LEG] == ckpt["history"]
    assert float(momentum.abs().sum()) > 0  # the optimizer state it resumed from was real
    assert log["val_top1"] >= 0.98, log["history"]  # from 10 % (untrained)

    # The exported card describes a trained, distilled model, and the served model scores the same.
    model = prepare_model(out, "f32", session_dir / "models", cache_dir)
    card = json.loads((model / "card.json").read_text())
    assert card["trained"] is True and "distilled from decinet_demo.onnx" in card["notes"]
    assert card["name"] == "decinet_demo.distilled" and card["input_size"] == 32
    _, result = run_loadgen_test(workdir, "accuracy", model, demo_data / "val", cache_dir)
    assert result.accuracy.top1_percent >= 98.0
    assert abs(result.accuracy.top1_percent - 100 * log["val_top1"]) <= 0.25  # torch vs OpenVINO: 1 image


def test_refuses_to_run_outside_torchrun(demo_data: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    proc = subprocess.run([sys.executable, "-m", "cli", "train", "--teacher", str(DEMO_ONNX), "--student",
                           "decinet_demo", "--train", str(demo_data / "train"), "--out", str(tmp_path / "s.onnx")],
                          cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "start this under torchrun" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "s.onnx").exists()


# (step, total, warmup, peak, floor) -> learning rate: warm-up from peak/warmup, the peak right after
# it, half way down the cosine at the middle of the decay, the floor at the end.
SCHEDULE = [
    ((0, 100, 10, 0.1, 0.0), 0.01),
    ((9, 100, 10, 0.1, 0.0), 0.1),
    ((10, 100, 10, 0.1, 0.0), 0.1),
    ((55, 100, 10, 0.1, 0.0), 0.05),
    ((100, 100, 10, 0.1, 0.0), 0.0),
    ((0, 100, 0, 2e-3, 0.05), 2e-3),
    ((50, 100, 0, 2e-3, 0.05), 2e-3 * (0.05 + 0.95 / 2)),
    ((100, 100, 0, 2e-3, 0.05), 1e-4),
    ((3, 4, 4, 1.0, 0.0), 1.0),
]


@pytest.mark.parametrize(("args", "expected"), SCHEDULE)
def test_learning_rate_schedule(args: tuple, expected: float) -> None:
    assert lr_at(*args) == pytest.approx(expected, abs=1e-12)


def test_learning_rate_never_rises_after_warmup() -> None:
    rates = [lr_at(step, 200, 20, 0.1, 0.05) for step in range(200)]
    steps = list(zip(rates, rates[1:]))
    assert all(b > a for a, b in steps[:19])
    assert all(b <= a + 1e-15 for a, b in steps[19:])  # the peak is reached as warm-up ends (1 ulp apart)
    assert min(rates[20:]) > 0.1 * 0.05  # the floor is reached only at the end (step 200)


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
