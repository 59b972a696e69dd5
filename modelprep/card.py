"""The model card: everything downstream needs to know about a served model.

A card is written as ``card.json`` next to each prepared IR (``model.xml``).
The dataset cache, the engine, accuracy and reports read it; no command-line
flag repeats what it says. Field names follow timm's ``PretrainedCfg``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from dataset.constants import CONF_THRESHOLD, IOU_THRESHOLD, LETTERBOX_PAD, MAX_DETECTIONS, REFERENCE_CROP_PCT
from dataset.preprocess import PreprocessSpec
from common.errors import ConfigError
from common.names import check_name
from common.suggest import check_known

CARD_FILE = "card.json"
MODEL_FILE = "model.xml"
PRECISIONS = ("f32", "bf16", "int8")
INFERENCE_PRECISIONS = ("f32", "bf16")
TASKS = ("classification", "detection")
NMS_PLACES = ("postprocess",)  # where box decoding + NMS run (sut.detection); no in-graph NMS yet


@dataclass(frozen=True)
class ModelCard:
    """Describes one prepared model (IR with uint8 input and a top-1 int32 output).

    ``precision`` is what the figures are labelled with (f32, bf16 or int8);
    ``inference_precision`` is the ``INFERENCE_PRECISION_HINT`` the engine compiles
    with: the execution precision of every layer that is not quantized.
    """

    name: str
    input_size: int
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    label_offset: int = 0
    crop_pct: float = REFERENCE_CROP_PCT
    interpolation: str = "area"
    layout: str = "NCHW"
    precision: str = "f32"
    inference_precision: str = "f32"
    trained: bool = True
    macs: int = 0  # multiply-accumulates per image, from the model's definition (0: unknown)
    params: int = 0  # parameter count (0: unknown)
    source: str = ""
    source_sha256: str = ""
    convention: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)
    accuracy_check: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    # Trained timm weights (modelprep.weights): origin (file + sha256, or the timm hub tag) and the
    # tag's published top-1 from the zoo table (None: unknown). Empty for any other model.
    weights: dict[str, Any] = field(default_factory=dict)
    # Detection (task "detection"): a YOLO-style [N, 4+classes, anchors] output, decoded and
    # NMS'd by the post-processor with the MLCommons reference's Ultralytics predict() settings.
    task: str = "classification"
    category_ids: tuple[int, ...] = ()  # class index -> COCO category id (default: the 80 -> 91 table)
    letterbox_pad: int = LETTERBOX_PAD
    conf_threshold: float = CONF_THRESHOLD
    iou_threshold: float = IOU_THRESHOLD
    max_detections: int = MAX_DETECTIONS
    nms: str = "postprocess"

    # Fields that identify the served model: runs packaged together must agree on all of them.
    IDENTITY_FIELDS: ClassVar[tuple[str, ...]] = (
        "source_sha256", "precision", "inference_precision", "name", "source", "calibration", "layout",
        "input_size", "mean", "std", "label_offset", "task", "category_ids")

    def __post_init__(self) -> None:
        check_name(self.name, "card name")  # a folder name: <name>-<precision>[-<hash>]
        if self.precision not in PRECISIONS:
            raise ConfigError(f"card precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if self.inference_precision not in INFERENCE_PRECISIONS:
            raise ConfigError(f"card inference_precision: expected one of {INFERENCE_PRECISIONS}, "
                              f"got {self.inference_precision!r}")
        if self.precision != "int8" and self.inference_precision != self.precision:
            raise ConfigError(f"card: a {self.precision} model cannot run with inference_precision "
                              f"{self.inference_precision}")
        if self.task not in TASKS:
            raise ConfigError(f"card task: expected one of {TASKS}, got {self.task!r}")
        if self.num_classes < (2 if self.task == "classification" else 1):
            raise ConfigError(f"card num_classes: expected >= 2, got {self.num_classes}")
        if self.task == "detection":
            check_detection_fields(self)
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3:
                raise ConfigError(f"card {name}: expected 3 values, got {value!r}")
        if any(s == 0 for s in self.std):
            raise ConfigError(f"card std: zero in {self.std!r}")
        check_pixel_units(self.mean, self.std)
        self.preprocess  # validates the geometry fields

    @property
    def label(self) -> str:
        """The model's folder name in the results tree: ``<name>-<precision>``."""
        return f"{self.name}-{self.precision}"

    @property
    def preprocess(self) -> PreprocessSpec:
        """The geometry the dataset cache must produce for this model."""
        if self.task == "detection":
            return PreprocessSpec(self.input_size, 1.0, "linear", self.layout, "letterbox", self.letterbox_pad)
        return PreprocessSpec(self.input_size, self.crop_pct, self.interpolation, self.layout)

    @property
    def is_detector(self) -> bool:
        """Whether this card describes a detector (responses: detections, metric: mAP)."""
        return self.task == "detection"

    def to_json(self) -> str:
        """Serialise to indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, directory: Path) -> Path:
        """Write ``card.json`` into ``directory`` and return its path."""
        path = Path(directory) / CARD_FILE
        path.write_text(self.to_json())
        return path


def check_pixel_units(mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """Refuse mean/std written in 0..1 units: the served graph subtracts them from 0..255 pixels.

    (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) would be accepted by the graph and score a few
    percent; in pixel units they are (123.675, 116.28, 103.53) / (58.395, 57.12, 57.375).
    """
    if 0 < max(mean) <= 1.0 or max(std) < 1.0:
        raise ConfigError(f"card mean {list(mean)} / std {list(std)}: these look like 0..1 units, but mean and "
                          "std are in 0..255 pixel units (multiply both by 255)")


def check_detection_fields(card: ModelCard) -> None:
    """The detection fields of a detector's card: one COCO category id per class, sane thresholds."""
    if len(card.category_ids) != card.num_classes:
        raise ConfigError(f"card category_ids: {len(card.category_ids)} ids for {card.num_classes} classes")
    if not 0 <= card.conf_threshold < 1 or not 0 < card.iou_threshold <= 1:
        raise ConfigError(f"card conf_threshold {card.conf_threshold} / iou_threshold {card.iou_threshold}: "
                          "expected 0 <= conf < 1 and 0 < iou <= 1")
    if card.max_detections < 1:
        raise ConfigError(f"card max_detections: expected >= 1, got {card.max_detections}")
    if card.nms not in NMS_PLACES:
        raise ConfigError(f"card nms: expected one of {NMS_PLACES}, got {card.nms!r}")


def card_from_dict(data: dict[str, Any], origin: str) -> ModelCard:
    """Build a card from parsed JSON, naming ``origin`` in any error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a JSON object of card fields, got a {type(data).__name__}")
    check_known(data, [f.name for f in fields(ModelCard)], origin, "card field")
    try:
        data = dict(data)
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(float(v) for v in data[key])
        if "category_ids" in data:
            data["category_ids"] = tuple(int(v) for v in data["category_ids"])
        return ModelCard(**data)
    except TypeError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def load_card(model_dir: Path) -> ModelCard:
    """Read the card of a prepared model directory (or of the directory holding ``model.xml``)."""
    model_dir = Path(model_dir)
    if model_dir.is_file():
        model_dir = model_dir.parent
    path = model_dir / CARD_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: model card not found (prepare the model first)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    return card_from_dict(data, str(path))
