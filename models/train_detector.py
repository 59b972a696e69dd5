"""Train ``yolo_demo`` on the demo detection set, score it with pycocotools, export it.

    python -m models.train_detector --data data/coco_demo --out models/weights/detector_demo.onnx

Images are letterboxed exactly as the exported card says (``letterbox``: RGB,
aspect-preserving resize to fit the square input, centred, border 114, then
0..1 floats). Boxes are assigned to anchor points with a task-aligned assigner
(class score x IoU, top-k anchors inside each box), and trained with BCE for
classes, GIoU and distribution focal loss for boxes; an exponential moving
average of the weights is what gets evaluated and exported. val2017 mAP is
computed by pycocotools on the decoded, NMS-ed predictions mapped back to the
original images (confidence 0.001, as the benchmark's reference). The ONNX file
(input ``images`` [N,3,S,S], output ``output0`` [N,4+C,A]) carries its card;
a JSON log with config, seed, wall time and mAP is written beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import logging
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import DatasetError, HarnessError, ModelError
from dataset.coco_demo import build_coco_demo, read_stamp
from models import create
from models._macs import count_macs, count_params
from models.export import DETECTOR_IO_NAMES, ONNX_OPSET, export_onnx
from models.yolo import DEMO_CARD, REG_MAX, STRIDES, anchor_points, dfl_distances

logger = logging.getLogger(__name__)

MODEL_NAME = "yolo_demo"
CARD_NAME = "yolo_demo.coco_demo"
CONF_THRESHOLD = 0.001   # the benchmark reference's confidence threshold
IOU_THRESHOLD = 0.7
MAX_DETECTIONS = 300
_PRE_NMS = 1000


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Letterbox:
    """How one image went into the square input: scale, then offset (left, top)."""

    scale: float
    left: int
    top: int


def letterbox(rgb: np.ndarray, size: int, pad: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Fit an HxWx3 image into ``size`` x ``size`` keeping its aspect ratio.

    Scale ``r = min(size/h, size/w)``, resized to ``(round(w*r), round(h*r))`` with
    bilinear interpolation, placed at ``left = (size - new_w) // 2``,
    ``top = (size - new_h) // 2``, the rest filled with ``pad``. An input-pixel
    coordinate maps back to the original image as ``(x - left) / r``.
    """
    h, w = rgb.shape[:2]
    r = min(size / h, size / w)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    left, top = (size - nw) // 2, (size - nh) // 2
    canvas = np.full((size, size, 3), pad, np.uint8)
    canvas[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, Letterbox(r, left, top)


@dataclass
class Split:
    """A letterboxed split: uint8 pixels [N,3,S,S], per-image targets and mapping."""

    pixels: torch.Tensor
    boxes: list[torch.Tensor]      # [M,4] x0,y0,x1,y1 in input pixels
    labels: list[torch.Tensor]     # [M] class index
    image_ids: list[int]
    boxes_map: list[Letterbox]
    sizes: list[tuple[int, int]]   # original (width, height)
    annotation_file: Path


def load_split(root: Path, split: str, size: int, category_ids: tuple[int, ...], limit: int = 0) -> Split:
    """Read ``root/split`` with its ``annotations/instances_<split>.json`` and letterbox it
    (only the first ``limit`` images by id, if ``limit``)."""
    ann_file = Path(root) / "annotations" / f"instances_{split}.json"
    try:
        coco = json.loads(ann_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{ann_file}: cannot read COCO annotations ({exc})") from None
    index = {cid: i for i, cid in enumerate(category_ids)}
    per_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    pixels, boxes, labels, ids, maps, sizes = [], [], [], [], [], []
    images = sorted(coco["images"], key=lambda i: i["id"])
    for img in images[:limit] if limit else images:
        path = Path(root) / split / img["file_name"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"{path}: missing or unreadable image")
        canvas, lb = letterbox(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
        anns = per_image.get(img["id"], [])
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        xyxy = torch.cat((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]), 1) * lb.scale
        xyxy += torch.tensor([lb.left, lb.top, lb.left, lb.top], dtype=torch.float32)
        pixels.append(torch.from_numpy(canvas).permute(2, 0, 1))
        boxes.append(xyxy)
        labels.append(torch.tensor([index[a["category_id"]] for a in anns], dtype=torch.long))
        ids.append(img["id"])
        maps.append(lb)
        sizes.append((img["width"], img["height"]))
    return Split(torch.stack(pixels), boxes, labels, ids, maps, sizes, ann_file)


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


# ----------------------------------------------------------------------------- post-processing and mAP
def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS, vectorised: indices (into ``boxes``) kept, best score first.

    Solves "keep i unless a kept, higher-scoring box overlaps it by more than the
    threshold" by fixed-point iteration on the suppression matrix, which reaches
    exactly the greedy answer.
    """
    order = scores.argsort(descending=True)
    b = boxes[order]
    suppress = torch.triu(box_iou(b.unsqueeze(1), b.unsqueeze(0)) > iou_threshold, diagonal=1)
    keep = torch.ones(len(b), dtype=torch.bool)
    while True:
        new = ~(suppress & keep.unsqueeze(1)).any(0)
        if torch.equal(new, keep):
            return order[keep]
        keep = new


def postprocess(output: torch.Tensor, conf: float = CONF_THRESHOLD, iou: float = IOU_THRESHOLD,
                max_det: int = MAX_DETECTIONS) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Exported-format output [N,4+C,A] -> per image (boxes xyxy input pixels, scores, class index).

    Every (anchor, class) pair above ``conf`` is a candidate (multi-label), the best
    1000 go to per-class NMS, and at most ``max_det`` are kept.
    """
    results = []
    for out in output:
        xywh, cls = out[:4].T, out[4:].T                                  # [A,4], [A,C]
        xyxy = torch.cat((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), 1)
        anchor, klass = (cls > conf).nonzero(as_tuple=True)
        score = cls[anchor, klass]
        top = score.topk(min(_PRE_NMS, len(score))).indices
        anchor, klass, score = anchor[top], klass[top], score[top]
        # Offsetting each class far apart makes one NMS call per-class.
        shifted = xyxy[anchor] + klass.unsqueeze(1).float() * 4096.0
        keep = nms(shifted, score, iou)[:max_det]
        results.append((xyxy[anchor[keep]], score[keep], klass[keep]))
    return results


def coco_detections(results: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], split: Split,
                    category_ids: tuple[int, ...], first: int = 0) -> list[dict]:
    """Per-image detections in input pixels -> COCO result dicts on the original images."""
    dets = []
    for k, (boxes, scores, classes) in enumerate(results):
        i = first + k
        lb, (w, h) = split.boxes_map[i], split.sizes[i]
        b = boxes.clone()
        b[:, [0, 2]] = ((b[:, [0, 2]] - lb.left) / lb.scale).clamp(0, w)
        b[:, [1, 3]] = ((b[:, [1, 3]] - lb.top) / lb.scale).clamp(0, h)
        for (x0, y0, x1, y1), s, c in zip(b.tolist(), scores.tolist(), classes.tolist()):
            dets.append({"image_id": split.image_ids[i], "category_id": category_ids[c],
                         "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
                         "score": round(s, 5)})
    return dets


def coco_map(annotation_file: Path, detections: list[dict], image_ids: list[int] | None = None) -> tuple[float, float]:
    """(mAP@[.5:.95], mAP@.5) of ``detections`` by pycocotools, on ``image_ids`` (default: all)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotation_file))
        if not detections:
            return 0.0, 0.0
        ev = COCOeval(gt, gt.loadRes(detections), iouType="bbox")
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def to_input(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (or 0..255 float) NCHW RGB -> the model's 0..1 float input."""
    return pixels.float() / 255.0


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, category_ids: tuple[int, ...], batch: int = 64) -> tuple[float, float]:
    """mAP@[.5:.95] and mAP@.5 of ``model`` (eval mode) on ``split``."""
    model.eval()
    dets: list[dict] = []
    for i in range(0, len(split.pixels), batch):
        out = model(to_input(split.pixels[i:i + batch]))
        dets += coco_detections(postprocess(out), split, category_ids, first=i)
    return coco_map(split.annotation_file, dets, split.image_ids)


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


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up then cosine decay to 5 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(model: nn.Module, data: Split, val: Split, cfg: TrainConfig, category_ids: tuple[int, ...],
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
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
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
            entry["val_map"], entry["val_map50"] = (round(v, 4) for v in evaluate(ema.ema, val, category_ids))
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


def run(data_dir: Path, out: Path, cfg: TrainConfig, command: str) -> dict:
    """Build the data if needed, train, evaluate, export, verify with OpenVINO and log."""
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(cfg.threads)
    wall = time.perf_counter()
    build_coco_demo(data_dir)
    stamp = read_stamp(data_dir)
    ids, size, classes = DEMO_CARD.category_ids, DEMO_CARD.input_size, DEMO_CARD.num_classes
    train_split = load_split(data_dir, "train2017", size, ids, cfg.train_images)
    val_split = load_split(data_dir, "val2017", size, ids)
    model = create(MODEL_NAME)
    ema, history = train(model, train_split, val_split, cfg, ids, classes)
    train_seconds = time.perf_counter() - wall
    map_, map50 = evaluate(ema, val_split, ids)
    macs, params = count_macs(ema, size), count_params(ema)
    notes = (f"yolo_demo trained by models.train_detector on the bundled demo detection set "
             f"(dataset.coco_demo: sklearn digits on skimage photos, 10 classes, category ids 2*d+1); "
             f"val2017 mAP@[.5:.95] {map_:.3f}, mAP@.5 {map50:.3f} (pycocotools, conf {CONF_THRESHOLD}). "
             "Input: RGB letterboxed (centred, pad 114) / 255. Not a COCO model.")
    blob = export_onnx(ema, out, card(notes, macs, params), "mlperf_cpu.models.train_detector", DETECTOR_IO_NAMES)
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
        "val_map": round(map_, 4), "val_map50": round(map50, 4),
        "eval": {"conf": CONF_THRESHOLD, "iou": IOU_THRESHOLD, "max_det": MAX_DETECTIONS,
                 "images": len(val_split.image_ids)},
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
    out.with_suffix(".json").write_text(json.dumps(log, indent=2) + "\n")
    return log


def parse_args(argv: list[str]) -> tuple[Path, Path, TrainConfig]:
    """(data dir, output ONNX, config) from the command line; every TrainConfig field is an option."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/coco_demo"),
                        help="demo detection set directory (built if absent)")
    parser.add_argument("--out", type=Path, default=Path("models/weights/detector_demo.onnx"))
    for field in fields(TrainConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    args = vars(parser.parse_args(argv))
    data, out = args.pop("data"), args.pop("out")
    return data, out, TrainConfig(**args)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    argv = sys.argv[1:] if argv is None else argv
    data, out, cfg = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        log = run(data, out, cfg, " ".join(["python -m models.train_detector", *argv]))
    except HarnessError as exc:
        logging.error("%s", exc)
        return exc.exit_code
    print(f"{out}: val2017 mAP@[.5:.95] {log['val_map']:.4f}, mAP@.5 {log['val_map50']:.4f}, "
          f"{log['onnx']['bytes']} bytes, {log['wall_seconds']} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
