"""Train ``decinet_demo`` on the demo digits dataset and export it as ONNX.

    mlperf-cpu train demo --data data/demo --out models/weights/decinet_demo.onnx

Inputs go through exactly the harness preprocessing (``preprocess_file`` with
the demo ``PreprocessSpec``), then ``(x - mean) / std`` in 0..255 units; the
ONNX file therefore takes normalised float32 NCHW input, and its
``metadata_props["mlperf_cpu.card"]`` records the preprocessing so the harness
can fold the normalisation into the prepared model. A JSON training log with
the ONNX sha256 is written next to the ONNX file.

Training is deterministic (fixed seeds, deterministic kernels, fixed thread
count) and takes about a minute on two cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dataset.demo import MARKER_FILE, build_demo_dataset, read_marker
from dataset.preprocess import PreprocessSpec, preprocess_file
from dataset.val_map import parse_val_map
from models import create
from models.decinet import DEMO_CARD
from models._macs import count_macs, count_params
from models.export import ONNX_OPSET, export_onnx
from common.errors import DatasetError, ModelError
from common.files import write_text_atomic
from training.schedule import lr_at

logger = logging.getLogger(__name__)

MODEL_NAME = "decinet_demo"
CARD_NAME = "decinet_demo.digits"
NUM_CLASSES = DEMO_CARD.num_classes
PREPROCESS = PreprocessSpec(input_size=DEMO_CARD.input_size, crop_pct=DEMO_CARD.crop_pct,
                            interpolation=DEMO_CARD.interpolation, layout="NCHW")
# Roughly centres 0..255 pixels on zero with unit-ish spread; recorded in the card.
MEAN = DEMO_CARD.mean
STD = DEMO_CARD.std


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (all recorded in the log)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    warmup_epochs: int = 2
    seed: int = 0
    threads: int = 2


@dataclass(frozen=True)
class Split:
    """A preprocessed split: uint8 samples [N,3,32,32] and int64 labels [N]."""

    pixels: torch.Tensor
    labels: torch.Tensor


def load_split(data_dir: Path, split: str) -> Split:
    """Preprocess every image of ``data_dir/split`` exactly as the harness does."""
    split_dir = Path(data_dir) / split
    samples = parse_val_map(split_dir / f"{split}_map.txt", NUM_CLASSES)
    pixels = np.stack([preprocess_file(split_dir / s.name, PREPROCESS) for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int64)
    return Split(torch.from_numpy(pixels), torch.from_numpy(labels))


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (or float 0..255) NCHW -> the model's float input, ``(x - mean) / std``."""
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (pixels.float() - mean) / std


def augment(pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light augmentation of a uint8 batch in 0..255 float units.

    Shifts of up to 2 px (edge-replicated: the backgrounds are flat), colour
    channel shuffles and occasional grayscale (the tints are arbitrary and some
    files are grayscale), and brightness/contrast jitter.
    """
    x = pixels.float()
    n, _, h, w = x.shape
    pad = 2
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    perms = torch.stack([torch.randperm(3, generator=gen) for _ in range(n)])
    x = torch.gather(x, 1, perms.view(n, 3, 1, 1).expand(-1, -1, h, w))
    gray = torch.rand(n, generator=gen) < 0.1
    x[gray] = x[gray].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.2, generator=gen)
    brightness = torch.empty(n, 1, 1, 1).uniform_(-20.0, 20.0, generator=gen)
    mid = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mid) * contrast + mid + brightness).clamp(0.0, 255.0)


@torch.no_grad()
def predict(model: nn.Module, pixels: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Top-1 class of every sample (eval mode)."""
    model.eval()
    return torch.cat([model(normalize(pixels[i:i + batch])).argmax(1)
                      for i in range(0, len(pixels), batch)])


def train(model: nn.Module, data: Split, val: Split, cfg: TrainConfig) -> list[dict]:
    """Train in place with SGD + Nesterov; return one log entry per epoch."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=True, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    n = len(data.labels)
    # drop_last keeps every BatchNorm batch full-sized, which keeps statistics stable.
    steps_per_epoch = n // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    history: list[dict] = []
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, cfg.warmup_epochs * steps_per_epoch, cfg.lr)
            x = normalize(augment(data.pixels[idx], gen))
            loss = loss_fn(model(x), data.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            step += 1
        top1 = float((predict(model, val.pixels) == val.labels).float().mean())
        history.append({"epoch": epoch + 1, "loss": round(loss_sum / steps_per_epoch, 4),
                        "val_top1": round(top1, 4)})
        logger.info("epoch %2d/%d  loss %.4f  val top-1 %.2f%%",
                    epoch + 1, cfg.epochs, loss_sum / steps_per_epoch, 100 * top1)
    return history


def card(notes: str) -> dict:
    """The model card stored in the ONNX metadata (fields of ``modelprep.card.ModelCard``)."""
    return {
        "name": CARD_NAME, "input_size": PREPROCESS.input_size, "crop_pct": PREPROCESS.crop_pct,
        "interpolation": PREPROCESS.interpolation, "layout": PREPROCESS.layout,
        "mean": list(MEAN), "std": list(STD), "num_classes": NUM_CLASSES, "label_offset": 0,
        "trained": True, "notes": notes,
    }


def openvino_predict(onnx_path: Path, pixels: torch.Tensor) -> torch.Tensor:
    """Top-1 of every sample from OpenVINO's CPU plugin reading the ONNX file (f32)."""
    import openvino as ov  # only needed for the check

    core = ov.Core()
    # Pin f32: on AMX machines the CPU plugin would otherwise run in bf16.
    compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    logits = compiled(normalize(pixels).numpy())[compiled.output(0)]
    if logits.shape != (len(pixels), NUM_CLASSES):
        raise ModelError(f"{onnx_path}: OpenVINO output shape {logits.shape}, "
                         f"expected ({len(pixels)}, {NUM_CLASSES})")
    return torch.from_numpy(np.asarray(logits).argmax(1))


def ensure_dataset(data_dir: Path) -> dict:
    """Build the demo dataset if ``data_dir`` has none; return its ``dataset.json``."""
    if not (Path(data_dir) / MARKER_FILE).is_file():
        logger.info("no dataset at %s; building the demo dataset", data_dir)
        build_demo_dataset(data_dir)
    marker = read_marker(data_dir)
    if marker is None:
        raise DatasetError(f"{Path(data_dir) / MARKER_FILE}: unreadable dataset marker")
    return marker


def train_and_export(data_dir: Path, out: Path, cfg: TrainConfig, command: str) -> dict:
    """Train, export, verify and log; return the log written next to ``out``."""
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(cfg.threads)
    marker = ensure_dataset(data_dir)
    started = time.perf_counter()
    train_split, val_split = load_split(data_dir, "train"), load_split(data_dir, "val")
    model = create(MODEL_NAME, num_classes=NUM_CLASSES)
    history = train(model, train_split, val_split, cfg)
    train_seconds = time.perf_counter() - started

    torch_pred = predict(model, val_split.pixels)
    torch_top1 = float((torch_pred == val_split.labels).float().mean())
    notes = (f"decinet_demo trained on the bundled demo digits (sklearn load_digits, "
             f"{marker['counts']['train']} train images); val top-1 {100 * torch_top1:.2f}% on "
             f"{marker['counts']['val']} images. Input is float32 (x - mean) / std of the "
             "uint8 RGB crop. Not an ImageNet model.")
    blob = export_onnx(model, out, card(notes), "mlperf_cpu.training.demo")
    ov_pred = openvino_predict(out, val_split.pixels)
    ov_top1 = float((ov_pred == val_split.labels).float().mean())
    agree = float((ov_pred == torch_pred).float().mean())
    if agree != 1.0:
        raise ModelError(f"{out}: OpenVINO top-1 disagrees with torch on "
                         f"{(ov_pred != torch_pred).sum()} val images")

    log = {
        "model": MODEL_NAME, "card_name": CARD_NAME, "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": cfg.seed, "epochs": cfg.epochs, "config": asdict(cfg),
        "fp32_val_top1": round(torch_top1, 4), "openvino_fp32_val_top1": round(ov_top1, 4),
        "openvino_torch_top1_agreement": agree,
        "train_seconds": round(train_seconds, 1),
        "params": count_params(model), "macs": count_macs(model, PREPROCESS.input_size),
        "spec": model.spec.to_dict(), "preprocess": asdict(PREPROCESS),
        "mean": list(MEAN), "std": list(STD),
        "dataset": {k: marker.get(k) for k in ("name", "version", "seed", "counts")},
        "onnx": {"file": out.name, "bytes": len(blob), "opset": ONNX_OPSET,
                 "sha256": hashlib.sha256(blob).hexdigest()},
        "versions": {"torch": torch.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
        "history": history,
    }
    write_text_atomic(out.with_suffix(".json"), json.dumps(log, indent=2) + "\n")
    return log


DESCRIPTION = "Train decinet_demo on the demo digits and export it as ONNX (models/weights/decinet_demo.onnx)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo training's options."""
    defaults = TrainConfig()
    parser.add_argument("--data", type=Path, default=Path("data/demo"),
                        help="demo dataset directory (built if absent)")
    parser.add_argument("--out", type=Path, default=Path("models/weights/decinet_demo.onnx"))
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)


def run(args: argparse.Namespace, command: str) -> str:
    """Train and export from parsed arguments; returns the summary line."""
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed, threads=args.threads)
    log = train_and_export(args.data, args.out, cfg, command)
    return (f"{args.out}: fp32 val top-1 {100 * log['fp32_val_top1']:.2f}% "
            f"(OpenVINO {100 * log['openvino_fp32_val_top1']:.2f}%), "
            f"{log['onnx']['bytes']} bytes, trained in {log['train_seconds']} s")
