"""The detection post-processor: a YOLO-style head -> the MLCommons 7-float responses.

Runs on the completion path (the pool's callback thread), vectorised with numpy over the
batch: per anchor the best class and its score; anchors scoring above the confidence
threshold become boxes (centre/size in input pixels -> corners); class-aware greedy NMS keeps
at most ``max_detections`` per image; the letterbox is undone with the geometry of each
image's original size, and the box is normalised by that size. Each sample's response is
k x 7 float32 ``[qsl_idx, ymin, xmin, ymax, xmax, score, coco_category_id]``, the layout the
reference YOLO harness sends and its accuracy script (and ``records.detection``) reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataset.preprocess import letterbox_geometry
from modelprep.card import ModelCard

FIELDS = 7  # floats per detection
MAX_NMS_CANDIDATES = 30000  # boxes entering NMS per image, best first
_CLASS_OFFSET = 4.0  # x input size: shifts each class's boxes apart so one NMS pass is class-aware


@dataclass(frozen=True)
class DetectionSettings:
    """What the post-processor needs from the card (thresholds, ids, input size)."""

    input_size: int
    category_ids: tuple[int, ...]
    conf_threshold: float = 0.001
    iou_threshold: float = 0.7
    max_detections: int = 300


class Letterboxes:
    """Per QSL index: the original (height, width) and the letterbox that placed it in the input."""

    def __init__(self, sizes: np.ndarray, input_size: int) -> None:
        sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        geos = [letterbox_geometry(int(h), int(w), input_size) for h, w in sizes]
        self.height = sizes[:, 0].astype(np.float32)
        self.width = sizes[:, 1].astype(np.float32)
        self.scale = np.array([g.scale for g in geos], dtype=np.float32)
        self.pad_x = np.array([g.pad_x for g in geos], dtype=np.float32)
        self.pad_y = np.array([g.pad_y for g in geos], dtype=np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Greedy NMS: indices of the kept boxes (x1, y1, x2, y2), best score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[order, k] for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    rest = np.arange(len(order))
    keep: list[int] = []
    while rest.size and len(keep) < max_keep:
        best, rest = rest[0], rest[1:]
        keep.append(best)
        w = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        h = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        rest = rest[iou <= iou_threshold]
    return order[np.asarray(keep, dtype=np.int64)]


class DetectionPost:
    """Turns a batch of raw heads into one float32 detection array per sample."""

    def __init__(self, settings: DetectionSettings, letterboxes: Letterboxes) -> None:
        self.settings = settings
        self.boxes = letterboxes
        self._category = np.asarray(settings.category_ids, dtype=np.float32)

    def __call__(self, heads: np.ndarray, indices: np.ndarray) -> list[np.ndarray]:
        """``heads`` [n, 4+C, anchors] (float) of the QSL samples ``indices`` -> n arrays [k, 7] float32."""
        scores = heads[:, 4:, :]
        best = scores.max(axis=1)  # [n, anchors]
        return [self._one(heads[i], best[i], scores[i], int(indices[i])) for i in range(len(indices))]

    def _one(self, head: np.ndarray, best: np.ndarray, scores: np.ndarray, index: int) -> np.ndarray:
        s = self.settings
        cand = np.flatnonzero(best > s.conf_threshold)
        if cand.size > MAX_NMS_CANDIDATES:
            cand = cand[np.argpartition(-best[cand], MAX_NMS_CANDIDATES)[:MAX_NMS_CANDIDATES]]
        if cand.size == 0:
            return np.empty((0, FIELDS), dtype=np.float32)
        conf = best[cand]
        cls = scores[:, cand].argmax(axis=0)
        cx, cy, w, h = head[0, cand], head[1, cand], head[2, cand] / 2, head[3, cand] / 2
        xyxy = np.stack([cx - w, cy - h, cx + w, cy + h], axis=1)
        shifted = xyxy + (cls * (_CLASS_OFFSET * s.input_size)).astype(np.float32)[:, None]
        keep = nms(shifted, conf, s.iou_threshold, s.max_detections)
        lb = self.boxes
        height, width = lb.height[index], lb.width[index]
        x1 = np.clip((xyxy[keep, 0] - lb.pad_x[index]) / lb.scale[index], 0, width) / width
        y1 = np.clip((xyxy[keep, 1] - lb.pad_y[index]) / lb.scale[index], 0, height) / height
        x2 = np.clip((xyxy[keep, 2] - lb.pad_x[index]) / lb.scale[index], 0, width) / width
        y2 = np.clip((xyxy[keep, 3] - lb.pad_y[index]) / lb.scale[index], 0, height) / height
        out = np.empty((len(keep), FIELDS), dtype=np.float32)
        out[:, 0] = index
        out[:, 1], out[:, 2], out[:, 3], out[:, 4] = y1, x1, y2, x2
        out[:, 5] = conf[keep]
        out[:, 6] = self._category[cls[keep]]
        return out


def post_for(card: ModelCard, sizes: np.ndarray) -> DetectionPost:
    """The post-processor a detector's card describes, for images of original ``sizes`` [N, (h, w)]."""
    settings = DetectionSettings(card.input_size, card.category_ids, card.conf_threshold,
                                 card.iou_threshold, card.max_detections)
    return DetectionPost(settings, Letterboxes(sizes, card.input_size))
