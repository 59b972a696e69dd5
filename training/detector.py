"""Train ``yolo_demo`` on the demo detection set, score it as the benchmark does, export it.

    mlperf-cpu train detector --data data/coco_demo --out models/weights/detector_demo.onnx

Images go through the harness's own preprocessing at the card's geometry
(``dataset.preprocess``: RGB, aspect-preserving letterbox into the square input,
centred, border 114), then 0..1 floats. Boxes are assigned to anchor points with a task-aligned assigner
(class score x IoU, top-k anchors inside each box), and trained with BCE for
classes, GIoU and distribution focal loss for boxes; an exponential moving
average of the weights is what gets evaluated and exported. val2017 mAP is
computed by the runtime's own post-processor (``dataset.detection_post``: decode,
class-aware NMS, letterbox undone; confidence 0.001, as the benchmark's reference) and
its COCO scoring (``dataset.coco_eval``, pycocotools), so the figure is the one an
accuracy run of the exported model reports (up to OpenVINO's arithmetic). The ONNX file
(input ``images`` [N,3,S,S], output ``output0`` [N,4+C,A]) carries its card;
a JSON log with config, seed, wall time and mAP is written beside it.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import ModelError
from common.files import write_text_atomic
from dataset.coco import CocoSet, load_coco
from dataset.coco_demo import COCO_DEMO_NAME, COCO_DEMO_VERSION, build_coco_demo, read_stamp
from dataset.coco_eval import DetectionAccuracy, coco_map
from dataset.detection_post import DetectionPost, DetectionSettings, Letterboxes
from dataset.preprocess import PreprocessSpec, letterbox_geometry, preprocess_file
from models import create
from models._macs import count_macs, count_params
from models.export import DETECTOR_IO_NAMES, ONNX_OPSET, export_onnx
from models.yolo import DEMO_CARD, REG_MAX, STRIDES, anchor_points, dfl_distances
from training.schedule import lr_at

logger = logging.getLogger(__name__)

MODEL_NAME = "yolo_demo"
CARD_NAME = "yolo_demo.coco_demo"
CONF_THRESHOLD = 0.001   # the benchmark reference's confidence threshold
IOU_THRESHOLD = 0.7
MAX_DETECTIONS = 300
LR_FLOOR = 0.05  # the cosine ends at 5 % of the peak


# ----------------------------------------------------------------------------- data
@dataclass
class Split:
    """A letterboxed split: uint8 pixels [N,3,S,S] in the set's order, per-image targets, the set."""

    pixels: torch.Tensor
    boxes: list[torch.Tensor]      # [M,4] x0,y0,x1,y1 in input pixels
    labels: list[torch.Tensor]     # [M] class index
    coco: CocoSet                  # image ids, original sizes and the annotations scored against


def preprocess_spec(size: int) -> PreprocessSpec:
    """The served detector's preprocessing (``ModelCard.preprocess_spec`` for a letterbox card)."""
    return PreprocessSpec(size, 1.0, "linear", "NCHW", "letterbox", DEMO_CARD.letterbox_pad)


def load_split(root: Path, split: str, size: int, category_ids: tuple[int, ...], limit: int = 0) -> Split:
    """Read ``root/split`` with its ``annotations/instances_<split>.json`` and preprocess it as the
    harness does (only the first ``limit`` images of the file, if ``limit``)."""
    coco = load_coco(Path(root) / split, Path(root) / "annotations" / f"instances_{split}.json", limit or None)
    spec = preprocess_spec(size)
    index = {cid: i for i, cid in enumerate(category_ids)}
    per_image: dict[int, list[dict]] = {}
    for ann in coco.data["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    pixels, boxes, labels = [], [], []
    for name, image_id, (height, width) in zip(coco.names, coco.image_ids.tolist(), coco.sizes.tolist()):
        geo = letterbox_geometry(height, width, size)
        anns = per_image.get(image_id, [])
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        xyxy = torch.cat((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]), 1) * geo.scale
        xyxy += torch.tensor([geo.pad_x, geo.pad_y, geo.pad_x, geo.pad_y], dtype=torch.float32)
        pixels.append(torch.from_numpy(preprocess_file(coco.image_dir / name, spec)))
        boxes.append(xyxy)
        labels.append(torch.tensor([index[a["category_id"]] for a in anns], dtype=torch.long))
    return Split(torch.stack(pixels), boxes, labels, coco)


def augment(pixels: torch.Tensor, boxes: list[torch.Tensor], gen: torch.Generator,
            pad: float = 114.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Colour jitter (channel order, contrast, brightness) and random zoom-out.

    No flips: a mirrored digit is not the same digit. Half the images are shrunk
    to 55-100 % and placed at a random spot on a pad-filled canvas, which widens
    the range of object sizes seen.
    """
    x = pixels.float()
    n, _, s, _ = x.shape
    perms = torch.stack([torch.randperm(3, generator=gen) for _ in range(n)])
    x = torch.gather(x, 1, perms.view(n, 3, 1, 1).expand(-1, -1, s, s))
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.7, 1.3, generator=gen)
    brightness = torch.empty(n, 1, 1, 1).uniform_(-25.0, 25.0, generator=gen)
    x = ((x - 128.0) * contrast + 128.0 + brightness).clamp(0.0, 255.0)
    out_boxes = []
    for i in range(n):
        b = boxes[i]
        if torch.rand(1, generator=gen).item() < 0.5:
            z = float(torch.empty(1).uniform_(0.55, 1.0, generator=gen))
            ns = max(8, int(round(s * z)))
            ox = int(torch.randint(0, s - ns + 1, (1,), generator=gen))
            oy = int(torch.randint(0, s - ns + 1, (1,), generator=gen))
            small = F.interpolate(x[i:i + 1], size=(ns, ns), mode="bilinear", align_corners=False)
            canvas = torch.full_like(x[i:i + 1], pad)
            canvas[:, :, oy:oy + ns, ox:ox + ns] = small
            x[i] = canvas[0]
            b = b * (ns / s) + torch.tensor([ox, oy, ox, oy], dtype=torch.float32)
        out_boxes.append(b)
    return x, out_boxes


# ----------------------------------------------------------------------------- assignment and loss
def box_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Elementwise IoU of broadcastable [...,4] xyxy boxes."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter + eps)


def giou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Elementwise generalised IoU of [...,4] xyxy boxes."""
    iou = box_iou(a, b, eps)
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).prod(-1)
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = inter / (iou + eps)
    return iou - (hull - union) / (hull + eps)


@dataclass(frozen=True)
class Assignment:
    """Per anchor: foreground flag, target box (xyxy pixels) and soft class targets."""

    fg: torch.Tensor        # [B,A] bool
    boxes: torch.Tensor     # [B,A,4]
    scores: torch.Tensor    # [B,A,C]


@torch.no_grad()
def assign(scores: torch.Tensor, pred: torch.Tensor, points: torch.Tensor, gt_boxes: torch.Tensor,
           gt_labels: torch.Tensor, gt_valid: torch.Tensor, topk: int = 10,
           alpha: float = 0.5, beta: float = 6.0) -> Assignment:
    """Task-aligned assignment: each box takes the ``topk`` anchors inside it with the best
    ``score^alpha * IoU^beta``; an anchor claimed by several boxes keeps the best-IoU one.

    Shapes: scores [B,A,C] (sigmoid), pred [B,A,4], points [A,2] (pixels),
    gt_boxes [B,M,4], gt_labels [B,M], gt_valid [B,M] bool.
    """
    b, a, c = scores.shape
    m = gt_boxes.shape[1]
    px, py = points[:, 0].view(1, 1, a), points[:, 1].view(1, 1, a)
    g = gt_boxes.unsqueeze(-1)  # [B,M,4,1]
    inside = torch.stack((px - g[:, :, 0], py - g[:, :, 1], g[:, :, 2] - px, g[:, :, 3] - py), -1).amin(-1) > 1e-9
    inside &= gt_valid.unsqueeze(-1)
    iou = box_iou(gt_boxes.unsqueeze(2), pred.unsqueeze(1)).clamp(min=0) * inside        # [B,M,A]
    cls_score = scores.permute(0, 2, 1).gather(1, gt_labels.clamp(min=0).unsqueeze(-1).expand(-1, -1, a))
    align = cls_score.pow(alpha) * iou.pow(beta) * inside
    top = align.topk(min(topk, a), dim=-1).indices
    mask = torch.zeros_like(inside).scatter_(-1, top, True) & inside
    multi = mask.sum(1, keepdim=True) > 1                                                   # [B,1,A]
    best = F.one_hot(iou.argmax(1), m).permute(0, 2, 1).bool()                             # [B,M,A]
    mask = torch.where(multi, best & inside, mask)
    fg = mask.any(1)
    gt_idx = mask.float().argmax(1)                                                         # [B,A]
    boxes = gt_boxes.gather(1, gt_idx.unsqueeze(-1).expand(-1, -1, 4))
    labels = gt_labels.gather(1, gt_idx).clamp(min=0)
    align = align * mask
    norm = align * (iou * mask).amax(-1, keepdim=True) / (align.amax(-1, keepdim=True) + 1e-9)
    weight = norm.amax(1) * fg                                                              # [B,A]
    target = F.one_hot(labels, c).float() * weight.unsqueeze(-1)
    return Assignment(fg, boxes, target)


@dataclass(frozen=True)
class LossWeights:
    """Relative weights of the three loss terms (the usual YOLO balance)."""

    box: float = 7.5
    cls: float = 0.5
    dfl: float = 1.5


def detection_loss(raw: list[torch.Tensor], gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor],
                   num_classes: int, w: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict]:
    """Total loss of one batch of raw head maps against per-image boxes (xyxy pixels) and labels."""
    b = raw[0].shape[0]
    points, strides = anchor_points(raw, STRIDES)
    points, strides = points[0].T, strides[0, 0]                       # [A,2] stride units, [A]
    flat = torch.cat([r.flatten(2) for r in raw], 2).permute(0, 2, 1)  # [B,A,4R+C]
    box_logits, cls_logits = flat.split((4 * REG_MAX, num_classes), -1)
    bins = torch.arange(REG_MAX, dtype=torch.float32)
    ltrb = dfl_distances(box_logits.permute(0, 2, 1), bins).permute(0, 2, 1)  # [B,A,4] stride units
    pix = points * strides.unsqueeze(-1)
    pred = torch.cat((pix - ltrb[..., :2] * strides.unsqueeze(-1),
                      pix + ltrb[..., 2:] * strides.unsqueeze(-1)), -1)

    m = max(1, max(len(x) for x in gt_labels))
    boxes = torch.zeros(b, m, 4)
    labels = torch.full((b, m), -1, dtype=torch.long)
    for i, (bx, lb) in enumerate(zip(gt_boxes, gt_labels)):
        boxes[i, :len(lb)], labels[i, :len(lb)] = bx, lb
    target = assign(cls_logits.detach().sigmoid(), pred.detach(), pix, boxes, labels, labels >= 0)

    norm = target.scores.sum().clamp(min=1.0)
    loss_cls = F.binary_cross_entropy_with_logits(cls_logits, target.scores, reduction="sum") / norm
    fg = target.fg
    if fg.any():
        weight = target.scores.sum(-1)[fg]
        loss_box = ((1.0 - giou(pred[fg], target.boxes[fg])) * weight).sum() / norm
        s = strides.expand(b, -1)[fg].unsqueeze(-1)
        anchor = pix.expand(b, -1, -1)[fg]
        dist = torch.cat((anchor - target.boxes[fg][:, :2], target.boxes[fg][:, 2:] - anchor), -1) / s
        dist = dist.clamp(0, REG_MAX - 1.01)
        logits = box_logits[fg].view(-1, 4, REG_MAX)
        left = dist.floor().long()
        frac = dist - left
        ce = (F.cross_entropy(logits.reshape(-1, REG_MAX), left.flatten(), reduction="none") * (1 - frac).flatten()
              + F.cross_entropy(logits.reshape(-1, REG_MAX), (left + 1).flatten(), reduction="none") * frac.flatten())
        loss_dfl = (ce.view(-1, 4).mean(-1) * weight).sum() / norm
    else:
        loss_box = loss_dfl = cls_logits.sum() * 0.0
    total = w.box * loss_box + w.cls * loss_cls + w.dfl * loss_dfl
    return total, {"box": float(loss_box.detach()), "cls": float(loss_cls.detach()), "dfl": float(loss_dfl.detach())}


# ----------------------------------------------------------------------------- evaluation
def post_processor(split: Split) -> DetectionPost:
    """The runtime's post-processor for ``split``'s images (the card's thresholds and category ids)."""
    size = int(split.pixels.shape[-1])
    settings = DetectionSettings(size, DEMO_CARD.category_ids, CONF_THRESHOLD, IOU_THRESHOLD, MAX_DETECTIONS)
    return DetectionPost(settings, Letterboxes(split.coco.sizes, size))


def to_input(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (or 0..255 float) NCHW RGB -> the model's 0..1 float input."""
    return pixels.float() / 255.0


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch: int = 64) -> DetectionAccuracy:
    """COCO mAP of ``model`` (eval mode) on ``split``, post-processed and scored as an accuracy run."""
    model.eval()
    post = post_processor(split)
    detections: dict[int, np.ndarray] = {}
    for i in range(0, len(split.pixels), batch):
        heads = model(to_input(split.pixels[i:i + batch])).numpy()
        indices = np.arange(i, i + len(heads))
        detections.update(zip(indices.tolist(), post(heads, indices)))
    return coco_map(detections, split.coco, "training evaluation")


# ----------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (all recorded in the log)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    # One thread: on a shared 2-core machine, two oneDNN threads wait on each other
    # and ran the convolutions 4x slower than one (measured while other jobs ran).
    threads: int = 1
    eval_every: int = 4
    train_images: int = 0  # 0: all of train2017; fewer for a quick check of the pipeline


class ModelEma:
    """Exponential moving average of a model's weights (the copy that is evaluated)."""

    def __init__(self, model: nn.Module, decay: float, ramp_steps: int = 500):
        self.ema = copy.deepcopy(model).eval()
        self.decay, self.ramp, self.updates = decay, ramp_steps, 0
        for p in self.ema.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.ramp))
        for e, m in zip(self.ema.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)


def train(model: nn.Module, data: Split, val: Split, cfg: TrainConfig,
          num_classes: int) -> tuple[nn.Module, list[dict]]:
    """Train in place with AdamW; return the EMA model and one log entry per epoch."""
    gen = torch.Generator().manual_seed(cfg.seed)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    ema = ModelEma(model, cfg.ema_decay)
    n = len(data.pixels)
    steps_per_epoch = n // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    history: list[dict] = []
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, "box": 0.0, "cls": 0.0, "dfl": 0.0}
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size].tolist()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr, LR_FLOOR)
            x, boxes = augment(data.pixels[idx], [data.boxes[i] for i in idx], gen)
            loss, parts = detection_loss(model(to_input(x)), boxes, [data.labels[i] for i in idx], num_classes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            ema.update(model)
            sums["loss"] += float(loss.detach())
            for k, v in parts.items():
                sums[k] += v
            step += 1
        entry = {"epoch": epoch + 1, **{k: round(v / steps_per_epoch, 4) for k, v in sums.items()},
                 "seconds": round(time.perf_counter() - started, 1)}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            entry["val_map"] = round(evaluate(ema.ema, val).map, 4)
        history.append(entry)
        logger.info("epoch %s", json.dumps(entry))
    return ema.ema, history


# ----------------------------------------------------------------------------- export and check
def card(notes: str, macs: int, params: int) -> dict:
    """The detector card stored in the ONNX metadata."""
    return {"name": CARD_NAME, **DEMO_CARD.to_dict(), "trained": True, "macs": macs, "params": params,
            "notes": notes}


def openvino_output(onnx_path: Path, pixels: torch.Tensor) -> torch.Tensor:
    """The exported model's output on uint8 NCHW pixels, from OpenVINO's CPU plugin (f32)."""
    import openvino as ov  # only needed for the check

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return torch.from_numpy(np.asarray(compiled(to_input(pixels).numpy())[compiled.output(0)]))


def ensure_data(data_dir: Path) -> dict | None:
    """Build the demo detection set at ``data_dir`` unless it holds one of this version (of any
    split sizes: the tests' small sets train as they are); return its stamp."""
    stamp = read_stamp(data_dir)
    if stamp is None or (stamp.get("name"), stamp.get("version")) != (COCO_DEMO_NAME, COCO_DEMO_VERSION):
        build_coco_demo(data_dir)
        stamp = read_stamp(data_dir)
    return stamp


def train_and_export(data_dir: Path, out: Path, cfg: TrainConfig, command: str) -> dict:
    """Build the data if needed, train, evaluate, export, verify with OpenVINO and log."""
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(cfg.threads)
    wall = time.perf_counter()
    stamp = ensure_data(data_dir)
    ids, size, classes = DEMO_CARD.category_ids, DEMO_CARD.input_size, DEMO_CARD.num_classes
    train_split = load_split(data_dir, "train2017", size, ids, cfg.train_images)
    val_split = load_split(data_dir, "val2017", size, ids)
    model = create(MODEL_NAME)
    ema, history = train(model, train_split, val_split, cfg, classes)
    train_seconds = time.perf_counter() - wall
    map_ = evaluate(ema, val_split).map
    macs, params = count_macs(ema, size), count_params(ema)
    notes = (f"yolo_demo trained by mlperf-cpu train detector on the bundled demo detection set "
             f"(dataset.coco_demo: sklearn digits on skimage photos, 10 classes, category ids 2*d+1); "
             f"val2017 mAP@[.5:.95] {map_:.3f} (pycocotools, conf {CONF_THRESHOLD}). "
             "Input: RGB letterboxed (centred, pad 114) / 255. Not a COCO model.")
    blob = export_onnx(ema, out, card(notes, macs, params), "mlperf_cpu.training.detector", DETECTOR_IO_NAMES)
    ov_out = openvino_output(out, val_split.pixels[:16])
    with torch.no_grad():
        torch_out = ema(to_input(val_split.pixels[:16]))
    max_diff = float((ov_out - torch_out).abs().max())
    if ov_out.shape != torch_out.shape or max_diff > 1e-2:
        raise ModelError(f"{out}: OpenVINO output {tuple(ov_out.shape)} differs from torch "
                         f"{tuple(torch_out.shape)} by up to {max_diff}")
    log = {
        "model": MODEL_NAME, "card_name": CARD_NAME, "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": cfg.seed, "config": asdict(cfg),
        "val_map": round(map_, 4),
        "eval": {"conf": CONF_THRESHOLD, "iou": IOU_THRESHOLD, "max_det": MAX_DETECTIONS,
                 "images": len(val_split.coco)},
        "openvino_torch_max_abs_diff": max_diff,
        "wall_seconds": round(time.perf_counter() - wall, 1), "train_seconds": round(train_seconds, 1),
        "machine": "2 shared cores, busy (other jobs running)",
        "params": params, "macs": macs, "input_size": size,
        "dataset": {k: stamp.get(k) for k in ("name", "version", "seed", "counts")} if stamp else None,
        "onnx": {"file": out.name, "bytes": len(blob), "opset": ONNX_OPSET,
                 "sha256": hashlib.sha256(blob).hexdigest()},
        "versions": {"torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__},
        "history": history,
    }
    write_text_atomic(out.with_suffix(".json"), json.dumps(log, indent=2) + "\n")
    return log


DESCRIPTION = "Train yolo_demo on the demo detection set and export it as ONNX (models/weights/detector_demo.onnx)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The detector training's options: the data, the output and every ``TrainConfig`` field."""
    parser.add_argument("--data", type=Path, default=Path("data/coco_demo"),
                        help="demo detection set directory (built if absent)")
    parser.add_argument("--out", type=Path, default=Path("models/weights/detector_demo.onnx"))
    for field in fields(TrainConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)


def run(args: argparse.Namespace, command: str) -> str:
    """Train and export from parsed arguments; returns the summary line."""
    options = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    log = train_and_export(args.data, args.out, TrainConfig(**options), command)
    return (f"{args.out}: val2017 mAP@[.5:.95] {log['val_map']:.4f}, "
            f"{log['onnx']['bytes']} bytes, {log['wall_seconds']} s wall")
