"""The detection post-processor on the completion path (the pool's callback thread).

The post-processing itself (decode, class-aware NMS, letterbox undone, the MLCommons
7-float responses) lives in ``dataset.detection_post``, where the detector's training
evaluation uses it too; this module builds it from a prepared model's card.
"""

from __future__ import annotations

import numpy as np

from dataset.detection_post import FIELDS, DetectionPost, DetectionSettings, Letterboxes, nms
from modelprep.card import ModelCard

__all__ = ["FIELDS", "DetectionPost", "DetectionSettings", "Letterboxes", "nms", "post_for"]


def post_for(card: ModelCard, sizes: np.ndarray) -> DetectionPost:
    """The post-processor a detector's card describes, for images of original ``sizes`` [N, (h, w)]."""
    settings = DetectionSettings(card.input_size, card.category_ids, card.conf_threshold,
                                 card.iou_threshold, card.max_detections)
    return DetectionPost(settings, Letterboxes(sizes, card.input_size))
