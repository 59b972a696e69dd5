"""The zoo table (``models/zoo/zoo.csv``) as typed rows, validated once.

The table is every row of timm's published ImageNet results (``models.zoo_build`` writes it):
one row per timm architecture, pretrained tag and eval size, with the published FP32 top-1,
top-5, parameters, crop and interpolation, and the MACs this project counted itself at that
size. The ``#`` header names the source repository, file and commit; a row whose MACs could not
be counted (or whose architecture the pinned timm lacks) is kept with ``status`` and a note.
The figures carry over; no weights do. A bad cell is a ``ConfigError`` naming the file, the
line and the column. This module needs no torch: ``models`` registers every buildable row as
``timm/<timm_name>.<tag>`` from it, and ``search.zoo`` reports on it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common.errors import ConfigError
from common.resources import shipped

ZOO_CSV = shipped("models/zoo/zoo.csv")
# timm's interpolation names -> the dataset cache's OpenCV filters.
INTERPOLATIONS = {"bicubic": "cubic", "bilinear": "linear", "area": "area"}
STATUSES = ("ok", "not_counted", "not_in_timm")
COLUMNS = ("timm_name", "pretrained_tag", "img_size", "top1", "top5", "params_m", "crop_pct", "interpolation",
           "mean", "std", "family", "extra_data", "status", "gmacs", "depthwise_mac_fraction",
           "grouped_mac_fraction", "has_se", "activation", "timm_gmacs", "macs_check", "note")
# Columns counted here: empty on a row whose status is not "ok".
COUNTED = ("gmacs", "depthwise_mac_fraction", "grouped_mac_fraction", "has_se", "activation")
_SOURCE = re.compile(r"^# source: (?P<repo>\S+) (?P<file>\S+) @ (?P<commit>[0-9a-f]{7,40})\s*$")
# Tags whose weights saw data beyond ImageNet-1k before or during the 1k training: their top-1 is as
# published, but not what an architecture reaches on 1k alone. ImageNet-21k/22k/12k, JFT, Instagram
# (ig1b, wsl, swsl), YFCC (ssl), SEER, SWAG, LVD, LAION and other CLIP image-text data (laion, openai,
# clip, webli, the m30m/m38m merged sets), PaddleClas SSLD (distilled with unlabelled ImageNet-22k
# images: ``ssld`` matches ``ssl``) and USI (distilled from an ImageNet-21k teacher).
_EXTRA_DATA = re.compile(r"in12k|in21k|in22k|jft|ig1b|wsl|ssl|lvd|seer|swag|laion|openai|clip|webli|m30m|m38m"
                         r"|yfcc|usi")


def extra_training_data(tag: str) -> bool:
    """Whether a pretrained tag names training data (or a teacher's data) beyond ImageNet-1k."""
    return bool(_EXTRA_DATA.search(tag))


@dataclass(frozen=True)
class ZooEntry:
    """One row of the zoo table. ``mean``/``std`` are in 0..1 units as timm states them;
    the counted columns are 0 / "" when ``status`` is not ``ok``."""

    timm_name: str
    pretrained_tag: str
    img_size: int
    top1: float
    top5: float
    params_m: float
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    family: str
    extra_data: bool
    status: str
    gmacs: float
    depthwise_mac_fraction: float
    grouped_mac_fraction: float
    has_se: bool
    activation: str
    timm_gmacs: float
    macs_check: str
    note: str
    source_repo: str = ""
    source_file: str = ""
    source_commit: str = ""
    size_suffix: str = ""  # "@<size>" when the same tag is published at several sizes (all but the first)

    @property
    def arch(self) -> str:
        """The timm architecture name."""
        return self.timm_name

    @property
    def key(self) -> str:
        """timm's full name of the pretrained weights the figures belong to: ``<timm_name>.<tag>``."""
        return f"{self.timm_name}.{self.pretrained_tag}"

    @property
    def row_key(self) -> str:
        """The row's unique name: ``key``, with ``@<size>`` for a tag's second and later eval sizes."""
        return self.key + self.size_suffix

    @property
    def model_name(self) -> str:
        """The registered model name that exports this architecture (untrained): ``timm/<row_key>``."""
        return f"timm/{self.row_key}"

    @property
    def counted(self) -> bool:
        """Its MACs were counted here (the pinned timm builds it)."""
        return self.status == "ok"

    @property
    def label(self) -> str:
        """``row_key`` for tables and answers, flagged when the weights saw more than ImageNet-1k."""
        return f"{self.row_key} (pretrained beyond ImageNet-1k)" if self.extra_data else self.row_key

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


def _choice(options: tuple[str, ...] | dict[str, str]) -> Callable[[str], str]:
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


def _optional(parse: Callable[[str], object], empty: object) -> Callable[[str], object]:
    return lambda text: empty if text == "" else parse(text)


_PARSERS: dict[str, Callable[[str], object]] = {
    "top1": _bounded(float, 0, 100), "top5": _bounded(float, 0, 100), "params_m": _bounded(float, 0.01, 1e4),
    "gmacs": _bounded(float, 1e-3, 1e4), "img_size": _bounded(int, 16, 2048), "crop_pct": _bounded(float, 0.1, 2.0),
    "interpolation": _choice(INTERPOLATIONS), "mean": _triple, "std": _triple, "extra_data": _flag,
    "status": _choice(STATUSES), "depthwise_mac_fraction": _bounded(float, 0, 1),
    "grouped_mac_fraction": _bounded(float, 0, 1), "has_se": _flag,
    "timm_gmacs": _optional(_bounded(float, 0, 1e5), 0.0), "macs_check": _optional(_choice(("agree", "differs")), ""),
    "note": lambda text: text.strip(),
}
_EMPTY = {"gmacs": 0.0, "depthwise_mac_fraction": 0.0, "grouped_mac_fraction": 0.0, "has_se": False,
          "activation": ""}


def _source(path: Path, comments: list[str]) -> dict[str, str]:
    for line in comments:
        if m := _SOURCE.match(line):
            return {"source_repo": m["repo"], "source_file": m["file"], "source_commit": m["commit"]}
    raise ConfigError(f"{path}:1: the header names no source ('# source: <repo> <file> @ <commit>')")


def _parse_row(path: Path, line: int, row: dict[str, str | None]) -> dict[str, object]:
    status = row.get("status") or ""
    values: dict[str, object] = {}
    for column in COLUMNS:
        cell = row.get(column)
        if cell is None:
            raise ConfigError(f"{path}:{line}: column {column!r}: missing cell (row too short)")
        if column in COUNTED and status != "ok":
            if cell:
                raise ConfigError(f"{path}:{line}: column {column!r}: must be empty when status is {status!r}")
            values[column] = _EMPTY[column]
            continue
        try:
            values[column] = _PARSERS.get(column, _text)(cell)
        except ValueError as exc:
            raise ConfigError(f"{path}:{line}: column {column!r}: {exc}") from None
    if values["status"] != "ok" and not values["note"]:
        raise ConfigError(f"{path}:{line}: column 'note': a row with status {status!r} must say why")
    return values


def load_zoo(path: Path = ZOO_CSV, counted_only: bool = False) -> list[ZooEntry]:
    """Read and validate the zoo table; a bad cell is a one-line ``ConfigError`` naming file:line, column.

    ``counted_only``: only the rows whose MACs were counted (what speed and MAC questions can use)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the zoo table ({exc.strerror})") from None
    comments = [line for line in lines if line.startswith("#")]
    if lines[:len(comments)] != comments:
        raise ConfigError(f"{path}: '#' header lines must all come before the column names")
    source = _source(path, comments)
    reader = csv.DictReader(lines[len(comments):])
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{path}:{len(comments) + 1}: missing column(s) {', '.join(missing)}")
    entries: list[ZooEntry] = []
    seen: dict[tuple[str, int], int] = {}
    sizes: dict[str, int] = {}
    for row in reader:
        line = reader.line_num + len(comments)
        entry = ZooEntry(**_parse_row(path, line, row), **source)  # type: ignore[arg-type]
        ident = (entry.key, entry.img_size)
        if ident in seen:
            raise ConfigError(f"{path}:{line}: {entry.key} at {entry.img_size} repeats line {seen[ident]}")
        seen[ident] = line
        if entry.key in sizes:
            entry = ZooEntry(**{**entry.__dict__, "size_suffix": f"@{entry.img_size}"})
        sizes.setdefault(entry.key, entry.img_size)
        entries.append(entry)
    if not entries:
        raise ConfigError(f"{path}: the zoo table has no rows")
    return [e for e in entries if e.counted] if counted_only else entries
