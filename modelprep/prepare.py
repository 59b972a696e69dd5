"""Model preparation: ONNX or IR -> served FP32 / INT8 IR plus its model card.

The source model's own metadata decides its preprocessing; the user never
repeats it. ``modelprep.resolve.resolve_card`` merges the command line, the
model's ``mlperf_cpu.card`` metadata and the class-count conventions into the
card, once, in that order of precedence; anything it cannot tell is refused
rather than guessed. A detector (``task="detection"``) is recognised by
``modelprep.detector``.

Prepared models are cached by source hash and settings; each is written to a
temporary directory and renamed into place, so a failure leaves nothing that
looks prepared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from common.cpuflags import cpu_flags
from common.errors import ConfigError
from common.files import sha256_files
from common.names import check_name
from common.suggest import check_known
from dataset.cache import build_cache
from modelprep.agreement import CheckSet, compare, held_out_samples
from modelprep.card import CARD_FILE, INFERENCE_PRECISIONS, MODEL_FILE, PRECISIONS, TASKS, ModelCard
from modelprep.detector import build_served_detector, decode_subgraph, describe_detector, inspect_for_task
from modelprep.graph import ClassifierPorts, attach_top1, build_scores_model, build_served_model
from modelprep.quantize import (CalibrationConfig, float_layers, load_calibration_samples, quantize_int8,
                                quantize_int8_accuracy_controlled, resolve_overflow_fix)
from modelprep.resolve import CARD_OPTION_FIELDS, resolve_card
from modelprep.source import read_source, source_files

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PrepareRequest:
    """What to prepare: a source model, a target precision and where things go.

    ``precision`` is what the served model computes in: ``f32`` (real FP32 execution),
    ``bf16`` (the FP32 IR executed in BF16) or ``int8`` (quantized; the layers NNCF
    leaves in float run in ``int8_rest``, f32 or bf16).
    """

    source: Path
    precision: str
    out_root: Path
    cache_dir: Path
    layout: str = "NCHW"
    calibration: CalibrationConfig | None = None
    int8_rest: str = "f32"
    check: CheckSet | None = None
    card_overrides: dict[str, Any] = field(default_factory=dict)  # CARD_OPTION_FIELDS given by the user
    task: str = "classification"  # or "detection" (modelprep.detector)
    max_accuracy_drop: float | None = None  # top-1 points on the held-out check set; None: plain PTQ

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"--task: expected one of {TASKS}, got {self.task!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if self.precision == "int8" and self.calibration is None:
            raise ConfigError("--precision int8 needs a calibration list (--calib-list) and image dir")
        if self.int8_rest not in INFERENCE_PRECISIONS:
            raise ConfigError(f"--int8-rest: expected one of {INFERENCE_PRECISIONS}, got {self.int8_rest!r}")
        if self.max_accuracy_drop is not None and (self.precision != "int8" or self.check is None
                                                   or not self.max_accuracy_drop >= 0):
            raise ConfigError("--max-accuracy-drop: needs --precision int8, held-out images (--check-dataset) and "
                              f"a drop >= 0 in top-1 points, got {self.max_accuracy_drop}")
        if self.max_accuracy_drop is not None and self.task != "classification":
            raise ConfigError("--max-accuracy-drop: measures top-1, so it applies to classifiers only "
                              f"(--task {self.task})")
        check_known(self.card_overrides, CARD_OPTION_FIELDS, "card overrides", "field")
        if "name" in self.card_overrides:
            check_name(self.card_overrides["name"], "--name")

    @property
    def inference_precision(self) -> str:
        """``INFERENCE_PRECISION_HINT`` the served model must be compiled with."""
        return {"f32": "f32", "bf16": "bf16", "int8": self.int8_rest}[self.precision]


def describe_preprocessing(card: ModelCard) -> str:
    """One line saying how images will be turned into this model's input, and where that came from."""
    return (f"{card.name}: {card.convention}: resize short side to int({card.input_size}/{card.crop_pct:g}) "
            f"({card.interpolation}), centre crop {card.input_size}, mean {list(card.mean)} std {list(card.std)} "
            f"(0..255 units), {card.num_classes} classes, label offset {card.label_offset:+d}")


def _settings_hash(req: PrepareRequest, source_sha: str, overflow_fix: str | None) -> str:
    cal = req.calibration
    blob = {"source": source_sha, "precision": req.precision, "layout": req.layout, "v": 2,
            "inference_precision": req.inference_precision,
            # The val_map by content: the same path with other images or labels must not hit the cache.
            "check": None if req.check is None else [sha256_files([req.check.val_map]), req.check.count],
            "card": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(req.card_overrides.items())},
            "calibration": None if cal is None else {
                "list": sha256_files([cal.list_file]), "subset": cal.subset_size,
                "preset": cal.preset, "fbc": cal.fast_bias_correction,
                "overflow_fix": overflow_fix}}
    if req.task != "classification":  # a classifier's key does not name its task
        blob["task"] = req.task
        blob["detector_v"] = 2  # 2: INT8 keeps the box decoding in float
    if req.max_accuracy_drop is not None:
        blob["max_accuracy_drop"] = req.max_accuracy_drop
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:10]


def prepare(req: PrepareRequest) -> Path:
    """Prepare ``req.source`` and return the model directory (``model.xml`` + ``card.json``)."""
    files = source_files(req.source)
    source_sha = sha256_files(files)
    model = read_source(req.source)
    ports = inspect_for_task(model, req.task, str(req.source))
    card = resolve_card(model, ports, Path(req.source), req.task, req.card_overrides,
                        {"layout": req.layout, "precision": req.precision,
                         "inference_precision": req.inference_precision,
                         "source": str(Path(req.source).name), "source_sha256": source_sha})
    log.info("preprocessing: %s", describe_detector(card) if card.is_detector else describe_preprocessing(card))
    # Resolved once: the folder's name and the quantization must agree on it.
    overflow_fix = None if req.calibration is None else resolve_overflow_fix(req.calibration.overflow_fix, cpu_flags())
    out_dir = Path(req.out_root) / f"{card.label}-{_settings_hash(req, source_sha, overflow_fix)}"
    if (out_dir / CARD_FILE).is_file() and (out_dir / MODEL_FILE).is_file():
        log.info("prepared model cache hit: %s", out_dir)
        return out_dir
    if card.is_detector:
        served = build_served_detector(model, ports, req.layout, card.mean, card.std)
    else:
        served = build_served_model(model, ports, req.layout, card.mean, card.std, card.label_offset)
    if req.precision == "int8":
        assert req.calibration is not None and overflow_fix is not None
        calib = load_calibration_samples(req.calibration, card.preprocess, req.cache_dir)
        fp32 = served
        if req.max_accuracy_drop is None:
            keep_float = decode_subgraph(served) if card.is_detector else []
            served = quantize_int8(served, calib, req.calibration, overflow_fix, keep_float)
            tool: dict[str, Any] = {"tool": "nncf.quantize"}
            if keep_float:
                tool["kept_in_float"] = f"box decoding ({len(keep_float)} ops)"
        else:
            served, tool = _quantize_accuracy_controlled(ports, card, req, calib, overflow_fix)
        card = ModelCard(**{**asdict(card), "calibration": {
            "list": str(req.calibration.list_file), "list_sha256": sha256_files([req.calibration.list_file]),
            "images": len(calib), "subset_size": min(req.calibration.subset_size or len(calib), len(calib)),
            "preset": req.calibration.preset, "overflow_fix": overflow_fix,
            "bias_correction": "fast" if req.calibration.fast_bias_correction else "full", **tool}})
        if req.check is not None and not card.is_detector:  # the check compares top-1 labels
            check = compare(fp32, served, req.check, card.preprocess, card.num_classes, req.cache_dir,
                            req.calibration.list_file, card.inference_precision)
            check["top1_drop_points"] = round(check["fp32_top1_percent"] - check["int8_top1_percent"], 3)
            if req.max_accuracy_drop is not None and check["top1_drop_points"] > req.max_accuracy_drop:
                log.warning("held-out top-1 drop %.3f points is above --max-accuracy-drop %g even with the "
                            "float layers listed in the card", check["top1_drop_points"], req.max_accuracy_drop)
            card = ModelCard(**{**asdict(card), "accuracy_check": check})
    served.set_rt_info(card.to_json(), ["mlperf_cpu", "card"])
    _write_atomically(served, card, out_dir)
    return out_dir


def _quantize_accuracy_controlled(ports: ClassifierPorts, card: ModelCard, req: PrepareRequest,
                                  calib: Any, overflow_fix: str) -> tuple[ov.Model, dict[str, Any]]:
    """INT8 with layers left in float until the held-out top-1 drop is <= ``req.max_accuracy_drop`` points.

    The held-out images are the check set minus the calibration list, so the layers are chosen on
    images calibration never saw; the check that follows measures the drop on the same images.
    """
    assert req.check is not None and req.calibration is not None and req.max_accuracy_drop is not None
    samples = held_out_samples(req.check, card.num_classes, req.calibration.list_file)
    if not samples:
        raise ConfigError(f"--max-accuracy-drop: no held-out images in {req.check.val_map} "
                          f"outside the calibration list {req.calibration.list_file}")
    held_out = np.asarray(build_cache(req.check.image_dir, samples, card.preprocess, req.cache_dir).open())
    labels = np.array([s.label for s in samples])
    # A fresh copy: building the served FP32 graph has already rewired ``model``'s input.
    scores = build_scores_model(read_source(req.source), ports, req.layout, card.mean, card.std)
    quantized = quantize_int8_accuracy_controlled(scores, calib, req.calibration, overflow_fix, held_out, labels,
                                                  card.label_offset, req.max_accuracy_drop)
    left, total = float_layers(quantized)
    log.info("accuracy control left %d of %d compute layers in float: %s", len(left), total, ", ".join(left) or "-")
    return attach_top1(quantized, card.label_offset), {
        "tool": "nncf.quantize_with_accuracy_control", "max_accuracy_drop_points": req.max_accuracy_drop,
        "validation_images": len(samples), "float_layers": left, "compute_layers": total}


def _write_atomically(model: ov.Model, card: ModelCard, out_dir: Path) -> None:
    """Save IR + card into a temporary sibling and rename it to ``out_dir``."""
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"{tmp.parent}: cannot create model directory ({exc.strerror})") from None
    try:
        # f32 weights stay f32: FP16 compression would change the FP32 model's accuracy.
        ov.save_model(model, str(tmp / MODEL_FILE), compress_to_fp16=False)
        card.save(tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("prepared %s", out_dir)
