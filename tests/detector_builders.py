"""Tiny UNTRAINED YOLO-style detectors and a small COCO set for tests (torch, cv2, json).

The detector has the Ultralytics export format: input ``images`` float32 [N,3,S,S] RGB 0..1,
output ``output0`` [N, 4+classes, anchors] with rows cx, cy, w, h in input pixels, then one
sigmoid score per class. Its boxes sit on a grid of cells with sizes up to the whole input,
so even random weights overlap the test set's large boxes and score a small, non-zero mAP.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import cv2
import numpy as np


def make_detector(path: Path, input_size: int = 64, num_classes: int = 3, card: dict | None = None,
                  seed: int = 0, grids: tuple[int, ...] = (8,)) -> Path:
    """Export a tiny seeded detector; ``card`` (if given) goes into ``mlperf_cpu.card`` metadata."""
    import onnx
    import torch
    from torch import nn

    class TinyYolo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
            self.heads = nn.ModuleList(nn.Conv2d(16, 4 + num_classes, 1) for _ in grids)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features(x)
            outs = []
            for grid, head in zip(grids, self.heads):
                g = head(nn.functional.adaptive_avg_pool2d(f, grid))
                stride = input_size / grid
                ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
                cx = (xs + 0.5 + torch.tanh(g[:, 0])) * stride
                cy = (ys + 0.5 + torch.tanh(g[:, 1])) * stride
                wh = torch.sigmoid(g[:, 2:4]) * input_size
                scores = torch.sigmoid(g[:, 4:])
                outs.append(torch.cat([cx[:, None], cy[:, None], wh, scores], 1).flatten(2))
            return torch.cat(outs, 2)

    torch.manual_seed(seed)
    model = TinyYolo().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, input_size, input_size),), buf, dynamo=False,
                          input_names=["images"], output_names=["output0"], opset_version=17)
    proto = onnx.load_from_string(buf.getvalue())
    if card is not None:
        proto.metadata_props.add(key="mlperf_cpu.card", value=json.dumps(card))
    onnx.save(proto, str(path))
    return Path(path)


def make_coco_set(root: Path, count: int = 12, categories: tuple[int, ...] = (1, 2, 3), seed: int = 0) -> Path:
    """``root/val2017/*.jpg`` (coloured rectangles of several sizes and aspect ratios on grey) and
    ``root/annotations/instances_val2017.json`` with their boxes; also ``root/cal_list.txt``."""
    rng = np.random.default_rng(seed)
    images_dir = root / "val2017"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
        img = np.full((h, w, 3), 100, np.uint8)
        name = f"{i:012d}.jpg"
        for _ in range(int(rng.integers(1, 3))):
            bw, bh = int(rng.integers(w // 3, w)), int(rng.integers(h // 3, h))
            x, y = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
            cat = int(rng.choice(categories))
            img[y:y + bh, x:x + bw] = rng.integers(0, 255, 3)
            annotations.append({"id": len(annotations) + 1, "image_id": 1000 + i, "category_id": cat,
                                "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0})
        cv2.imwrite(str(images_dir / name), img)
        images.append({"id": 1000 + i, "file_name": name, "width": w, "height": h})
    (root / "annotations").mkdir(exist_ok=True)
    data = {"images": images, "annotations": annotations,
            "categories": [{"id": c, "name": f"class{c}"} for c in categories]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    (root / "cal_list.txt").write_text("".join(f"{img['file_name']}\n" for img in images[: count // 2]))
    return root
