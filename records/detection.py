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

from pathlib import Path

import numpy as np

from common.errors import HarnessError
from dataset.coco_eval import DetectionAccuracy, coco_detections, coco_map, evaluate_bbox
from records.accuracy import load_accuracy_records

__all__ = ["DetectionAccuracy", "coco_detections", "coco_map", "evaluate_bbox", "read_detection_log",
           "write_map_txt"]

FIELDS = 7
ROW_BYTES = FIELDS * 4


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


def write_map_txt(result: DetectionAccuracy, path: Path) -> None:
    """accuracy.txt in the reference script's form: COCOeval's summary, then ``mAP=...%``."""
    Path(path).write_text(f"{result.summary}{result.line()}\nfound {result.detections} results\n"
                          f"found {result.images} images\nfound {result.no_results} images with no results\n")
