"""INT8 post-training quantization with NNCF on a calibration list.

Only images named in the calibration list are used (the MLPerf rule); they are
preprocessed by the same code and cache as the benchmark samples, so
calibration sees exactly the uint8 tensors the served model will see.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov

from dataset.cache import build_cache
from dataset.preprocess import PreprocessSpec
from dataset.val_map import Sample, check_files_exist, parse_name_list
from common.errors import ConfigError

log = logging.getLogger(__name__)

PRESETS = ("performance", "mixed")
OVERFLOW_FIXES = ("auto", "enable", "first_layer", "disable")
# Instruction-set flags (/proc/cpuinfo) of u8 x s8 dot products that accumulate in 32 bits.
_WIDE_INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CalibrationConfig:
    """Where the calibration images are and how to use them."""

    image_dir: Path
    list_file: Path
    subset_size: int | None = None  # None: every image in the list
    preset: str = "performance"
    fast_bias_correction: bool = True
    overflow_fix: str = "auto"  # "auto": decided by the host's INT8 instructions (resolve_overflow_fix)

    def __post_init__(self) -> None:
        if self.overflow_fix not in OVERFLOW_FIXES:
            raise ConfigError(f"calibration overflow fix: expected one of {OVERFLOW_FIXES}, got {self.overflow_fix!r}")
        if self.preset not in PRESETS:
            raise ConfigError(f"calibration preset: expected one of {PRESETS}, got {self.preset!r}")
        if self.subset_size is not None and self.subset_size < 1:
            raise ConfigError(f"calibration subset size: expected >= 1, got {self.subset_size}")


def resolve_overflow_fix(choice: str, flags: frozenset[str]) -> str:
    """``choice`` with "auto" decided: "enable" where the CPU has no VNNI/AMX, else "first_layer".

    Without VNNI/AMX, INT8 convolutions multiply u8 x s8 pairs into 16-bit sums that saturate; NNCF's
    fix quantizes weights to 7 bits so they cannot. NNCF's default applies it to the first layer only,
    which costs trained EfficientNet-Lites several points on AVX2 (docs/models.md#int8-overflow-fix).
    """
    if choice != "auto":
        return choice
    return "first_layer" if any(f in flags for f in _WIDE_INT8_FLAGS) else "enable"


def _advanced_parameters(overflow_fix: str):
    """NNCF's advanced PTQ parameters carrying a resolved (not "auto") overflow fix."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    mode = {"enable": OverflowFix.ENABLE, "first_layer": OverflowFix.FIRST_LAYER,
            "disable": OverflowFix.DISABLE}[overflow_fix]
    return AdvancedQuantizationParameters(overflow_fix=mode)


def load_calibration_samples(cfg: CalibrationConfig, spec: PreprocessSpec,
                             cache_dir: Path) -> np.ndarray:
    """Preprocess (via the cache) every image the list names; missing names are an error."""
    names = parse_name_list(cfg.list_file)
    check_files_exist(cfg.image_dir, names, f"calibration image (listed in {cfg.list_file})")
    samples = [Sample(name, 0) for name in names]
    info = build_cache(cfg.image_dir, samples, spec, cache_dir)
    return np.asarray(info.open())


def quantize_int8(model: ov.Model, calibration: np.ndarray, cfg: CalibrationConfig, overflow_fix: str,
                  keep_float: list[str] | None = None) -> ov.Model:
    """Quantize ``model`` (uint8 input already folded in) to INT8 with NNCF PTQ with the resolved
    ``overflow_fix``; the ops named in ``keep_float`` (a detector's box decoding, modelprep.detector)
    stay in float."""
    import nncf  # heavy import; only preparation needs it

    subset = min(cfg.subset_size or len(calibration), len(calibration))
    preset = nncf.QuantizationPreset.PERFORMANCE if cfg.preset == "performance" else nncf.QuantizationPreset.MIXED
    dataset = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    log.info("NNCF PTQ: %d calibration samples, preset %s, overflow fix %s", subset, cfg.preset, overflow_fix)
    ignored = nncf.IgnoredScope(names=keep_float, validate=False) if keep_float else None
    return nncf.quantize(model, dataset, preset=preset, subset_size=subset,
                         fast_bias_correction=cfg.fast_bias_correction, ignored_scope=ignored,
                         advanced_parameters=_advanced_parameters(overflow_fix))


# Layers that do the multiply-accumulates: quantized iff their activation input comes from a FakeQuantize.
_COMPUTE_OPS = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")
_SHAPE_OPS = ("Reshape", "Squeeze", "Unsqueeze", "Transpose")


def quantize_int8_accuracy_controlled(scores_model: ov.Model, calibration: np.ndarray, cfg: CalibrationConfig,
                                      overflow_fix: str, held_out: np.ndarray, labels: np.ndarray,
                                      label_offset: int, max_drop_points: float) -> ov.Model:
    """NNCF accuracy-controlled PTQ of ``scores_model`` (uint8 in, [N, C] scores out).

    Quantizes fully, then returns layers to float, the most harmful first (ranked by
    how much they change the scores of the held-out images), until top-1 on
    ``held_out`` is at most ``max_drop_points`` below FP32's, or nothing is left to
    revert. The held-out images must not be calibration images.
    """
    import nncf  # heavy import; only preparation needs it
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    def validate(compiled: ov.CompiledModel, items: list) -> tuple[float, list[list[np.ndarray]]]:
        outputs, correct = [], 0
        for pixels, label in items:  # an iterable (NNCF counts it), not a list
            scores = compiled(pixels)[0]
            correct += int(int(np.argmax(scores)) + label_offset == label)
            outputs.append([scores])  # per-item scores: the ranking compares these, not labels
        return correct / max(1, len(outputs)), outputs

    subset = min(cfg.subset_size or len(calibration), len(calibration))
    preset = nncf.QuantizationPreset.PERFORMANCE if cfg.preset == "performance" else nncf.QuantizationPreset.MIXED
    calib = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    validation = nncf.Dataset([(held_out[i:i + 1], int(labels[i])) for i in range(len(held_out))], lambda item: item[0])
    log.info("NNCF accuracy-controlled PTQ: %d calibration samples, %d held-out, max drop %.2f points",
             subset, len(held_out), max_drop_points)
    # "At most" X points: NNCF compares drop <= max_drop in floats, and a drop of exactly 2 of 400
    # images computes as 0.0050000000000000044, so the bound gets a rounding margin.
    bound = max_drop_points / 100.0 + 1e-9
    return nncf.quantize_with_accuracy_control(
        scores_model.clone(), calib, validation, validate, max_drop=bound,
        drop_type=nncf.DropType.ABSOLUTE, preset=preset, subset_size=subset,
        fast_bias_correction=cfg.fast_bias_correction,
        advanced_quantization_parameters=_advanced_parameters(overflow_fix),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            ranking_subset_size=min(300, len(held_out))))


def float_layers(model: ov.Model) -> tuple[list[str], int]:
    """Names of the compute layers of a quantized model that run in float, and how many there are in all."""
    compute = [op for op in model.get_ordered_ops() if op.get_type_name() in _COMPUTE_OPS]
    left = [op.get_friendly_name() for op in compute if _activation_source(op) != "FakeQuantize"]
    return left, len(compute)


def _activation_source(op: ov.Node) -> str:
    """Type of the op feeding ``op``'s activation input, looking through shape-only ops (a flatten)."""
    node = op.input_value(0).get_node()
    while node.get_type_name() in _SHAPE_OPS:
        node = node.input_value(0).get_node()
    return node.get_type_name()
