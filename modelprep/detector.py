"""Detectors: recognising a YOLO-style ONNX, its card, and the served graph around it.

A YOLO-style detector (the Ultralytics YOLOv8/YOLO11 export format) has one square RGB
image input (float 0..1, letterboxed) and one float output ``[N, 4 + classes, anchors]``:
per anchor the box centre x, y, width, height in input pixels, then one score in 0..1 per
class. The served graph takes the cache's uint8 pixels and folds the /255 (the card's
mean/std) into the model; its output is the raw head, decoded and NMS'd by
``sut.detection`` on the completion path (card ``nms: postprocess``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openvino as ov

from common.errors import ModelError
from modelprep.graph import fold_pixel_input, inspect_classifier

@dataclass(frozen=True)
class DetectorPorts:
    """What a YOLO-style detector looks like: its image input and its box/score output."""

    input_layout: str
    input_size: int
    num_classes: int
    anchors: int
    output_index: int


def _dims(port: Any) -> list[int]:
    pshape = port.get_partial_shape()
    return [] if pshape.rank.is_dynamic else [d.get_length() if d.is_static else -1 for d in pshape]


def output_shapes(model: ov.Model) -> str:
    """The model's output shapes, for error messages (``[1,84,8400]``, ``?`` for dynamic)."""
    shapes = []
    for out in model.outputs:
        dims = _dims(out)
        shapes.append("[" + ",".join("?" if d < 0 else str(d) for d in dims) + "]" if dims else "[dynamic rank]")
    return ", ".join(shapes)


def yolo_output_index(model: ov.Model) -> int | None:
    """The index of a float ``[N, 4 + classes, anchors]`` output (anchors > 4 + classes), if any."""
    for index, out in enumerate(model.outputs):
        dims = _dims(out)
        if out.get_element_type().is_real() and len(dims) == 3 and dims[1] > 4 and dims[2] > dims[1]:
            return index
    return None


def inspect_detector(model: ov.Model, origin: str) -> DetectorPorts:
    """Find the square 3-channel image input and the YOLO-style output; refuse anything else,
    naming the output shapes (a classifier's ``[N, classes]`` says so)."""
    if len(model.inputs) != 1:
        raise ModelError(f"{origin}: not a YOLO-style detector: {len(model.inputs)} inputs, expected 1")
    dims = _dims(model.inputs[0])
    if len(dims) != 4 or 3 not in (dims[1], dims[3]):
        raise ModelError(f"{origin}: not a YOLO-style detector: input shape {dims}, expected [N,3,S,S]")
    layout, hw = ("NCHW", dims[2:]) if dims[1] == 3 else ("NHWC", dims[1:3])
    if hw[0] != hw[1] or hw[0] < 32:
        raise ModelError(f"{origin}: input shape {dims} is not a fixed square image size")
    index = yolo_output_index(model)
    if index is None:
        raise ModelError(f"{origin}: not a YOLO-style detector: outputs {output_shapes(model)}, expected "
                         "[N, 4+classes, anchors] (a classifier's [N, classes] needs --task classification)")
    out = _dims(model.outputs[index])
    return DetectorPorts(layout, hw[0], out[1] - 4, out[2], index)


def build_served_detector(model: ov.Model, ports: DetectorPorts, layout: str,
                          mean: tuple[float, ...], std: tuple[float, ...]) -> ov.Model:
    """Return a new model: uint8 input in ``layout`` -> float detector -> its raw
    ``[N, 4+classes, anchors]`` head (the only output)."""
    result = model.get_results()[ports.output_index]
    served = ov.Model([result], model.get_parameters(), model.friendly_name)
    return fold_pixel_input(served, layout, ports.input_layout, mean, std)


def decode_subgraph(model: ov.Model) -> list[str]:
    """The names of the ops that decode the head: everything between the output and the head's
    last convolutions (those with more than one output channel; a one-channel convolution is the
    DFL expectation, part of the decoding). INT8 keeps them in float: quantizing the decoded pixel
    coordinates to 8 bits costs mAP (the det-demo branch measured -1.6 points on the demo detector
    by default, -0.7 with this subgraph in float), and they are a small share of the compute."""
    names: list[str] = []
    seen: set[str] = set()
    stack = [result.input_value(0).get_node() for result in model.get_results()]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in seen or node.get_type_name() in ("Constant", "Parameter"):
            continue
        seen.add(name)
        if node.get_type_name() in ("Convolution", "GroupConvolution"):
            channels = node.get_output_partial_shape(0)[1]
            if channels.is_dynamic or channels.get_length() > 1:
                continue  # a head convolution: the boundary, quantized as usual
        names.append(name)
        stack += [node.input_value(i).get_node() for i in range(node.get_input_size())]
    return names


def describe_detector(card: Any) -> str:
    """One line: how images become this detector's input and what the post-processor does."""
    return (f"{card.name}: {card.convention}: letterbox to {card.input_size} (pad {card.letterbox_pad}, RGB), "
            f"mean {list(card.mean)} std {list(card.std)} (0..255 units), {card.num_classes} classes -> COCO ids, "
            f"NMS in {card.nms} (conf {card.conf_threshold}, IoU {card.iou_threshold}, "
            f"max {card.max_detections} per image)")


def inspect_for_task(model: ov.Model, task: str, origin: str) -> Any:
    """The ports of ``model`` for ``task``; a detector given to the classification task (and the
    reverse) is refused, naming its output shapes."""
    if task == "detection":
        return inspect_detector(model, origin)
    if yolo_output_index(model) is not None:
        raise ModelError(f"{origin}: a detector (outputs {output_shapes(model)} = [N, 4+classes, anchors]) given "
                         "to the classification task; prepare it with --task detection")
    return inspect_classifier(model, origin)
