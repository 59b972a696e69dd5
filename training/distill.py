"""Knowledge distillation into a registered architecture, data-parallel under ``torchrun``.

    torchrun --nproc-per-node 2 -m cli train --teacher models/weights/decinet_demo.onnx \\
        --student decinet_demo --train data/demo/train --val data/demo/val \\
        --epochs 20 --out work/train/decinet_demo.distilled.onnx

This module never starts processes itself: ``torchrun`` (one machine or many,
``--nnodes``/``--rdzv-endpoint``) starts one copy per CPU slot or GPU and sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; ``torch.distributed`` then runs gloo on
CPU and nccl on GPU, a ``DistributedSampler`` gives each process its shard and
``DistributedDataParallel`` averages the gradients.

A directory is in ImageNet layout: either a flat directory with
``<dir>/<dir name>_map.txt`` or ``val_map.txt`` (``name label`` lines, as the
demo and ImageNet val), or one sub-directory per class (``train/<wnid>/*.JPEG``,
classes numbered in sorted order, as ImageNet train). Images go through the
harness's own preprocessing at the student's card geometry, so the exported
model sees at serving time exactly what it was trained on.

The teacher is an ONNX file with an ``mlperf_cpu.card`` (run by OpenVINO on the
CPU; its own mean/std applied) or a registered architecture with a state_dict
file (``--teacher-weights``; run by torch on the training device). The loss is
``alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * CE(labels)``.

Every epoch rank 0 writes ``<checkpoint-dir>/last.pt`` (model, optimizer,
epoch, history) atomically; ``--resume`` continues from its next epoch with its
optimizer state, and the same sampler and augmentation seeds, so a resumed run
sees the batches the uninterrupted one would have seen. At the end rank 0
exports the ONNX with its card (``trained: true``, notes naming the teacher)
and a JSON log next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from common.errors import ConfigError, DatasetError, ModelError
from common.files import write_text_atomic
from common.model_metadata import CARD_METADATA_KEY
from dataset.preprocess import PreprocessSpec, preprocess_file
from dataset.val_map import Sample, parse_val_map
from models import create, default_card, is_model
from models._macs import count_macs, count_params
from models.export import export_onnx
from training.schedule import lr_at

log = logging.getLogger(__name__)

DESCRIPTION = "Knowledge distillation into a registered architecture, data-parallel under torchrun."
CHECKPOINT_FILE = "last.pt"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
TORCHRUN_HINT = "torchrun --standalone --nproc-per-node 2 -m cli train ..."


@dataclass(frozen=True)
class DistillConfig:
    """Everything that defines one distillation run (recorded in the checkpoint and log)."""

    teacher: str
    student: str
    train_dir: str
    val_dir: str | None
    out: str
    checkpoint_dir: str
    epochs: int = 20
    batch_size: int = 32  # per process
    lr: float = 0.1  # peak, for the global batch
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    temperature: float = 4.0
    alpha: float = 0.9
    shift: int = 2  # random translation, pixels
    hflip: bool = False  # off by default: the demo's digits are not mirror-symmetric
    seed: int = 0
    teacher_weights: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"--{key.replace('_', '-')}: expected >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"--alpha: expected 0..1, got {self.alpha}")
        if self.temperature <= 0:
            raise ConfigError(f"--temperature: expected > 0, got {self.temperature}")


@dataclass(frozen=True)
class World:
    """This process's place in the torchrun job."""

    rank: int
    size: int
    local_rank: int
    local_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# ----------------------------------------------------------------------------- data
def list_samples(split_dir: Path) -> list[Sample]:
    """The labelled images of an ImageNet-layout directory (map file, else class sub-directories)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DatasetError(f"{split_dir}: not a directory")
    for map_name in (f"{split_dir.name}_map.txt", "val_map.txt"):
        if (split_dir / map_name).is_file():
            return parse_val_map(split_dir / map_name)
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{split_dir}: neither a {split_dir.name}_map.txt / val_map.txt nor class "
                           "sub-directories (ImageNet layout: train/<wnid>/*.JPEG)")
    samples = [Sample(f"{cls}/{f.name}", label) for label, cls in enumerate(classes)
               for f in sorted((split_dir / cls).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not samples:
        raise DatasetError(f"{split_dir}: no .JPEG/.jpg/.png images in its {len(classes)} class directories")
    return samples


class ImageSet(Dataset):
    """Images decoded and preprocessed on demand (uint8 NCHW crops, as the harness makes them)."""

    def __init__(self, root: Path, samples: list[Sample], spec: PreprocessSpec) -> None:
        self.root, self.samples, self.spec = Path(root), samples, spec

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        return torch.from_numpy(preprocess_file(self.root / sample.name, self.spec)), sample.label


def augment(pixels: torch.Tensor, gen: torch.Generator, shift: int, hflip: bool) -> torch.Tensor:
    """Random translation (edge-replicated) and optional mirror of a uint8 batch -> float 0..255."""
    x = pixels.float()
    n, _, h, w = x.shape
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen).tolist()
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen).tolist()
        x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if hflip:
        flip = torch.rand(n, generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
    return x


def normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``(x - mean) / std`` for float 0..255 NCHW batches (card units)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return lambda x: (x - m.to(x.device)) / s.to(x.device)


# ----------------------------------------------------------------------------- teachers
def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def onnx_card(path: Path) -> dict:
    """The ``mlperf_cpu.card`` metadata of an ONNX file (``ModelError`` if it has none)."""
    import onnx  # noqa: PLC0415 - only ONNX teachers need it

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for unreadable files
        raise ModelError(f"{path}: not a readable ONNX file ({exc})") from None
    for entry in proto.metadata_props:
        if entry.key == CARD_METADATA_KEY:
            return json.loads(entry.value)
    raise ModelError(f"{path}: no {CARD_METADATA_KEY} metadata, so its preprocessing is unknown "
                     "(export it with models.export, or use a registered architecture with --teacher-weights)")


class OnnxTeacher:
    """An ONNX teacher run by OpenVINO's CPU plugin in f32, with its card's normalisation."""

    def __init__(self, path: Path, threads: int) -> None:
        import openvino as ov  # noqa: PLC0415 - only ONNX teachers need it

        card = onnx_card(path)
        self.num_classes = int(card["num_classes"])
        self.input_size = int(card["input_size"])
        self.normalize = normalizer(tuple(card["mean"]), tuple(card["std"]))
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1})
        self.request = self.compiled.create_infer_request()

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.normalize(_resize(pixels.cpu(), self.input_size))
        out = self.request.infer({0: x.numpy()})[self.compiled.output(0)]
        return torch.from_numpy(np.array(out)).to(pixels.device)


class TorchTeacher:
    """A registered architecture with the user's state_dict, run by torch on the training device."""

    def __init__(self, arch: str, weights: Path, device: torch.device) -> None:
        card = default_card(arch)
        self.num_classes, self.input_size = card.num_classes, card.input_size
        self.normalize = normalizer(card.mean, card.std)
        self.model = create(arch, num_classes=card.num_classes)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"{weights}: cannot load teacher weights ({exc})") from None
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{weights}: does not fit {arch}: {str(exc).splitlines()[0]}") from None
        self.model.to(device).eval()

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(_resize(pixels, self.input_size)))


def load_teacher(cfg: DistillConfig, world: World, threads: int) -> OnnxTeacher | TorchTeacher:
    """The teacher ``cfg.teacher`` names: an .onnx file, or a registered architecture + weights."""
    if cfg.teacher.endswith(".onnx"):
        if not Path(cfg.teacher).is_file():
            raise ConfigError(f"--teacher {cfg.teacher}: no such file")
        return OnnxTeacher(Path(cfg.teacher), threads)
    if not is_model(cfg.teacher):
        raise ConfigError(f"--teacher {cfg.teacher!r}: neither an .onnx file nor a registered architecture")
    if cfg.teacher_weights is None:
        raise ConfigError(f"--teacher {cfg.teacher}: an architecture teacher needs --teacher-weights "
                          "(a state_dict file; untrained teachers teach nothing)")
    return TorchTeacher(cfg.teacher, Path(cfg.teacher_weights), world.device)


def teacher_digest(cfg: DistillConfig) -> str:
    """sha256 of the teacher's file (the ONNX, else the weights)."""
    path = Path(cfg.teacher if cfg.teacher.endswith(".onnx") else str(cfg.teacher_weights))
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- training
def distill_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                 temperature: float, alpha: float) -> torch.Tensor:
    """Hinton's soft-target loss (scaled by T^2 so its gradient does not shrink with T) plus CE."""
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1), F.softmax(teacher / temperature, dim=1),
                    reduction="batchmean") * temperature ** 2
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student, labels)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageSet, normalize: Callable, world: World, batch: int = 256) -> float:
    """Top-1 over ``data``, each process taking every ``world.size``-th sample, summed across processes."""
    model.eval()
    idx = list(range(world.rank, len(data), world.size))
    counts = torch.zeros(2, dtype=torch.float64, device=world.device)  # nccl reduces device tensors only
    for start in range(0, len(idx), batch):
        items = [data[i] for i in idx[start:start + batch]]
        x = torch.stack([p for p, _ in items]).to(world.device)
        labels = torch.tensor([label for _, label in items], device=world.device)
        counts[0] += float((model(normalize(x.float())).argmax(1) == labels).sum())
        counts[1] += len(items)
    dist.all_reduce(counts)
    return float(counts[0] / counts[1]) if counts[1] else float("nan")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically, so an interrupted save never leaves a truncated checkpoint."""
    tmp = path.with_suffix(".partial")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, cfg: DistillConfig) -> dict:
    """Read ``path`` and check it belongs to a run of this student on these classes."""
    if not path.is_file():
        raise ConfigError(f"--resume: no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and data: no pickled code
    saved = state["config"]
    for key in ("student", "teacher", "train_dir"):
        if saved[key] != getattr(cfg, key):
            raise ConfigError(f"--resume: {path} was made with --{key.replace('_', '-')} {saved[key]}, "
                              f"this run has {getattr(cfg, key)}")
    if state["epoch"] >= cfg.epochs:
        log.info("checkpoint %s already has %d of %d epochs", path, state["epoch"], cfg.epochs)
    return state


def setup_world(device: str) -> World:
    """Join the torchrun job (gloo on CPU, nccl on GPU); refuse to run outside torchrun."""
    env = os.environ
    if not {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"} <= set(env):
        raise ConfigError("start this under torchrun, which sets RANK/WORLD_SIZE/LOCAL_RANK "
                          f"(e.g. {TORCHRUN_HINT}); it never launches processes itself")
    local_rank = int(env["LOCAL_RANK"])
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device visible")
        torch.cuda.set_device(local_rank)
        dev, backend = torch.device("cuda", local_rank), "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size(), local_rank,
                 int(env.get("LOCAL_WORLD_SIZE", "1")), dev)


def student_card(cfg: DistillConfig, model: nn.Module, num_classes: int, notes: str) -> dict:
    """The card exported with the student: its registered geometry, trained, with ``notes``."""
    card = default_card(cfg.student)
    return {**card.to_dict(), "name": cfg.name or f"{cfg.student}.distilled", "num_classes": num_classes,
            "macs": count_macs(model, card.input_size), "params": count_params(model),
            "trained": True, "notes": notes}


@dataclass
class _Student:
    """What every epoch works on: the student, its DDP wrapper and optimizer, and where it resumed."""

    model: nn.Module
    ddp: nn.Module
    opt: torch.optim.Optimizer
    first_epoch: int
    history: list[dict]


def _datasets(cfg: DistillConfig, spec: PreprocessSpec, num_classes: int) -> tuple[ImageSet, ImageSet | None]:
    """Step 1: the training and (optional) validation sets; every label must be one of the teacher's classes."""
    train_set = ImageSet(Path(cfg.train_dir), list_samples(Path(cfg.train_dir)), spec)
    val_set = ImageSet(Path(cfg.val_dir), list_samples(Path(cfg.val_dir)), spec) if cfg.val_dir else None
    top_label = max(s.label for s in train_set.samples + (val_set.samples if val_set else []))
    if top_label >= num_classes:
        raise DatasetError(f"{cfg.train_dir}: label {top_label} but the teacher has {num_classes} classes")
    return train_set, val_set


def _student(cfg: DistillConfig, world: World, num_classes: int, resume: dict | None, ckpt_path: Path) -> _Student:
    """Step 2: the student and its optimizer, from the checkpoint ``resume`` if given, wrapped in DDP."""
    model = create(cfg.student, num_classes=num_classes).to(world.device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    first_epoch, history = 0, []
    if resume is not None:
        state = resume
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        first_epoch, history = state["epoch"], state["history"]
        if world.is_main:
            log.info("resuming from %s after epoch %d", ckpt_path, first_epoch)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[world.local_rank] if world.device.type == "cuda"
                                              else None)
    return _Student(model, ddp, opt, first_epoch, history)


def _loader(cfg: DistillConfig, world: World, train_set: ImageSet, workers: int) -> tuple[DistributedSampler,
                                                                                           DataLoader]:
    """Step 3: this rank's shard of the training set; at least one batch per process."""
    sampler = DistributedSampler(train_set, num_replicas=world.size, rank=world.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0)
    if len(loader) == 0:
        raise DatasetError(f"{cfg.train_dir}: {len(train_set)} images are fewer than one batch per process "
                           f"({cfg.batch_size} x {world.size})")
    return sampler, loader


def _epoch(cfg: DistillConfig, world: World, epoch: int, student: _Student, teacher: Callable,
           data: tuple[DistributedSampler, DataLoader, ImageSet | None], normalize: Callable) -> dict:
    """Step 4: one epoch over this rank's shard, then the val top-1; its history entry."""
    sampler, loader, val_set = data
    steps = len(loader)
    total, warmup = cfg.epochs * steps, cfg.warmup_epochs * steps
    t0 = time.perf_counter()
    student.ddp.train()
    sampler.set_epoch(epoch)
    # Seeded per epoch and rank: a resumed run augments exactly as the uninterrupted one.
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch * 1009 + world.rank)
    loss_sum = 0.0
    for b, (pixels, labels) in enumerate(loader):
        for group in student.opt.param_groups:
            group["lr"] = lr_at(epoch * steps + b, total, warmup, cfg.lr)
        x = augment(pixels, gen, cfg.shift, cfg.hflip).to(world.device)
        labels = labels.to(world.device)
        with torch.no_grad():
            soft = teacher(x)
        loss = distill_loss(student.ddp(normalize(x)), soft, labels, cfg.temperature, cfg.alpha)
        student.opt.zero_grad(set_to_none=True)
        loss.backward()
        student.opt.step()
        loss_sum += loss.item()
    entry = {"epoch": epoch + 1, "loss": round(loss_sum / steps, 4),
             "seconds": round(time.perf_counter() - t0, 1)}
    if val_set is not None:
        entry["val_top1"] = round(evaluate(student.model, val_set, normalize, world), 4)
    return entry


def _save(cfg: DistillConfig, world: World, ckpt_path: Path, student: _Student, entry: dict) -> None:
    """Step 5 (rank 0): the checkpoint after each epoch and its log line."""
    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    save_checkpoint(ckpt_path, {"epoch": entry["epoch"], "model": student.model.state_dict(),
                                "optimizer": student.opt.state_dict(), "history": student.history,
                                "config": asdict(cfg), "world_size": world.size})
    log.info("epoch %d/%d  loss %.4f  val top-1 %s  (%.1f s)", entry["epoch"], cfg.epochs, entry["loss"],
             f"{100 * entry['val_top1']:.2f}%" if "val_top1" in entry else "-", entry["seconds"])


def _export(cfg: DistillConfig, world: World, model: nn.Module, num_classes: int,
            sets: tuple[ImageSet, ImageSet | None], result: dict) -> dict:
    """Step 6 (rank 0, all epochs done): the ONNX student with its card, and the log next to it."""
    train_set, val_set = sets
    top1 = result["history"][-1].get("val_top1")
    notes = (f"distilled from {Path(cfg.teacher).name} (sha256 {result['teacher_sha256'][:12]}) into "
             f"{cfg.student} on {len(train_set)} images of {cfg.train_dir}, {cfg.epochs} epochs, "
             f"{world.size} processes ({dist.get_backend()}); "
             + (f"val top-1 {100 * top1:.2f}% on {len(val_set)} images of {cfg.val_dir}" if val_set else "no val set"))
    model.cpu().eval()
    blob = export_onnx(model, Path(cfg.out), student_card(cfg, model, num_classes, notes),
                       "mlperf_cpu.training.distill")
    result.update({"val_top1": top1, "notes": notes, "onnx": {
        "file": str(cfg.out), "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}})
    write_text_atomic(Path(cfg.out).with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    return result


def train(cfg: DistillConfig, world: World, threads: int, workers: int, resume: dict | None,
          stop_after: int | None, command: str) -> dict | None:
    """Run the distillation, continuing from the checkpoint ``resume`` if given; rank 0 returns
    the log it wrote (other ranks ``None``)."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    card = default_card(cfg.student)
    spec = PreprocessSpec(card.input_size, card.crop_pct, card.interpolation, "NCHW")
    teacher = load_teacher(cfg, world, threads)
    train_set, val_set = _datasets(cfg, spec, teacher.num_classes)
    normalize = normalizer(card.mean, card.std)
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_FILE
    student = _student(cfg, world, teacher.num_classes, resume, ckpt_path)
    sampler, loader = _loader(cfg, world, train_set, workers)
    first_epoch, history = student.first_epoch, student.history
    last_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, first_epoch + stop_after)
    for epoch in range(first_epoch, last_epoch):
        entry = _epoch(cfg, world, epoch, student, teacher, (sampler, loader, val_set), normalize)
        history.append(entry)
        if world.is_main:
            _save(cfg, world, ckpt_path, student, entry)
    dist.barrier()
    if not world.is_main:
        return None
    seconds = round(time.perf_counter() - started, 1)
    done = history[-1]["epoch"] if history else 0
    result = {"command": command, "config": asdict(cfg), "world_size": world.size,
              "backend": dist.get_backend(), "epochs_done": done, "resumed_from_epoch": first_epoch if resume is not None else None,
              "wall_seconds_this_run": seconds, "history": history,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "teacher_sha256": teacher_digest(cfg), "torch": torch.__version__}
    if done < cfg.epochs:
        log.info("stopped after epoch %d of %d (--stop-after); continue with --resume", done, cfg.epochs)
        return result
    return _export(cfg, world, student.model, teacher.num_classes, (train_set, val_set), result)


# ----------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The distillation options (``mlperf-cpu train [distill] --help`` prints them)."""
    d = DistillConfig("", "", "", None, "", "")
    parser.add_argument("--teacher", required=True,
                        help=".onnx file with an mlperf_cpu.card, or a registered architecture (+ --teacher-weights)")
    parser.add_argument("--teacher-weights", help="state_dict file for an architecture teacher")
    parser.add_argument("--student", required=True, help="registered architecture to train (mlperf-cpu models)")
    parser.add_argument("--train", type=Path, required=True, help="ImageNet-layout training directory")
    parser.add_argument("--val", type=Path, help="ImageNet-layout validation directory (top-1 every epoch)")
    parser.add_argument("--out", type=Path, required=True, help="the exported student ONNX (+ .json log)")
    parser.add_argument("--checkpoint-dir", type=Path, help="default: <out without .onnx>.ckpt/")
    parser.add_argument("--resume", action="store_true", help="continue from <checkpoint-dir>/last.pt")
    parser.add_argument("--stop-after", type=int,
                        help="end this invocation after this many epochs (a time-limited job; resume later)")
    parser.add_argument("--name", help="card name (default <student>.distilled)")
    for key in ("epochs", "batch_size", "lr", "momentum", "weight_decay", "warmup_epochs", "temperature",
                "alpha", "shift", "seed"):
        value = getattr(d, key)
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value,
                            help=f"default {value}" + (" (per process)" if key == "batch_size" else ""))
    parser.add_argument("--hflip", action="store_true", help="random horizontal flips (ImageNet: yes)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu: gloo; cuda: nccl")
    parser.add_argument("--threads", type=int, help="torch threads per process (default: cores / local processes)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader decode workers per process")


def run(args: argparse.Namespace, command: str) -> str | None:
    """Run from parsed arguments (under torchrun); rank 0 returns the summary line, other ranks ``None``."""
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise ConfigError(f"--out {out}: expected a .onnx path")
    if args.stop_after is not None and args.stop_after < 1:
        raise ConfigError(f"--stop-after: expected >= 1, got {args.stop_after}")
    cfg = DistillConfig(
        teacher=str(args.teacher), student=args.student, train_dir=str(args.train),
        val_dir=None if args.val is None else str(args.val), out=str(out),
        checkpoint_dir=str(args.checkpoint_dir or out.with_suffix(".ckpt")), epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, temperature=args.temperature, alpha=args.alpha, shift=args.shift,
        hflip=args.hflip, seed=args.seed, teacher_weights=args.teacher_weights, name=args.name)
    default_card(cfg.student)  # unknown student: ConfigError with suggestions, before joining the job
    # A checkpoint of another run is refused before joining the job too, by every process alike.
    resume = load_checkpoint(Path(cfg.checkpoint_dir) / CHECKPOINT_FILE, cfg) if args.resume else None
    world = setup_world(args.device)
    try:
        threads = args.threads or max(1, (os.cpu_count() or 1) // world.local_size)
        torch.set_num_threads(threads)
        result = train(cfg, world, threads, args.workers, resume, args.stop_after, command)
    finally:
        dist.destroy_process_group()
    if result is None:
        return None
    top1 = result["history"][-1].get("val_top1") if result["history"] else None
    where = str(out) if "onnx" in result else f"checkpoint {cfg.checkpoint_dir}/{CHECKPOINT_FILE}"
    return (f"{where}: epoch {result['epochs_done']}/{cfg.epochs}, val top-1 "
            f"{'-' if top1 is None else f'{100 * top1:.2f}%'}, {result['wall_seconds_this_run']} s "
            f"on {result['world_size']} processes ({result['backend']})")
