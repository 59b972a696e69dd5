"""The zoo table (``models/zoo/zoo.csv``) as typed rows, validated once.

Each row is one timm architecture with one pretrained tag: its published ImageNet-1k top-1
(timm's own FP32 measurement, with the source repository, file and commit), its size and
MACs at ``img_size``, the tag's preprocessing and a few architecture descriptors. The
figures carry over; no weights do. A bad cell is a ``ConfigError`` naming the file, the line
and the column. This module needs no torch: ``models`` registers every row as
``timm/<timm_name>.<tag>`` from it, and ``search.zoo`` reports on it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common.errors import ConfigError

ZOO_CSV = Path(__file__).resolve().parent / "zoo" / "zoo.csv"
# timm's interpolation names -> the dataset cache's OpenCV filters.
INTERPOLATIONS = {"bicubic": "cubic", "bilinear": "linear", "area": "area"}
COLUMNS = ("arch", "timm_name", "pretrained_tag", "top1", "top5", "params_m", "gmacs", "img_size", "crop_pct",
           "interpolation", "mean", "std", "family", "depthwise_mac_fraction", "has_se", "activation",
           "source_repo", "source_file", "source_commit")
# Tags whose weights saw more than ImageNet-1k before the 1k fine-tune (ImageNet-21k/12k/22k, JFT,
# Instagram, ...): their top-1 is as published, but not what an architecture reaches on 1k alone.
_EXTRA_DATA = re.compile(r"in12k|in21k|in22k|jft|ig1b|swsl|ssl|lvd|seer|swag")


def extra_training_data(tag: str) -> bool:
    """Whether a pretrained tag names training data beyond ImageNet-1k."""
    return bool(_EXTRA_DATA.search(tag))


@dataclass(frozen=True)
class ZooEntry:
    """One row of the zoo table. ``mean``/``std`` are in 0..1 units as timm states them."""

    arch: str
    timm_name: str
    pretrained_tag: str
    top1: float
    top5: float
    params_m: float
    gmacs: float
    img_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    family: str
    depthwise_mac_fraction: float
    has_se: bool
    activation: str
    source_repo: str
    source_file: str
    source_commit: str

    @property
    def key(self) -> str:
        """timm's full name of the pretrained weights the figures belong to: ``<timm_name>.<tag>``."""
        return f"{self.timm_name}.{self.pretrained_tag}"

    @property
    def model_name(self) -> str:
        """The registered model name that exports this architecture (untrained): ``timm/<key>``."""
        return f"timm/{self.key}"

    @property
    def extra_data(self) -> bool:
        """The weights were pretrained on more than ImageNet-1k (the tag says so)."""
        return extra_training_data(self.pretrained_tag)

    @property
    def label(self) -> str:
        """``key`` for tables and answers, flagged when the weights saw more than ImageNet-1k."""
        return f"{self.key} (pretrained beyond ImageNet-1k)" if self.extra_data else self.key

    @property
    def speed_key(self) -> str:
        """What the speed depends on: the architecture and its input size (not the tag's weights)."""
        return f"{self.timm_name}@{self.img_size}"

    @property
    def source(self) -> str:
        """Where ``top1`` was published: ``repo/file@commit``."""
        return f"{self.source_repo}/{self.source_file}@{self.source_commit}"

    def card_fields(self) -> dict[str, object]:
        """The card fields of this row: input size, crop, OpenCV filter, mean/std in 0..255 units."""
        return {"input_size": self.img_size, "crop_pct": self.crop_pct,
                "interpolation": INTERPOLATIONS[self.interpolation],
                "mean": tuple(round(255 * v, 4) for v in self.mean), "std": tuple(round(255 * v, 4) for v in self.std)}


def _triple(text: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in text.split("/"))
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise ValueError(f"expected three values a/b/c in 0..1, got {text!r}")
    return values  # type: ignore[return-value]


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {text!r}")
    return text == "1"


def _choice(options: dict[str, str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"expected one of {sorted(options)}, got {text!r}")
        return text
    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("empty")
    return text.strip()


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(f"expected {low}..{high}, got {text!r}")
        return value
    return parse


_PARSERS: dict[str, Callable[[str], object]] = {
    "top1": _bounded(float, 0, 100), "top5": _bounded(float, 0, 100), "params_m": _bounded(float, 0.01, 1e4),
    "gmacs": _bounded(float, 1e-3, 1e3), "img_size": _bounded(int, 16, 2048), "crop_pct": _bounded(float, 0.1, 1.0),
    "interpolation": _choice(INTERPOLATIONS), "mean": _triple, "std": _triple,
    "depthwise_mac_fraction": _bounded(float, 0, 1), "has_se": _flag,
}


def load_zoo(path: Path = ZOO_CSV) -> list[ZooEntry]:
    """Read and validate the zoo table; a bad cell is a one-line ``ConfigError`` naming file:line, column."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the zoo table ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{path}:1: missing column(s) {', '.join(missing)}")
    entries: list[ZooEntry] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        values = {}
        for column in COLUMNS:
            cell = row.get(column)
            if cell is None:
                raise ConfigError(f"{path}:{line}: column {column!r}: missing cell (row too short)")
            try:
                values[column] = _PARSERS.get(column, _text)(cell)
            except ValueError as exc:
                raise ConfigError(f"{path}:{line}: column {column!r}: {exc}") from None
        entry = ZooEntry(**values)  # type: ignore[arg-type]
        if entry.key in seen:
            raise ConfigError(f"{path}:{line}: {entry.key} repeats line {seen[entry.key]}")
        seen[entry.key] = line
        entries.append(entry)
    if not entries:
        raise ConfigError(f"{path}: the zoo table has no rows")
    return entries
