"""One resolution of a source model's card: every source of a field, merged once, in one order.

Precedence, highest first:

1. the ``prepare`` command line (``--name``, ``--mean``, ``--std``, ``--crop-pct``,
   ``--interpolation``, ``--label-offset``; a detector takes ``--name`` only);
2. the model's embedded ``mlperf_cpu.card`` metadata (ONNX ``metadata_props`` or IR rt_info),
   which is where timm's pretrained config of a trained tag (``modelprep.weights``) and a
   built-in architecture's registry defaults (``models.export``) are written at export time;
3. the conventions of ``dataset.constants`` chosen from the graph itself: 1001 classes = the
   MLCommons ResNet50 (mean subtraction, label offset -1), 1000 = torchvision mean/std, an
   80-class YOLO-style detector = Ultralytics COCO (0..1 input, letterbox 114, the 80 -> 91 ids);
   the reference crop and the file name as the model name fill what nothing else states.

The graph's own input size and class count are facts, not defaults: metadata that contradicts
them is refused. Then the prepare settings (layout, precision, source hash) are added and the
card is validated once (``card_from_dict``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openvino as ov

from common.errors import ModelError
from common.model_metadata import CARD_METADATA_KEY
from common.names import check_name
from common.suggest import check_known
from dataset.constants import (COCO80_CATEGORY_IDS, LETTERBOX_PAD, MLPERF_RESNET50_MEAN, MLPERF_RESNET50_STD,
                               REFERENCE_CROP_PCT, TORCHVISION_MEAN, TORCHVISION_STD, YOLO_MEAN, YOLO_STD)
from modelprep.card import ModelCard, card_from_dict
from modelprep.detector import output_shapes
from modelprep.source import embedded_card

# Card fields a classifier's metadata may state.
CARD_SOURCE_FIELDS = ("name", "input_size", "crop_pct", "interpolation", "mean", "std",
                      "num_classes", "label_offset", "trained", "notes", "layout", "macs", "params", "weights")
# The subset ``prepare`` takes as options, overriding the model's metadata.
CARD_OPTION_FIELDS = ("name", "mean", "std", "crop_pct", "interpolation", "label_offset")
# The fields a detector's metadata may carry (models/export for detectors).
DETECTOR_SOURCE_FIELDS = ("name", "task", "input_size", "num_classes", "category_ids", "mean", "std",
                          "letterbox_pad", "trained", "macs", "params", "notes")
DETECTOR_OPTION_FIELDS = ("name",)  # what prepare's command line may override for a detector


def resolve_card(model: ov.Model, ports: Any, source: Path, task: str = "classification",
                 overrides: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> ModelCard:
    """The card of source model ``model`` (already inspected into ``ports`` for ``task``).

    ``overrides`` are the command-line card fields; ``settings`` are what prepare decides
    (layout, precision, inference_precision, source, source_sha256). Precedence: command line >
    embedded metadata (timm pretrained config / registry defaults, written at export) >
    ``dataset.constants`` conventions; see the module docstring.
    """
    fields = card_fields_for(model, ports, Path(source), overrides, task)
    return card_from_dict({**fields, **(settings or {})}, f"{source} metadata")


def card_fields_for(model: ov.Model, ports: Any, source: Path, overrides: dict[str, Any] | None = None,
                    task: str = "classification") -> dict[str, Any]:
    """The card fields of ``model`` before prepare's settings: metadata, conventions, then ``overrides``."""
    meta = embedded_card(model, str(source))
    if task == "detection":
        return _detector_fields(meta, model, ports, Path(source), dict(overrides or {}))
    return _classifier_fields(meta, ports, Path(source), dict(overrides or {}))


def _classifier_fields(meta: dict[str, Any] | None, ports: Any, source: Path,
                       overrides: dict[str, Any]) -> dict[str, Any]:
    """A classifier's fields: its metadata, else its class count's convention; then ``overrides``."""
    if meta is not None:
        check_known(meta, CARD_SOURCE_FIELDS, f"{source}: {CARD_METADATA_KEY} metadata", "field", ModelError)
        fields = {"crop_pct": REFERENCE_CROP_PCT, "interpolation": "area", "label_offset": 0,
                  "convention": "metadata", **meta}
        fields.pop("layout", None)
        for key in ("mean", "std"):
            if key not in fields and key not in overrides:
                raise ModelError(f"{source}: {CARD_METADATA_KEY} metadata gives no {key} (0..255 pixel units); "
                                 f"add it, or pass --{key}")
    elif ports.num_classes == 1001:
        fields = {"mean": MLPERF_RESNET50_MEAN, "std": MLPERF_RESNET50_STD,
                  "label_offset": -1, "convention": "mlcommons-1001"}
    elif ports.num_classes == 1000:
        fields = {"mean": TORCHVISION_MEAN, "std": TORCHVISION_STD,
                  "label_offset": 0, "convention": "torchvision-1000"}
    elif {"mean", "std"} <= set(overrides):
        fields = {"label_offset": 0, "convention": "command-line"}
    else:
        raise ModelError(
            f"{source}: {ports.num_classes}-class model without '{CARD_METADATA_KEY}' metadata: "
            "cannot tell its preprocessing (1001 = MLCommons, 1000 = torchvision); pass --mean and --std")
    if "name" not in fields and "name" not in overrides:
        fields["name"] = check_name(source.stem, f"{source}: file name as the model name (pass --name)")
    fields.setdefault("input_size", ports.input_size)
    if fields["input_size"] != ports.input_size:
        raise ModelError(f"{source}: metadata input_size {fields['input_size']} but the input is "
                         f"{ports.input_size}x{ports.input_size}")
    if fields.setdefault("num_classes", ports.num_classes) != ports.num_classes:
        raise ModelError(f"{source}: metadata num_classes {fields['num_classes']} but the output has "
                         f"{ports.num_classes}")
    if ports.num_classes == 1001 and meta is None:
        fields["num_classes"] = 1000  # labels after the -1 offset
    if overrides:
        fields.update(overrides)
        fields["convention"] = f"{fields['convention']} + command line ({', '.join(sorted(overrides))})"
    return fields


def _detector_fields(meta: dict[str, Any] | None, model: ov.Model, ports: Any, source: Path,
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """A detector's fields: its metadata, else (no metadata) the Ultralytics COCO convention for an
    80-class model (RGB 0..1, letterbox 114, 80 -> 91 ids); then ``overrides`` (the name only)."""
    if meta is not None:
        check_known(meta, DETECTOR_SOURCE_FIELDS, f"{source}: {CARD_METADATA_KEY} metadata of a detector", "field",
                    ModelError)
        if meta.get("task", "detection") != "detection":
            raise ModelError(f"{source}: {CARD_METADATA_KEY} says task {meta['task']!r}, but its output "
                             f"{output_shapes(model)} is a detector's")
        fields = {"mean": YOLO_MEAN, "std": YOLO_STD, "convention": "metadata", **meta}
    elif ports.num_classes == len(COCO80_CATEGORY_IDS):
        fields = {"mean": YOLO_MEAN, "std": YOLO_STD, "trained": True, "convention": "ultralytics-coco80"}
    else:
        raise ModelError(f"{source}: {ports.num_classes}-class detector without '{CARD_METADATA_KEY}' metadata: "
                         "cannot tell its COCO category ids (80 classes = the COCO 80 -> 91 table)")
    fields["task"] = "detection"
    fields.setdefault("name", source.stem)
    fields.setdefault("letterbox_pad", LETTERBOX_PAD)
    fields.setdefault("input_size", ports.input_size)
    fields.setdefault("num_classes", ports.num_classes)
    if fields["input_size"] != ports.input_size or fields["num_classes"] != ports.num_classes:
        raise ModelError(f"{source}: metadata says {fields['input_size']} px, {fields['num_classes']} classes; "
                         f"the model has {ports.input_size} px, {ports.num_classes} classes")
    if "category_ids" not in fields:
        if ports.num_classes != len(COCO80_CATEGORY_IDS):
            raise ModelError(f"{source}: {CARD_METADATA_KEY} gives no category_ids for {ports.num_classes} classes")
        fields["category_ids"] = COCO80_CATEGORY_IDS
    bad = sorted(set(overrides) - set(DETECTOR_OPTION_FIELDS))
    if bad:
        raise ModelError(f"{source}: a detector's preprocessing is fixed (letterbox, 0..1); cannot override {bad}")
    fields.update(overrides)
    return fields
