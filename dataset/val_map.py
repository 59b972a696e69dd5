"""Reading ImageNet-style ``val_map.txt`` files.

Each non-empty line is ``<file name> <label>``; the line order is the QSL
index. Errors name the file and line so a user can fix the exact entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.errors import DatasetError


@dataclass(frozen=True)
class Sample:
    """One dataset entry: the image file name (relative to the dataset dir) and its label."""

    name: str
    label: int


def parse_val_map(path: Path, num_classes: int | None = None) -> list[Sample]:
    """Parse ``path`` into samples in file order.

    Blank lines are skipped; CRLF endings are accepted. A line without exactly
    two fields, a non-integer label, a label outside ``[0, num_classes)`` or a
    repeated file name is a ``DatasetError`` naming ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: val_map file not found")
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    with path.open("r", encoding="utf-8", newline=None) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 2:
                raise DatasetError(
                    f"{path}:{lineno}: expected '<file name> <label>', got {line!r}")
            name, label_text = fields
            try:
                label = int(label_text)
            except ValueError:
                raise DatasetError(
                    f"{path}:{lineno}: label {label_text!r} is not an integer") from None
            if label < 0 or (num_classes is not None and label >= num_classes):
                limit = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
                raise DatasetError(
                    f"{path}:{lineno}: label {label} out of range {limit}")
            if name in seen:
                raise DatasetError(
                    f"{path}:{lineno}: {name} repeats line {seen[name]}")
            seen[name] = lineno
            samples.append(Sample(name, label))
    if not samples:
        raise DatasetError(f"{path}: no samples")
    return samples


def parse_name_list(path: Path) -> list[str]:
    """Parse a list of file names, one per line (e.g. a calibration list)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: list file not found")
    names: list[str] = []
    with path.open("r", encoding="utf-8", newline=None) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            if len(line.split()) != 1:
                raise DatasetError(f"{path}:{lineno}: expected one file name, got {line!r}")
            names.append(line)
    if not names:
        raise DatasetError(f"{path}: no file names")
    return names


def check_files_exist(root: Path, names: list[str], what: str) -> None:
    """Raise a ``DatasetError`` naming the first missing file (and how many are missing)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: {what} directory not found")
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DatasetError(f"{root / missing[0]}: {what} file missing{more}")
