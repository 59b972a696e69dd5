"""The detection post-processor: a YOLO-style head -> the MLCommons 7-float responses.

Vectorised with numpy over the batch: per anchor the best class and its score; anchors
scoring above the confidence threshold become boxes (centre/size in input pixels ->
corners); class-aware greedy NMS keeps at most ``max_detections`` per image; the letterbox
is undone with the geometry of each image's original size, and the box is normalised by
that size. Each sample's response is k x 7 float32
``[qsl_idx, ymin, xmin, ymax, xmax, score, coco_category_id]``, the layout the reference
YOLO harness sends and its accuracy script (and ``dataset.coco_eval``) reads.

Pure numpy and OpenCV over the dataset's letterbox geometry, so the runtime's completion
path (``sut.detection``) and the detector's training evaluation run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dataset.preprocess import letterbox_geometry

FIELDS = 7  # floats per detection
_FIRST_PASS = 4  # x max_detections: the candidates NMS looks at first (DetectionPost._one)
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
    """Greedy NMS (OpenCV's, in C++) over boxes (x1, y1, x2, y2): indices of the kept ones, best first."""
    b = boxes.astype(np.float64)
    xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
    # Candidates already score above the confidence threshold (>= 0), so OpenCV's "> 0" drops none.
    kept = cv2.dnn.NMSBoxes(xywh, scores.astype(np.float32), 0.0, iou_threshold, 1.0, max_keep)
    return np.asarray(kept, dtype=np.int64).reshape(-1)


class DetectionPost:
    """Turns a batch of raw heads into one float32 detection array per sample."""

    def __init__(self, settings: DetectionSettings, letterboxes: Letterboxes) -> None:
        self.settings = settings
        self.boxes = letterboxes
        self._category = np.asarray(settings.category_ids, dtype=np.float32)

    def __call__(self, heads: np.ndarray, indices: np.ndarray) -> list[np.ndarray]:
        """``heads`` [n, 4+C, anchors] (float) of the QSL samples ``indices`` -> n arrays [k, 7] float32."""
        scores = heads[:, 4:, :]
        # max over the class axis is vectorised; numpy's argmax over a non-last axis is ~5x slower,
        # so the class is taken later, for the few candidates only.
        best = scores.max(axis=1)  # [n, anchors]
        return [self._one(heads[i], best[i], scores[i], int(indices[i])) for i in range(len(indices))]

    def _one(self, head: np.ndarray, best: np.ndarray, scores: np.ndarray, index: int) -> np.ndarray:
        s = self.settings
        cand = np.flatnonzero(best > s.conf_threshold)
        if not len(cand):
            return np.empty((0, FIELDS), dtype=np.float32)
        first = min(len(cand), _FIRST_PASS * s.max_detections)
        # Greedy NMS stops at max_detections boxes, so only the best candidates can matter: a first
        # pass over the best _FIRST_PASS x max_detections, and a pass over all of them only if it
        # kept fewer (a later box might then be kept). Same result; the sort and box arithmetic run
        # on the few, not on every anchor (argpartition picks the few without sorting the rest).
        pools = [cand]
        if first < len(cand):
            pools.insert(0, cand[np.argpartition(-best[cand], first - 1)[:first]])
        for pool in pools:
            top = pool[np.argsort(-best[pool], kind="stable")]
            cls = scores[:, top].argmax(axis=0)
            cx, cy, w, h = head[0, top], head[1, top], head[2, top] / 2, head[3, top] / 2
            xyxy = np.stack([cx - w, cy - h, cx + w, cy + h], axis=1)
            shifted = xyxy + (cls * (_CLASS_OFFSET * s.input_size)).astype(np.float32)[:, None]
            keep = nms(shifted, best[top], s.iou_threshold, s.max_detections)
            if len(keep) == s.max_detections:
                break
        lb = self.boxes
        size = np.array([lb.width[index], lb.height[index]] * 2, dtype=np.float32)
        pad = np.array([lb.pad_x[index], lb.pad_y[index]] * 2, dtype=np.float32)
        x1, y1, x2, y2 = (np.clip((xyxy[keep] - pad) / lb.scale[index], 0, size) / size).T
        out = np.empty((len(keep), FIELDS), dtype=np.float32)
        out[:, 0] = index
        out[:, 1], out[:, 2], out[:, 3], out[:, 4] = y1, x1, y2, x2
        out[:, 5] = best[top[keep]]
        out[:, 6] = self._category[cls[keep]]
        return out
