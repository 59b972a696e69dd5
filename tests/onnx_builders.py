"""Tiny real ONNX classifiers for tests (built with the onnx package, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_classifier(path: Path, input_size: int = 32, num_classes: int = 10,
                    metadata: dict | None = None, seed: int = 0, rank: int = 4,
                    extra_argmax: bool = False, input_name: str = "input") -> Path:
    """Conv(3->8, 3x3, stride 2) -> ReLU -> global average pool -> Gemm -> scores.

    ``extra_argmax`` adds an int64 ArgMax output first, like MLCommons' resnet50_v1.onnx.
    ``rank`` other than 4 makes an input that is not an image (for error tests).
    """
    rng = np.random.default_rng(seed)
    shape = ["N", 3, input_size, input_size] if rank == 4 else ["N", 3 * input_size]
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", num_classes])
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.05, (8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros(8, np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.5, (num_classes, 8)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.1, num_classes).astype(np.float32), "b2"),
        numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat_shape"),
    ]
    if rank == 4:
        nodes = [
            helper.make_node("Conv", [input_name, "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("GlobalAveragePool", ["r1"], ["gap"]),
            helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w2", "b2"], ["scores"], transB=1),
        ]
    else:
        inits[2] = numpy_helper.from_array(rng.normal(0, 0.5, (num_classes, 3 * input_size)).astype(np.float32), "w2")
        nodes = [helper.make_node("Gemm", [input_name, "w2", "b2"], ["scores"], transB=1)]
    outputs = [scores]
    if extra_argmax:
        nodes.append(helper.make_node("ArgMax", ["scores"], ["argmax"], axis=1, keepdims=0))
        outputs = [helper.make_tensor_value_info("argmax", TensorProto.INT64, ["N"]), scores]
    graph = helper.make_graph(nodes, "tiny", [x], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata is not None:
        model.metadata_props.add(key="mlperf_cpu.card", value=json.dumps(metadata))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
