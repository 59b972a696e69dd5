"""COCO mAP of 7-float detections, equal in logic to the reference ``accuracy-coco.py``.

Each sample's detections are k x 7 float32 ``[qsl_idx, ymin, xmin, ymax, xmax, score,
category_id]`` with the box normalised by the original image size
(``dataset.detection_post``). As the reference does: y is scaled by the annotation file's
height and x by its width; the box becomes ``[x, y, w, h]``; the category id is used as is;
pycocotools ``COCOeval(iouType='bbox')`` runs over the images that were scored (with or
without detections). The accuracy log's reader (``records.detection``) and the detector's
training evaluation both score here.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import HarnessError
from dataset.coco import CocoSet


@dataclass(frozen=True)
class DetectionAccuracy:
    """COCO bbox mAP (IoU 0.50:0.95) as the reference accuracy script reports it."""

    map: float  # COCOeval stats[0], 0..1
    images: int
    detections: int
    no_results: int
    summary: str = ""  # COCOeval.summarize()'s twelve lines

    @property
    def percent(self) -> float:
        """mAP in percent."""
        return 100.0 * self.map

    def line(self) -> str:
        """The reference result line the submission checker parses."""
        return f"mAP={self.percent:.3f}%"


def coco_detections(detections: dict[int, np.ndarray], coco: CocoSet, origin: str) -> tuple[list[dict], set[int]]:
    """pycocotools result records (boxes in original pixels) and the image ids they cover."""
    bad = [idx for idx in detections if not 0 <= idx < len(coco)]
    if bad:
        raise HarnessError(f"{origin}: qsl_idx {min(bad)} is not an image of {coco.annotation_file} "
                           f"(0..{len(coco) - 1}; log and annotation file of different datasets?)")
    results: list[dict[str, Any]] = []
    image_ids: set[int] = set()
    for idx, dets in detections.items():
        image_id = int(coco.image_ids[idx])
        image_ids.add(image_id)
        height, width = coco.sizes[idx]
        for _, ymin, xmin, ymax, xmax, score, label in dets:
            ymin, ymax, xmin, xmax = ymin * height, ymax * height, xmin * width, xmax * width
            results.append({"image_id": image_id, "category_id": int(label),
                            "bbox": [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)],
                            "score": float(score)})
    return results, image_ids


def evaluate_bbox(coco: CocoSet, results: list[dict], image_ids: set[int]) -> tuple[float, str]:
    """pycocotools COCOeval(iouType='bbox') over ``image_ids``: (stats[0], the summary text)."""
    from pycocotools.cocoeval import COCOeval

    if not results:  # loadRes refuses an empty list; no detection anywhere is an mAP of 0
        return 0.0, ""
    gt = coco.coco()
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
    with contextlib.redirect_stdout(summary := io.StringIO()):
        ev.summarize()
    return float(ev.stats[0]), summary.getvalue()


def coco_map(detections: dict[int, np.ndarray], coco: CocoSet, origin: str = "accuracy log") -> DetectionAccuracy:
    """The reference's mAP over the logged samples."""
    results, image_ids = coco_detections(detections, coco, origin)
    value, summary = evaluate_bbox(coco, results, image_ids)
    no_results = sum(1 for dets in detections.values() if not len(dets))
    return DetectionAccuracy(value, len(image_ids), len(results), no_results, summary)
