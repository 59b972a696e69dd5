"""Reference-exact ResNet50 preprocessing, parameterised by a ``PreprocessSpec``.

Follows the MLCommons reference (``pre_process_vgg`` in the classification
harness): OpenCV decode to 3-channel BGR, BGR->RGB, INTER_AREA resize so the
short side is ``int(100 * size / (100 * crop_pct))`` keeping aspect with the
long side truncated, then a centre crop of ``size`` x ``size``. The result stays
uint8: mean/std subtraction and the float conversion are folded into the model,
which is legal untimed preprocessing and keeps the cache 4x smaller.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from dataset.constants import REFERENCE_CROP_PCT
from common.errors import ConfigError, DatasetError

_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
_LAYOUTS = ("NCHW", "NHWC")
RESIZE_MODES = ("crop", "letterbox")  # classifiers: short side + centre crop; detectors: letterbox


@dataclass(frozen=True)
class PreprocessSpec:
    """Geometry and layout of a model's input; everything that changes cached pixels."""

    input_size: int = 224
    crop_pct: float = REFERENCE_CROP_PCT
    interpolation: str = "area"
    layout: str = "NCHW"
    resize: str = "crop"
    pad_value: int = 114  # letterbox only: the grey the borders are filled with

    def __post_init__(self) -> None:
        if not isinstance(self.input_size, int) or self.input_size < 8:
            raise ConfigError(f"input_size: expected an integer >= 8, got {self.input_size!r}")
        if not 0.1 <= float(self.crop_pct) <= 1.0:
            raise ConfigError(f"crop_pct: expected 0.1..1.0, got {self.crop_pct!r}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ConfigError(
                f"interpolation: expected one of {sorted(_INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.layout not in _LAYOUTS:
            raise ConfigError(f"layout: expected one of {_LAYOUTS}, got {self.layout!r}")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"resize: expected one of {RESIZE_MODES}, got {self.resize!r}")
        if not 0 <= int(self.pad_value) <= 255:
            raise ConfigError(f"letterbox pad value: expected 0..255, got {self.pad_value!r}")

    @property
    def resize_size(self) -> int:
        """Short-side length before the crop (256 for the reference 224 / 0.875)."""
        return int(100.0 * self.input_size / (100.0 * self.crop_pct))

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """Shape of one preprocessed sample in this spec's layout."""
        s = self.input_size
        return (3, s, s) if self.layout == "NCHW" else (s, s, 3)

    def key(self) -> str:
        """Stable hash of every parameter (and the dtype) that changes the cached bytes."""
        fields = asdict(self)
        if self.resize == "crop":  # the classifiers' keys (and caches) from before letterbox existed
            del fields["resize"], fields["pad_value"]
        blob = json.dumps({**fields, "dtype": "uint8", "version": 1}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def decode_image(path: Path) -> np.ndarray:
    """Decode any image file OpenCV reads (JPEG, CMYK JPEG, grayscale, PNG named .JPEG)
    into an HxWx3 uint8 RGB array, as the reference does.

    A file that is missing or does not decode is a ``DatasetError`` naming it.
    """
    path = Path(path)
    # imdecode over a byte buffer sniffs the format from content, like imread,
    # and lets us tell "missing" from "corrupt".
    try:
        buf = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read image ({exc.strerror})") from None
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise DatasetError(f"{path}: not a decodable image (corrupt or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def resize_short_side(img: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize so the short side is ``spec.resize_size``, long side truncated like the reference."""
    height, width = img.shape[:2]
    target = spec.resize_size
    if height > width:
        new_w, new_h = target, int(target * height / width)
    else:
        new_h, new_w = target, int(target * width / height)
    return cv2.resize(img, (new_w, new_h), interpolation=_INTERPOLATIONS[spec.interpolation])


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Crop ``size`` x ``size`` from the centre with the reference's offset rounding."""
    height, width = img.shape[:2]
    left = int((width - size) / 2)
    top = int((height - size) / 2)
    return img[top:top + size, left:left + size]


@dataclass(frozen=True)
class Letterbox:
    """Where an image of ``height`` x ``width`` lands in a letterboxed square input: scaled by
    ``scale`` (aspect kept), ``new_w`` x ``new_h`` pixels, offset by ``pad_x``, ``pad_y``."""

    scale: float
    new_w: int
    new_h: int
    pad_x: int
    pad_y: int


def letterbox_geometry(height: int, width: int, size: int) -> Letterbox:
    """The letterbox of a ``height`` x ``width`` image in a ``size`` square, centred.

    A function of the original size alone, so the post-processor maps boxes back with the
    sizes the annotation file gives, without keeping anything from preprocessing.
    """
    scale = min(size / height, size / width)
    new_w = min(size, max(1, int(round(width * scale))))
    new_h = min(size, max(1, int(round(height * scale))))
    return Letterbox(scale, new_w, new_h, (size - new_w) // 2, (size - new_h) // 2)


def letterbox(rgb: np.ndarray, size: int, pad_value: int) -> np.ndarray:
    """Resize keeping aspect (bilinear) into a ``size`` square filled with ``pad_value``, centred."""
    geo = letterbox_geometry(rgb.shape[0], rgb.shape[1], size)
    out = np.full((size, size, 3), pad_value, dtype=np.uint8)
    resized = cv2.resize(rgb, (geo.new_w, geo.new_h), interpolation=cv2.INTER_LINEAR)
    out[geo.pad_y:geo.pad_y + geo.new_h, geo.pad_x:geo.pad_x + geo.new_w] = resized
    return out


def preprocess_array(rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Turn a decoded RGB image into one uint8 sample of ``spec.sample_shape``."""
    if spec.resize == "letterbox":
        out = letterbox(rgb, spec.input_size, spec.pad_value)
    else:
        out = center_crop(resize_short_side(rgb, spec), spec.input_size)
    if out.shape[:2] != (spec.input_size, spec.input_size):
        raise DatasetError(
            f"image of shape {rgb.shape[:2]} is too small to crop {spec.input_size} after resize")
    if spec.layout == "NCHW":
        out = out.transpose(2, 0, 1)
    return np.ascontiguousarray(out, dtype=np.uint8)


def preprocess_file(path: Path, spec: PreprocessSpec) -> np.ndarray:
    """Decode and preprocess one image file."""
    try:
        return preprocess_array(decode_image(path), spec)
    except DatasetError as exc:
        if str(path) in str(exc):
            raise
        raise DatasetError(f"{path}: {exc}") from None
