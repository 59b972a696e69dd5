"""Source models: reading an ONNX file or IR (or exporting a built-in architecture) and the card
it carries in its metadata."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import openvino as ov

from common.errors import ConfigError, ModelError
from common.model_metadata import CARD_METADATA_KEY
from common.names import check_name
from modelprep.weights import WeightsChoice

log = logging.getLogger(__name__)


def source_files(source: Path) -> list[Path]:
    """The files that make up a source model (ONNX file, or IR xml + bin)."""
    source = Path(source)
    if not source.is_file():
        raise ModelError(f"{source}: model file not found")
    if source.suffix == ".onnx":
        return [source]
    if source.suffix == ".xml":
        return [source, source.with_suffix(".bin")]
    raise ModelError(f"{source}: expected an .onnx file or an OpenVINO .xml IR")


def resolve_source(spec: str, sources_dir: Path, weights: WeightsChoice | None = None) -> Path:
    """A model file path, or the name of a built-in architecture to export (needs torch).

    Built-in architectures are exported with seeded, UNTRAINED weights: for speed only. With
    ``weights`` (``--weights FILE`` or ``--pretrained``), ``timm/NAME[.tag]`` is exported with those
    trained weights instead (``modelprep.weights``).
    """
    if weights is not None and weights.given:
        from modelprep.weights import export_trained_timm  # noqa: PLC0415 - needs torch

        return export_trained_timm(spec, weights, sources_dir)
    path = Path(spec)
    if path.suffix in (".onnx", ".xml") or path.exists():
        return path
    try:
        from models import is_model
        from models.export import export_architecture
    except ImportError:
        raise ConfigError(f"--model {spec}: no such file, and built-in architectures need the "
                          "'train' extra (torch)") from None
    if not is_model(spec):
        from models import list_models
        raise ConfigError(f"--model {spec}: no such file or built-in architecture "
                          f"(known: {', '.join(list_models())})")
    log.info("exporting built-in architecture %s with UNTRAINED weights (speed only)", spec)
    return export_architecture(spec, sources_dir)


def read_source(source: Path) -> ov.Model:
    """Read an ONNX or IR model with OpenVINO, with a one-line error naming the file."""
    source_files(source)
    try:
        return ov.Core().read_model(str(source))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise ModelError(f"{source}: cannot read model: {first}") from None


def embedded_card(model: ov.Model, origin: str = "model") -> dict[str, Any] | None:
    """The ``mlperf_cpu.card`` metadata a model carries, if any, as a JSON object.

    The metadata comes with the model, so it is checked here, where it enters: anything but a
    JSON object is a ``ModelError``, and so is a ``name`` that is not a safe folder name (it
    becomes the prepared model's and the runs' folder names). ``origin`` (the model file) is named
    in every error.
    """
    for path in (["framework", CARD_METADATA_KEY], ["mlperf_cpu", "card"]):
        if model.has_rt_info(path):
            return parse_card_metadata(model.get_rt_info(path).astype(str), origin)
    return None


def parse_card_metadata(text: str, origin: str) -> dict[str, Any]:
    """Parse the text of a model's ``mlperf_cpu.card`` metadata (see ``embedded_card``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{origin}: {CARD_METADATA_KEY} metadata is not valid JSON ({exc.msg} at "
                         f"line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{origin}: {CARD_METADATA_KEY} metadata is not a JSON object "
                         f"(got a {type(data).__name__})")
    if "name" in data:
        check_name(data["name"], f"{origin}: {CARD_METADATA_KEY} metadata name", ModelError)
    return data
