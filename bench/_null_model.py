"""The null 224x224 classifier: a model that does (almost) nothing, so what a bench measures is the feed.

u8 [N,3,224,224] -> Convert -> ReduceMean over H,W -> MatMul 3x1000 -> TopK, i32 top-1: inference
costs a few microseconds per sample. ``harness_ceiling``, ``feed_loops`` and ``scaling_model``
build it (once per folder) with ``build_null_model``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench._common import REPO
from modelprep.card import MODEL_FILE, ModelCard

# Where harness_ceiling and feed_loops keep it (the same model, built once).
NULL_MODEL = REPO / "work" / "bench-ceiling" / "models" / "null224"
SIZE, CLASSES = 224, 1000


def build_null_model(out_dir: Path = NULL_MODEL) -> Path:
    """``out_dir/model.xml`` + ``card.json``: the null classifier (built with openvino.opset13)."""
    import openvino as ov
    import openvino.opset13 as ops

    if (out_dir / MODEL_FILE).is_file() and (out_dir / "card.json").is_file():
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    image = ops.parameter([-1, 3, SIZE, SIZE], ov.Type.u8, name="input")
    pooled = ops.reduce_mean(ops.convert(image, ov.Type.f32), ops.constant(np.array([2, 3], np.int64)), False)
    weights = np.random.default_rng(0).standard_normal((3, CLASSES)).astype(np.float32)
    logits = ops.matmul(pooled, ops.constant(weights), False, False)
    top = ops.topk(logits, ops.constant(np.int64(1)), 1, "max", "value", ov.Type.i32)
    top1 = ops.squeeze(top.output(1), ops.constant(np.array([1], np.int64)))
    ov.save_model(ov.Model([top1], [image], "null224"), str(out_dir / MODEL_FILE))
    # mean/std in 0..255 units: the card check refuses 0..1-looking values.
    ModelCard(name="null224", input_size=SIZE, num_classes=CLASSES, mean=(128.0,) * 3, std=(64.0,) * 3,
              trained=False, notes="bench/_null_model.py: near-zero compute, measures the feed").save(out_dir)
    return out_dir
