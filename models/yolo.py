"""A YOLO-style anchor-free detector family in plain torch (written for this project).

The shape follows the published YOLOv11 design: a CSP backbone of strided 3x3
convolutions and C3k2 blocks, an SPPF pooling block and a C2PSA attention block
at stride 32, a PAN neck (top-down then bottom-up with concatenations) and a
decoupled head per stride (8, 16, 32): a box branch predicting each side's
distance as a 16-bin distribution (DFL) and a class branch of depthwise-separable
convolutions.

``model(x)`` in train mode returns the raw per-stride maps (for the loss); in
eval mode it returns what an exported YOLO ONNX returns: one tensor
``[N, 4 + C, A]`` whose rows are the box centre x, y, width, height in input
pixels followed by the C sigmoid class scores, for the A anchor points of the
three strides in order (row-major within each stride).

``yolo11l`` is shaped like YOLOv11-L (640x640, 80 classes -> [N, 84, 8400],
25.37 M parameters, 43.5 GMACs = ~87 GFLOPs) for speed measurement with
untrained weights; ``yolo_demo`` is a small one of the same design (128x128,
10 classes -> [N, 14, 336], 0.41 M parameters, 31 MMACs) that
``training.detector`` (``mlperf-cpu train detector``) trains on the bundled demo detection set.

Exported (``models.export``), a detector takes ``images`` [N,3,S,S] float32 RGB
in 0..1, letterboxed (aspect-preserving resize, centred, border 114), and
returns ``output0``; its card (``DetectionCard``) carries the class index ->
dataset category id table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from dataset.coco_demo import CATEGORY_IDS as DEMO_CATEGORY_IDS
from dataset.constants import COCO80_CATEGORY_IDS
from models._registry import DetectionCard, register_model

REG_MAX = 16
STRIDES = (8, 16, 32)


class ConvBNAct(nn.Module):
    """Conv (no bias) + BatchNorm + SiLU (or no activation)."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Residual3x3(nn.Module):
    """Two 3x3 conv layers with an identity shortcut (the CSP blocks' unit)."""

    def __init__(self, c: int, hidden: int):
        super().__init__()
        self.a = ConvBNAct(c, hidden, 3)
        self.b = ConvBNAct(hidden, c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x))


class CSPPair(nn.Module):
    """The C3k unit: two 1x1 branches, one through residual units, joined by a 1x1."""

    def __init__(self, c: int, n: int = 2):
        super().__init__()
        half = c // 2
        self.main = ConvBNAct(c, half)
        self.side = ConvBNAct(c, half)
        self.units = nn.Sequential(*(Residual3x3(half, half) for _ in range(n)))
        self.join = ConvBNAct(2 * half, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.join(torch.cat((self.units(self.main(x)), self.side(x)), 1))


class C3k2(nn.Module):
    """CSP block with partial feature reuse (C2f layout).

    A 1x1 conv makes two halves of ``hidden`` channels; the second half goes
    through ``n`` units in sequence and every intermediate output is kept;
    all of them are concatenated and fused by a 1x1 conv. Units are plain
    residual pairs or, with ``deep``, small CSP blocks (C3k).
    """

    def __init__(self, c_in: int, c_out: int, n: int = 1, deep: bool = False, expand: float = 0.5):
        super().__init__()
        self.hidden = int(c_out * expand)
        self.split = ConvBNAct(c_in, 2 * self.hidden)
        self.units = nn.ModuleList(
            CSPPair(self.hidden) if deep else Residual3x3(self.hidden, self.hidden) for _ in range(n))
        self.fuse = ConvBNAct((2 + n) * self.hidden, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(self.split(x).chunk(2, 1))
        for unit in self.units:
            parts.append(unit(parts[-1]))
        return self.fuse(torch.cat(parts, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools, concatenated."""

    def __init__(self, c_in: int, c_out: int, k: int = 5):
        super().__init__()
        half = c_in // 2
        self.reduce = ConvBNAct(c_in, half)
        self.pool = nn.MaxPool2d(k, 1, k // 2)
        self.expand = ConvBNAct(4 * half, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.reduce(x)
        y2 = self.pool(y1)
        y3 = self.pool(y2)
        return self.expand(torch.cat((y1, y2, y3, self.pool(y3)), 1))


class PositionalAttention(nn.Module):
    """Multi-head self-attention over the H*W positions, with a depthwise 3x3
    positional term on the values; keys/queries use half the head width."""

    def __init__(self, c: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = c // heads
        self.key_dim = self.head_dim // 2
        self.scale = self.key_dim ** -0.5
        self.qkv = ConvBNAct(c, c + 2 * self.key_dim * heads, act=False)
        self.pos = ConvBNAct(c, c, 3, groups=c, act=False)
        self.proj = ConvBNAct(c, c, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(x).view(b, self.heads, 2 * self.key_dim + self.head_dim, h * w)
        q, k, v = qkv.split((self.key_dim, self.key_dim, self.head_dim), dim=2)
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
        out = (v @ attn.transpose(-2, -1)).view(b, c, h, w)
        return self.proj(out + self.pos(v.reshape(b, c, h, w)))


class PSABlock(nn.Module):
    """Attention then a 1x1 feed-forward, each with a residual."""

    def __init__(self, c: int):
        super().__init__()
        self.attn = PositionalAttention(c, heads=max(1, c // 64))
        self.ffn = nn.Sequential(ConvBNAct(c, 2 * c), ConvBNAct(2 * c, c, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class C2PSA(nn.Module):
    """CSP wrapper: half the channels pass through ``n`` PSA blocks, the other half skip."""

    def __init__(self, c: int, n: int = 1):
        super().__init__()
        self.half = c // 2
        self.split = ConvBNAct(c, 2 * self.half)
        self.blocks = nn.Sequential(*(PSABlock(self.half) for _ in range(n)))
        self.fuse = ConvBNAct(2 * self.half, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.split(x).chunk(2, 1)
        return self.fuse(torch.cat((a, self.blocks(b)), 1))


class DetectHead(nn.Module):
    """Decoupled anchor-free head over three strides with DFL box regression."""

    def __init__(self, num_classes: int, channels: tuple[int, int, int], reg_max: int = REG_MAX,
                 box_channels: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.strides = STRIDES
        box_c = box_channels or max(16, channels[0] // 4, 4 * reg_max)
        cls_c = max(channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(nn.Sequential(
            ConvBNAct(c, box_c, 3), ConvBNAct(box_c, box_c, 3), nn.Conv2d(box_c, 4 * reg_max, 1))
            for c in channels)
        self.cls = nn.ModuleList(nn.Sequential(
            ConvBNAct(c, c, 3, groups=c), ConvBNAct(c, cls_c),
            ConvBNAct(cls_c, cls_c, 3, groups=cls_c), ConvBNAct(cls_c, cls_c),
            nn.Conv2d(cls_c, num_classes, 1)) for c in channels)
        self.register_buffer("bins", torch.arange(reg_max, dtype=torch.float32), persistent=False)

    def init_biases(self, input_size: int) -> None:
        """Start class scores near a prior of a few objects per image, box bins flat."""
        for box, cls, stride in zip(self.box, self.cls, self.strides):
            nn.init.constant_(box[-1].bias, 1.0)
            cells = (input_size / stride) ** 2
            nn.init.constant_(cls[-1].bias, math.log(5 / self.num_classes / cells))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Raw maps per stride: [N, 4*reg_max + C, H, W] (box logits, then class logits)."""
        return [torch.cat((box(f), cls(f)), 1) for f, box, cls in zip(feats, self.box, self.cls)]

    def decode(self, raw: list[torch.Tensor]) -> torch.Tensor:
        """Raw maps -> [N, 4 + C, A]: cx, cy, w, h in input pixels, then sigmoid scores."""
        points, strides = anchor_points(raw, self.strides)
        flat = torch.cat([r.flatten(2) for r in raw], 2)
        box_logits, cls_logits = flat.split((4 * self.reg_max, self.num_classes), 1)
        ltrb = dfl_distances(box_logits, self.bins)
        lt, rb = ltrb.chunk(2, 1)
        centre = points + (rb - lt) / 2
        size = lt + rb
        return torch.cat((torch.cat((centre, size), 1) * strides, cls_logits.sigmoid()), 1)


def dfl_distances(box_logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """[N, 4*R, A] distribution logits -> [N, 4, A] expected distances (in stride units)."""
    n, _, a = box_logits.shape
    prob = box_logits.view(n, 4, bins.numel(), a).softmax(2)
    return (prob * bins.view(1, 1, -1, 1)).sum(2)


def anchor_points(raw: list[torch.Tensor], strides: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres [1, 2, A] (x, y in stride units) and each anchor's stride [1, 1, A]."""
    points, scale = [], []
    for r, stride in zip(raw, strides):
        h, w = r.shape[-2:]
        ys = torch.arange(h, dtype=torch.float32) + 0.5
        xs = torch.arange(w, dtype=torch.float32) + 0.5
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((gx.flatten(), gy.flatten()), 0))
        scale.append(torch.full((1, h * w), float(stride)))
    return torch.cat(points, 1).unsqueeze(0), torch.cat(scale, 1).unsqueeze(0)


@dataclass(frozen=True)
class YoloSpec:
    """Scaling of the family, as the published n/s/m/l/x variants scale it."""

    width: float
    depth: float
    max_channels: int
    deep_everywhere: bool  # the large variants use C3k units in every C3k2 block
    box_channels: int = 0  # width of the box branch; 0: the published rule (>= 4 * reg_max)

    def ch(self, c: int) -> int:
        """Scaled channel count (multiple of 8)."""
        return int(math.ceil(min(c, self.max_channels) * self.width / 8) * 8)

    def n(self, repeats: int) -> int:
        """Scaled block repeat count."""
        return max(1, round(repeats * self.depth))


class YoloDetector(nn.Module):
    """Backbone + PAN neck + decoupled head; see the module docstring for the outputs."""

    def __init__(self, spec: YoloSpec, num_classes: int, input_size: int):
        super().__init__()
        self.spec = spec
        ch, n, deep = spec.ch, spec.n(2), spec.deep_everywhere
        p5 = ch(1024)
        # Backbone: stride 2, 4, 8 (P3), 16 (P4), 32 (P5).
        self.stem = nn.Sequential(ConvBNAct(3, ch(64), 3, 2), ConvBNAct(ch(64), ch(128), 3, 2),
                                  C3k2(ch(128), ch(256), n, deep, expand=0.25))
        self.down3 = nn.Sequential(ConvBNAct(ch(256), ch(256), 3, 2), C3k2(ch(256), ch(512), n, deep, 0.25))
        self.down4 = nn.Sequential(ConvBNAct(ch(512), ch(512), 3, 2), C3k2(ch(512), ch(512), n, True))
        self.down5 = nn.Sequential(ConvBNAct(ch(512), p5, 3, 2), C3k2(p5, p5, n, True),
                                   SPPF(p5, p5), C2PSA(p5, n))
        # Neck, top-down then bottom-up.
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.td4 = C3k2(p5 + ch(512), ch(512), n, deep)
        self.td3 = C3k2(ch(512) + ch(512), ch(256), n, deep)
        self.bu4_down = ConvBNAct(ch(256), ch(256), 3, 2)
        self.bu4 = C3k2(ch(256) + ch(512), ch(512), n, deep)
        self.bu5_down = ConvBNAct(ch(512), ch(512), 3, 2)
        self.bu5 = C3k2(ch(512) + p5, p5, n, True)
        self.head = DetectHead(num_classes, (ch(256), ch(512), p5), box_channels=spec.box_channels)
        _init_weights(self)
        self.head.init_biases(input_size)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The three neck outputs (strides 8, 16, 32)."""
        c3 = self.down3(self.stem(x))
        c4 = self.down4(c3)
        c5 = self.down5(c4)
        t4 = self.td4(torch.cat((self.up(c5), c4), 1))
        p3 = self.td3(torch.cat((self.up(t4), c3), 1))
        p4 = self.bu4(torch.cat((self.bu4_down(p3), t4), 1))
        p5 = self.bu5(torch.cat((self.bu5_down(p4), c5), 1))
        return [p3, p4, p5]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        raw = self.head(self.features(x))
        return raw if self.training else self.head.decode(raw)


def _init_weights(model: nn.Module) -> None:
    """Default conv init; BatchNorm as the YOLO family trains it (eps 1e-3, momentum 0.03)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))


YOLO11L_SPEC = YoloSpec(width=1.0, depth=1.0, max_channels=512, deep_everywhere=True)
DEMO_SPEC = YoloSpec(width=0.125, depth=0.5, max_channels=512, deep_everywhere=False, box_channels=32)

YOLO11L_CARD = DetectionCard(input_size=640, num_classes=80, category_ids=COCO80_CATEGORY_IDS)
DEMO_CARD = DetectionCard(input_size=128, num_classes=10, category_ids=DEMO_CATEGORY_IDS)


@register_model(card=YOLO11L_CARD)
def yolo11l(num_classes: int = 80, input_size: int = 640) -> YoloDetector:
    """YOLOv11-L-shaped detector (640x640, 80 classes -> [N, 84, 8400]).

    It is only ever untrained (timed, never scored), so its class biases are zero rather than
    the training prior: with the prior every score sits below the reference's 0.001 confidence
    threshold and post-processing would be timed on empty heads; at zero every anchor is a
    candidate, the most decoding and NMS work an image can cause.
    """
    model = YoloDetector(YOLO11L_SPEC, num_classes, input_size)
    with torch.no_grad():
        for cls in model.head.cls:
            cls[-1].bias.zero_()
    return model


@register_model(card=DEMO_CARD)
def yolo_demo(num_classes: int = 10, input_size: int = 128) -> YoloDetector:
    """Small detector of the same design for the bundled demo (128x128, 10 digit classes)."""
    return YoloDetector(DEMO_SPEC, num_classes, input_size)
