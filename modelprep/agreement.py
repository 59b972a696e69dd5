"""The post-quantization accuracy check: INT8 vs FP32 top-1 on a held-out set.

Both models are the served graphs (uint8 in, int32 label out), run directly on
the same cached samples with real FP32 execution for the reference, so the
figures isolate what quantization changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from dataset.cache import build_cache
from dataset.preprocess import PreprocessSpec
from dataset.val_map import parse_name_list, parse_val_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckSet:
    """Held-out labelled images: a directory, its val_map, and how many to use."""

    image_dir: Path
    val_map: Path
    count: int = 1000


def held_out_samples(check: CheckSet, num_classes: int, exclude_list: Path | None) -> list:
    """The first ``count`` samples of the val_map that the calibration list does not name."""
    excluded = set(parse_name_list(exclude_list)) if exclude_list else set()
    samples = [s for s in parse_val_map(check.val_map, num_classes) if s.name not in excluded]
    return samples[: check.count]


def predict_labels(model: ov.Model, data: np.ndarray, precision: str) -> np.ndarray:
    """The served model's label for each sample of ``data``, compiled with ``precision`` for float layers."""
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    out = np.empty(len(data), dtype=np.int32)
    for i in range(len(data)):
        out[i] = request.infer({0: data[i:i + 1]})[0].reshape(-1)[0]
    return out


def compare(fp32: ov.Model, int8: ov.Model, check: CheckSet, spec: PreprocessSpec, num_classes: int,
            cache_dir: Path, exclude_list: Path | None, int8_precision: str) -> dict[str, Any]:
    """Top-1 of both models and the fraction of samples where they agree."""
    samples = held_out_samples(check, num_classes, exclude_list)
    data = np.asarray(build_cache(check.image_dir, samples, spec, cache_dir).open())
    labels = np.array([s.label for s in samples])
    ref = predict_labels(fp32, data, "f32")
    q = predict_labels(int8, data, int8_precision)
    result = {"samples": len(samples), "val_map": str(check.val_map),
              "fp32_top1_percent": round(100.0 * float((ref == labels).mean()), 3),
              "int8_top1_percent": round(100.0 * float((q == labels).mean()), 3),
              "agreement_percent": round(100.0 * float((ref == q).mean()), 3)}
    log.info("accuracy check on %d held-out samples: FP32 %.3f%%, INT8 %.3f%%, agreement %.3f%%",
             len(samples), result["fp32_top1_percent"], result["int8_top1_percent"],
             result["agreement_percent"])
    return result
