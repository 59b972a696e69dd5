"""Exporting torch models to ONNX with their model card in the metadata.

The harness reads the ``mlperf_cpu.card`` metadata entry to learn a model's
preprocessing, so an exported file is self-describing. Built-in architectures
exported here have UNTRAINED weights: their speed is real, their accuracy is not.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from common.model_metadata import CARD_METADATA_KEY
from models._macs import count_macs, count_params
from models._registry import DetectionCard, default_card, get_builder

ONNX_OPSET = 17
# A YOLO ONNX's input and output names, as the Ultralytics exporter writes them.
DETECTOR_IO_NAMES = ("images", "output0")


def export_onnx(model: nn.Module, out: Path, card_data: dict, producer: str,
                names: tuple[str, str] = ("input", "logits")) -> bytes:
    """Export ``model`` (input ``names[0]`` [N,3,S,S] float32, one output ``names[1]``) with
    ``card_data`` as metadata, check it, write it to ``out`` and return the bytes.

    Classifiers use ``input``/``logits``; detectors the YOLO ONNX names ``images``/``output0``.
    """
    import onnx  # only needed for export

    model.eval()
    size = int(card_data["input_size"])
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no onnxscript and
        # gives a compact, BN-folded graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), buf, dynamo=False,
                          input_names=[names[0]], output_names=[names[1]],
                          dynamic_axes={names[0]: {0: "N"}, names[1]: {0: "N"}},
                          opset_version=ONNX_OPSET, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key = CARD_METADATA_KEY
    entry.value = json.dumps(card_data, sort_keys=True)
    proto.producer_name = producer
    onnx.checker.check_model(proto, full_check=True)
    blob = proto.SerializeToString()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    return blob


def file_stem(arch: str) -> str:
    """``arch`` as one valid name (common.names): ``timm/resnet50.tv_in1k`` -> ``timm-resnet50.tv_in1k``,
    and a zoo row's input size ``timm/hgnetv2_b0.ssld_stage2_ft_in1k@288`` -> ``...-288px``."""
    stem, _, size = arch.partition("@")
    return stem.replace("/", "-") + (f"-{size}px" if size else "")


def untrained_card(arch: str, macs: int = 0, params: int = 0) -> dict:
    """Card of built-in architecture ``arch`` with untrained weights (its registered defaults)."""
    defaults = default_card(arch)
    notes = "untrained weights (seeded init): speed is meaningful, accuracy is not"
    return {"name": f"{file_stem(arch)}.untrained", **defaults.to_dict(), "macs": macs, "params": params,
            "trained": False, "notes": f"{notes}; {defaults.notes}" if defaults.notes else notes}


def export_architecture(arch: str, out_dir: Path, seed: int = 0) -> Path:
    """Build registered architecture ``arch`` with seeded untrained weights and export it at
    its registered input size.

    Cached: an existing ``<out_dir>/<arch>.untrained.onnx`` is reused.
    """
    out = Path(out_dir) / f"{file_stem(arch)}.untrained.onnx"
    if out.is_file():
        return out
    defaults = default_card(arch)
    torch.manual_seed(seed)
    model = get_builder(arch)(num_classes=defaults.num_classes)
    model.eval()
    tmp = out.with_suffix(".partial")
    card = untrained_card(arch, count_macs(model, defaults.input_size), count_params(model))
    names = DETECTOR_IO_NAMES if isinstance(defaults, DetectionCard) else ("input", "logits")
    export_onnx(model, tmp, card, f"mlperf_cpu.models.export:{arch}", names)
    tmp.rename(out)
    return out
