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


@dataclass(frozen=True)
class CalibrationConfig:
    """Where the calibration images are and how to use them."""

    image_dir: Path
    list_file: Path
    subset_size: int | None = None  # None: every image in the list
    preset: str = "performance"
    fast_bias_correction: bool = True

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"calibration preset: expected one of {PRESETS}, got {self.preset!r}")
        if self.subset_size is not None and self.subset_size < 1:
            raise ConfigError(f"calibration subset size: expected >= 1, got {self.subset_size}")


def load_calibration_samples(cfg: CalibrationConfig, spec: PreprocessSpec,
                             cache_dir: Path) -> np.ndarray:
    """Preprocess (via the cache) every image the list names; missing names are an error."""
    names = parse_name_list(cfg.list_file)
    check_files_exist(cfg.image_dir, names, f"calibration image (listed in {cfg.list_file})")
    samples = [Sample(name, 0) for name in names]
    info = build_cache(cfg.image_dir, samples, spec, cache_dir)
    return np.asarray(info.open())


def quantize_int8(model: ov.Model, calibration: np.ndarray, cfg: CalibrationConfig,
                  keep_float: list[str] | None = None) -> ov.Model:
    """Quantize ``model`` (uint8 input already folded in) to INT8 with NNCF PTQ; the ops named in
    ``keep_float`` (a detector's box decoding, modelprep.detector) stay in float."""
    import nncf  # heavy import; only preparation needs it

    subset = min(cfg.subset_size or len(calibration), len(calibration))
    preset = nncf.QuantizationPreset.PERFORMANCE if cfg.preset == "performance" else nncf.QuantizationPreset.MIXED
    dataset = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    log.info("NNCF PTQ: %d calibration samples, preset %s", subset, cfg.preset)
    ignored = nncf.IgnoredScope(names=keep_float, validate=False) if keep_float else None
    return nncf.quantize(model, dataset, preset=preset, subset_size=subset,
                         fast_bias_correction=cfg.fast_bias_correction, ignored_scope=ignored)
