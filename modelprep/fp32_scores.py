"""FP32 class probabilities of a classifier source on the served input path: uint8 crops through
the card's preprocessing, mean/std folded in as ``prepare`` folds them. Labelling held-out crops
with the FP32 model's own top-1 turns a check set without ImageNet labels into an agreement test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov

from dataset.cache import build_cache
from dataset.val_map import Sample
from modelprep.card import card_from_dict
from modelprep.graph import build_scores_model, inspect_classifier
from modelprep.resolve import card_fields_for
from modelprep.source import read_source


def fp32_softmax(source: Path, image_dir: Path, names: list[str], cache: Path, progress: bool = True) -> np.ndarray:
    """Softmax over the FP32 scores of each image ``names`` in ``image_dir``, one row per image in order;
    the preprocessed crops are cached under ``cache``."""
    model = read_source(source)
    ports = inspect_classifier(model, str(source))
    card = card_from_dict({**card_fields_for(model, ports, source), "layout": "NCHW"}, str(source))
    scores = ov.Core().compile_model(build_scores_model(model, ports, "NCHW", card.mean, card.std), "CPU",
                                     {"INFERENCE_PRECISION_HINT": "f32"})
    data = np.asarray(build_cache(image_dir, [Sample(n, 0) for n in names], card.preprocess, cache,
                                  progress=progress).open())
    logits = np.concatenate([scores(data[i:i + 1])[0] for i in range(len(data))]).astype(np.float64)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
