"""Turning a float classifier into the served graph.

The served graph takes uint8 images in the card's layout, does the float
conversion, mean/std and layout change inside the model (PrePostProcessor),
and ends in a top-1 TopK whose int32 index already has the card's label
offset applied, so each LoadGen response is one 4-byte label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import PrePostProcessor

from common.errors import ModelError

TOP1_NAME = "top1"


@dataclass(frozen=True)
class ClassifierPorts:
    """What a float classifier looks like: its image input and its class-score output."""

    input_layout: str
    input_size: int
    num_classes: int
    scores_index: int


def inspect_classifier(model: ov.Model, origin: str) -> ClassifierPorts:
    """Find the image input (rank 4, 3 channels, square) and the class-score output.

    The score output is the first floating-point output of shape [N, C] (or
    [N, C, 1, 1]) with C >= 2; integer outputs (an ArgMax the model ships) are ignored.
    """
    if len(model.inputs) != 1:
        raise ModelError(f"{origin}: not an image classifier: {len(model.inputs)} inputs, expected 1")
    pshape = model.inputs[0].get_partial_shape()
    if pshape.rank.is_dynamic or pshape.rank.get_length() != 4:
        raise ModelError(f"{origin}: not an image classifier: input rank {pshape.rank}, expected 4")
    dims = [d.get_length() if d.is_static else -1 for d in pshape]
    if dims[1] == 3:
        layout, hw = "NCHW", dims[2:]
    elif dims[3] == 3:
        layout, hw = "NHWC", dims[1:3]
    else:
        raise ModelError(f"{origin}: input shape {dims} has no 3-channel axis")
    if hw[0] != hw[1] or hw[0] < 8:
        raise ModelError(f"{origin}: input shape {dims} is not a fixed square image size")
    for index, out in enumerate(model.outputs):
        if not out.get_element_type().is_real():
            continue
        oshape = out.get_partial_shape()
        if oshape.rank.is_dynamic:
            continue
        odims = [d.get_length() if d.is_static else -1 for d in oshape]
        if len(odims) == 4 and odims[2:] == [1, 1]:
            odims = odims[:2]
        if len(odims) == 2 and odims[1] >= 2:
            return ClassifierPorts(layout, hw[0], odims[1], index)
    shapes = [str(o.get_partial_shape()) for o in model.outputs]
    raise ModelError(f"{origin}: not a classifier: no float [N, classes] output among {shapes}")


def build_served_model(model: ov.Model, ports: ClassifierPorts, layout: str,
                       mean: tuple[float, ...], std: tuple[float, ...], label_offset: int) -> ov.Model:
    """Return a new model: uint8 input in ``layout`` -> float classifier -> int32 top-1 label."""
    return attach_top1(build_scores_model(model, ports, layout, mean, std), label_offset)


def build_scores_model(model: ov.Model, ports: ClassifierPorts, layout: str,
                       mean: tuple[float, ...], std: tuple[float, ...]) -> ov.Model:
    """Return a new model: uint8 input in ``layout`` -> float [N, C] class scores (the only output).

    Accuracy-controlled quantization ranks layers by how much they change these
    scores, which a top-1 label alone cannot tell.
    """
    # The producer of the score output, not the Result node itself (a Result has no consumers).
    scores = model.get_results()[ports.scores_index].input_value(0)
    if len(scores.get_partial_shape()) == 4:
        scores = ops.squeeze(scores, ops.constant(np.array([2, 3], dtype=np.int64))).output(0)
    scores_model = ov.Model([ops.result(scores)], model.get_parameters(), model.friendly_name)
    return fold_pixel_input(scores_model, layout, ports.input_layout, mean, std)


def fold_pixel_input(model: ov.Model, layout: str, model_layout: str, mean: tuple[float, ...],
                     std: tuple[float, ...]) -> ov.Model:
    """``model`` taking uint8 pixels in ``layout``: the float conversion, mean and std (0..255
    units) and the layout change are folded into the graph (PrePostProcessor)."""
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout(layout))
    ppp.input().model().set_layout(ov.Layout(model_layout))
    steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
    if any(m != 0 for m in mean):
        steps.mean(list(mean))
    if any(s != 1 for s in std):
        steps.scale(list(std))
    return ppp.build()


def attach_top1(scores_model: ov.Model, label_offset: int) -> ov.Model:
    """Replace the [N, C] score output of ``scores_model`` by the int32 top-1 label (plus offset)."""
    topk = ops.topk(scores_model.get_results()[0].input_value(0), ops.constant(np.int64(1)), axis=1, mode="max",
                    sort="none", index_element_type=ov.Type.i32)
    label = topk.output(1)
    if label_offset:
        label = ops.add(label, ops.constant(np.array(label_offset, dtype=np.int32))).output(0)
    result = ops.result(label)
    result.output(0).get_tensor().set_names({TOP1_NAME})
    return ov.Model([result], scores_model.get_parameters(), scores_model.friendly_name)
