"""COCO mAP from ``mlperf_log_accuracy.json``, equal in logic to the reference ``accuracy-coco.py``.

Each response is k x 7 float32 ``[qsl_idx, ymin, xmin, ymax, xmax, score, category_id]`` with
the box normalised by the original image size (``sut.detection``). As the reference does:
a sample logged twice counts once (its first record); y is scaled by the annotation file's
height and x by its width; the box becomes ``[x, y, w, h]``; the category id is used as is;
pycocotools ``COCOeval(iouType='bbox')`` runs over the images that were logged (with or
without detections); the result line is ``mAP=<percent with 3 decimals>%``, which is what
the submission checker's ``mAP`` pattern reads.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import HarnessError
from dataset.coco import CocoSet
from records.accuracy import load_accuracy_records

FIELDS = 7
ROW_BYTES = FIELDS * 4


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


def read_detection_log(path: Path) -> dict[int, np.ndarray]:
    """qsl_idx -> [k, 7] float32 detections, first record of each sample (the reference de-dupes so)."""
    path = Path(path)
    out: dict[int, np.ndarray] = {}
    for position, rec in enumerate(load_accuracy_records(path)):
        try:
            idx = int(rec["qsl_idx"])
            data = bytes.fromhex(str(rec["data"]))
        except (TypeError, ValueError, KeyError):
            raise HarnessError(f"{path}: record {position} is not {{'qsl_idx', 'data' (hex)}}") from None
        if idx in out:
            continue
        if len(data) % ROW_BYTES:
            raise HarnessError(f"{path}: sample {idx} has a {len(data)}-byte response, not k x 7 float32")
        dets = np.frombuffer(data, dtype=np.float32).reshape(-1, FIELDS)
        if len(dets) and (dets[:, 0] != idx).any():
            raise HarnessError(f"{path}: sample {idx}: the response's own qsl_idx disagrees with LoadGen's")
        out[idx] = dets
    return out


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


def write_map_txt(result: DetectionAccuracy, path: Path) -> None:
    """accuracy.txt in the reference script's form: COCOeval's summary, then ``mAP=...%``."""
    Path(path).write_text(f"{result.summary}{result.line()}\nfound {result.detections} results\n"
                          f"found {result.images} images\nfound {result.no_results} images with no results\n")
